"""The folder of prometheus-client's multiprocess files, for ``make run`` (app/runner.py).

Kept apart from metrics.py so the runner imports neither prometheus_client nor the models.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

MULTIPROC_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
# What make run hands every process; gunicorn.conf.py alone turns it into MULTIPROC_VARIABLE.
# Flower and Celery use prometheus_client too: given the variable, they would write their own
# metric files into the folder, and /metrics would add Flower's task figures to ours.
WEB_METRICS_VARIABLE = "PIPELINE_METRICS_DIR"


@contextlib.contextmanager
def multiproc_directory(path: str | None = None) -> Iterator[str]:
    """An empty folder for the web processes' metric files; ``path``: that one, emptied.

    Old files would be read as the figures of live processes, so a run always starts empty.
    A folder made here is removed at the end; in one the user named, only the metric files
    (``*.db``) are removed, at the start.
    """
    if path:
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob("*.db"):
            stale.unlink(missing_ok=True)
        yield str(folder)
        return
    made = tempfile.mkdtemp(prefix="pipeline-metrics-")
    try:
        yield made
    finally:
        shutil.rmtree(made, ignore_errors=True)
