"""Scenario 11: a pickle-serialised message pushed into the Redis queue by hand is refused.

Whoever can reach Redis can push a message; if the worker accepted pickle, unpickling its body
would run the sender's code. ``accept_content = ["json"]`` (celeryconfig.py) makes the worker
refuse it unread. Without that setting this test fails: the marker file appears.
"""

from __future__ import annotations

import base64
import json
import pickle
import uuid

import pytest
import redis
from celery.result import AsyncResult

from tests.support import wait_for


class WritesMarker:
    """Unpickling this creates ``path``: proof that code from the message ran."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def raw_task_message(task: str, body: bytes, content_type: str, queue: str) -> tuple[str, bytes]:
    """A task message as kombu's Redis transport stores it (Celery's protocol 2)."""
    task_id = str(uuid.uuid4())
    envelope = {
        "body": base64.b64encode(body).decode(),
        "content-encoding": "binary",
        "content-type": content_type,
        "headers": {"lang": "py", "task": task, "id": task_id, "root_id": task_id,
                    "parent_id": None, "group": None, "retries": 0, "eta": None,
                    "expires": None, "timelimit": [None, None], "argsrepr": "()",
                    "kwargsrepr": "{}", "origin": "by-hand", "ignore_result": False},
        "properties": {"correlation_id": task_id, "reply_to": "", "delivery_mode": 2,
                       "delivery_info": {"exchange": "", "routing_key": queue},
                       "priority": 0, "body_encoding": "base64",
                       "delivery_tag": str(uuid.uuid4())},
    }
    return task_id, json.dumps(envelope).encode()


@pytest.mark.parametrize("queue", ["celery", "train"])
def test_a_pickled_message_is_refused_and_runs_nothing(celery_worker, celery_app, redis_url,
                                                       tmp_path, queue):
    marker = tmp_path / "code-ran"
    broker = redis.Redis.from_url(redis_url)
    body = pickle.dumps(((WritesMarker(str(marker)),), {},
                         {"callbacks": None, "errbacks": None, "chain": None, "chord": None}))
    task_id, message = raw_task_message("pipeline.normalize", body,
                                        "application/x-python-serialize", queue)
    broker.lpush(queue, message)
    # The worker takes the message off the queue and drops it, unread.
    wait_for(lambda: broker.llen(queue) == 0 and broker.hlen("unacked") == 0, timeout=30,
             what="the worker to take the message")
    # The same message in JSON, sent after it, runs: the envelope is right and the worker
    # went on consuming. (It fails: there is no such batch. That it ran is what counts.)
    json_id, json_message = raw_task_message(
        "pipeline.normalize", json.dumps([["no-such-batch"], {}, {}]).encode(),
        "application/json", queue)
    broker.lpush(queue, json_message)
    wait_for(lambda: AsyncResult(json_id, app=celery_app).state == "FAILURE", timeout=60,
             what="the JSON message to run")
    assert not marker.exists(), "code from a pickled message ran"
    assert AsyncResult(task_id, app=celery_app).state == "PENDING", "the pickled task ran"


def test_the_worker_accepts_json_only(celery_app):
    """The setting the test above depends on, as the worker reads it."""
    assert list(celery_app.conf.accept_content) == ["json"]
    assert list(celery_app.conf.result_accept_content) == ["json"]
