"""How fast ``/predict`` is under the server ``make run`` starts, against baselines in the same run.

    .venv/bin/python bench/predict.py [--rounds 21] [--seconds 3]

It trains a model into a temporary PIPELINE_HOME and starts the Procfile's ``web`` command
(gunicorn, the same workers and threads) on a free loopback port. The one change to that
command is the app: ``bench.predict:bench_app()`` is ``app.web.create_app()`` plus a route
``/bare`` that returns a constant JSON object, so the baseline runs in the same server,
workers and Flask app, and the ratio is what ``/predict`` adds over Flask and gunicorn.

1. One record: ``wrk -t2 -c16 -d3s --latency`` on ``POST /predict`` and on ``POST /bare``
   with the same body (a GET without one was 4% faster than the same POST: part of the
   request, not of what the view does), one after the other, ``--rounds`` times (which goes
   first alternates). Each round gives a ratio; the round with the median ratio is reported.
   Rounds vary by a third here (how wrk's connections happen to spread over the two workers,
   the two cores wrk shares), far more than the two routes differ, so only figures taken side
   by side are compared, and many short rounds (each a new spread of the connections) make a
   steadier median than a few long ones: seven rounds of 10 s gave 0.92x in one run and 0.86x
   in the next.
2. 10,000 records in one body: the median time of a request over one keep-alive connection,
   against the median time this process takes to parse the same body and predict it with the
   same model (what the view does, without HTTP).
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: the repository's packages come first
    sys.path.insert(0, str(ROOT))

from app.data.generator import generate  # noqa: E402
from app.models.registry import ModelRegistry  # noqa: E402
from app.models.regressor import IncrementalRidge  # noqa: E402
from app.runner import web_server  # noqa: E402
from app.storage import open_storage  # noqa: E402
from bench.support import require_wrk, wrk, wrk_post  # noqa: E402
from bench.table import Figure, report  # noqa: E402

BENCH_APP_SPEC = "bench.predict:bench_app()"
RECORD = {"idade": 35, "cidade": "São Paulo", "cargo": "Professor"}
BATCH_RECORDS = 10_000


def bench_app():
    """The production app plus ``/bare``: the baseline, served by the same workers."""
    from app.web import create_app  # imports worker.py: only in the server, not the client

    app = create_app()
    app.add_url_rule("/bare", "bare", lambda: {"status": "ok"}, methods=["POST"])
    return app


def train_model(home: Path, n: int = 20_000) -> IncrementalRidge:
    batch = generate(n, seed=1)
    model = IncrementalRidge().partial_fit(batch, batch["salario"])
    ModelRegistry(open_storage(home)).publish(model, 1, batch_id="bench", batch_ids=["bench"],
                                              n_batch=n)
    return model


# -- 1. one record, wrk ---------------------------------------------------------------------

def every_answer_2xx(url: str, seconds: int, script: Path | None) -> tuple[float, float]:
    """Requests/s and p99 latency (ms) from one ``wrk -t2 -c16`` run; every answer a 2xx."""
    run = wrk(url, seconds, script)
    if run.failed:
        raise SystemExit(f"wrk saw {run.failed} failed requests of {run.requests} on {url}")
    return run.per_second, run.p99_ms


# -- 2. 10,000 records ----------------------------------------------------------------------

def http_times(port: int, body: bytes, requests: int) -> list[float]:
    connection = http.client.HTTPConnection("127.0.0.1", port)
    times = []
    for _ in range(requests):
        began = time.perf_counter()
        connection.request("POST", "/predict", body, {"Content-Type": "application/json"})
        answer = connection.getresponse()
        answer.read()
        times.append(time.perf_counter() - began)
        if answer.status != 200:
            raise SystemExit(f"/predict answered {answer.status} to {BATCH_RECORDS:,} records")
    connection.close()
    return times


def in_process_times(model: IncrementalRidge, body: bytes, requests: int) -> list[float]:
    from app.dataset import builtin
    from app.web.schemas import DatasetRequests

    requests_of = DatasetRequests(builtin())
    times = []
    for _ in range(requests):
        began = time.perf_counter()
        model.predict_records(requests_of.predict_records(body, BATCH_RECORDS))
        times.append(time.perf_counter() - began)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--batch-requests", type=int, default=40)
    options = parser.parse_args(argv)
    require_wrk()
    batch = json.dumps({"records": [RECORD] * BATCH_RECORDS}).encode()
    with tempfile.TemporaryDirectory(prefix="bench-predict-") as temp:
        home = Path(temp)
        model = train_model(home)
        script = wrk_post(home, RECORD)
        with web_server(home, home / "gunicorn.log", BENCH_APP_SPEC) as url:
            every_answer_2xx(url + "/predict", 2, script)  # unmeasured: workers load the model
            every_answer_2xx(url + "/bare", 2, script)
            rounds = []
            for number in range(options.rounds):
                order = ["bare", "predict"] if number % 2 == 0 else ["predict", "bare"]
                measured = {route: every_answer_2xx(f"{url}/{route}", options.seconds, script)
                            for route in order}
                rounds.append((measured["predict"], measured["bare"]))
            port = int(url.rsplit(":", 1)[1])
            http_times(port, batch, 3)  # unmeasured warm-up
            over_http = http_times(port, batch, options.batch_requests)
        in_process = in_process_times(model, batch, options.batch_requests)

    def median_round(index: int) -> tuple[float, float]:
        """(predict, bare) of the round whose ratio is the median one."""
        ranked = sorted(rounds, key=lambda pair: pair[0][index] / pair[1][index])
        predict, bare = ranked[len(ranked) // 2]
        return predict[index], bare[index]

    def spread(index: int) -> str:
        return ", ".join(sorted(f"{pair[0][index] / pair[1][index]:.2f}" for pair in rounds))

    throughput, p99 = median_round(0), median_round(1)
    report([
        Figure("/predict 1 record, requests/s (wrk -c16)", throughput[0], "req/s",
               throughput[1], "bare Flask route, same server and body", bar=0.9,
               note=f"median of {options.rounds} rounds x {options.seconds}s; ratios {spread(0)}"),
        Figure("/predict 1 record, p99 latency", p99[0], "ms", p99[1],
               "bare Flask route, same server and body", higher=False, bar=1.3,
               note=f"median round; ratios {spread(1)}"),
        Figure(f"/predict {BATCH_RECORDS:,} records, end to end", 1e3 * statistics.median(over_http),
               "ms", 1e3 * statistics.median(in_process), "parse + predict in process",
               higher=False, bar=2.0),
    ])
    return 0


if __name__ == "__main__":
    sys.exit(main())
