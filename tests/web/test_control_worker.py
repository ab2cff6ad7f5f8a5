"""Operators' changes while a real worker trains: the app over the worker's home, real Redis.

Batches arrive as ingest leaves them and go through ``pipeline.normalize`` → ``pipeline.train``
on the worker; operators pin, roll back, follow and forget through the HTTP API (forget through
the ``pipeline.forget`` task, whose route is another issue's), and ``/predict`` shows what
users get.
"""

import pytest
from celery import chain

from app.data.batches import receive_batch
from app.data.generator import generate
from app.tasks.pipeline import forget, normalize, train
from tests.support import salaries_times_100, wait_for

pytestmark = [pytest.mark.usefixtures("celery_worker"), pytest.mark.timeout(300)]

RECORDS = generate(20, seed=777)[["idade", "cidade", "cargo"]].to_dict("records")


def learn(home, batch_id, frame=None, seed=1):
    """Send a batch through normalize → train on the worker; the version that learnt it."""
    frame = generate(1000, seed=seed, batch_id=batch_id) if frame is None else frame
    receive_batch(home.lake, home.ledger, batch_id, frame, source="ingest")
    chain(normalize.si(batch_id), train.si(batch_id)).apply_async().get(timeout=120)
    return home.ledger.get(batch_id)["version"]


def answers(client):
    body = client.post("/predict", json={"records": RECORDS}).get_json()
    return body["model_version"], body["predictions"]


def caught_up(client):
    """:func:`answers` once the app serves the version ``/serving`` names: a version the worker
    publishes reaches the app by a notice, a moment after the task has returned."""
    wanted = client.get("/serving").get_json()["version"]
    wait_for(lambda: answers(client)[0] == wanted, timeout=10,
             what=f"the app to serve version {wanted}")
    return answers(client)


@pytest.fixture
def client(home_app):
    client = home_app.test_client()
    answer = client.put("/serving", json={"version": "latest", "reason": "a test starts"})
    assert answer.status_code == 200
    return client


def test_a_pin_holds_while_the_worker_trains_then_rollback_and_follow(client, session_home):
    first = learn(session_home, "pin-1", seed=11)
    second = learn(session_home, "pin-2", seed=12)
    assert caught_up(client)[0] == second
    pinned = client.put("/serving", json={"version": first, "reason": "incident 7"}).get_json()
    assert (pinned["version"], pinned["mode"]) == (first, "pinned")
    newer = learn(session_home, "pin-3", seed=13)
    assert newer > second and session_home.registry.latest_version() == newer
    assert answers(client)[0] == first and client.get("/serving").get_json()["version"] == first

    back = client.post("/serving/rollback", json={"reason": "further back"}).get_json()
    assert back["version"] == session_home.serving.newest_promoted(below=first) < first
    assert answers(client)[0] == back["version"]
    follow = client.put("/serving", json={"version": "latest", "reason": "resolved"}).get_json()
    assert (follow["version"], follow["mode"]) == (newer, "follow") and answers(client)[0] == newer

    events = client.get("/audit?limit=3").get_json()["events"]
    assert [(e["action"], e["from_version"], e["to_version"], e["reason"]) for e in events] == [
        ("follow", back["version"], newer, "resolved"),
        ("rollback", first, back["version"], "further back"),
        ("pin", second, first, "incident 7")]


def test_the_gate_refuses_salaries_times_100_and_predict_answers_stay(client, session_home):
    for i in range(3):
        learn(session_home, f"gate-{i}", seed=20 + i)
    served, before = caught_up(client)

    refused = learn(session_home, "gate-x100", salaries_times_100("gate-x100", seed=99))
    assert refused > served and session_home.ledger.get("gate-x100")["status"] == "refused"
    assert caught_up(client) == (served, before)
    assert client.get("/serving").get_json()["version"] == served

    event = client.get("/audit?action=refused_promotion").get_json()["events"][0]
    assert (event["from_version"], event["to_version"]) == (served, refused)
    assert event["candidate_mse"] > 10 * event["served_mse"] and "beyond" in event["reason"]
    listed = {m["version"]: m for m in client.get("/models").get_json()["models"]}
    assert listed[refused]["gate"]["passed"] is False

    # The next good batch is served, and learnt without the refused one.
    after = learn(session_home, "gate-next", seed=30)
    version, now = caught_up(client)
    assert version == after and "gate-x100" not in listed.get(after, {}).get("batch_ids", [])
    assert now == pytest.approx(before, rel=0.05)


def test_forgetting_a_batch_the_pinned_version_learnt_marks_it_and_the_audit_says_so(
        client, session_home):
    gone = learn(session_home, "forget-me", seed=41)
    kept = learn(session_home, "forget-keep", seed=42)
    client.put("/serving", json={"version": kept, "reason": "hold during the request"})

    outcome = forget.delay("forget-me", "deletion request 12", "dpo").get(timeout=120)
    made = outcome["version"]
    assert made > kept and outcome["status"] == "forgotten"
    listed = {m["version"]: m["forgotten_batches"] for m in client.get("/models?limit=1000")
              .get_json()["models"]}
    assert "forget-me" in listed[gone] and "forget-me" in listed[kept]
    assert "forget-me" not in listed[made]
    state = client.get("/serving").get_json()
    assert state["version"] == kept and "forget-me" in state["forgotten_batches"]
    event = client.get("/audit?action=forget").get_json()["events"][0]
    assert (event["batch_id"], event["by"], event["to_version"]) == ("forget-me", "dpo", made)
    assert event["served_learnt_it"] is True and f"pinned version {kept} learnt from it" in event["reason"]

    follow = client.put("/serving", json={"version": "latest", "reason": "serve without it"})
    assert follow.get_json()["version"] == made and answers(client)[0] == made
    assert "forget-me" not in follow.get_json()["forgotten_batches"]
