"""The answers a real web server keeps: none lost when it is stopped, at most the last second's
when one of its processes is killed outright."""

import json
import os
import signal
import time
import urllib.request

import pytest

from app.data import predictions
from app.lifecycle.home import Home
from tests.support import wait_for
from tests.web.conftest import PROBE, save

pytestmark = pytest.mark.slow


def predict(url: str) -> tuple[list[str], float]:
    request = urllib.request.Request(url + "/predict", data=json.dumps(PROBE).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read())["prediction_ids"], time.time()


def found(home: Home, ids: list[str]) -> set[str]:
    return set(predictions.find(home.storage, ids)["id"])


@pytest.fixture
def kept_home(tmp_path, monkeypatch, first_model):
    monkeypatch.setenv("LOG_PREDICTIONS", "1")
    home = Home(str(tmp_path / "home"))
    save(home.registry, first_model)
    return home


def test_a_server_stopped_loses_no_kept_answer(kept_home, gunicorn):
    with gunicorn(kept_home.url) as url:
        ids = [i for _ in range(200) for i in predict(url)[0]]
    # On the way out each process wrote what it kept since its last second.
    assert found(kept_home, ids) == set(ids)


def test_a_process_killed_outright_loses_at_most_its_last_second(kept_home, gunicorn):
    with gunicorn(kept_home.url) as url:
        victim = json.loads(urllib.request.urlopen(url + "/health", timeout=10).read())["pid"]
        answered = []
        deadline = time.time() + 3
        while time.time() < deadline:
            answered.append(predict(url))
        killed_at = time.time()
        os.kill(victim, signal.SIGKILL)
        after = [predict(url) for _ in range(20)]  # the survivor and the new process answer
        wait_for(lambda: found(kept_home, [i for ids, _ in after for i in ids]) ==
                 {i for ids, _ in after for i in ids}, timeout=10, what="later answers kept")
    older = [i for ids, at in answered if at < killed_at - predictions.FLUSH_EVERY - 0.5
             for i in ids]
    assert older and found(kept_home, older) == set(older)
