"""Pins under the real server (gunicorn, 2 workers), made with the command line as operators do."""

import json
import os
import time
import urllib.request

import pytest

from tests.support import wait_for, wait_for_listeners
from tests.test_cli import run_cli

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]
# Far longer than the test: a worker that switches can only have been told by a notice.
NO_POLLING = 60.0


@pytest.fixture
def home(local_home):
    return local_home


def served_by_worker(url, seen):
    """/health names the worker (pid) and its model: one request, one worker."""
    # Generous: on a loaded machine a worker's first request waits for its imports.
    with urllib.request.urlopen(f"{url}/health", timeout=30) as answer:
        health = json.load(answer)
    seen[health["pid"]] = health["model_version"]
    return seen


def every_worker_serves(url, version, seen, timeout=10):
    """Wait until both workers serve ``version``; how long it took, in seconds."""
    started = time.monotonic()
    wait_for(lambda: len(served_by_worker(url, seen)) == 2 and set(seen.values()) == {version},
             timeout=timeout, interval=0.01, what=f"every worker to serve version {version}")
    return time.monotonic() - started


def test_pins_from_the_command_line_reach_every_worker_and_the_audit(
        gunicorn, registry, save_model, first_model, second_model, monkeypatch):
    monkeypatch.setenv("FLASK_MODEL_CHECK_INTERVAL", str(NO_POLLING))
    first = save_model(first_model, "b1")
    second = save_model(second_model, "b2")
    with gunicorn(registry.storage.url) as url:
        seen = {}
        every_worker_serves(url, second, seen, timeout=90)
        wait_for_listeners(os.environ["REDIS_URL"], registry.storage.url, 2)

        def cli(*args):
            result = run_cli("--url", url, *args)
            assert result.returncode == 0, result.stderr
            return result.stdout

        assert "serving version 1, pinned" in cli("promote", str(first), "--reason", "incident 9")
        print(f"pin served by both workers {every_worker_serves(url, first, seen):.3f} s after "
              "the command returned")
        save_model(second_model, "b3")
        assert "pinned" in cli("serving") and set(served_by_worker(url, seen).values()) == {first}

        assert "serving version 3, following" in cli("follow", "--reason", "resolved")
        every_worker_serves(url, 3, seen)
        assert "serving version 2, pinned" in cli("rollback", "--reason", "v3 misbehaves")
        every_worker_serves(url, 2, seen)
        assert "serving version 1, pinned" in cli("rollback", "--to", "1", "--reason", "further")
        every_worker_serves(url, 1, seen)

        trail = cli("audit").splitlines()
        assert [line.split()[2] for line in trail] == ["rollback", "rollback", "follow", "pin"]
        assert "1 -> 3" in trail[2] and "by client 127.0.0.1: resolved" in trail[2]
        assert json.loads(cli("audit", "--json", "--limit", "1"))["next_before"] == 4

        failed = run_cli("--url", url, "promote", "99", "--reason", "typo")
        assert failed.returncode == 1
        assert failed.stderr.strip() == "error: model version 99 does not exist"


@pytest.mark.parametrize("args", [["promote", "1"], ["promote", "one", "--reason", "r"],
                                  ["rollback", "--to", "0", "--reason", "r"], ["follow"],
                                  ["audit", "--limit", "0"], ["promote", "--reason", "r"]])
def test_a_wrong_usage_exits_2_with_the_usage_line(args):
    result = run_cli(*args)
    assert result.returncode == 2 and "usage:" in result.stderr.lower()


@pytest.mark.parametrize("command", ["promote", "rollback", "follow", "audit", "serving"])
def test_every_command_has_help(command):
    result = run_cli(command, "--help")
    assert result.returncode == 0 and "Usage: python -m app" in result.stdout
