"""Find a Redis to talk to, or start a private one.

Both ``make run`` and the test suite need a Redis. When the configured one does not answer we
start a throw-away ``redis-server`` on a free loopback port, keeping nothing on disk, and stop
it on exit, so a fresh machine needs no setup and a shared Redis is never touched by accident.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator

import redis

DEFAULT_URL = "redis://127.0.0.1:6379/0"


def answers(url: str, timeout: float = 0.5) -> bool:
    """Whether a Redis at ``url`` replies to PING within ``timeout`` seconds."""
    client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def find_server() -> str | None:
    """Path of a ``redis-server`` binary on PATH, or None."""
    return shutil.which("redis-server")


@contextlib.contextmanager
def private_redis(startup_timeout: float = 10.0) -> Iterator[str]:
    """Run a private ``redis-server`` on a free loopback port; yield its URL (database 0)."""
    binary = find_server()
    if binary is None:
        raise RuntimeError(
            "No Redis answers and no redis-server is on PATH: install one "
            "(Debian: apt-get install redis-server) or set REDIS_URL."
        )
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    with tempfile.TemporaryDirectory(prefix="pipeline-redis-") as workdir:
        process = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", workdir],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
            # Out of the terminal's process group: Ctrl-C must not stop Redis before the
            # processes that use it; it is stopped last, on the way out.
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + startup_timeout
            while not answers(url):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"private redis-server on port {port} did not start")
                time.sleep(0.05)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextlib.contextmanager
def ensure_redis(url: str | None, private: bool = True) -> Iterator[str]:
    """Yield ``url`` (or the default) when it answers; otherwise a private Redis's URL.

    An explicitly configured URL that does not answer is an error, not a reason to start
    another server: the user asked for that one. So is no answer when ``private`` is false
    (``SERVICES`` without ``redis``: this host uses another's Redis).
    """
    if url:
        if not answers(url):
            raise RuntimeError(f"REDIS_URL={url} does not answer")
        yield url
    elif answers(DEFAULT_URL):
        yield DEFAULT_URL
    elif not private:
        raise RuntimeError(f"nothing answers on {DEFAULT_URL} and SERVICES leaves out redis: "
                           "set REDIS_URL, or add redis to SERVICES")
    else:
        with private_redis() as private_url:
            yield private_url
