"""gunicorn's settings for the web app; gunicorn reads ``./gunicorn.conf.py`` by default, so the
Procfile's ``web`` line (run from the repository, or /app in the image) uses it unnamed.

prometheus-client's multiprocess mode (see app/observe/metrics.py): every worker writes its
counters to files in ``PROMETHEUS_MULTIPROC_DIR`` and ``/metrics`` adds them up. The variable
must be set before any worker imports prometheus_client, and for the web processes alone
(app/observe/multiproc.py says why): ``make run`` hands over an emptied folder as
``PIPELINE_METRICS_DIR``; without one (``docker compose``, gunicorn by hand) a fresh folder is
made here and removed on exit.
"""

import os
import shutil
import tempfile

# The app is imported once, by the master, and the workers are forked from it: the imports
# (pandas, scikit-learn: about two seconds of CPU) are not paid once per worker while the
# worker, beat and Flower import the same at start, and a worker that dies is replaced in
# milliseconds. The model, the notices' listener and Redis connections are made at each
# worker's first request, prometheus-client's values follow the process id, and object storage
# reopens its filesystem after a fork; loguru's writer thread stays in the master, where the
# workers' lines reach it through its queue (enqueue=True, as for Celery's pool).
preload_app = True

# One request at a time per worker process (the Procfile starts two, one per core here).
# Answering is CPU work under the GIL: with four threads a worker answered no more requests
# per second, and its p99 latency doubled (10-15 ms against 5-6 ms, wrk -c16, bench/predict.py)
# while threads queued for the GIL. Slow work never runs in a request: evaluation and training
# are Celery tasks, and bodies are capped by MAX_CONTENT_LENGTH.
worker_class = "sync"

_made_metrics_dir = None
_folder = os.environ.get("PIPELINE_METRICS_DIR") or os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if not _folder:
    _folder = _made_metrics_dir = tempfile.mkdtemp(prefix="pipeline-metrics-")
os.environ["PROMETHEUS_MULTIPROC_DIR"] = _folder


def child_exit(server, worker):
    """A dead worker's live gauges must stop counting (its counters keep adding up)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    if _made_metrics_dir:
        shutil.rmtree(_made_metrics_dir, ignore_errors=True)


def post_worker_init(worker):
    """Importing the app leaves about 200,000 long-lived objects (pandas, scikit-learn, ...)
    that every full garbage collection walks: 90 ms, during which no request of the worker is
    answered. Frozen once the app is loaded, they are never walked again (0.02 ms)."""
    import gc

    gc.freeze()
