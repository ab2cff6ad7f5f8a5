"""What the benchmarks start: the Procfile's worker next to a private Redis, and memory readings.

Not a benchmark itself (``make bench`` skips it): the scripts beside it import it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from app.runner import PROCFILE, child_env, command_argv, read_procfile  # noqa: E402


@contextlib.contextmanager
def worker_process(redis_url: str, home: Path, log: Path, **settings: str) -> Iterator[subprocess.Popen]:
    """The Procfile's ``worker`` over ``home``, answering pings when this yields."""
    env = child_env(redis_url, home) | settings
    argv = command_argv(read_procfile(PROCFILE)["worker"], env)
    with open(log, "wb") as output:
        worker = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=output,
                                  stderr=subprocess.STDOUT, start_new_session=True)
    try:
        app = celery_app(redis_url)
        deadline = time.monotonic() + 60
        while not app.control.ping(timeout=0.5):
            if worker.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the worker did not start: see {log}")
        yield worker
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()


def celery_app(redis_url: str):
    """The project's Celery app, as a client of ``redis_url``."""
    os.environ["REDIS_URL"] = redis_url
    from worker import app

    return app


def group_rss(pgid: int) -> int:
    """Resident bytes of every process in process group ``pgid`` (a server and its children)."""
    total = 0
    page = os.sysconf("SC_PAGE_SIZE")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = (entry / "stat").read_text()
            fields = stat[stat.rindex(")") + 2:].split()
            if int(fields[2]) == pgid:  # field 5 of stat: the process group
                total += int((entry / "statm").read_text().split()[1]) * page
    return total


def get_json(url: str, timeout: float = 5.0) -> tuple[dict, dict]:
    """A GET's JSON body and headers."""
    with urllib.request.urlopen(url, timeout=timeout) as answer:
        return json.loads(answer.read()), dict(answer.headers)


def post_json(url: str, body: dict, timeout: float = 5.0) -> tuple[dict, dict]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as answer:
        return json.loads(answer.read()), dict(answer.headers)

