"""A train step past its time limit fails, publishes nothing and cleans up (issue 7 scenario 7)."""

from __future__ import annotations

import json
import re

import pytest

from app.tasks.base import PENDING, TRAIN_LOCK
from tests.faults.conftest import assert_trained_once

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]
SOFT, HARD = 5, 30


def test_training_past_its_soft_time_limit_fails_the_batch_and_publishes_nothing(
        make_system, redis_server):
    system = make_system(
        extra={"worker": "-I tests.faults.inject"}, FAULT_TRAIN_TIME_LIMITS=f"{SOFT},{HARD}",
        FAULT_SLOW_TRAINING="3", SERVICES="worker,beat")

    slow = system.wait_for_batch(3, "failed")
    assert slow["failure"] == "training passed its soft time limit; nothing was published"
    failed = system.wait_for_line(
        r"Task pipeline.train\[(\S+)\] raised unexpected: SoftTimeLimitExceeded", "worker")
    # Clean-up: the lock is free at once (the next step does not wait for it to expire), the
    # batch left the pending set, and later batches train.
    client = redis_server.client()
    assert client.get(TRAIN_LOCK) != failed[1].encode()
    assert not client.sismember(PENDING, slow["batch_id"])
    system.wait_for_batch(6, "trained", timeout=90)
    result = json.loads(client.get(f"celery-task-meta-{failed[1]}"))
    output = system.stop()

    assert result["status"] == "FAILURE"
    assert result["result"]["exc_type"] == "SoftTimeLimitExceeded"
    assert "train lock was busy" not in output
    # Nothing published: no version learnt it, and every version that exists is whole.
    learnt = assert_trained_once(system.home)
    assert slow["batch_id"] not in learnt
    registry = system.home.registry
    for meta in registry.list():
        registry.load(meta.version)
    # A step that took the slow batch along was retried with its own batch alone, and passed.
    for retried in re.findall(r"Task pipeline.train\[(\S+)\] retry: Retry in 0s: "
                              r"SoftTimeLimitExceeded", output):
        assert json.loads(client.get(f"celery-task-meta-{retried}"))["status"] in (
            "SUCCESS", "FAILURE")
