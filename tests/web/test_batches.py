"""POST /ingest, GET /batches[/<id>], POST /batches/<id>/forget and GET /status: with a real
worker for the routes that start tasks, and the app alone for the shapes it refuses."""

import json
from pathlib import Path

import pytest
from kombu.exceptions import OperationalError

from app.data.generator import generate
from tests.support import wait_for
from tests.web.test_tasks import wait_for_end

pytestmark = pytest.mark.timeout(120)


def labelled(n=40, seed=11):
    frame = generate(n, seed=seed).drop(columns=["geracao_id"])
    frame["timestamp"] = frame["timestamp"].map(lambda t: t.isoformat())
    return json.loads(frame.to_json(orient="records"))


@pytest.fixture
def home_client(home_app, celery_worker):
    return home_app.test_client()


def test_ingest_runs_the_batch_through_normalize_and_train(home_client, session_home):
    records = labelled(40)
    records[5]["idade"] = 150
    records[6]["salario"] = "muito"
    records[7]["extra"] = 1
    response = home_client.post("/ingest", json={"records": records})
    assert response.status_code == 202
    body = response.get_json()
    assert set(body) == {"batch_id", "task_id"}
    assert response.headers["Location"].endswith(f"/batches/{body['batch_id']}")
    ended = wait_for_end(home_client, body["task_id"])
    assert ended["state"] == "SUCCESS", ended
    version = ended["result"]

    batch = home_client.get(f"/batches/{body['batch_id']}").get_json()
    assert (batch["source"], batch["rows"], batch["clean"], batch["quarantined"]) == (
        "ingest", 40, 38, 2)
    assert batch["version"] == version and batch["status"] == "trained"
    assert batch["reasons"] == {"idade out of range 18-70": 1, "salario is not a finite number": 1}
    assert batch["unknown_fields"] == ["extra"]
    assert body["batch_id"] in session_home.registry.metadata(version).batch_ids

    listed = home_client.get("/batches?limit=5").get_json()
    summary = next(b for b in listed["batches"] if b["batch_id"] == body["batch_id"])
    assert {k: summary[k] for k in ("source", "rows", "clean", "quarantined", "version")} == {
        "source": "ingest", "rows": 40, "clean": 38, "quarantined": 2, "version": version}
    assert listed["total"] >= 1 and len(listed["batches"]) <= 5

    status = home_client.get("/status").get_json()
    assert status["records"] >= 40 and status["quarantined"] >= 2
    assert status["last_batch_at"] >= batch["created_at"] and status["stale"] is False
    assert status["newest_version"] >= version
    assert set(status["queues"]) >= {"celery", "train", "pending_train"}


def test_a_batch_with_no_clean_row_makes_no_version_and_says_why(home_client, session_home):
    newest = session_home.registry.latest_version()
    response = home_client.post("/ingest", json={"records": [
        {"idade": 10, "salario": 100.0, "cidade": "Recife", "cargo": "Vendedor"}]})
    ended = wait_for_end(home_client, response.get_json()["task_id"])
    assert ended["state"] == "FAILURE"
    assert "no row passed the checks: idade out of range 18-70 (1)" in ended["result"]
    batch = home_client.get(f"/batches/{response.get_json()['batch_id']}").get_json()
    assert batch["status"] == "empty" and batch["version"] is None
    assert batch["failure"] == "no row passed the checks: idade out of range 18-70 (1)"
    assert session_home.registry.latest_version() == newest


def test_forget_answers_202_and_makes_a_version_without_the_batch(home_client, session_home):
    first = home_client.post("/ingest", json={"records": labelled(30, seed=12)}).get_json()
    wait_for_end(home_client, first["task_id"])
    response = home_client.post(f"/batches/{first['batch_id']}/forget",
                                json={"reason": "sent by mistake"})
    assert response.status_code == 202
    ended = wait_for_end(home_client, response.get_json()["task_id"])
    assert ended["state"] == "SUCCESS", ended
    batch = home_client.get(f"/batches/{first['batch_id']}").get_json()
    assert batch["status"] == "forgotten" and batch["forgotten"]["reason"] == "sent by mistake"
    assert ended["result"]["version"] == batch["forgotten"]["version"]


# -- what is refused, without a worker ----------------------------------------------------

@pytest.mark.parametrize("body, status, error", [
    (b"not json", 400, "the body is not valid JSON"),
    (b"[1, 2]", 400, 'the body must be a JSON object {"records": [...]}, got a list'),
    (b'{"records": {"idade": 30}}', 400, "records: must be a list of records, got an object"),
    (b'{"records": []}', 400, "records: must hold at least one record"),
    (b'{"records": [{"idade": 30}, 5, "x"]}', 400,
     "records[1]: must be a JSON object, got 5 (and 1 more problem)"),
    (b'{"records": [], "extra": 1}', 400, "extra: is not a known field"),
])
def test_ingest_refuses_what_is_not_a_list_of_objects(client, body, status, error):
    response = client.post("/ingest", data=body)
    assert response.status_code == status
    assert response.get_json()["error"].startswith(error)


