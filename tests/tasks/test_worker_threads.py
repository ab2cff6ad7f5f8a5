"""Each pool process of the Procfile's worker computes on one thread (worker.py)."""

import os
from pathlib import Path

import pytest
from celery import Celery

from tests.support import celery_process, cluster_redis_url, stop_processes, wait_for

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="one core: the libraries use one thread anyway")
def test_a_pool_process_runs_blas_and_openmp_on_one_thread(redis_url, tmp_path):
    url = cluster_redis_url(redis_url)
    env = {**os.environ, "REDIS_URL": url, "PIPELINE_HOME": str(tmp_path / "home")}
    with open(tmp_path / "worker.log", "w") as log:
        worker = celery_process("worker", "-c", "2", "-I", "tests.tasks.threads_probe",
                                "--without-mingle", "--without-gossip", env=env, log=log, cwd=ROOT)
        app = Celery("threads-client", broker=url, backend=url, set_as_current=False)
        try:
            wait_for(lambda: app.control.ping(timeout=0.5), timeout=120, what="the worker to answer")
            threads = app.send_task("probe.compute_threads").get(timeout=60)
        finally:
            stop_processes([worker])
    # numpy's BLAS and scikit-learn's OpenMP are both loaded by then (the warm-up trains).
    assert any("blas" in path.lower() for path in threads), threads
    assert set(threads.values()) == {1}, threads
