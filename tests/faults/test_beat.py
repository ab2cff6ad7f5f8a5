"""Two beats by mistake (or one per host) send each schedule slot once (issue 7 scenario 5,
issue 13 item 2), and when the one holding the lock dies the other takes over."""

from __future__ import annotations

import re
import time
from datetime import datetime

import pytest

from tests.support import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]
PERIOD = 1.0  # GENERATE_EVERY in the fault suite
SEND = re.compile(r"^(\S+ \S+) \|.*Sending due task generate-batch")


def sends(*systems) -> list[float]:
    """When any of ``systems``' beats sent a generation, in order (epoch seconds)."""
    times = []
    for system in systems:
        for line in system.lines("beat"):
            if match := SEND.match(line):
                times.append(datetime.strptime(match[1], "%Y-%m-%d %H:%M:%S.%f").timestamp())
    return sorted(times)


def assert_one_send_per_slot(times: list[float]) -> None:
    """No more sends than slots, and none close to another: two unlocked beats would send
    about twice as often, half of them a fraction of a period after the other's."""
    assert len(times) <= (times[-1] - times[0]) / PERIOD + 1, times
    assert min(later - earlier for earlier, later in zip(times, times[1:])) > PERIOD / 2, times


def holds_lock(system) -> bool:
    return any("beat: Acquired lock" in line for line in system.lines("beat"))


def test_two_beats_send_each_slot_once_and_the_survivor_takes_over(make_system):
    from celeryconfig import beat_max_loop_interval, redbeat_lock_timeout

    first = make_system(SERVICES="worker,beat")
    second = make_system(SERVICES="beat")  # another host's share
    for system in (first, second):
        system.wait_for_line(r"beat: Starting", "beat", timeout=90)
    wait_for(lambda: len(sends(first, second)) >= 10, timeout=60, what="ten generations")
    assert_one_send_per_slot(sends(first, second))
    [holder] = [system for system in (first, second) if holds_lock(system)]

    holder.kill("beat")
    killed_at = time.time()
    seen = len(sends(first, second))
    wait_for(lambda: len(sends(first, second)) >= seen + 5,
             timeout=2 * (redbeat_lock_timeout + beat_max_loop_interval) + 30,
             what="generations after the holder died")
    times = sends(first, second)
    resumed = next(t for t in times if t > killed_at)
    print(f"takeover: the first generation after the holder died came {resumed - killed_at:.1f} s "
          f"later (lock timeout {redbeat_lock_timeout} s, retried every "
          f"{beat_max_loop_interval} s)")
    assert_one_send_per_slot(times)
    # Taken over within the lock's timeout plus one retry (the machine may be slow: twice that).
    assert resumed - killed_at < 2 * (redbeat_lock_timeout + beat_max_loop_interval)
    # Each send made one batch: the ledger holds no twin of a slot.
    generated = [b for b in first.home.ledger.newest_first() if b["source"] == "generator"]
    assert len(generated) <= len(times)
