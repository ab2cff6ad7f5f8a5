"""The real server of ``make run`` (the Procfile's gunicorn, 2 workers) hot-reloads and refuses
bodies over the limit."""

import http.client
import json
import socket
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

from tests.support import wait_for

import pytest

from tests.web.conftest import save

pytestmark = pytest.mark.timeout(120)
PROBE = {"idade": 35, "cidade": "São Paulo", "cargo": "Professor"}


def call(url, method, path, body=None, chunks=None):
    """One request on a new connection (so gunicorn may hand it to either worker).

    ``chunks``, an iterable of bytes, is sent with chunked transfer encoding instead of ``body``.
    """
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        if chunks is not None:
            connection.request(method, path, body=chunks, encode_chunked=True,
                               headers={"Content-Type": "application/json",
                                        "Transfer-Encoding": "chunked"})
        else:
            connection.request(method, path, body=None if body is None else json.dumps(body),
                               headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def versions_served(url, requests=40):
    """The versions named by ``requests`` predictions sent eight at a time (a lone client may
    be answered by one worker only), and the worker pids that answered meanwhile."""
    def predict_and_ask_who(_):
        status, body = call(url, "POST", "/predict", PROBE)
        return (body.get("model_version") if status == 200 else status,
                call(url, "GET", "/health")[1]["pid"])

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(predict_and_ask_who, range(requests)))
    return {version for version, _ in answers}, {pid for _, pid in answers}


def wait_until_both_workers_serve(url, version):
    """Until predictions name ``version`` alone and both gunicorn workers have answered so."""
    pids = set()

    def both_serve():
        versions, answered = versions_served(url)
        if versions != {version}:
            pids.clear()
            return False
        pids.update(answered)
        return len(pids) == 2

    wait_for(both_serve, what=f"both gunicorn workers serving {version}")


def test_gunicorn_serves_each_new_version_within_a_second_and_refuses_a_corrupt_one(
        gunicorn, registry, save_model, save_broken_version, first_model, second_model):
    with gunicorn(registry.storage.url) as url:
        assert call(url, "POST", "/predict", PROBE)[0] == 503
        assert call(url, "GET", "/health")[1]["model_version"] is None

        wait_until_both_workers_serve(url, save_model(first_model))

        second = save_model(second_model, "b2")
        wait_until_both_workers_serve(url, second)
        status, body = call(url, "POST", "/predict", {"records": [PROBE] * 3})
        assert status == 200 and body["predictions"] == second_model.predict_records([PROBE] * 3)

        broken = save_broken_version("checksum")
        wait_for(lambda: {tuple(call(url, "GET", "/health")[1]["refused_versions"])
                          for _ in range(20)} == {(broken,)}, what="every worker refusing it")
        assert versions_served(url)[0] == {second}

        wait_until_both_workers_serve(url, save_model(first_model, "b3"))


def test_gunicorn_answers_413_to_a_chunked_body_over_the_limit_and_reads_a_small_one(
        gunicorn, registry, save_model, first_model):
    save_model(first_model)
    with gunicorn(registry.storage.url) as url:
        record = json.dumps({"records": [PROBE] * 2}).encode()
        status, body = call(url, "POST", "/predict", chunks=iter([record[:10], record[10:]]))
        assert status == 200 and len(body["predictions"]) == 2
        status, body = call(url, "POST", "/predict", chunks=(b" " * 65536 for _ in range(80)))
        assert status == 413 and body["error"].startswith("the body is larger than the limit")


def test_gunicorn_answers_413_to_a_declared_length_over_the_limit_before_the_body_is_sent(
        gunicorn, local_home, first_model):
    save(local_home.registry, first_model)
    with gunicorn(local_home.url) as url:
        parts = urlsplit(url)
        with socket.create_connection((parts.hostname, parts.port), timeout=30) as client:
            client.sendall(b"POST /predict HTTP/1.1\r\nHost: test\r\n"
                           b"Content-Type: application/json\r\nContent-Length: 5000000\r\n\r\n")
            answer = b""
            while chunk := client.recv(65536):
                answer += chunk
        head, body = answer.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 413")
        assert json.loads(body)["error"].startswith("the body is larger than the limit")
