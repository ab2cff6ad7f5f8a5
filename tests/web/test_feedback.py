"""Answers that get an id, labels that come back for them, and the live error they measure."""

import threading
from types import SimpleNamespace

import numpy as np
import pytest

from app.data.generator import generate
from tests.web.conftest import PROBE

RECORDS = [{"idade": int(age), "cidade": city, "cargo": job} for age, city, job in zip(
    generate(40, seed=3)["idade"], generate(40, seed=3)["cidade"], generate(40, seed=3)["cargo"])]


@pytest.fixture
def loop(make_app, served, monkeypatch):
    """An app that keeps its answers, whose batches are not sent to a worker (they are
    checked in the ledger): ``(client, app, sent)``."""
    sent = []
    monkeypatch.setattr("app.web.feedback.check_and_learn",
                        lambda celery, batch_id: sent.append(batch_id) or SimpleNamespace(id="t"))
    app = make_app(LOG_PREDICTIONS=True)
    return app.test_client(), app, sent


def answers(client, app, records=RECORDS) -> dict:
    """``/predict``'s answer, its answers written to the store as the log's thread would."""
    answer = client.post("/predict", json={"records": records}).get_json()
    app.extensions["prediction_log"].flush()
    return answer


def test_an_answer_has_ids_only_while_answers_are_kept(make_app, served):
    quiet = make_app().test_client().post("/predict", json=PROBE).get_json()
    assert "prediction_ids" not in quiet
    kept = make_app(LOG_PREDICTIONS=True).test_client().post(
        "/predict", json={"records": [PROBE] * 3}).get_json()
    ids = kept["prediction_ids"]
    assert len(ids) == len(set(ids)) == 3 and all(len(i) == 28 for i in ids)


def test_labels_of_kept_answers_become_a_batch_and_measure_the_live_error(loop, app):
    client, app, sent = loop
    answer = answers(client, app)
    truth = np.linspace(2000, 9000, len(RECORDS))
    labels = [{"prediction_id": i, "value": v} for i, v in zip(answer["prediction_ids"], truth)]
    reply = client.post("/feedback", json={"labels": labels + [
        {"prediction_id": "0" * 28, "value": 1.0}, {"prediction_id": "not an id", "value": 2.0}]})
    assert reply.status_code == 202
    body = reply.get_json()
    assert (body["matched"], body["unknown"], body["repeated"]) == (40, 2, 0)
    assert sent == [body["batch_id"]]
    from app.web.holder import get_home

    with app.app_context():
        batch = get_home().ledger.get(body["batch_id"])
    assert (batch["source"], batch["rows"], batch["status"]) == ("feedback", 40, "received")
    expected = float(np.mean(np.abs(truth - np.asarray(answer["predictions"]))))
    live = client.get("/status").get_json()["live"]
    version = str(answer["model_version"])
    assert live["labelled"] == 40 and live["by_version"][version]["labelled"] == 40
    assert live["mae"] == pytest.approx(expected, rel=1e-9)
    metrics = client.get("/metrics").get_data(as_text=True)
    assert f'pipeline_live_mae{{version="{version}"}}' in metrics
    assert "pipeline_live_labelled_total 40.0" in metrics


def test_a_label_outside_the_targets_bounds_is_learnt_from_by_no_one_and_measures_nothing(loop):
    """salario is declared 0-300,000: a label of 1e9 (a typo) is matched and sent on, where its
    row is quarantined, but the live error is that of the plausible labels alone."""
    client, app, _ = loop
    answer = answers(client, app, RECORDS[:2])
    ids, predictions = answer["prediction_ids"], answer["predictions"]
    reply = client.post("/feedback", json={"labels": [
        {"prediction_id": ids[0], "value": 5000.0}, {"prediction_id": ids[1], "value": 1e9}]})
    assert reply.get_json()["matched"] == 2
    live = client.get("/status").get_json()["live"]
    assert live["labelled"] == 1
    assert live["mae"] == pytest.approx(abs(5000.0 - predictions[0]), rel=1e-9)


def test_a_label_given_twice_counts_once_even_at_the_same_moment(loop):
    client, app, _ = loop
    answer = answers(client, app)
    labels = [{"prediction_id": i, "value": 5000.0} for i in answer["prediction_ids"]]
    replies = []

    def send():
        replies.append(app.test_client().post("/feedback", json={"labels": labels}).get_json())

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(reply["matched"] for reply in replies) == [0, 0, 0, 40]
    assert sum(reply["repeated"] for reply in replies) == 3 * 40
    assert client.get("/status").get_json()["live"]["labelled"] == 40


@pytest.mark.parametrize("body, error", [
    ({"labels": []}, "labels: must hold at least one label"),
    ({"labels": [{"prediction_id": "x"}]}, "labels[0].value: is required"),
    ({"labels": [{"prediction_id": "x", "value": "41"}]}, "labels[0].value: must be a finite"),
    ({"labels": [{"prediction_id": "x", "value": float("nan")}]}, "labels[0].value: must be a finite"),
    ({"labels": [{"prediction_id": 7, "value": 1}]}, "labels[0].prediction_id: must be text"),
    ({"label": []}, "labels: is required"),
])
def test_a_malformed_feedback_body_is_a_400_naming_the_field(loop, body, error):
    client, _, sent = loop
    reply = client.post("/feedback", json=body)
    assert reply.status_code == 400 and reply.get_json()["error"].startswith(error)
    assert sent == []


def test_more_than_ten_thousand_labels_is_a_413(loop):
    client, _, sent = loop
    labels = [{"prediction_id": "0" * 28, "value": 1.0}] * 10_001
    assert client.post("/feedback", json={"labels": labels}).status_code == 413
    assert sent == []


def test_a_label_sent_right_after_its_answer_is_matched(loop):
    """The answer may still be in its web process's memory (written each second): the
    feedback waits for it, once, rather than call it unknown."""
    client, _, _ = loop
    answer = client.post("/predict", json=PROBE).get_json()
    reply = client.post("/feedback", json={"labels": [
        {"prediction_id": answer["prediction_ids"][0], "value": 6000.0}]}).get_json()
    assert (reply["matched"], reply["unknown"]) == (1, 0)
