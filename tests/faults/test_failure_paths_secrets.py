"""Scenario 13: the failure paths never show a secret. The whole system runs as ``make run``
starts it against a Redis over TLS with an ACL user, with a recognisable password in
``REDIS_URL``, ``FLOWER_BASIC_AUTH``, ``API_TOKEN`` and ``AWS_SECRET_ACCESS_KEY``; then:

- a batch kills its worker process every time it is trained, until it is quarantined;
- a batch's normalize fails with an error quoting ``REDIS_URL`` and the AWS key, as a library's
  error may (Celery stores that text as the result, sends it to Flower, logs its traceback);
- Redis restarts with the password changed under the running system (every process's reconnect
  warnings; ``python -m app status`` saying why the queues cannot be read);
- a second `make run` meets that Redis and refuses to start.

Everything they printed and wrote is searched for every secret: the runner's whole output (each
child's lines), the system log file, every file in ``PIPELINE_HOME``, every value in Redis,
Flower's pages and ``python -m app status``.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest

from tests.faults.conftest import RedisServer, redis_values
from tests.faults.test_flower_access import request
from tests.support import wait_for
from tests.test_cli import run_cli

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

PASSWORD = f"redis-SECRET-{secrets.token_hex(6)}"
FLOWER_PASSWORD = f"flower-SECRET-{secrets.token_hex(6)}"
TOKEN = f"token-SECRET-{secrets.token_hex(6)}"
AWS_SECRET = f"aws-SECRET-{secrets.token_hex(10)}"
SECRETS = (PASSWORD, FLOWER_PASSWORD, TOKEN, AWS_SECRET)


def leaks(text: str) -> list[str]:
    return [line for line in text.splitlines() if any(secret in line for secret in SECRETS)]


@pytest.fixture
def tls_redis(tmp_path):
    with RedisServer(tmp_path / "tls-redis", password=PASSWORD, user="pipeline",
                     tls=True) as server:
        yield server


def test_no_secret_in_anything_the_failure_paths_print_store_or_show(make_system, tls_redis):
    secret_env = dict(REDIS_URL=tls_redis.url, FLOWER_BASIC_AUTH=f"ops:{FLOWER_PASSWORD}",
                      API_TOKEN=f"ops:{TOKEN}", AWS_SECRET_ACCESS_KEY=AWS_SECRET, PIPELINE_DEBUG="")
    system = make_system(extra={"worker": "-I tests.faults.inject"}, FAULT_KILL_TRAINING="3",
                         FAULT_LEAKY_NORMALIZE="5", **secret_env)
    system.ready()
    poisoned = system.wait_for_batch(3, "failed", timeout=300)
    assert "quarantined after 3 deliveries" in poisoned["failure"]
    leaky = system.wait_for_batch(5, "failed", timeout=120)
    masked_url = tls_redis.url.replace(PASSWORD, "***")
    assert leaky["failure"] == (f"pipeline.normalize failed: RuntimeError: lost {masked_url} "
                                "while reading with the key ***")
    system.wait_for_batch(7, "trained", timeout=120)

    # Flower shows the failure, masked.
    credentials = f"ops:{FLOWER_PASSWORD}"

    def flower_failure():
        status, body = request(f"{system.flower_url}/api/tasks?state=FAILURE",
                               credentials=credentials)
        return status == 200 and "lost rediss://pipeline:***@" in body and body

    failed = json.loads(wait_for(flower_failure, timeout=60, what="Flower to show the failure"))
    pages = ["/api/tasks", "/api/workers?refresh=1", "/broker", "/tasks", "/workers",
             *[f"/task/{task_id}" for task_id in failed]]
    for page in pages:
        status, body = request(system.flower_url + page, credentials=credentials)
        assert status == 200 and not leaks(body), (page, leaks(body))

    # What Redis holds: task results (the failures' texts), messages, schedules, locks.
    client = tls_redis.client()
    stored = [(key, value) for key, value in redis_values(client)
              if any(secret.encode() in value for secret in SECRETS)]
    assert not stored, stored[:3]
    status = run_cli("--url", system.web_url, "status")
    assert status.returncode == 0 and "queues:   celery " in status.stdout, status
    assert not leaks(status.stdout + status.stderr)

    # Redis comes back with another password: every process's reconnect warnings, and the
    # status saying why the queues cannot be read.
    tls_redis.password = f"changed-{secrets.token_hex(6)}"
    tls_redis.restart()
    system.wait_for_line("invalid username-password pair", "worker", timeout=120)
    status = run_cli("--url", system.web_url, "status")
    assert status.returncode == 0, status
    assert f"queues:   Redis at {masked_url} refused the login of user pipeline: wrong user or " \
           "password" in status.stdout
    assert not leaks(status.stdout + status.stderr)
    output = system.stop()
    # And a `make run` started now refuses that Redis, saying why.
    refused = make_system(**secret_env)
    assert refused.process.wait(timeout=60) == 1
    assert refused.output() == (f"runner | cannot start: Redis at {masked_url} refused the login "
                                "of user pipeline: wrong user or password\n")

    assert f"lost {masked_url}" in output  # the failure's traceback was printed, masked
    assert not leaks(output), leaks(output)[:5]
    home = Path(system.env["PIPELINE_HOME"])
    assert f"lost {masked_url}" in (home / "logs" / "pipeline.log").read_text()
    written = [path for path in home.rglob("*") if path.is_file()
               and any(secret.encode() in path.read_bytes() for secret in SECRETS)]
    assert not written, written
