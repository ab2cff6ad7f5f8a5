"""How fast ``/predict`` is under the server ``make run`` starts, against a bare Flask route.

    .venv/bin/python bench/predict.py [--rounds 5] [--requests 6000] [--batch-requests 120]

It trains a model into a temporary PIPELINE_HOME and starts the Procfile's ``web`` command
(gunicorn, 2 workers with 4 threads each) on a free loopback port. The one change to that
command is the app: ``bench.predict:bench_app()`` is ``app.web.create_app()`` plus a route
``GET /bare`` that returns a constant JSON object. So the baseline runs in the same gunicorn,
the same workers and the same Flask app as ``/predict``, and the ratio is what ``/predict``
adds (reading and validating the body, predicting, writing the answer) over Flask and gunicorn.

The client: one thread multiplexing keep-alive connections over raw sockets (selectors),
each connection sending a fixed number of prebuilt requests back to back, latency timed per
request. It costs a few tens of microseconds of CPU a request, so the server keeps most of
the machine. gunicorn keeps a
connection on the worker that accepted it, and which worker that is is luck: measured with
wrk, 16 connections split 16/0 gave a quarter of the throughput of an 8/8 split, which swamps
any difference between routes. So the connections are opened first and kept only until each
worker holds its share (each asks ``/health`` which pid answers); then the clock starts.

Cases alternate within each round and the median round is reported, with each round's ratio
to the baseline measured seconds apart. Nothing is asserted about speed, which depends on the
machine; every answer must be a 200.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import selectors
import socket
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: the repository's packages come first
    sys.path.insert(0, str(ROOT))

from app.data.generator import generate  # noqa: E402
from app.models.registry import ModelRegistry  # noqa: E402
from app.storage import open_storage  # noqa: E402
from app.models.regressor import SalaryRegressor  # noqa: E402
from app.runner import web_argv, web_server  # noqa: E402

BENCH_APP_SPEC = "bench.predict:bench_app()"
RECORD = {"idade": 35, "cidade": "São Paulo", "cargo": "Professor"}


def bench_app():
    """The production app plus ``GET /bare``: the baseline, served by the same workers."""
    from app.web import create_app  # imports worker.py: only in the server, not the client

    app = create_app()
    app.add_url_rule("/bare", "bare", lambda: {"status": "ok"})
    return app


# -- the server -----------------------------------------------------------------------------

def worker_count(argv: list[str]) -> int:
    return int(argv[argv.index("--workers") + 1]) if "--workers" in argv else 1


def train_model(home: Path, n: int = 20_000) -> int:
    batch = generate(n, seed=1)
    model = SalaryRegressor().partial_fit(batch, batch["salario"])
    return ModelRegistry(open_storage(home)).publish(model, 1, batch_id="bench",
                                                     batch_ids=["bench"], n_batch=n)["version"]


# -- the client -----------------------------------------------------------------------------

def http_request(method: str, path: str, body: bytes | None = None) -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    if body is not None:
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    return (head + "\r\n").encode() + (body or b"")


def parse_answer(buffer: bytearray) -> tuple[int, bytes] | None:
    """The first whole answer in ``buffer`` (status, body), removed from it; None if partial."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = bytes(buffer[:end]).decode("latin-1").split("\r\n")
    length = next(int(line.split(":", 1)[1]) for line in head[1:]
                  if line.lower().startswith("content-length:"))
    if len(buffer) < end + 4 + length:
        return None
    body = bytes(buffer[end + 4:end + 4 + length])
    del buffer[:end + 4 + length]
    return int(head[0].split()[1]), body


def exchange(sock: socket.socket, request: bytes) -> tuple[int, bytes]:
    """One blocking request and its answer."""
    sock.sendall(request)
    buffer = bytearray()
    while (answer := parse_answer(buffer)) is None:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        buffer += chunk
    return answer


