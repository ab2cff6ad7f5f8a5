"""gunicorn's settings for the web app; gunicorn reads ``./gunicorn.conf.py`` by default, so the
Procfile's ``web`` line (run from the repository, or /app in the image) uses it unnamed.

prometheus-client's multiprocess mode (see app/observe/metrics.py): every worker writes its
counters to files in ``PROMETHEUS_MULTIPROC_DIR`` and ``/metrics`` adds them up. The variable
must be set before any worker imports prometheus_client; ``make run`` sets it to an emptied
folder, and here a fresh one is made when it is unset (``docker compose``, gunicorn by hand).
"""

import os
import shutil
import tempfile

_made_metrics_dir = None
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    _made_metrics_dir = tempfile.mkdtemp(prefix="pipeline-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = _made_metrics_dir


def child_exit(server, worker):
    """A dead worker's live gauges must stop counting (its counters keep adding up)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    if _made_metrics_dir:
        shutil.rmtree(_made_metrics_dir, ignore_errors=True)
