"""A sudden drift through the real tasks: a worker process started with ``DRIFT=sudden``.

The session's in-process worker runs with ``DRIFT=none``; the setting is read by each worker
at start, so this module starts a worker of its own (the Procfile's command, through
``celery -A worker worker``) with its own Redis database and pipeline home, as an operator
would run one.
"""

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import redis
from celery import Celery

from app.data.generator import generate, regime
from app.lifecycle.challenge import CHALLENGE_EVERY
from app.lifecycle.home import Home
from app.models.regressor import IncrementalRidge
from tests.support import celery_process, cluster_redis_url, stop_processes, wait_for

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
DRIFT_AFTER = 12  # the monitor's first verdict comes after 10 observed steps
BATCHES = DRIFT_AFTER + 5
SIZE = 1500


@pytest.fixture(scope="module")
def drifting(redis_url, tmp_path_factory):
    home = tmp_path_factory.mktemp("drift-home")
    url = cluster_redis_url(redis_url)
    client = redis.Redis.from_url(url)
    env = {**os.environ, "REDIS_URL": url, "PIPELINE_HOME": str(home), "DRIFT": "sudden",
           "DRIFT_AFTER": str(DRIFT_AFTER), "BATCH_SIZE": str(SIZE)}
    log = open(home / "worker.log", "w")
    worker = celery_process("worker", "-c", "2", "--loglevel=INFO", env=env, log=log, cwd=ROOT)
    # Not the current app: the session worker's tests send through worker.app, not this one.
    app = Celery("drift-client", broker=url, backend=url, set_as_current=False)
    try:
        wait_for(lambda: app.control.ping(timeout=0.5), timeout=180, what="the worker to answer")
        yield {"app": app, "home": Home(str(home)), "log": home / "worker.log"}
    finally:
        stop_processes([worker])
        log.close()
        client.flushdb()


def learnt(home, batch_id):
    batch = home.ledger.find(batch_id)
    return batch and batch["status"] in ("trained", "refused") and batch


def test_a_sudden_drift_is_flagged_audited_and_recovered_from(drifting):
    app, home = drifting["app"], drifting["home"]
    ids = []
    for _ in range(BATCHES):
        # One batch at a time, as beat would send them a few seconds apart.
        batch_id = app.send_task("pipeline.generate").get(timeout=60)
        wait_for(lambda: learnt(home, batch_id), timeout=120, what=f"batch {batch_id} learnt")
        ids.append(batch_id)
    numbers = [home.ledger.get(b)["generated_number"] for b in ids]
    assert numbers == list(range(1, BATCHES + 1))

    versions = [home.registry.metadata(v) for v in range(1, home.registry.latest_version() + 1)]
    flagged = [m for m in versions if m.drift]
    assert flagged, "no version has the drift flag"
    first = flagged[0]
    assert home.ledger.get(first.batch_id)["generated_number"] in range(DRIFT_AFTER, DRIFT_AFTER + 3)
    assert not any(m.drift for m in versions[:DRIFT_AFTER - 1])

    event = home.audit.page(action="drift")["events"][-1]
    assert event["batch_id"] == first.batch_id and event["to_version"] == first.version
    log = drifting["log"].read_text()
    assert f"drift detected on batch {first.batch_id}" in log

    # Recovered: evaluation (of the world as it is now) finds the served model as good as the
    # truth, where a model of all the batches is far from it.
    result = app.send_task("pipeline.evaluate", kwargs={"n": 5000}).get(timeout=120)
    assert result["regime"] == {"scenario": "sudden", "batch": BATCHES, "changed": True,
                                "shifted": False}
    assert result["r2"] >= 0.97 * result["ground_truth"]["r2"]
    rows = pd.concat([home.lake.read("normalized", b) for b in ids], ignore_index=True)
    everything = IncrementalRidge().fit(rows, rows["salario"])
    assert result["model_version"] == home.serving.state().version
    now = regime("sudden", BATCHES, DRIFT_AFTER)
    test = generate(5000, seed=1, regime=now)
    truth = now.expected(test["idade"], test["cidade"], test["cargo"])
    y = test["salario"].to_numpy()

    def r2(predicted):
        return 1 - np.sum((y - predicted) ** 2) / np.sum((y - y.mean()) ** 2)

    assert r2(everything.predict(test)) < 0.95 * r2(truth)
    served = home.registry.load(result["model_version"])
    assert r2(served.model.predict(test)) >= 0.97 * r2(truth)


def test_the_challenger_is_refit_in_the_background_every_k_batches(drifting):
    """(After the drift test: its batches passed batch number CHALLENGE_EVERY.)"""
    home = drifting["home"]
    assert home.ledger.generated_count() >= CHALLENGE_EVERY

    def challengers():
        newest = home.registry.latest_version() or 0
        return [m for m in map(home.registry.metadata, range(1, newest + 1))
                if m.kind == "challenger"]

    found = wait_for(challengers, timeout=60, what="a challenger version")
    contest = found[0].contest
    assert contest["champion"]["mse"] > 0 and contest["challenger"]["mse"] > 0
    assert found[0].format == "skops" and home.registry.load(found[0].version).model
