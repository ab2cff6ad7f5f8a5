"""Cold start: ``make run`` (``python -m app.runner``), dependencies installed, to ``/health``.

    .venv/bin/python bench/coldstart.py [--rounds 3]

Each round starts the whole system on free ports with a private Redis and an empty
PIPELINE_HOME, times the first 200 from ``/health``, then stops it with SIGINT as Ctrl-C
does. The baseline is the bar itself, 5 s; the median round is reported.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from app.redis_server import free_port, private_redis  # noqa: E402
from bench.table import Figure, report  # noqa: E402

BAR_SECONDS = 5.0


def one_start(redis_url: str, temp: Path) -> float:
    port = free_port()
    env = dict(os.environ, REDIS_URL=redis_url, PIPELINE_HOME=str(temp / "home"),
               WEB_PORT=str(port), FLOWER_PORT=str(free_port()))
    with open(temp / "run.log", "wb") as log:
        began = time.perf_counter()
        process = subprocess.Popen([sys.executable, "-m", "app.runner"], cwd=ROOT, env=env,
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as answer:
                    if answer.status == 200:
                        return time.perf_counter() - began
            except OSError:
                pass
            if process.poll() is not None or time.perf_counter() - began > 60:
                raise SystemExit(f"make run did not answer /health: see {temp / 'run.log'}")
            time.sleep(0.02)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args(argv)
    seconds = []
    with private_redis() as redis_url:
        for number in range(options.rounds):
            with tempfile.TemporaryDirectory(prefix=f"bench-cold-{number}-") as temp:
                seconds.append(one_start(redis_url, Path(temp)))
    report([Figure("cold start, make run -> /health", statistics.median(seconds), "s",
                   BAR_SECONDS, "the bar", higher=False, bar=1.0,
                   note=f"median of {options.rounds}: {min(seconds):.2f}-{max(seconds):.2f} s")])
    return 0


if __name__ == "__main__":
    sys.exit(main())
