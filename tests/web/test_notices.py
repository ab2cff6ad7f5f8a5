"""Pushed notices: web processes switch on a Redis notice, not at their next poll."""

import os
import time

import pytest

from app.lifecycle.home import Home
from app.notices import Notifier
from tests.support import wait_for, wait_for_listeners

PROBE = {"idade": 35, "cidade": "São Paulo", "cargo": "Professor"}
# Far longer than any wait below: a switch within it can only come from a notice.
NO_POLLING = 60.0


@pytest.fixture
def announcing(registry, redis_url):
    """A Home over the app's storage that announces what it publishes, as the worker's does."""
    return Home(registry.storage, notify=Notifier(redis_url, registry.storage.url))


def publish(home, model, batch_id):
    version = (home.registry.latest_version() or 0) + 1
    home.registry.publish(model, version, batch_id=batch_id, batch_ids=[batch_id], n_batch=1)
    home.notify("version", version)
    return version


def test_a_published_version_is_loaded_on_its_notice_before_any_request(
        make_app, announcing, first_model, second_model):
    app = make_app(MODEL_NOTICES=True, MODEL_CHECK_INTERVAL=NO_POLLING)
    holder = app.extensions["model_holder"]
    first = publish(announcing, first_model, "b1")
    client = app.test_client()
    assert client.post("/predict", json=PROBE).get_json()["model_version"] == first
    wait_for(lambda: holder._listener.subscribed.is_set(), timeout=10, what="the subscription")
    started = time.monotonic()
    second = publish(announcing, second_model, "b2")
    # Loaded by the listener thread: no request has to come and look.
    wait_for(lambda: holder._served.version == second, timeout=5, interval=0.002,
             what="the notice to load the new version")
    print(f"switched {1000 * (time.monotonic() - started):.0f} ms after publishing")
    assert client.post("/predict", json=PROBE).get_json()["model_version"] == second


def test_a_notice_of_a_version_the_gate_refused_changes_nothing(
        make_app, announcing, first_model, second_model):
    """The notice names a version; that version's own metadata decides whether it is served."""
    app = make_app(MODEL_NOTICES=True, MODEL_CHECK_INTERVAL=NO_POLLING)
    holder = app.extensions["model_holder"]
    first = publish(announcing, first_model, "b1")
    app.test_client().post("/predict", json=PROBE)
    wait_for(lambda: holder._listener.subscribed.is_set(), timeout=10, what="the subscription")
    handled = []
    listener = holder._listener
    listener.on_notice = lambda notice, handle=listener.on_notice: (handle(notice),
                                                                     handled.append(notice))
    refused = first + 1
    announcing.registry.publish(second_model, refused, batch_id="b2", batch_ids=["b2"], n_batch=1,
                                gate={"passed": False, "reason": "worse than served"})
    announcing.notify("version", refused)
    wait_for(lambda: handled, timeout=10, interval=0.01, what="the notice to be handled")
    assert holder._served.version == first
    third = publish(announcing, first_model, "b3")
    wait_for(lambda: holder._served.version == third, timeout=5, what="the next version")
    assert refused not in holder.refused  # not broken: only not promoted
    assert app.test_client().post("/predict", json=PROBE).get_json()["model_version"] == third


def test_a_pin_is_announced_and_followed_at_once(make_app, announcing, first_model, second_model):
    app = make_app(MODEL_NOTICES=True, MODEL_CHECK_INTERVAL=NO_POLLING)
    holder = app.extensions["model_holder"]
    first = publish(announcing, first_model, "b1")
    app.test_client().post("/predict", json=PROBE)
    wait_for(lambda: holder._listener.subscribed.is_set(), timeout=10, what="the subscription")
    second = publish(announcing, second_model, "b2")
    wait_for(lambda: holder._served.version == second, timeout=5, what="the new version")
    announcing.serving.pin(first, reason="incident", by="test")
    wait_for(lambda: holder._served.version == first, timeout=5, interval=0.002,
             what="the pin's notice")


def test_under_gunicorn_every_worker_switches_on_the_notice(gunicorn, announcing, first_model,
                                                            second_model, monkeypatch):
    import json
    import urllib.request

    monkeypatch.setenv("FLASK_MODEL_CHECK_INTERVAL", str(NO_POLLING))
    first = publish(announcing, first_model, "b1")

    def served_by_worker(url, seen):
        """/health names the worker (pid) and its model: one request, one worker."""
        with urllib.request.urlopen(f"{url}/health", timeout=5) as answer:
            health = json.load(answer)
        seen[health["pid"]] = health["model_version"]
        return seen

    with gunicorn(announcing.storage.url) as url:
        seen = {}
        wait_for(lambda: len(served_by_worker(url, seen)) == 2, what="both workers to answer")
        assert set(seen.values()) == {first}
        wait_for_listeners(os.environ["REDIS_URL"], announcing.storage.url, 2)
        second = publish(announcing, second_model, "b2")
        wait_for(lambda: set(served_by_worker(url, seen).values()) == {second}, timeout=5,
                 interval=0.01, what="every worker to serve the new version")
