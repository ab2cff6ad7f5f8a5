"""POST /evaluate and GET /tasks/<id>, with a real worker in this process."""

import uuid
from types import SimpleNamespace

import pytest
import redis
from kombu.exceptions import OperationalError

from tests.support import wait_for

pytestmark = pytest.mark.timeout(120)


def wait_for_end(client, task_id):
    """GET /tasks/<id> until the task has succeeded or failed; the last answer."""

    def ended():
        response = client.get(f"/tasks/{task_id}")
        assert response.status_code == 200
        body = response.get_json()
        if body["state"] in ("SUCCESS", "FAILURE"):
            return body
        assert body["state"] in ("PENDING", "RECEIVED", "STARTED", "RETRY")
        assert body["result"] is None
        return None

    return wait_for(ended, timeout=60, what=f"task {task_id} to end")


def must_not_send(*args, **kwargs):
    pytest.fail(f"a task was sent: {args} {kwargs}")


@pytest.fixture
def home_client(home_app, celery_worker):
    return home_app.test_client()


def test_evaluate_answers_202_with_a_task_whose_result_scores_the_newest_model(home_client,
                                                                               home_registry):
    response = home_client.post("/evaluate", json={"n": 300})
    assert response.status_code == 202
    task_id = response.get_json()["task_id"]
    assert response.get_json() == {"task_id": task_id}
    assert response.headers["Location"].endswith(f"/tasks/{task_id}")
    body = wait_for_end(home_client, task_id)
    assert body["state"] == "SUCCESS" and body["task_id"] == task_id
    result = body["result"]
    assert {"model_version", "n", "mse", "rmse", "mae", "r2", "report"} <= set(result)
    assert result["n"] == 300 and result["model_version"] <= home_registry.latest_version()
    # The worker names the report's path; the answer makes it a URL of this app.
    assert result["report_url"] == f"http://localhost/reports/{result['report_id']}"
    assert home_client.get(result["report_url"]).status_code == 200


def test_evaluate_without_a_body_uses_the_defaults(home_client):
    response = home_client.post("/evaluate")
    assert response.status_code == 202
    assert wait_for_end(home_client, response.get_json()["task_id"])["result"]["n"] == 5000


def test_evaluate_scores_the_version_asked_for(home_client, home_registry):
    version = 1
    response = home_client.post("/evaluate", json={"version": version, "n": 50})
    result = wait_for_end(home_client, response.get_json()["task_id"])["result"]
    assert result["model_version"] == version and result["n"] == 50


def test_evaluate_against_a_baseline_version_compares_them_in_one_report(home_client,
                                                                         home_registry):
    newest = home_registry.latest_version()
    response = home_client.post("/evaluate", json={"version": newest, "baseline_version": 1,
                                                   "n": 60})
    result = wait_for_end(home_client, response.get_json()["task_id"])["result"]
    assert (result["model_version"], result["baseline_version"]) == (newest, 1)
    page = home_client.get(result["report_url"]).get_data(as_text=True)
    assert f"version {newest} against version 1" in page


def test_evaluate_against_an_unknown_baseline_is_404(home_app, home_registry, monkeypatch):
    monkeypatch.setattr(home_app.extensions["celery"], "send_task", must_not_send)
    response = home_app.test_client().post("/evaluate", json={"baseline_version": 10**6})
    assert response.status_code == 404


def test_evaluate_of_an_unknown_version_is_404_and_sends_nothing(home_app, home_registry, monkeypatch):
    monkeypatch.setattr(home_app.extensions["celery"], "send_task", must_not_send)
    version = home_registry.latest_version() + 1000
    response = home_app.test_client().post("/evaluate", json={"version": version})
    assert response.status_code == 404
    assert response.get_json()["error"].startswith(f"model version {version} does not exist")


def test_evaluate_before_any_model_is_503(client, app, monkeypatch):
    monkeypatch.setattr(app.extensions["celery"], "send_task", must_not_send)
    response = client.post("/evaluate", json={})
    assert response.status_code == 503
    assert response.get_json()["error"].startswith("no model has been trained yet")


