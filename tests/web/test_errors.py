"""Flask's own errors (unknown route, wrong method, body too large) answer JSON like ours."""

import io

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


def test_an_unexpected_failure_is_a_json_500_without_the_traceback(make_app, monkeypatch):
    app = make_app(TESTING=False)  # let Flask turn the exception into a 500 instead of raising
    app.logger.disabled = True  # Flask logs the traceback; nothing to see here

    def boom():
        raise RuntimeError("secret detail")

    monkeypatch.setattr(app.extensions["model_holder"], "status", boom)
    response = app.test_client().get("/health")
    assert response.status_code == 500
    assert response.get_json() == {
        "error": "the server failed to answer this request; the error has been logged"}
