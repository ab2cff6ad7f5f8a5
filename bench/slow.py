"""Slow and idle clients: how ``/predict`` fares while 500 connections hold the server's attention.

    .venv/bin/python bench/slow.py [--rounds 3] [--seconds 10] [--hold 40]

It trains a model into a temporary PIPELINE_HOME and starts the Procfile's ``web`` command on
a free loopback port, as bench/predict.py does. Each round measures ``/predict`` (one record,
``wrk -t2 -c16``) undisturbed, then again while 500 slow connections are open (300 trickling a
request's head a byte a second, 100 trickling a body, 100 silent; each one the server closes
is opened again, so 500 stay open throughout), and keeps those connections for ``--hold``
seconds to count how many the server closed meanwhile. Which of the two goes first
alternates. Each round gives a throughput ratio; the round with the median ratio is reported,
as in bench/predict.py. A request wrk counts as failed (not a 2xx, or no answer within wrk's
2 s, or a connection error) fails the run's bar.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from app.runner import web_server  # noqa: E402
from bench.predict import RECORD, train_model  # noqa: E402
from bench.support import WRK_POST, SlowClients, WrkRun, wrk  # noqa: E402
from bench.table import Figure, report  # noqa: E402

P99_BAR_MS = 100.0


def crowded(url: str, seconds: int, hold: float, script: Path) -> tuple[WrkRun, int, int, str]:
    """wrk while the slow clients are open; how many of the first ones the server closed
    within ``hold`` seconds, of how many; and how many were open as wrk began and ended."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    with SlowClients(host, int(port)) as crowd:
        open_before = crowd.open_now
        run = wrk(url + "/predict", seconds, script)
        open_after = crowd.open_now
        time.sleep(max(0.0, hold - crowd.age()))
        closed = crowd.closed_within(hold)
    return run, closed, len(crowd.slots), f"{open_before}/{open_after}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--hold", type=float, default=40.0)
    options = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: make system installs it (apt-get install wrk)")
    with tempfile.TemporaryDirectory(prefix="bench-slow-") as temp:
        home = Path(temp)
        train_model(home)
        script = home / "post.lua"
        script.write_text(WRK_POST.format(body=json.dumps(RECORD, ensure_ascii=False)))
        with web_server(home, home / "gunicorn.log") as url:
            wrk(url + "/predict", 2, script)  # unmeasured: every worker loads the model
            rounds = []
            for number in range(options.rounds):
                if number % 2 == 0:
                    alone = wrk(url + "/predict", options.seconds, script)
                    among = crowded(url, options.seconds, options.hold, script)
                else:
                    among = crowded(url, options.seconds, options.hold, script)
                    alone = wrk(url + "/predict", options.seconds, script)
                rounds.append((alone, *among))
                print(f"round {number + 1}: alone {alone}; among the slow clients {among[0]}, "
                      f"{among[1]} of {among[2]} closed within {options.hold:g} s, "
                      f"open as wrk began/ended {among[3]}", flush=True)

    ratios = sorted(among.per_second / alone.per_second for alone, among, *_ in rounds)
    alone, among, *_ = sorted(rounds, key=lambda r: r[1].per_second / r[0].per_second)[
        len(rounds) // 2]
    p99s = ", ".join(f"{r[1].p99_ms:.1f}" for r in rounds)
    answered_2xx = sum(r[1].requests - r[1].non_2xx for r in rounds)
    sent = sum(r[1].requests + r[1].errors for r in rounds)
    closed, opened = sum(r[2] for r in rounds), sum(r[3] for r in rounds)
    crowd = "500 slow clients open"
    report([
        Figure(f"/predict 1 record, requests/s, {crowd} (wrk -c16)", among.per_second, "req/s",
               alone.per_second, "the same run undisturbed", bar=0.8,
               note=f"median of {options.rounds} rounds x {options.seconds}s; ratios "
                    + ", ".join(f"{ratio:.2f}" for ratio in ratios)),
        Figure(f"/predict 1 record, p99 latency, {crowd}", among.p99_ms, "ms", P99_BAR_MS,
               "the bar", higher=False, bar=1.0,
               note=f"median round; rounds {p99s} ms; undisturbed {alone.p99_ms:.1f} ms"),
        Figure(f"/predict requests answered 2xx, {crowd}", answered_2xx, "requests", sent,
               "requests sent", bar=1.0, note="all rounds"),
        Figure(f"slow connections the server closed within {options.hold:g} s", closed,
               "connections", opened, "opened", bar=0.9, note="all rounds"),
    ])
    return 0


if __name__ == "__main__":
    sys.exit(main())
