"""Scenario 10: hostile requests, generated from ``GET /openapi.json``, never make a 500.

Schemathesis reads the document the app serves and, for every operation, generates requests
that follow it and requests that break it (wrong types, missing and extra fields, huge numbers,
odd text and encodings); hypothesis shrinks any failure to its smallest form. The app runs over
a registry holding a model, so ``/predict`` answers for real, and a route added later is
covered as soon as it is documented (tests/web/test_openapi.py makes sure it is).

Tasks that the requests start go to an in-memory broker, so none of them is left in the
tests' Redis for a later worker; results are read from the real Redis backend.
"""

from __future__ import annotations

import pytest
import schemathesis
from celery import Celery
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from app.data.generator import generate
from app.lifecycle.home import Home
from app.models.regressor import IncrementalRidge

EXAMPLES_PER_OPERATION = 30

# A minute or so on two cores: with the fault suite, not in make test-quick.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def hostile_app(tmp_path_factory):
    from app.web import create_app

    home = Home(str(tmp_path_factory.mktemp("hostile-home")))
    batch = generate(500, seed=3)
    home.registry.publish(IncrementalRidge().partial_fit(batch, batch["salario"]), 1,
                          batch_id="b1", batch_ids=["b1"], n_batch=500,
                          metrics={"prequential": None})
    app = create_app({"TESTING": True, "CONFIGURE_LOGGING": False, "PIPELINE_HOME": home.url,
                      "MODEL_NOTICES": False})
    sink = Celery("hostile-requests", set_as_current=False)  # later tests send for real
    sink.config_from_object("celeryconfig")
    sink.conf.broker_url = "memory://"
    app.extensions["celery"] = sink
    return app


@pytest.fixture(scope="module")
def api_schema(hostile_app):
    return schemathesis.openapi.from_wsgi("/openapi.json", hostile_app)


def operations(schema):
    for result in schema.get_all_operations():
        yield result.ok()


def test_the_document_lists_the_operations(api_schema):
    found = {(op.method.upper(), op.path) for op in operations(api_schema)}
    assert {("POST", "/predict"), ("GET", "/models"), ("GET", "/tasks/{task_id}")} <= found


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
                         ids=["following-the-schema", "breaking-the-schema"])
def test_no_request_makes_a_server_error(api_schema, mode):
    failures = {}
    for operation in operations(api_schema):
        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def run(case):
            case.call_and_validate(checks=[not_a_server_error])

        try:
            run()
        except Unsatisfiable:
            assert mode is GenerationMode.NEGATIVE, operation.path
            # Nothing of it can be broken (no body, no typed parameter): nothing to send.
        except Exception as error:  # noqa: BLE001 - every operation is tried, then reported
            failures[f"{operation.method.upper()} {operation.path}"] = error
    assert not failures, "\n\n".join(f"{name}:\n{error}" for name, error in failures.items())
