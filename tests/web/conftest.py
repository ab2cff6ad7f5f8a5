"""The web app over a registry of its own in a temporary folder, and ways to fill that registry.

``tests/conftest.py`` has already pointed REDIS_URL and PIPELINE_HOME at the tests' own Redis
and folder; the ``app`` here uses ``tmp_path`` instead, so each test starts with no model.
Tests that need a real worker use ``home_app``, whose registry is the worker's.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from datetime import datetime, timezone

import pytest
from loguru import logger

from app.data.generator import generate
from app.models.registry import ModelRegistry
from app.models.regressor import IncrementalRidge
from app.runner import web_server

PROBE = {"idade": 35, "cidade": "São Paulo", "cargo": "Professor"}


def trained(seed: int = 1, n: int = 2000) -> IncrementalRidge:
    batch = generate(n, seed=seed)
    return IncrementalRidge().partial_fit(batch, batch["salario"])


def save(registry: ModelRegistry, model: IncrementalRidge, batch_id: str = "b1") -> int:
    """Publish ``model`` as the registry's next version, as a train step does; its number."""
    version = (registry.latest_version() or 0) + 1
    registry.publish(model, version, batch_id=batch_id, batch_ids=[batch_id],
                     n_batch=int(model.n_samples_seen_), metrics={"prequential": None})
    return version


def save_broken(registry: ModelRegistry, how: str) -> int:
    """Publish a version that must be refused, the way a train step publishes one; its number.

    ``checksum``: the artifact does not match its recorded sha256. ``garbage``: it matches,
    but is not JSON. ``not_a_model``: valid JSON holding no model. ``pickle``: a pickle that
    would run code, with its metadata and checksum rewritten to match (as an attacker with
    write access to the folder would). ``missing``: the metadata names no artifact there.
    """
    version = (registry.latest_version() or 0) + 1
    artifact = f"v{version:09d}-broken.json"
    if how == "not_a_model":
        payload = json.dumps({"format": "salary-regressor/1", "coef_": [1.0]}).encode()
    elif how == "pickle":
        payload = pickle.dumps(RunsCode())
    else:
        payload = b"\x80\x04 this is not a model" * 10
    recorded = hashlib.sha256(b"other bytes" if how == "checksum" else payload).hexdigest()
    if how != "missing":
        registry.storage.write_bytes(f"models/artifacts/{artifact}", payload)
    metadata = {"version": version, "artifact": artifact, "sha256": recorded,
                "format": "salary-regressor/1", "created_at": datetime.now(timezone.utc).isoformat(),
                "n_samples_seen": 1, "batch_id": f"broken-{how}", "batch_ids": []}
    registry.journal.claim(version, metadata)
    return version


class RunsCode:
    """Unpickling this would create the file named by RUNS_CODE_MARKER: proof code ran."""

    def __reduce__(self):
        import os

        return (os.system, (f"touch {os.environ.get('RUNS_CODE_MARKER', '/tmp/pipeline-pwned')}",))


@pytest.fixture(scope="session")
def first_model() -> IncrementalRidge:
    return trained(seed=1)


@pytest.fixture(scope="session")
def second_model() -> IncrementalRidge:
    """Differs from ``first_model`` in every prediction: trained on more, other data."""
    model = trained(seed=1)
    batch = generate(4000, seed=2)
    return model.partial_fit(batch, batch["salario"])


@pytest.fixture
def make_app(registry):
    """``make_app(**config)``: a fresh app over ``registry`` (empty, in ``tmp_path``)."""

    def make(**config):
        from app.web import create_app

        return create_app({"TESTING": True, "CONFIGURE_LOGGING": False,
                           "PIPELINE_HOME": registry.storage.url, "MODEL_NOTICES": False,
                           **config})

    return make


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def served(registry, first_model) -> int:
    """The version of a model saved in ``registry`` before the test's first request."""
    return save(registry, first_model)


@pytest.fixture
def save_model(registry):
    """``save_model(model)``: commit ``model`` as ``registry``'s next version; its number."""
    return lambda model, batch_id="b1": save(registry, model, batch_id)


@pytest.fixture
def save_broken_version(registry):
    """``save_broken_version(how)``: commit a version that must be refused (see save_broken)."""
    return lambda how: save_broken(registry, how)


@pytest.fixture
def log_lines():
    """Messages loguru logs during the test."""
    lines: list[str] = []
    sink = logger.add(lambda message: lines.append(str(message)), level="INFO", format="{message}")
    yield lines
    logger.remove(sink)


@pytest.fixture
def home_app(home_registry, first_model):
    """The app over the session's PIPELINE_HOME, where the test worker finds models too."""
    from app.web import create_app

    if home_registry.latest_version() is None:
        save(home_registry, first_model, batch_id="web-tests")
    return create_app({"TESTING": True, "CONFIGURE_LOGGING": False})


# -- a real gunicorn ------------------------------------------------------------------------

@pytest.fixture
def gunicorn(tmp_path):
    """``with gunicorn(home) as url``: the Procfile's web server over ``home``."""
    return lambda home: web_server(home, tmp_path / "gunicorn.log")
