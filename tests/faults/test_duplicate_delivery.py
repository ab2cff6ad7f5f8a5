"""Scenario 3: the same train message delivered twice, or to two workers at once: one update.

Redis redelivers an unacknowledged message (``acks_late``, a worker lost, the visibility
timeout), so a train step must be idempotent by batch id. Two guards make it so, and each test
here fails without one of them: a step learns only batches the ledger still calls
``normalized``, and a step that loses the race for a version number re-reads which batches the
winner learnt (:func:`app.lifecycle.backlog.repair`) instead of learning them again on top.
"""

from __future__ import annotations

import threading
import uuid

import redis

from app.data.batches import normalize_batch, receive_batch
from app.data.generator import generate
from app.lifecycle.learning import Learner
from app.tasks.pipeline import train
from tests.support import wait_for


def arrive(home, batch_id: str, n: int = 300, seed: int = 1) -> int:
    """A batch received and normalized; how many rows a version will learn from it."""
    receive_batch(home.lake, home.ledger, batch_id, generate(n, seed=seed, batch_id=batch_id))
    normalize_batch(home.lake, home.ledger, batch_id, home.dataset)
    return len(home.lake.read("normalized", batch_id))


def versions_that_learnt(home, batch_id: str) -> list[int]:
    return [m.version for m in home.registry.newest_first() if batch_id in m.batch_ids]


def test_two_workers_training_one_batch_at_once_make_one_update(local_home):
    """Two hosts (two Learners, no lock between them) race on the same batch."""
    home = local_home
    base_rows = arrive(home, "base", seed=2)
    Learner(home).train(["base"])
    rows = arrive(home, "twice", seed=3)
    start = threading.Barrier(2)
    outcomes, errors = [], []

    def step():
        learner = Learner(home)  # a process of its own: nothing cached is shared
        start.wait()
        try:
            outcomes.append(learner.train(["twice"]))
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=step) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert sorted(o.trained for o in outcomes) == [False, True]
    assert versions_that_learnt(home, "twice") == [2]
    assert home.registry.latest_version() == 2
    assert home.registry.load(2).model.n_samples_seen_ == base_rows + rows
    assert home.ledger.get("twice")["status"] == "trained" and home.ledger.get("twice")["version"] == 2


def test_a_train_message_delivered_again_later_changes_nothing(local_home):
    home = local_home
    rows = arrive(home, "once")
    first = Learner(home).train(["once"])
    again = Learner(home).train(["once"])
    assert (first.trained, again.trained, again.version) == (True, False, first.version)
    assert home.registry.latest_version() == first.version
    assert home.registry.load().model.n_samples_seen_ == rows


def test_the_same_message_twice_on_the_broker_is_one_update(session_home, celery_worker,
                                                           redis_url):
    """The same task id queued twice, taken at once by the worker's two threads."""
    broker = redis.Redis.from_url(redis_url)
    rows = arrive(session_home, batch_id := f"dup-{uuid.uuid4().hex[:8]}", seed=5)
    task_id = str(uuid.uuid4())
    results = [train.apply_async(args=[batch_id], task_id=task_id) for _ in range(2)]
    version = results[0].get(timeout=60)
    # Both deliveries are done once the queue is empty and nothing is left unacknowledged.
    wait_for(lambda: broker.llen("train") == 0 and broker.hlen("unacked") == 0,
             timeout=60, what="both deliveries to finish")
    assert versions_that_learnt(session_home, batch_id) == [version]
    metadata = session_home.registry.metadata(version)
    parent = metadata.parent_version
    before = session_home.registry.metadata(parent).n_samples_seen if parent else 0
    assert metadata.batch_ids == [batch_id]
    assert metadata.n_samples_seen == before + rows
