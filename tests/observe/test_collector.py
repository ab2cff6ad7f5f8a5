"""The worker's counters in Redis and the figures read from the home at scrape time."""

import os
import time
from pathlib import Path

import pytest
import redis
from prometheus_client import generate_latest

from app.models.versions import VersionInfo
from app.observe import metrics
from app.observe.multiproc import multiproc_directory
from tests.support import metric_samples

QUEUES = ["metrics-test-a", "metrics-test-b"]


@pytest.fixture
def client(redis_url):
    client = redis.Redis.from_url(redis_url)
    yield client
    client.delete(*QUEUES, f"{QUEUES[1]}{metrics.PRIORITY_SEPARATOR}3")


def scrape(home, client, served=None):
    collector = metrics.PipelineCollector(home, client, QUEUES, lambda: served)
    return metric_samples(generate_latest(collector).decode())


def publish(home, model, prequential=None, **fields):
    version = (home.registry.latest_version() or 0) + 1
    fields = {"batch_id": f"b{version}", "batch_ids": [f"b{version}"],
              "metrics": {"prequential": prequential}, **fields}
    return home.registry.publish(model, version, **fields)


@pytest.fixture
def model():
    from app.data.generator import generate
    from app.models.regressor import IncrementalRidge

    batch = generate(500, seed=3)
    return IncrementalRidge().partial_fit(batch, batch["salario"])


def test_tally_adds_up_per_home_and_skips_zero_amounts(client, tmp_path):
    one, other = (metrics.Tally(client, str(tmp_path / name)) for name in ("one", "other"))
    one.add(batches_trained=2, drift_events=0)
    one.add(batches_trained=1, drift_events=1)
    other.add(batches_trained=5)
    assert one.read() == {"batches_trained": 3, "drift_events": 1}
    assert other.read() == {"batches_trained": 5}


def test_a_refused_version_counts_its_batches_as_refused_and_one_refused_promotion(
        client, tmp_path):
    tally = metrics.Tally(client, str(tmp_path))
    metrics.count_trained(tally, VersionInfo(version=1, batch_ids=["a", "b"], lineage=True,
                                             drift=True, gate={"passed": True}))
    metrics.count_trained(tally, VersionInfo(version=2, batch_ids=["c"], lineage=False,
                                             drift=False, gate={"passed": False}))
    metrics.count_normalized(tally, {"status": "empty", "quarantined": 30})
    metrics.count_normalized(tally, {"status": "normalized", "quarantined": 2})
    assert tally.read() == {"batches_trained": 2, "batches_refused": 1, "batches_empty": 1,
                            "drift_events": 1, "refused_promotions": 1}


def test_an_empty_home_exports_zero_versions_and_no_scores(local_home, client):
    samples = scrape(local_home, client)
    assert samples[("pipeline_model_version", ())] == 0
    assert samples[("pipeline_newest_version", ())] == 0
    assert samples[("pipeline_batches_total", (("outcome", "trained"),))] == 0
    assert not any(name.startswith(("pipeline_prequential", "pipeline_seconds_since"))
                   for name, _ in samples)


def test_scores_are_the_newest_scored_versions_and_the_worker_counts_are_exported(
        home, client, model):
    """On local disk and S3: a forget step's version has no scores, so the one before is shown."""
    publish(home, model)
    publish(home, model, {"n": 10, "mse": 4.0e6, "rmse": 2000.0, "mae": 1500.0, "r2": 0.7})
    publish(home, model, forgot="b1")
    metrics.Tally(client, home.url).add(batches_trained=3, drift_events=2)
    samples = scrape(home, client, served=2)
    assert samples[("pipeline_model_version", ())] == 2
    assert samples[("pipeline_newest_version", ())] == 3
    assert samples[("pipeline_prequential_version", ())] == 2
    assert samples[("pipeline_prequential_mae", ())] == 1500.0
    assert samples[("pipeline_prequential_mse", ())] == 4.0e6
    assert samples[("pipeline_prequential_r2", ())] == 0.7
    assert samples[("pipeline_batches_total", (("outcome", "trained"),))] == 3
    assert samples[("pipeline_drift_events_total", ())] == 2


