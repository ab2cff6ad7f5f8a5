"""Slow and idle clients: how ``/predict`` fares while 500 connections hold the server's attention.

    .venv/bin/python bench/slow.py [--rounds 7] [--seconds 8] [--hold 40]

It trains a model into a temporary PIPELINE_HOME and starts the Procfile's ``web`` command on
a free loopback port, as bench/predict.py does. The slow clients are 500 connections: 300
trickle a request's head a byte a second, 100 a body, 100 say nothing; each one the server
closes is opened again, so 500 stay open throughout.

1. Throughput and p99 (one record, ``wrk -t2 -c16``): each round measures ``/predict``
   undisturbed, then again with the slow clients open (which goes first alternates), and gives
   a throughput ratio; the round with the median ratio is reported, as in bench/predict.py,
   and the median of the rounds' p99 latencies. Rounds are short and many because this
   machine's speed drifts by a factor of two within a minute when other jobs run.
2. Closing: the slow clients stay ``--hold`` seconds while wrk keeps ``/predict`` busy; how
   many of the first 500 the server closed meanwhile.

A request wrk counts as failed, in either part (not a 2xx, no answer within wrk's 2 s, a
connection error), fails the bar of answers.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from app.runner import web_server  # noqa: E402
from bench.predict import RECORD, train_model  # noqa: E402
from bench.support import SlowClients, WrkRun, require_wrk, wrk, wrk_post  # noqa: E402
from bench.table import Figure, report  # noqa: E402

P99_BAR_MS = 100.0


def among_slow_clients(url: str, seconds: int, script: Path) -> WrkRun:
    with SlowClients(url):
        return wrk(url + "/predict", seconds, script)


def held(url: str, hold: float, script: Path) -> tuple[WrkRun, SlowClients]:
    """wrk for ``hold`` seconds with the slow clients open, and the clients as they ended."""
    with SlowClients(url) as crowd:
        run = wrk(url + "/predict", math.ceil(hold), script)
        time.sleep(max(0.0, hold - crowd.age()))
    return run, crowd


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--hold", type=float, default=40.0)
    options = parser.parse_args(argv)
    require_wrk()
    with tempfile.TemporaryDirectory(prefix="bench-slow-") as temp:
        home = Path(temp)
        train_model(home)
        script = wrk_post(home, RECORD)
        with web_server(home, home / "gunicorn.log") as url:
            wrk(url + "/predict", 2, script)  # unmeasured: every worker loads the model
            rounds = []
            for number in range(options.rounds):
                if number % 2 == 0:
                    alone = wrk(url + "/predict", options.seconds, script)
                    among = among_slow_clients(url, options.seconds, script)
                else:
                    among = among_slow_clients(url, options.seconds, script)
                    alone = wrk(url + "/predict", options.seconds, script)
                rounds.append((alone, among))
            during_hold, crowd = held(url, options.hold, script)

    ranked = sorted(rounds, key=lambda pair: pair[1].per_second / pair[0].per_second)
    alone, among = ranked[len(ranked) // 2]
    ratios = ", ".join(f"{b.per_second / a.per_second:.2f}" for a, b in ranked)
    p99s = ", ".join(f"{p99:.1f}" for p99 in sorted(among.p99_ms for _, among in rounds))
    crowded = [among for _, among in rounds] + [during_hold]
    answers = Counter((kind, crowd.first_answers.get(slot, b"(open)").decode() or "closed")
                      for slot, kind in enumerate(crowd.slots))
    crowd_name = "500 slow clients open"
    report([
        Figure(f"/predict 1 record, requests/s, {crowd_name} (wrk -c16)", among.per_second,
               "req/s", alone.per_second, "the same round undisturbed", bar=0.8,
               note=f"median of {options.rounds} rounds x {options.seconds}s; ratios {ratios}"),
        Figure(f"/predict 1 record, p99 latency, {crowd_name}",
               statistics.median(among.p99_ms for _, among in rounds), "ms", P99_BAR_MS,
               "the bar", higher=False, bar=1.0,
               note=f"median of the rounds {p99s} ms; undisturbed "
                    f"{statistics.median(alone.p99_ms for alone, _ in rounds):.1f} ms"),
        Figure(f"/predict requests answered 2xx, {crowd_name}",
               sum(run.requests - run.non_2xx for run in crowded), "requests",
               sum(run.requests + run.errors for run in crowded), "requests sent", bar=1.0,
               note=f"all rounds and the {options.hold:g} s hold"),
        Figure(f"slow connections the server closed within {options.hold:g} s",
               crowd.closed_within(options.hold), "connections", len(crowd.slots), "opened",
               bar=0.9, note="; ".join(f"{kind}: {n} {answer}"
                                       for (kind, answer), n in sorted(answers.items()))),
    ])
    return 0


if __name__ == "__main__":
    sys.exit(main())
