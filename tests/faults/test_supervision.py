"""`make run` repairs itself: each of its processes, SIGKILLed, is restarted and works again.

The repair times are printed (the issue asks for 10 s; on a loaded machine a worker's imports
alone can take longer), not asserted: the house rule is no absolute times in tests.
"""

from __future__ import annotations

import time
import urllib.request

import pytest

from tests.support import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]
# Generous: the machine may be busy; the figure that matters is printed.
REPAIR_WITHIN = 60.0


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


def test_each_process_killed_under_make_run_is_restarted_and_versions_keep_coming(make_system):
    system = make_system()
    system.ready()
    wait_for(lambda: system.newest_version() >= 1, timeout=60, what="a first version")
    up = {
        "worker": lambda after: system.wait_for_line(r"celery@\S+ ready", "worker",
                                                     timeout=REPAIR_WITHIN, after=after),
        "beat": lambda after: system.wait_for_line(r"beat: Starting", "beat",
                                                   timeout=REPAIR_WITHIN, after=after),
        "web": lambda after: wait_for(lambda: answers(f"{system.web_url}/health"),
                                      timeout=REPAIR_WITHIN, what="web answering"),
        "flower": lambda after: wait_for(lambda: answers(f"{system.flower_url}/healthcheck"),
                                         timeout=REPAIR_WITHIN, what="flower answering"),
    }
    repairs = {}
    for name, is_up in up.items():
        seen = len(system.lines(name))
        before = system.newest_version()
        killed = system.kill(name)
        started = time.monotonic()
        # The back-off is 0.5 s, longer when the process dies soon after its start (a first
        # version may come before that on an idle machine).
        system.wait_for_line(rf"^{name} was killed by SIGKILL after [\d.]+ s; restarting it "
                             rf"in [\d.]+ s \(restart 1\)$", timeout=REPAIR_WITHIN)
        system.wait_for_line(rf"^restarted {name} \(pid \d+\), restart 1$",
                             timeout=REPAIR_WITHIN)
        assert system.pid(name) != killed
        is_up(seen)
        repairs[name] = time.monotonic() - started
        # The pipeline goes on: a new version after each repair.
        wait_for(lambda: system.newest_version() > before, timeout=30,
                 what=f"a new version after {name} was repaired")
    print("repair times (s):", {name: round(took, 1) for name, took in repairs.items()})
    print("\n".join(line for line in system.lines("runner") if "restart" in line))
    output = system.stop()
    assert "SIGINT received; stopping everything" in output
    assert output.splitlines()[-1] == "runner | all processes stopped"