BAD_EVALUATE = [
    (b"{", "the body is not valid JSON"),
    (b"[]", "body: must be a JSON object, got a list"),
    (b'{"n": true}', "n: must be a whole number, got true"),
    (b'{"n": "100"}', "n: must be a whole number, got text"),
    (b'{"n": 1}', "n: must be between 2 and 1,000,000, got 1"),
    (b'{"n": 1000001}', "n: must be between 2 and 1,000,000, got 1000001"),
    (b'{"n": 10.5}', "n: must be a whole number, got 10.5"),
    (b'{"n": NaN}', "n: must be a whole number, got NaN"),
    (b'{"version": 0}', "version: must be between 1 and"),
    (b'{"version": false}', "version: must be a whole number, got false"),
    (b'{"version": [1]}', "version: must be a whole number, got a list"),
    (b'{"model": 1}', "model: is not a known field"),
    (b"[" * 100_000, "the body is nested too deeply"),
]


@pytest.mark.parametrize("body, error", BAD_EVALUATE)
def test_a_bad_evaluate_body_is_a_400_naming_the_field(client, served, body, error):
    response = client.post("/evaluate", data=body, content_type="application/json")
    assert response.status_code == 400 and response.get_json()["error"].startswith(error)


def test_an_unknown_evaluate_field_names_every_field_the_body_may_have(client, app, served,
                                                                     monkeypatch):
    response = client.post("/evaluate", json={"version": 1, "model": 1})
    assert response.status_code == 400
    assert response.get_json()["error"] == (
        "model: is not a known field (the body may have only version, n and baseline_version)")
    # And each field it names is one the body may really have.
    sent = []
    monkeypatch.setattr(app.extensions["celery"], "send_task",
                        lambda name, kwargs: sent.append(kwargs) or SimpleNamespace(id="t1"))
    body = {"version": served, "n": 10, "baseline_version": served}
    assert client.post("/evaluate", json=body).status_code == 202 and sent == [body]


@pytest.mark.parametrize("method, path, body, fields", [
    ("put", "/serving", {"version": 1, "reason": "r", "by": "x"}, "version and reason"),
    ("post", "/serving/rollback", {"reason": "r", "by": "x"}, "to and reason"),
    ("post", "/batches/b1/forget", {"reason": "r", "by": "x"}, "reason"),
])
def test_an_unknown_field_of_an_operator_body_names_the_fields_it_may_have(client, method, path,
                                                                          body, fields):
    response = getattr(client, method)(path, json=body)
    assert response.status_code == 400
    assert response.get_json()["error"] == f"by: is not a known field (the body may have only {fields})"


def test_a_failed_task_reports_failure_with_the_error_text_not_a_traceback(home_client, celery_app):
    # A version that vanished between the check and the task: sent directly, as the CLI could.
    task = celery_app.send_task("pipeline.evaluate", kwargs={"version": 999_999, "n": 10})
    body = wait_for_end(home_client, task.id)
    assert body["state"] == "FAILURE"
    assert body["result"] == "VersionNotFound: model version 999999 does not exist"


def test_an_unknown_task_id_is_pending(client):
    """Celery cannot tell an id it never saw from a task still queued."""
    task_id = str(uuid.uuid4())
    assert client.get(f"/tasks/{task_id}").get_json() == {
        "task_id": task_id, "state": "PENDING", "result": None}


def test_an_overlong_task_id_is_404(client):
    response = client.get("/tasks/" + "a" * 256)
    assert response.status_code == 404 and response.get_json()["error"].startswith("no task")


def test_redis_down_is_503_not_500(client, app, served, monkeypatch):
    def down(*args, **kwargs):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    def backend_down(*args, **kwargs):
        raise redis.ConnectionError("Connection refused")

    celery = app.extensions["celery"]
    monkeypatch.setattr(celery, "send_task", down)
    monkeypatch.setattr(celery.backend, "get_task_meta", backend_down)
    for response in (client.post("/evaluate"), client.get(f"/tasks/{uuid.uuid4()}")):
        assert response.status_code == 503
        assert response.get_json()["error"].startswith("the task queue (Redis) cannot be reached")
