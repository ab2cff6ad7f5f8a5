"""Flask's own errors (unknown route, wrong method, body too large) answer JSON like ours."""

import io
import socket

import pytest


@pytest.mark.parametrize("method, path", [
    ("get", "/reports"), ("get", "/nope"), ("post", "/predict/"), ("get", "/models/1/extra"),
    ("get", "/tasks/"),
])
def test_an_unknown_route_is_a_json_404_naming_the_path(client, method, path):
    response = getattr(client, method)(path)
    assert response.status_code == 404 and response.is_json
    assert response.get_json() == {"error": f"{path} is not a route of this API"}


@pytest.mark.parametrize("method, path, allowed", [
    ("get", "/predict", "POST"), ("put", "/predict", "POST"), ("post", "/health", "GET"),
    ("delete", "/models", "GET"), ("get", "/evaluate", "POST"), ("post", "/tasks/abc", "GET"),
])
def test_a_wrong_method_is_a_json_405_listing_the_allowed_ones(client, method, path, allowed):
    response = getattr(client, method)(path)
    assert response.status_code == 405 and response.is_json
    error = response.get_json()["error"]
    assert error.startswith(f"{method.upper()} is not allowed on {path}") and allowed in error
    assert allowed in response.headers["Allow"]


@pytest.mark.parametrize("path", ["/predict", "/evaluate"])
def test_a_body_over_the_limit_is_a_json_413(client, app, path):
    limit = app.config["MAX_CONTENT_LENGTH"]
    response = client.post(path, data=b" " * (limit + 1), content_type="application/json")
    assert response.status_code == 413
    assert response.get_json() == {"error": f"the body is larger than the limit of {limit:,} bytes"}


@pytest.mark.parametrize("path", ["/predict", "/evaluate"])
def test_a_streamed_body_over_the_limit_is_a_413_not_a_truncated_400(client, app, path):
    """A chunked body has no Content-Length; Werkzeug alone would cut it at the limit."""
    limit = app.config["MAX_CONTENT_LENGTH"]
    response = client.post(path, input_stream=io.BytesIO(b" " * (limit + 10)),
                           environ_overrides={"wsgi.input_terminated": True})
    assert response.status_code == 413 and response.is_json


def test_the_body_limit_can_be_set_from_the_environment(make_app, monkeypatch):
    monkeypatch.setenv("FLASK_MAX_CONTENT_LENGTH", "1000")
    app = make_app()
    response = app.test_client().post("/predict", data=b"{" + b" " * 1000 + b"}")
    assert app.config["MAX_CONTENT_LENGTH"] == 1000 and response.status_code == 413


@pytest.mark.parametrize("failure", [
    RuntimeError("secret detail"),
    # A file missing from a store that works: waiting would not bring it back, so not a 503
    # telling clients to retry for ever.
    FileNotFoundError("models/v0000000001.json"),
], ids=["unexpected", "file missing"])
def test_an_unexpected_failure_is_a_json_500_without_the_traceback(make_app, monkeypatch,
                                                                   failure):
    app = make_app(TESTING=False)  # let Flask turn the exception into a 500 instead of raising
    app.logger.disabled = True  # Flask logs the traceback; nothing to see here

    def boom():
        raise failure

    monkeypatch.setattr(app.extensions["model_holder"], "status", boom)
    response = app.test_client().get("/health")
    assert response.status_code == 500
    assert response.get_json() == {
        "error": "the server failed to answer this request; the error has been logged"}


# -- a store that cannot be used -------------------------------------------------------------

STORE_DOWN = ("the pipeline's storage cannot be used now (StorageUnavailable); try again in a "
              "few seconds")


@pytest.fixture
def store_down_client(monkeypatch):
    """A client of an app whose PIPELINE_HOME is an S3 bucket behind a port nothing listens on
    (each request to it is refused at once: one attempt, no retries)."""
    import s3fs

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    monkeypatch.setattr(s3fs.S3FileSystem, "retries", 1)
    from app.web import create_app

    return create_app({"TESTING": True, "CONFIGURE_LOGGING": False, "MODEL_NOTICES": False,
                       "PIPELINE_HOME": "s3://unreachable/home"}).test_client()


@pytest.mark.parametrize("path", ["/models", "/batches", "/batches/b1", "/status", "/serving",
                                  "/audit", "/reports/latest", "/"])
def test_every_route_that_reads_the_store_is_a_json_503_while_it_cannot_be_reached(
        store_down_client, path):
    response = store_down_client.get(path)
    assert response.status_code == 503 and response.is_json
    assert response.get_json() == {"error": STORE_DOWN}
    assert response.headers["Retry-After"] == "5"


@pytest.mark.parametrize("method, path, body", [
    ("post", "/ingest", {"records": [{"idade": 30, "cidade": "a", "cargo": "b", "salario": 1.0}]}),
    ("post", "/evaluate", {}),
    ("put", "/serving", {"version": 1, "reason": "incident"}),
    ("post", "/serving/rollback", {"reason": "incident"}),
    ("post", "/batches/b1/forget", {"reason": "deletion request"}),
])
def test_every_route_that_writes_the_store_is_a_json_503_while_it_cannot_be_reached(
        store_down_client, method, path, body):
    response = getattr(store_down_client, method)(path, json=body)
    assert response.status_code == 503 and response.get_json() == {"error": STORE_DOWN}


def test_health_and_metrics_still_answer_while_the_store_cannot_be_reached(store_down_client):
    """What monitoring asks must not fail with the store: the process itself is fine."""
    health = store_down_client.get("/health")
    assert health.status_code == 200 and health.get_json()["model_version"] is None
    assert store_down_client.get("/metrics").status_code == 200
    assert store_down_client.post("/predict", json={"idade": 30, "cidade": "a", "cargo": "b"}
                                  ).status_code == 503
