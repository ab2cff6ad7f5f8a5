"""``GET /metrics`` in one process: the contract's names, requests counted as they were answered,
the worker's counts from a real worker, and promtool's check."""

import pytest

from app.tasks.pipeline import generate as generate_task
from tests.support import metric_samples, promtool_check_metrics, wait_for

PROBE = {"idade": 35, "cidade": "São Paulo", "cargo": "Professor"}
CONTRACT = ("pipeline_model_version", "pipeline_predictions_total",
            "pipeline_http_requests_total", "pipeline_prequential_mae")


def scrape(client):
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain; version=0.0.4")
    return response.get_data(as_text=True)


def requests(samples, route, method, status):
    key = ("pipeline_http_requests_total",
           tuple(sorted({"route": route, "method": method, "status": status}.items())))
    return samples.get(key, 0)


def test_the_contract_names_are_exported_and_promtool_accepts_the_answer(client, served,
                                                                         registry, second_model):
    # A version scored on its batch before learning it, as a train step publishes it.
    registry.publish(second_model, served + 1, batch_id="b2", batch_ids=["b2"], metrics={
        "prequential": {"n": 100, "mse": 9e6, "rmse": 3000.0, "mae": 2000.0, "r2": 0.6}})
    client.post("/predict", json=PROBE)
    text = scrape(client)
    names = {name for name, _ in metric_samples(text)}
    assert set(CONTRACT) <= names
    promtool_check_metrics(text)


def test_requests_are_counted_by_route_template_method_and_status(client, served):
    before = metric_samples(scrape(client))
    for _ in range(3):
        assert client.post("/predict", json={"records": [PROBE] * 4}).status_code == 200
    assert client.post("/predict", json={"idade": "old"}).status_code == 400
    assert client.get("/tasks/some-task-id").status_code == 200
    assert client.get("/no/such/route").status_code == 404
    assert client.get("/another/unknown").status_code == 404
    after = metric_samples(scrape(client))

    def delta(route, method, status):
        return requests(after, route, method, status) - requests(before, route, method, status)

    assert delta("/predict", "POST", "200") == 3
    assert delta("/predict", "POST", "400") == 1
    assert delta("/tasks/<task_id>", "GET", "200") == 1
    assert delta("<unmatched>", "GET", "404") == 2  # one series for every unknown path
    predicted = ("pipeline_predictions_total", ())
    assert after[predicted] - before[predicted] == 12
    latency = ("pipeline_http_request_duration_seconds_count",
               (("route", "/predict"), ("status", "200")))
    assert after[latency] - before.get(latency, 0) == 3


def test_the_served_version_is_the_one_that_answers(client, served, save_model, second_model):
    assert metric_samples(scrape(client))[("pipeline_model_version", ())] == served
    newer = save_model(second_model, "b2")
    wait_for(lambda: client.post("/predict", json=PROBE).json["model_version"] == newer,
             what="the new version served")
    samples = metric_samples(scrape(client))
    assert samples[("pipeline_model_version", ())] == newer
    assert samples[("pipeline_newest_version", ())] == newer


@pytest.mark.usefixtures("celery_worker")
def test_the_workers_batches_and_quarantined_rows_reach_metrics(home_app, session_home):
    """A real worker counts in Redis; the web's /metrics shows exactly what it did."""
    from app.data.batches import receive_batch
    from app.data.generator import generate
    from app.tasks.pipeline import normalize, train

    client = home_app.test_client()
    before = metric_samples(scrape(client))
    batch_id = generate_task.delay(batch_size=200).get(timeout=30)
    wait_for(lambda: (session_home.ledger.get(batch_id)["status"] == "trained"),
             what="the batch trained")
    records = generate(50, seed=4, batch_id="metrics-bad-rows").astype({"idade": object})
    records.loc[[1, 2, 3], "idade"] = 200
    receive_batch(session_home.lake, session_home.ledger, "metrics-bad-rows", records)
    (normalize.si("metrics-bad-rows") | train.si("metrics-bad-rows")).delay().get(timeout=30)
    after = metric_samples(scrape(client))

    def delta(name, labels=()):
        return after.get((name, labels), 0) - before.get((name, labels), 0)

    outcomes = sum(delta("pipeline_batches_total", (("outcome", outcome),))
                   for outcome in ("trained", "refused"))
    assert outcomes == 2
    assert delta("pipeline_quarantined_rows_total") == 3
    assert after[("pipeline_seconds_since_last_batch", ())] < 60
