"""Two worker processes (concurrency 2 each) and beat on one Redis, as two machines would run.

They get a Redis database and a pipeline home of their own, so the in-process test worker
never takes their messages.
"""

import os
import time
from pathlib import Path

import pytest
import redis
from celery import Celery

from app.lifecycle.home import Home
from tests.support import celery_process, cluster_redis_url, stop_processes, wait_for

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
GENERATE_EVERY = 1
BATCH_SIZE = 150


def celery(*args, env, log):
    return celery_process(*args, env=env, log=log, cwd=ROOT)


@pytest.fixture(scope="module")
def cluster(redis_url, tmp_path_factory):
    home = tmp_path_factory.mktemp("cluster-home")
    url = cluster_redis_url(redis_url)
    client = redis.Redis.from_url(url)
    env = {**os.environ, "REDIS_URL": url, "PIPELINE_HOME": str(home),
           "GENERATE_EVERY": str(GENERATE_EVERY), "BATCH_SIZE": str(BATCH_SIZE)}
    log = open(home / "cluster.log", "w")
    processes = [
        celery("worker", "-c", "2", "-n", f"{name}@%h", "--loglevel=INFO", env=env, log=log)
        for name in ("one", "two")
    ]
    processes.append(celery("beat", "--loglevel=INFO", env=env, log=log))
    # A client of the cluster's own broker, as a user of those machines would have.
    client_app = Celery("cluster-client", broker=url, backend=url, set_as_current=False)
    wait_for(lambda: len(client_app.control.ping(timeout=0.5)) == 2, timeout=60,
             what="both workers to answer")
    started = time.monotonic()
    yield {"app": client_app, "home": Home(str(home)), "started": started, "log": home / "cluster.log"}
    stop_processes(processes, timeout=20)
    log.close()
    client.flushdb()


def test_concurrent_training_loses_no_update_and_trains_no_batch_twice(cluster):
    app, home = cluster["app"], cluster["home"]
    sizes = [37 + 23 * i for i in range(24)]
    batch_ids = [app.send_task("pipeline.generate", kwargs={"batch_size": size}).get(timeout=60)
                 for size in sizes]
    # Deliver every train message a second time, racing with the first.
    for batch_id in batch_ids:
        app.send_task("pipeline.train", args=[batch_id], queue="train")
    wait_for(lambda: all(home.ledger.get(b)["status"] == "trained" for b in batch_ids),
             timeout=120, what="every batch trained")
    # Beat keeps adding versions meanwhile: check one snapshot of published versions.
    versions = home.registry.list()[::-1]
    assert [m.version for m in versions] == list(range(1, len(versions) + 1))
    champions = [m for m in versions if m.on_lineage]
    learnt = [b for m in champions for b in m.batch_ids]
    assert len(learnt) == len(set(learnt)), "a batch was trained twice"
    assert set(batch_ids) <= set(learnt)
    for batch_id, size in zip(batch_ids, sizes):
        batch = home.ledger.get(batch_id)
        assert batch["rows"] == size and batch_id in home.registry.metadata(batch["version"]).batch_ids
    # Every champion builds on the champion before: no update was lost. (A challenger is a
    # side version, refit on a recent window; nothing builds on it.)
    running, parent = 0, None
    assert all(m.kind == "challenger" for m in versions if not m.on_lineage)
    for metadata in champions:
        running += metadata.n_batch
        assert metadata.n_samples_seen == running
        assert metadata.parent_version == parent
        parent = metadata.version
    trained_rows = sum(len(home.lake.read("normalized", b)) for b in learnt)
    assert home.registry.load(champions[-1].version).model.n_samples_seen_ == trained_rows == running
    log = cluster["log"].read_text()
    assert "batch already trained" in log, "no duplicate was delivered"


def test_beat_produces_a_version_every_generate_every_seconds(cluster):
    home = cluster["home"]
    elapsed = time.monotonic() - cluster["started"]
    beat_batches = [b for b in home.ledger.newest_first() if b["rows"] == BATCH_SIZE]
    # Allow for start-up: at least half the periods that have passed produced a trained batch.
    assert len(beat_batches) >= elapsed / GENERATE_EVERY / 2, cluster["log"].read_text()[-3000:]
    assert all(b["status"] == "trained" for b in beat_batches[2:])
