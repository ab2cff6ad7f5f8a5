"""Slow and idle clients cannot take the real server of ``make run`` down (app/web/server.py).

Each test starts the Procfile's web command, as ``make run`` does. Times asserted are
generous bounds on the server's deadlines (a head within 5 s, a body within 10 s more), never
how fast an answer comes.
"""

import select
import socket
import time
from urllib.parse import urlsplit

import pytest

from bench.support import SlowClients
from tests.web.conftest import PROBE, save
from tests.web.test_gunicorn import call

pytestmark = pytest.mark.timeout(180)


def address(url):
    parts = urlsplit(url)
    return parts.hostname, parts.port


@pytest.mark.slow
def test_predict_answers_while_hundreds_of_slow_clients_hold_connections_until_it_closes_them(
        gunicorn, local_home, first_model):
    save(local_home.registry, first_model)
    with gunicorn(local_home.url) as url:
        with SlowClients(url, headers=150, bodies=50, silent=50) as crowd:
            # Long enough for every deadline to pass once, while new slow connections
            # replace the closed ones.
            while crowd.age() < 20:
                status, body = call(url, "POST", "/predict", PROBE)
                assert status == 200 and len(body["predictions"]) == 1
                assert call(url, "GET", "/health")[0] == 200
            while len(crowd.first_closed) < len(crowd.slots) and crowd.age() < 40:
                time.sleep(0.5)
            answers = dict(crowd.first_answers)
        assert crowd.closed_within(40) == len(crowd.slots)
    kinds = {kind: {answers[slot] for slot, named in enumerate(crowd.slots) if named == kind}
             for kind in ("headers", "bodies", "silent")}
    assert kinds == {"headers": {b""}, "bodies": {b"HTTP/1.1 408 Request Timeout"},
                     "silent": {b""}}


def test_an_idle_kept_alive_connection_is_closed_after_a_few_seconds(
        gunicorn, local_home, first_model):
    save(local_home.registry, first_model)
    with gunicorn(local_home.url) as url:
        with socket.create_connection(address(url), timeout=30) as client:
            client.sendall(b"GET /health HTTP/1.1\r\nHost: test\r\n\r\n")
            answer = client.recv(65536)
            assert answer.startswith(b"HTTP/1.1 200")
            assert b"connection: close" not in answer.lower()  # kept alive, for a while
            began = time.monotonic()
            while client.recv(65536):
                pass
            assert time.monotonic() - began < 20


def test_past_its_connection_limit_a_worker_answers_503_at_once_and_recovers(
        gunicorn, local_home, first_model, monkeypatch):
    """Two workers holding at most 10 connections each, kept 30 s when idle: of 40 silent
    connections, 20 or more are refused with a JSON 503 well before then; once the others are
    gone, /predict answers."""
    monkeypatch.setenv("GUNICORN_CMD_ARGS", "--worker-connections 10 --keep-alive 30")
    save(local_home.registry, first_model)
    with gunicorn(local_home.url) as url:
        silent = [socket.create_connection(address(url), timeout=30) for _ in range(40)]
        try:
            answered = set()
            deadline = time.monotonic() + 10
            while len(answered) < 20 and time.monotonic() < deadline:
                readable, _, _ = select.select(set(silent) - answered, [], [], 1)
                answered.update(readable)
            answers = [connection.recv(65536) for connection in answered]
        finally:
            for connection in silent:
                connection.close()
        assert len(answers) >= 20
        for answer in answers:
            head, body = answer.split(b"\r\n\r\n", 1)
            assert head.startswith(b"HTTP/1.1 503") and b"Retry-After: 1" in head
            assert body.startswith(b'{"error": "the server holds as many connections')
        assert call(url, "POST", "/predict", PROBE)[0] == 200
