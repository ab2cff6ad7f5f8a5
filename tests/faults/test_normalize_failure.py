"""Scenario 6: normalize fails on a batch: the chain stops, no version is made, the batch is
marked ``failed`` with the reason in the ledger, and later batches go on.

The raw file of the batch is damaged on disk, so normalize raises (an error that is not
retried). Without ``fails_its_batch`` on the normalize task (its ``on_failure`` hook in
app/tasks/base.py) the batch stays ``received`` with no reason, and this test fails.
"""

from __future__ import annotations

import uuid

from celery import chain

from app.data.batches import receive_batch
from app.data.generator import generate
from app.tasks.pipeline import generate as generate_task, normalize, train
from tests.support import wait_for


def test_a_batch_whose_normalize_fails_is_marked_failed_and_the_next_trains(
        session_home, celery_worker):
    home = session_home
    batch_id = f"broken-{uuid.uuid4().hex[:8]}"
    receive_batch(home.lake, home.ledger, batch_id, generate(100, seed=1, batch_id=batch_id))
    home.storage.write_bytes(home.lake.key("raw", batch_id), b"PAR1 no longer a parquet file")
    newest = home.registry.latest_version()

    # As generate sends it: normalize, then train.
    trained = chain(normalize.si(batch_id), train.si(batch_id)).apply_async()
    normalized = trained.parent
    wait_for(lambda: normalized.state == "FAILURE", timeout=60, what="normalize to fail")

    batch = wait_for(lambda: (b := home.ledger.get(batch_id))["status"] == "failed" and b,
                     timeout=30, what="the batch to be marked failed")
    assert batch["failure"].startswith("pipeline.normalize failed: ")
    assert "parquet" in batch["failure"].lower() or "arrow" in batch["failure"].lower(), batch
    assert batch["version"] is None
    # The chain stopped: Celery marks train failed with normalize's own error, unrun, and
    # no version learnt the batch.
    wait_for(lambda: trained.state == "FAILURE", timeout=30, what="the chain to be closed")
    assert type(trained.result).__name__ == type(normalized.result).__name__ == "ArrowInvalid"
    learnt = [m.version for m in home.registry.newest_first() if batch_id in m.batch_ids]
    assert learnt == []
    assert home.registry.latest_version() == newest

    # Later batches still run through the whole chain.
    later = generate_task.delay(batch_size=150).get(timeout=60)
    version = wait_for(lambda: home.ledger.get(later)["version"], timeout=60,
                       what="the next batch to be trained")
    assert later in home.registry.metadata(version).batch_ids
    assert home.ledger.get(batch_id)["status"] == "failed"
