"""What the benchmarks start: the Procfile's worker next to a private Redis, wrk, slow clients,
and memory readings.

Not a benchmark itself (``make bench`` skips it): the scripts beside it import it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
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
    """A client of ``redis_url`` configured as the project's Celery app is; a new one each call,
    since a script's rounds each start their own Redis (``worker.app`` keeps the first URL)."""
    from celery import Celery

    from app import redis_client

    # What the script starts next (app.runner.web_server) takes its Redis from here too.
    os.environ["REDIS_URL"] = redis_url
    app = Celery("pipeline")
    app.config_from_object("celeryconfig")
    redis = redis_client.celery_settings(redis_url)
    app.conf.update(broker_url=redis["broker_url"], result_backend=redis["result_backend"])
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



# -- wrk --------------------------------------------------------------------------------------

WRK_POST = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{body}'
"""
UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}
WRK_CONNECTIONS = 16


@dataclass(frozen=True)
class WrkRun:
    per_second: float
    p99_ms: float
    requests: int  # answered, whatever their status
    non_2xx: int
    errors: int  # requests lost to connect, read or write errors, or to wrk's 2 s timeout

    @property
    def failed(self) -> int:
        return self.non_2xx + self.errors


def require_wrk() -> None:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: make system installs it (apt-get install wrk)")


def wrk_post(folder: Path, body: dict) -> Path:
    """A wrk script, written in ``folder``, that POSTs ``body`` as JSON."""
    script = folder / "post.lua"
    script.write_text(WRK_POST.format(body=json.dumps(body, ensure_ascii=False)))
    return script


def wrk(url: str, seconds: int, script: Path | None = None) -> WrkRun:
    """One ``wrk -t2 -c16`` run (``script``: a Lua file, such as ``wrk_post``'s)."""
    argv = ["wrk", "-t2", f"-c{WRK_CONNECTIONS}", f"-d{seconds}s", "--latency", url]
    if script is not None:
        argv[1:1] = ["-s", str(script)]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    requests = int(re.search(r"(\d+) requests in", out)[1])
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), "
                              r"timeout (\d+)", out)
    errors = sum(map(int, socket_errors.groups())) if socket_errors else 0
    if requests == 0:
        # wrk counts no timeout for a request that never had an answer: each connection's
        # first request was lost, and there is no latency to speak of.
        return WrkRun(0.0, math.inf, 0, 0, max(errors, WRK_CONNECTIONS))
    value, unit = re.search(r"\s99%\s+([\d.]+)(us|ms|s)", out).groups()
    return WrkRun(per_second=float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1]),
                  p99_ms=float(value) * UNITS[unit], requests=requests,
                  non_2xx=int(non_2xx[1]) if non_2xx else 0, errors=errors)


# -- slow clients ---------------------------------------------------------------------------

SLOW_HEAD = (b"POST /predict HTTP/1.1\r\nHost: slow-client\r\n"
             b"Content-Type: application/json\r\n")
# What each kind of slow client sends at once, then what it trickles, a byte a second.
SLOW_KINDS = {
    "headers": (SLOW_HEAD, b"X-Slow: 1\r\n"),  # never the blank line that ends a head
    "bodies": (SLOW_HEAD + b"Content-Length: 1000\r\n\r\n", b" "),
    "silent": (b"", b""),
}


class SlowClients:
    """Connections to the server at ``url`` that hold its attention without finishing a
    request, from a thread of their own: ``headers`` of them trickle a request's head, a byte
    a second; ``bodies`` send a whole head and trickle its body;
    ``silent`` connect and say nothing. A connection the server closes is opened again, so the
    crowd stays whole while it lasts, as an attacker's would; the first ones (one per slot) are
    remembered, to tell how soon the server let go of them and with what answer.

    ``with SlowClients(...) as crowd`` returns once every first connection is open.
    """

    def __init__(self, url: str, headers: int = 300, bodies: int = 100, silent: int = 100):
        parts = urllib.parse.urlsplit(url)
        self.host, self.port = parts.hostname, parts.port
        self.slots = ["headers"] * headers + ["bodies"] * bodies + ["silent"] * silent
        self.first_open: dict[int, float] = {}  # slot -> when its first connection opened
        self.first_closed: dict[int, float] = {}  # slot -> when the server closed it
        self.first_answers: dict[int, bytes] = {}  # slot -> the status line it sent, or b""
        self._ready = threading.Event()
        self._stopping: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=asyncio.run, args=(self._run(),), daemon=True)

    def __enter__(self) -> SlowClients:
        self._thread.start()
        if not self._ready.wait(60):
            self.__exit__()
            raise RuntimeError(f"only {len(self.first_open)} of {len(self.slots)} slow "
                               f"connections opened within 60 s")
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join(30)

    def closed_within(self, seconds: float) -> int:
        """How many first connections the server closed within ``seconds`` of their opening."""
        return sum(1 for slot, closed in list(self.first_closed.items())
                   if closed - self.first_open[slot] <= seconds)

    def age(self) -> float:
        """Seconds since the first connection opened."""
        return time.monotonic() - min(self.first_open.values())

    async def _run(self) -> None:
        self._loop, self._stopping = asyncio.get_running_loop(), asyncio.Event()
        holders = [asyncio.create_task(self._hold(slot)) for slot in range(len(self.slots))]
        await self._stopping.wait()
        for holder in holders:
            holder.cancel()
        await asyncio.gather(*holders, return_exceptions=True)

    async def _hold(self, slot: int) -> None:
        start, trickle = SLOW_KINDS[self.slots[slot]]
        while True:
            try:
                reader, writer = await asyncio.open_connection(self.host, self.port)
            except OSError:  # refused by a full server: try again, as a client would
                await asyncio.sleep(0.1)
                continue
            if slot not in self.first_open:
                self.first_open[slot] = time.monotonic()
                if len(self.first_open) == len(self.slots):
                    self._ready.set()
            try:
                writer.write(start)
                answer = await self._trickle(reader, writer,
                                             itertools.cycle(trickle) if trickle else None)
            finally:
                writer.close()
            if slot not in self.first_closed:  # the slot's first connection
                self.first_closed[slot] = time.monotonic()
                self.first_answers[slot] = answer.split(b"\r\n", 1)[0]

    async def _trickle(self, reader, writer, trickle) -> bytes:
        """Send a byte of ``trickle`` a second until the server closes the connection; what it
        answered meanwhile."""
        closed = asyncio.ensure_future(reader.read())  # whatever it answers, up to its close
        try:
            while not closed.done():
                await asyncio.wait([closed], timeout=1.0)
                if trickle is not None and not closed.done() and not writer.is_closing():
                    writer.write(bytes([next(trickle)]))
            try:
                return closed.result()
            except OSError:  # reset: whatever it sent is lost
                return b""
        finally:
            closed.cancel()
