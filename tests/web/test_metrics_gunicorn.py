"""``/metrics`` of the real server (the Procfile's gunicorn, 2 workers): the counters equal what
was sent, whichever worker answered each request and whichever answers the scrape."""

import http.client
import json
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest

from tests.web.conftest import save
from tests.support import metric_samples, promtool_check_metrics

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]
ROUNDS = 5
PROBE = {"idade": 35, "cidade": "São Paulo", "cargo": "Professor"}


def call(url, method, path, body=None, timeout=10):
    """One request on a new connection, so gunicorn may hand it to either worker."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        connection.request(method, path, body=None if body is None else json.dumps(body),
                           headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


def test_counters_add_up_across_both_gunicorn_workers(gunicorn, local_home, first_model):
    save(local_home.registry, first_model)
    health = ("pipeline_http_requests_total",
              (("method", "GET"), ("route", "/health"), ("status", "200")))
    with gunicorn(local_home.url) as url:
        # The server is ready once it answered /health: those calls are counted from here.
        before = metric_samples(call(url, "GET", "/metrics", timeout=60)[1]).get(health, 0)
        # Until both workers answer (each imports the app after the fork: slow on a busy
        # machine), concurrent /health calls, every one counted.
        checks, pids = 0, set()
        deadline = time.monotonic() + 90
        with ThreadPoolExecutor(8) as pool:
            while len(pids) < 2 and time.monotonic() < deadline:
                answers = list(pool.map(lambda _: call(url, "GET", "/health", timeout=60),
                                        range(8)))
                checks += len(answers)
                pids |= {json.loads(body)["pid"] for _, body in answers}
            assert len(pids) == 2, "both gunicorn workers should have answered"
            for _ in range(ROUNDS):
                answers = pool.map(lambda _: call(url, "POST", "/predict",
                                                  {"records": [PROBE] * 3}), range(8))
                assert {status for status, _ in answers} == {200}
        for _ in range(5):
            assert call(url, "POST", "/predict", {"idade": "x"})[0] == 400
        scrapes = [call(url, "GET", "/metrics")[1] for _ in range(6)]

    sent = 8 * ROUNDS
    for text in scrapes:
        samples = metric_samples(text)
        assert samples[("pipeline_http_requests_total", (
            ("method", "POST"), ("route", "/predict"), ("status", "200")))] == sent
        assert samples[("pipeline_http_requests_total", (
            ("method", "POST"), ("route", "/predict"), ("status", "400")))] == 5
        assert samples[health] - before == checks
        assert samples[("pipeline_predictions_total", ())] == 3 * sent
        assert samples[("pipeline_http_request_duration_seconds_count", (
            ("route", "/predict"), ("status", "200")))] == sent
        assert samples[("pipeline_model_version", ())] == 1
    promtool_check_metrics(scrapes[-1])