def test_ingest_over_ten_thousand_records_is_413(client, monkeypatch):
    monkeypatch.setattr("app.web.batches.check_and_learn", lambda *a: pytest.fail("a task was sent"))
    record = {"idade": 30, "salario": 1.0, "cidade": "a", "cargo": "b"}
    response = client.post("/ingest", json={"records": [record] * 10_001})
    assert response.status_code == 413
    assert response.get_json()["error"] == (
        "records: at most 10,000 records are accepted per request, got 10,001")


def test_ingest_when_redis_is_down_keeps_nothing(client, app, monkeypatch):
    def down(*steps):
        raise OperationalError("Error 111 connecting")

    monkeypatch.setattr("app.web.batches.check_and_learn", down)
    response = client.post("/ingest", json={"records": labelled(3)})
    assert response.status_code == 503
    with app.app_context():
        from app.web.holder import get_home

        home = get_home()
        assert home.ledger.totals()["batches"] == 0
        assert not home.storage.list("data/raw")


def test_ingest_when_the_lake_cannot_be_written_is_503_and_keeps_nothing(client, app,
                                                                        monkeypatch):
    def failing(*args, **kwargs):
        raise OSError("no space left on device")

    with app.app_context():
        from app.web.holder import get_home

        home = get_home()
    monkeypatch.setattr(home.ledger, "open", failing)
    monkeypatch.setattr("app.web.batches.check_and_learn", lambda *a: pytest.fail("a task was sent"))
    response = client.post("/ingest", json={"records": labelled(3)})
    assert response.status_code == 503
    assert response.get_json()["error"] == ("the pipeline's storage cannot be used now (OSError); "
                                            "try again in a few seconds")
    assert not home.storage.list("data/raw")


def test_state_changing_batch_routes_are_for_operators(make_app):
    client = make_app(API_TOKEN="ops:secret").test_client()
    assert client.post("/ingest", json={"records": labelled(1)}).status_code == 401
    assert client.post("/batches/b1/forget", json={"reason": "x"}).status_code == 401


def test_unknown_batches_are_404(client):
    assert client.get("/batches/nope").status_code == 404
    assert client.get("/batches/..%2Fetc").status_code == 404
    response = client.post("/batches/nope/forget", json={"reason": "x"})
    assert response.status_code == 404
    assert response.get_json()["error"] == "batch nope is not in the ledger"


def test_forget_needs_a_reason(client):
    response = client.post("/batches/nope/forget", json={})
    assert response.status_code == 400
    assert response.get_json()["error"].startswith("reason: is required")


def test_batches_list_pages_newest_first(client, app):
    from app.data.batches import receive_records

    with app.app_context():
        from app.web.holder import get_home

        home = get_home()
        for index in range(5):
            receive_records(home.lake, home.ledger, f"page{index}", labelled(2, seed=index))
    first = client.get("/batches?limit=2").get_json()
    assert [b["batch_id"] for b in first["batches"]] == ["page4", "page3"]
    assert first["total"] == 5
    second = client.get(first["next"]).get_json()
    assert [b["batch_id"] for b in second["batches"]] == ["page2", "page1"]
    assert client.get("/batches?limit=0").status_code == 400


def test_status_of_an_empty_home_is_stale_and_counts_nothing(client):
    status = client.get("/status").get_json()
    assert status["batches"] == 0 and status["records"] == 0 and status["quarantined"] == 0
    assert status["last_batch_at"] is None and status["stale"] is True
    assert status["newest_version"] is None and status["serving_version"] is None


def test_without_the_generator_a_quiet_stream_is_not_stale(make_app):
    """A declared dataset's batches come when they are sent: no period to be late by."""
    from app.dataset import load

    wages = load(Path(__file__).resolve().parents[2] / "examples" / "cps1985.toml")
    status = make_app(DATASET=wages).test_client().get("/status").get_json()
    assert status["last_batch_at"] is None
    assert status["stale"] is None and status["stale_after_seconds"] is None


def test_status_goes_stale_after_three_periods_without_a_batch(client, app, monkeypatch):
    from app.data.batches import receive_records

    monkeypatch.setenv("GENERATE_EVERY", "1")
    with app.app_context():
        from app.web.holder import get_home

        home = get_home()
        receive_records(home.lake, home.ledger, "fresh", labelled(2))
    assert client.get("/status").get_json()["stale"] is False
    wait_for(lambda: client.get("/status").get_json()["stale"], timeout=10,
             what="the status to turn stale")
