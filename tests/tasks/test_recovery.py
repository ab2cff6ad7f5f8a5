"""The delivery policy and the recovery of lost chains, on a real Redis and worker."""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest
import redis

from app.data.batches import receive_batch
from app.data.generator import generate
from app.data.ledger import Ledger, stalled
from app.tasks.base import DELIVERIES, MAX_DELIVERIES, PENDING, TRAIN_LOCK
from app.tasks.pipeline import generate as generate_task, normalize, recover, train
from tests.support import wait_for

pytestmark = pytest.mark.usefixtures("celery_worker")
LONG_AGO = timedelta(days=1)


def received(home, rows: int = 80) -> str:
    batch_id = f"recovery-{uuid.uuid4().hex[:12]}"
    receive_batch(home.lake, home.ledger, batch_id, generate(rows, seed=3, batch_id=batch_id))
    return batch_id


def backdate(ledger: Ledger, batch_id: str, by: timedelta = LONG_AGO, **fields) -> None:
    """As if the batch had not moved for ``by``: its chain was lost."""
    batch = ledger.get(batch_id)
    when = datetime.now(timezone.utc) - by
    batch.update(fields, updated_at=when.isoformat(timespec="milliseconds"))
    ledger.storage.write_json(ledger.key(batch_id), batch)


def test_stalled_lists_unfinished_batches_that_did_not_move_waiting_longer_after_each_try(home):
    ledger = home.ledger
    for name in ("fresh", "old", "old-done", "retried-once", "retried-twice"):
        ledger.open(name, "ingest")
    backdate(ledger, "old", timedelta(seconds=100))
    backdate(ledger, "old-done", timedelta(seconds=100), status="trained")
    backdate(ledger, "retried-once", timedelta(seconds=100), recoveries=1)  # waits 2 x 30 s
    backdate(ledger, "retried-twice", timedelta(seconds=100), recoveries=2)  # waits 4 x 30 s
    assert [batch["batch_id"] for batch in stalled(ledger, 30)] == ["old", "retried-once"]


def test_recover_sends_a_lost_batch_on_to_be_trained_once(session_home, redis_url):
    ledger = session_home.ledger
    normalized = received(session_home)
    normalize.delay(normalized).get(timeout=30)
    # Its train message and its place in the pending set died with Redis.
    redis.Redis.from_url(redis_url).srem(PENDING, normalized)
    backdate(ledger, normalized)
    raw_only = received(session_home)
    backdate(ledger, raw_only)

    resent = recover.delay(stalled_after=3600).get(timeout=30)
    assert {normalized, raw_only} <= set(resent)
    for batch_id in (normalized, raw_only):
        wait_for(lambda: ledger.get(batch_id)["status"] == "trained", what=f"{batch_id} trained")
        assert ledger.get(batch_id)["recoveries"] == 1
        assert batch_id in session_home.registry.metadata(ledger.get(batch_id)["version"]).batch_ids


def test_a_batch_lost_too_often_is_failed_with_the_reason(session_home):
    ledger = session_home.ledger
    batch_id = received(session_home)
    backdate(ledger, batch_id, LONG_AGO * 100, recoveries=5)
    assert batch_id not in recover.delay(stalled_after=3600).get(timeout=30)
    batch = ledger.get(batch_id)
    assert batch["status"] == "failed"
    assert batch["failure"] == "its chain was lost 5 times (last in status received)"


def test_a_task_that_killed_its_process_twice_is_not_run_a_third_time(session_home, redis_url):
    """Two starts that never returned are counted in Redis; the third quarantines the batch."""
    batch_id = received(session_home)
    normalize.delay(batch_id).get(timeout=30)
    task_id = str(uuid.uuid4())
    client = redis.Redis.from_url(redis_url)
    client.set(DELIVERIES + task_id, MAX_DELIVERIES - 1)
    result = train.apply_async((batch_id,), task_id=task_id)
    with pytest.raises(Exception, match="killed its worker process 2 times"):
        result.get(timeout=30)
    batch = session_home.ledger.get(batch_id)
    assert batch["status"] == "failed" and "quarantined after 3 deliveries" in batch["failure"]
    assert not client.sismember(PENDING, batch_id) and not client.exists(DELIVERIES + task_id)


def test_a_task_delivered_again_takes_over_the_train_lock_it_held(session_home, redis_url):
    """Its process died holding the lock: no wait for the lock to expire."""
    batch_id = received(session_home)
    normalize.delay(batch_id).get(timeout=30)
    task_id = str(uuid.uuid4())
    client = redis.Redis.from_url(redis_url)
    client.set(TRAIN_LOCK, task_id, ex=600)
    client.set(DELIVERIES + task_id, 1)
    version = train.apply_async((batch_id,), task_id=task_id).get(timeout=20)
    assert session_home.ledger.get(batch_id)["version"] == version
    assert not client.exists(TRAIN_LOCK)


def test_the_train_lock_is_renewed_while_its_step_runs_and_kept_short(redis_url, monkeypatch):
    """A step longer than the lock's timeout keeps it; a dead holder's lock goes within it."""
    from app.tasks import base

    monkeypatch.setattr(base, "LOCK_TIMEOUT", 1)
    client = redis.Redis.from_url(redis_url)
    with train.train_lock():
        time.sleep(2.5)
        assert client.exists(TRAIN_LOCK)
        assert 0 < client.pttl(TRAIN_LOCK) <= 1000
    assert not client.exists(TRAIN_LOCK)


def test_a_waiting_id_the_ledger_does_not_know_is_passed_over_not_a_wedge(session_home,
                                                                           redis_url):
    """A run killed outright, then started again on a new home with the same Redis, left an id
    in the waiting set: each train step took it along and failed (0 versions, forever). Now it
    is passed over with a warning, dropped from the set, and the batches train."""
    client = redis.Redis.from_url(redis_url)
    client.sadd(PENDING, "left-by-another-home")
    batch_id = generate_task.delay(batch_size=150).get(timeout=30)
    wait_for(lambda: session_home.ledger.get(batch_id)["status"] == "trained", timeout=60,
             what="the batch trained despite the stale id")
    assert not client.sismember(PENDING, "left-by-another-home")