def test_the_ledger_totals_and_the_last_batch_age_are_exported(local_home, client):
    local_home.ledger.open("first-batch", "generator")
    local_home.ledger.update("first-batch", status="normalized", rows=50, clean=46,
                             quarantined=4)
    samples = scrape(local_home, client)
    assert samples[("pipeline_batches_received_total", ())] == 1
    assert samples[("pipeline_records_total", ())] == 50
    assert samples[("pipeline_quarantined_rows_total", ())] == 4
    arrived = samples[("pipeline_last_batch_timestamp_seconds", ())]
    assert arrived == pytest.approx(time.time(), abs=60)
    time.sleep(0.2)
    assert scrape(local_home, client)[("pipeline_seconds_since_last_batch", ())] >= 0.2
    assert samples[("pipeline_generator_period_seconds", ())] == 5  # GENERATE_EVERY


def test_a_declared_dataset_exports_no_generator_period(tmp_path, client):
    """Without the generator nothing says how often batches should come: the no-batch
    alert, which needs the period, stays quiet (deploy/prometheus/alerts.yml)."""
    from app.dataset import load
    from app.lifecycle.home import Home

    wages = Home(str(tmp_path / "home"), dataset=load(
        Path(__file__).resolve().parents[2] / "examples" / "cps1985.toml"))
    wages.ledger.open("first-batch", "ingest")
    samples = scrape(wages, client)
    assert ("pipeline_seconds_since_last_batch", ()) in samples
    assert ("pipeline_generator_period_seconds", ()) not in samples


def test_queue_lengths_count_every_priority_of_each_queue(local_home, client):
    client.rpush(QUEUES[0], "m1", "m2")
    client.rpush(QUEUES[1], "m3")
    client.rpush(f"{QUEUES[1]}{metrics.PRIORITY_SEPARATOR}3", "m4", "m5")
    samples = scrape(local_home, client)
    assert samples[("pipeline_queue_length", (("queue", QUEUES[0]),))] == 2
    assert samples[("pipeline_queue_length", (("queue", QUEUES[1]),))] == 3


def test_without_redis_the_home_figures_are_still_exported(local_home):
    unreachable = redis.Redis(port=1, socket_connect_timeout=0.2)
    samples = scrape(local_home, unreachable, served=None)
    assert ("pipeline_model_version", ()) in samples
    assert not any(name.startswith("pipeline_queue_length") for name, _ in samples)


def test_the_multiprocess_folder_starts_empty_and_a_made_one_is_removed(tmp_path):
    named = tmp_path / "named"
    named.mkdir()
    (named / "counter_123.db").write_bytes(b"old")
    (named / "keep.txt").write_text("not ours")
    with multiproc_directory(str(named)) as folder:
        assert sorted(p.name for p in named.iterdir()) == ["keep.txt"] and folder == str(named)
    with multiproc_directory() as made:
        assert not list(Path(made).iterdir())
    assert not os.path.exists(made)


def test_the_learning_curve_reads_each_version_once_and_keeps_only_its_window(local_home,
                                                                             model):
    from app.observe.curve import learning_curve

    for _ in range(5):
        publish(local_home, model, {"n": 10, "mse": 1.0, "rmse": 1.0, "mae": 1.0, "r2": 0.5})
    known = {}
    assert [p.version for p in learning_curve(local_home.registry, 3, known)] == [3, 4, 5]
    reads = []
    original = local_home.registry.metadata
    local_home.registry.metadata = lambda version: reads.append(version) or original(version)
    publish(local_home, model, {"n": 10, "mse": 1.0, "rmse": 1.0, "mae": 2.0, "r2": 0.5})
    points = learning_curve(local_home.registry, 3, known)
    assert [(p.version, p.mae) for p in points] == [(4, 1.0), (5, 1.0), (6, 2.0)]
    assert reads == [6] and sorted(known) == [4, 5, 6]
