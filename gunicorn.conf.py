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

# One request at a time per worker process (the Procfile starts two, one per core here), as
# under gunicorn's sync worker: answering is CPU work under the GIL, and with four threads a
# worker answered no more requests per second while its p99 latency doubled. But a sync worker
# reads each request while it answers nothing else, so a few clients sending half a request
# held it for as long as they liked. app/web/server.py's worker keeps every connection in
# gevent's event loop until its request is whole, within deadlines, and then runs the app as
# the sync worker did; bench/slow.py measures it with 500 slow clients open.
worker_class = "app.web.server.BufferingWorker"
# Seconds a connection has to send a request's head, from its opening or its previous answer:
# also how long an idle kept-alive connection is kept.
keepalive = 5
# Connections one worker process holds at most; past them a new one is answered 503 at once.
worker_connections = 1000
# Seconds a stopping worker gives the requests it holds before it closes their connections:
# answering takes milliseconds, while an idle or slow connection would hold it up to its
# deadline (10 s and more), past the 5 s that make run waits before it kills a process.
graceful_timeout = 3

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