def balanced_connections(port: int, count: int, workers: int) -> list[socket.socket]:
    """``count`` keep-alive connections, spread evenly over the server's worker processes."""
    share = -(-count // workers)
    kept: dict[int, list[socket.socket]] = {}
    health = http_request("GET", "/health")
    for _ in range(50 * count):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        status, body = exchange(sock, health)
        pid = json.loads(body)["pid"]
        if status == 200 and len(kept.setdefault(pid, [])) < share:
            kept[pid].append(sock)
            if sum(map(len, kept.values())) == count:
                return [sock for socks in kept.values() for sock in socks]
        else:
            sock.close()
    raise SystemExit(f"could not spread {count} connections over {workers} workers: {kept}")


class Connection:
    """One connection's side of the event loop: sends ``request`` ``left`` times in a row."""

    def __init__(self, sock: socket.socket, request: bytes, left: int):
        self.sock, self.request, self.left = sock, memoryview(request), left
        self.sent, self.began, self.buffer = 0, 0.0, bytearray()

    def start(self) -> bool:
        """Begin the next request; whether it went out whole (else wait to write more)."""
        self.sent, self.began = 0, time.perf_counter()
        return self.write()

    def write(self) -> bool:
        with contextlib.suppress(BlockingIOError):
            self.sent += self.sock.send(self.request[self.sent:])
        return self.sent == len(self.request)


def drive(socks: list[socket.socket], request: bytes, each: int) -> tuple[list[float], int, float]:
    """Every connection sends ``each`` requests back to back; one thread multiplexes them all.

    Latencies, failures and seconds taken. A single process of the client needs a few tens of
    microseconds a request, so it stays far from being the bottleneck.
    """
    selector = selectors.DefaultSelector()
    latencies, failures, active = [], 0, len(socks)
    began = time.perf_counter()
    for sock in socks:
        sock.setblocking(False)
        connection = Connection(sock, request, each)
        sent = connection.start()
        selector.register(sock, selectors.EVENT_READ | (0 if sent else selectors.EVENT_WRITE),
                          connection)
    while active:
        for key, mask in selector.select():
            connection: Connection = key.data
            if mask & selectors.EVENT_WRITE and connection.write():
                selector.modify(connection.sock, selectors.EVENT_READ, connection)
            if not mask & selectors.EVENT_READ:
                continue
            chunk = connection.sock.recv(262144)
            if not chunk:
                raise SystemExit("the server closed a connection mid-run")
            connection.buffer += chunk
            answer = parse_answer(connection.buffer)
            if answer is None:
                continue
            latencies.append(time.perf_counter() - connection.began)
            failures += answer[0] != 200
            connection.left -= 1
            if connection.left == 0:
                selector.unregister(connection.sock)
                active -= 1
            elif not connection.start():
                selector.modify(connection.sock, selectors.EVENT_READ | selectors.EVENT_WRITE,
                                connection)
    seconds = time.perf_counter() - began
    selector.close()
    return latencies, failures, seconds


@dataclass(frozen=True)
class Case:
    name: str
    label: str
    request: bytes
    records: int  # records per request, 0 for the baseline
    requests: int
    connections: int


@dataclass(frozen=True)
class Measure:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds


def run(case: Case, port: int, workers: int, requests: int | None = None) -> Measure:
    """``requests`` (default ``case.requests``) spread over the case's connections."""
    socks = balanced_connections(port, case.connections, workers)
    try:
        latencies, failures, seconds = drive(
            socks, case.request, -(-(requests or case.requests) // case.connections))
    finally:
        for sock in socks:
            sock.close()
    if failures:
        raise SystemExit(f"{case.label}: {failures} answers were not 200")
    latencies.sort()
    return Measure(len(latencies), seconds, 1e3 * latencies[len(latencies) // 2],
                   1e3 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))])


# -- the run --------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=6000,
                        help="per round, for /bare and the one-record /predict")
    parser.add_argument("--batch-requests", type=int, default=120,
                        help="per round, for the 10,000-record /predict")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--batch-connections", type=int, default=4)
    parser.add_argument("--verbose", action="store_true", help="print every round")
    options = parser.parse_args(argv)

    batch = json.dumps({"records": [RECORD] * 10_000}).encode()
    cases = [
        Case("bare", "GET /bare (baseline)", http_request("GET", "/bare"), 0,
             options.requests, options.connections),
        Case("one", "POST /predict, 1 record",
             http_request("POST", "/predict", json.dumps(RECORD).encode()), 1,
             options.requests, options.connections),
        Case("batch", "POST /predict, 10,000 records", http_request("POST", "/predict", batch),
             10_000, options.batch_requests, options.batch_connections),
    ]

    with tempfile.TemporaryDirectory(prefix="bench-predict-") as temp:
        home = Path(temp)
        version = train_model(home)
        argv = web_argv(0, BENCH_APP_SPEC)
        workers = worker_count(argv)
        with web_server(home, home / "gunicorn.log", BENCH_APP_SPEC) as url:
            port = int(url.rsplit(":", 1)[1])
            # Unmeasured: every worker boots, loads the model and sees each kind of request.
            for case in cases:
                run(case, port, workers, requests=max(case.connections, case.requests // 10))
            measures: dict[str, list[Measure]] = {case.name: [] for case in cases}
            for round_number in range(options.rounds):
                for case in cases:
                    measures[case.name].append(run(case, port, workers))
                    if options.verbose:
                        print(f"round {round_number + 1} {case.label:<30} "
                              f"{measures[case.name][-1].per_second:>9,.0f} req/s", flush=True)

    print(f"server : {' '.join(argv[:-1])} '{argv[-1]}'")
    print("         (the Procfile's web line, with the app spec swapped for one that adds /bare)")
    print(f"machine: {os.cpu_count()} CPUs, shared by the client and the server; model version "
          f"{version}")
    print(f"client : {options.connections} keep-alive connections ({options.batch_connections} "
          f"for the batch), spread evenly over {workers} workers; median of {options.rounds} "
          f"rounds\n")
    print(f"{'case':<30} {'requests':>9} {'req/s':>8} {'records/s':>10} "
          f"{'p50 ms':>7} {'p99 ms':>7}  {'req/s vs bare, median (range)':>29}")
    bare = [measure.per_second for measure in measures["bare"]]
    for case in cases:
        rounds = measures[case.name]
        per_second = statistics.median(measure.per_second for measure in rounds)
        # Each round's ratio compares runs seconds apart, which cancels slow drift.
        ratios = [measure.per_second / baseline for measure, baseline in zip(rounds, bare)]
        records = f"{per_second * case.records:,.0f}" if case.records else "-"
        print(f"{case.label:<30} {sum(m.requests for m in rounds):>9,} {per_second:>8,.0f} "
              f"{records:>10} {statistics.median(m.p50_ms for m in rounds):>7.2f} "
              f"{statistics.median(m.p99_ms for m in rounds):>7.2f}  "
              f"{statistics.median(ratios):>14.3f} ({min(ratios):.3f}-{max(ratios):.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
