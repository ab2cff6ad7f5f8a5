"""A worker killed mid-task loses nothing and trains nothing twice (issue 7, scenarios 1 and 2)."""

from __future__ import annotations

import re

import pytest

from tests.faults.conftest import assert_trained_once
from tests.support import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]
INJECT = {"worker": "-I tests.faults.inject"}


def test_a_worker_killed_while_publishing_trains_its_batch_exactly_once(make_system):
    """SIGKILL to the whole worker between a version's artifact and its metadata: the partial
    version never exists, the batch is learnt once after the restart, and versions go on."""
    system = make_system(extra=INJECT, FAULT_STALL_PUBLISH="3", SERVICES="worker,beat")
    stalled = system.wait_for_line(r"fault: artifact (\S+) of batch (\S+) written; stalling",
                                   "worker", timeout=120)
    artifact, victim = stalled[1], stalled[2]
    system.kill("worker")
    system.wait_for_line(r"^restarted worker \(pid \d+\), restart 1$", timeout=30)
    ledger = system.home.ledger
    wait_for(lambda: ledger.get(victim)["status"] == "trained", timeout=120,
             what="the batch of the killed step to be trained")
    version = ledger.get(victim)["version"]
    wait_for(lambda: system.newest_version() >= version + 2, timeout=60, what="more versions")
    system.stop()

    learnt = assert_trained_once(system.home)
    assert learnt[victim] == version
    registry = system.home.registry
    assert artifact.rsplit("/", 1)[1] not in {meta.artifact for meta in registry.list()}
    for meta in registry.list():
        registry.load(meta.version)
    # What the killed step left is debris the sweep removes, never a version.
    assert system.home.storage.exists(artifact)
    system.home.sweep(older_than=0)
    assert not system.home.storage.exists(artifact)


def test_a_batch_that_kills_its_pool_process_is_retried_then_quarantined(make_system):
    """Only the pool child dies, each time it trains batch 3: the task is delivered again per
    the policy (3 deliveries), then batch 3 is failed with the reason, and later batches train
    while the worker itself stays up."""
    system = make_system(extra=INJECT, FAULT_KILL_TRAINING="3", SERVICES="worker,beat")
    ledger = system.home.ledger

    poisoned = system.wait_for_batch(3, "failed")
    assert "killed its worker process 2 times; quarantined after 3 deliveries" in poisoned["failure"]
    system.wait_for_batch(8, "trained", timeout=90)
    output = system.stop()

    assert "worker was killed" not in output  # the worker's main process never died
    kills = re.findall(r"fault: batch (\S+) kills its worker process", output)
    assert set(kills) == {poisoned["batch_id"]}
    assert re.search(r"pipeline.train delivered again \(2 of 3\)", output)
    assert re.search(rf"batch {poisoned['batch_id']} failed: pipeline.train killed its worker", output)
    # No endless loop: once quarantined, nothing takes it along and dies again.
    lines = output.splitlines()
    failed_at = next(i for i, line in enumerate(lines) if "failed: pipeline.train killed" in line)
    assert not any("fault: batch" in line for line in lines[failed_at:])
    learnt = assert_trained_once(system.home)
    assert poisoned["batch_id"] not in learnt
    assert all(b["status"] == "trained" for b in ledger.newest_first()
               if 3 < (b.get("generated_number") or 0) <= 8)
