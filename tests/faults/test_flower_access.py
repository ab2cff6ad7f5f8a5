"""Scenario 12: Flower with ``FLOWER_BASIC_AUTH`` lets nobody in without the password, and the
Redis password in ``REDIS_URL`` shows up in no page, no task result and no log line.

Flower's API can start, revoke and time-limit tasks and shut workers down, so every route of
Flower's own URL table is tried with no credentials and with wrong ones, for each method its
handler has. The system runs as ``make run`` starts it (worker, beat, Flower) against a Redis
that demands a password; after a few batches have gone through, every Flower page, every API
answer, every task result stored in Redis and every line the run printed is searched for it.
"""

from __future__ import annotations

import base64
import re
import secrets
import urllib.error
import urllib.request

import pytest
from flower.urls import handlers

from tests.faults.conftest import RedisServer, redis_values
from tests.support import wait_for

pytestmark = pytest.mark.slow

USER = "ops"
# Routes that answer without credentials by Flower's design, and hold nothing: a liveness
# "OK", Flower's own JavaScript and CSS, the login form, and its 404 catch-all.
OPEN_BY_DESIGN = {"/healthcheck", "/static/(.*)", "/login/?", "/logout$", ".*"}
SAMPLE = {"(.+)": "celery@nowhere", "(.*)": "00000000-0000-0000-0000-000000000000"}


def routes():
    """``(pattern, path, method)`` for every route of Flower and every method it handles."""
    for spec in handlers:
        pattern, handler = ((spec[0], spec[1]) if isinstance(spec, tuple)
                            else (spec.regex.pattern, spec.handler_class))
        if pattern in OPEN_BY_DESIGN:
            continue
        path = pattern.rstrip("$")
        for group, value in SAMPLE.items():
            path = path.replace(group, value)
        for method in ("get", "post", "put", "delete"):
            if any(method in vars(base) for base in handler.__mro__
                   if base.__module__.startswith("flower")):
                yield pattern, path, method.upper()


def request(url: str, method: str = "GET", credentials: str | None = None) -> tuple[int, str]:
    headers = {}
    if credentials is not None:
        headers["Authorization"] = "Basic " + base64.b64encode(credentials.encode()).decode()
    data = b"{}" if method in ("POST", "PUT") else None
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data, method=method,
                                                           headers=headers), timeout=30) as answer:
            return answer.status, answer.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")


@pytest.fixture
def secret_redis(tmp_path):
    with RedisServer(tmp_path / "secret-redis",
                     password=f"redis-pw-{secrets.token_hex(8)}") as server:
        yield server


@pytest.fixture
def system(make_system, secret_redis):
    flower_password = secrets.token_hex(8)
    system = make_system(REDIS_URL=secret_redis.url, SERVICES="worker,beat,flower",
                         FLOWER_BASIC_AUTH=f"{USER}:{flower_password}")
    system.ready(services=("worker", "beat", "flower"))
    system.credentials = f"{USER}:{flower_password}"
    # A few batches through normalize and train: tasks with results for Flower to show.
    wait_for(lambda: system.newest_version() >= 3, timeout=90, what="three versions")
    return system


def test_flower_refuses_every_route_without_the_password_and_never_shows_redis_password(
        system, secret_redis):
    url, password = system.flower_url, secret_redis.password
    checked = list(routes())
    assert len(checked) > 25, checked
    let_in = []
    for pattern, path, method in checked:
        for credentials in (None, f"{USER}:wrong", f"intruder:{system.credentials.split(':')[1]}"):
            status, _ = request(url + path, method, credentials)
            if status != 401:
                let_in.append((method, path, credentials, status))
    assert not let_in, f"Flower answered without the right credentials: {let_in}"

    # With the password: the pages and the API answer, and none shows the Redis password.
    client = secret_redis.client()
    task_ids = [key.decode().removeprefix("celery-task-meta-")
                for key in client.scan_iter("celery-task-meta-*")]
    assert task_ids, "no task result was stored"
    worker = re.search(r"celery@\S+", "\n".join(system.lines("worker"))).group(0).rstrip(".")
    pages = ["/", "/workers", "/tasks", "/broker", f"/worker/{worker}", "/metrics",
             "/api/workers?refresh=1", "/api/tasks", "/api/task/types", "/api/queues/length",
             "/tasks/datatable?draw=1&start=0&length=100&search%5Bvalue%5D=&order%5B0%5D%5Bcolumn%5D=0&order%5B0%5D%5Bdir%5D=desc&columns%5B0%5D%5Bdata%5D=name",
             *[f"/task/{task_id}" for task_id in task_ids[:10]],
             *[f"/api/task/info/{task_id}" for task_id in task_ids[:10]],
             *[f"/api/task/result/{task_id}" for task_id in task_ids[:10]]]
    for page in pages:
        status, body = request(url + page, credentials=system.credentials)
        assert status == 200, (page, status, body[:300])
        assert password not in body, f"{page} shows the Redis password"

    # Task results as stored, and every line the run printed (runner, worker, beat, Flower).
    for key, value in redis_values(client):
        assert password.encode() not in value, f"{key!r} holds it"
    output = system.stop()
    assert "flower" in output and "worker" in output
    leaked = [line for line in output.splitlines() if password in line]
    assert not leaked, f"log lines show the Redis password: {leaked[:5]}"


def test_without_basic_auth_flower_api_is_off(make_system):
    """Flower's API can start tasks, so it must not default to open: without
    FLOWER_BASIC_AUTH it refuses every call (the pages stay, on 127.0.0.1 only)."""
    system = make_system(SERVICES="flower")
    system.ready(services=("flower",))
    url = system.flower_url
    assert request(url + "/api/workers")[0] == 401
    assert request(url + "/api/task/async-apply/pipeline.generate", "POST")[0] == 401
    assert request(url + "/api/worker/shutdown/celery@nowhere", "POST")[0] == 401
    assert request(url + "/workers")[0] == 200
