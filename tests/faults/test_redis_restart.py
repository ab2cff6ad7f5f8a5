"""Redis killed and started again on its port with its data gone (issue 7 scenario 4): every
process comes back without a hand on it, versions resume, and the batches whose messages died
with Redis are recovered, never left hanging or marked done without a version."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from datetime import datetime

import pytest

from app.data.ledger import FINAL
from tests.faults.conftest import assert_trained_once
from tests.support import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
# The issue asks for 60 s; the figure is printed, and the wait is longer for a loaded machine.
RECONNECT_WAIT = 120


def get(url: str):
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            body = response.read()
            return response.status, json.loads(body) if body.startswith(b"{") else body
    except urllib.error.HTTPError as error:
        return error.code, None
    except OSError as error:
        return None, error


def test_every_process_reconnects_and_lost_chains_are_redone(make_system, redis_server):
    # A step stalls for a few seconds, so batches queue behind it: their messages die with Redis.
    system = make_system(extra={"worker": "-I tests.faults.inject"}, FAULT_STALL_PUBLISH="3",
                         FAULT_STALL_SECONDS="6")
    system.ready()
    system.wait_for_line(r"fault: artifact \S+ of batch \S+ written; stalling", "worker",
                         timeout=120)
    time.sleep(4)
    redis_server.kill()
    ledger = system.home.ledger
    in_flight = {b["batch_id"]: b["status"] for b in ledger.newest_first()
                 if b["status"] not in FINAL}
    assert "normalized" in in_flight.values(), in_flight
    time.sleep(2)
    redis_server.start()  # same port, empty
    restarted = time.time()
    before = system.newest_version()

    # Versions resume, learnt from batches generated after the restart.
    def resumed():
        newest = system.home.registry.newest_first()
        meta = next(newest, None)
        return meta if meta and meta.version > before and any(
            datetime.fromisoformat(ledger.get(b)["created_at"]).timestamp() > restarted
            for b in meta.batch_ids) else None

    first = wait_for(resumed, timeout=RECONNECT_WAIT, what="a version of a new batch")
    took = datetime.fromisoformat(first.created_at).timestamp() - restarted
    # The web app serves it (pushed or polled), and Flower answers.
    wait_for(lambda: (get(f"{system.web_url}/health")[1] or {}).get("model_version", 0)
             >= first.version, timeout=RECONNECT_WAIT, what="the web app to serve it")
    served = time.time() - restarted
    wait_for(lambda: get(f"{system.flower_url}/healthcheck")[0] == 200, timeout=30,
             what=f"Flower: {get(f'{system.flower_url}/healthcheck')}")
    # The batches caught in flight are redone (or failed with a reason), never left behind.
    wait_for(lambda: all(ledger.get(b)["status"] in FINAL for b in in_flight),
             timeout=RECONNECT_WAIT, what=f"the batches in flight at the crash: {in_flight}")
    output = system.stop()

    print(f"after Redis came back: a new batch's version in {took:.1f} s, served in "
          f"{served:.1f} s; in flight at the crash: {in_flight}")
    learnt = assert_trained_once(system.home)
    for batch_id in in_flight:
        batch = ledger.get(batch_id)
        assert batch["status"] == "trained" and learnt[batch_id] == batch["version"] or (
            batch["status"] == "failed" and batch["failure"]), batch
    assert "sent on again" in output
