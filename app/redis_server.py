"""Find a Redis to talk to, or start a private one.

Both ``make run`` and the test suite need a Redis. When the configured one does not answer we
start a throw-away ``redis-server`` on a free loopback port, keeping nothing on disk, and stop
it on exit, so a fresh machine needs no setup and a shared Redis is never touched by accident.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import redis
from redis.connection import SSLConnection, parse_url
from redis.sentinel import MasterNotFoundError

from app import redis_client
from app.refusals import CHECK_TIMEOUT, caused_by, network_trouble
from app.settings import redact, sentinel_master

DEFAULT_URL = "redis://127.0.0.1:6379/0"


def answers(url: str, timeout: float = 0.5) -> bool:
    """Whether a Redis at ``url`` replies to PING within ``timeout`` seconds."""
    return refusal(url, timeout) is None


def refusal(url: str, timeout: float = 0.5) -> str | None:
    """Why Redis at ``url`` does not reply to PING within ``timeout`` seconds, in an operator's
    words (the password masked); None when it does."""
    try:
        client = redis_client.client(url, socket_connect_timeout=timeout, socket_timeout=timeout)
    except ValueError as error:
        return f"REDIS_URL={redact(url)} is not a Redis URL: {redact(str(error))}"
    try:
        client.ping()
        return None
    except (redis.RedisError, OSError) as error:
        return explain(url, error, timeout)
    finally:
        client.close()


def explain(url: str, error: Exception, timeout: float) -> str:
    """``error``, met talking to Redis at ``url``, as one sentence an operator can act on.

    The rows, in order: the login; the TLS files ``url`` names; one side speaking TLS and the
    other not (asked of the server again, the other way); then the network.
    """
    if redis_client.is_sentinel(url):
        return _explain_sentinel(url, error)
    where = f"Redis at {redact(url)}"
    options = parse_url(url)
    host, port = options.get("host", "localhost"), options.get("port", 6379)
    tls = options.get("connection_class") is SSLConnection
    if isinstance(error, redis.AuthenticationError):
        if options.get("password") is None:
            return f"{where} demands a password, and REDIS_URL gives none"
        return (f"{where} refused the login of user {options.get('username') or 'default'}: "
                "wrong user or password")
    unreadable = [f"{name}={options[name]}" for name in ("ssl_ca_certs", "ssl_certfile",
                                                         "ssl_keyfile")
                  if options.get(name) and not Path(options[name]).is_file()]
    if tls and unreadable:
        return f"{where}: cannot read {', '.join(unreadable)}"
    if isinstance(error, (redis.ConnectionError, redis.TimeoutError)) and not caused_by(
            error, ConnectionRefusedError, socket.gaierror, ssl.SSLCertVerificationError):
        # The server was reached, and the talk broke off: maybe one side wanted TLS.
        if tls and _answers_plain(host, port, timeout):
            return f"{where} does not offer TLS: it answers without it (use redis://)"
        if not tls and _completes_tls_handshake(host, port, timeout):
            return f"{where} wants TLS: it refuses plain connections (use rediss://)"
    ca_file = options.get("ssl_ca_certs")
    trusted = (f"the CA file {ca_file}" if ca_file else
               "this machine's CA certificates (ssl_ca_certs=<file> in REDIS_URL names others)")
    trouble = network_trouble(error, host, port, timeout, trusted)
    return f"{where}: {trouble or redact(f'{type(error).__name__}: {error}')}"


def _explain_sentinel(url: str, error: Exception) -> str:
    """``error``, met asking the sentinels of ``url`` for the primary or talking to it."""
    master = sentinel_master()
    where = f"Redis Sentinel at {redact(url)}"
    if isinstance(error, MasterNotFoundError):
        return (f"{where}: no sentinel answered with a primary named {master!r} "
                "(REDIS_SENTINEL_MASTER names it; are the sentinels up and monitoring it?)")
    if isinstance(error, redis.AuthenticationError):
        return f"{where}: the primary {master!r} refused the login: wrong user or password"
    return f"{where}, primary {master!r}: {redact(f'{type(error).__name__}: {error}')}"


def _answers_plain(host: str, port: int, timeout: float) -> bool:
    """Whether ``host:port`` replies to a plain-text PING (with anything: +PONG, -NOAUTH...)."""
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout) as sock:
        sock.sendall(b"PING\r\n")
        return sock.recv(1)[:1] in (b"+", b"-")
    return False


def _completes_tls_handshake(host: str, port: int, timeout: float) -> bool:
    """Whether ``host:port`` completes a TLS handshake (whoever its certificate is from)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout) as sock:
        with context.wrap_socket(sock, server_hostname=host):
            return True
    return False


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
    (``SERVICES`` without ``redis``: this host uses another's Redis). The error says why, in
    :func:`explain`'s words.
    A Sentinel URL is always a configured one: its primary has standbys, and a private
    Redis beside it would split the system in two.
    """
    if url:
        if trouble := refusal(url, CHECK_TIMEOUT):
            raise RuntimeError(trouble)
        yield url
    elif not (trouble := refusal(DEFAULT_URL)):
        yield DEFAULT_URL
    elif not private:
        raise RuntimeError(f"{trouble}, and SERVICES leaves out redis: set REDIS_URL, or add "
                           "redis to SERVICES")
    else:
        with private_redis() as private_url:
            yield private_url
