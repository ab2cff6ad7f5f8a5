"""A batch's first two steps, as the tasks run them: arrive in the lake, then get checked.

Each step writes its files first and its ledger entry last, so the ledger never says a step is
done before its data is whole; running a step again after a crash rewrites the same files.
"""

from __future__ import annotations

from collections import Counter

import pandas as pd

from app.data import generator
from app.data.lake import DataLake
from app.data.ledger import Ledger
from app.data.normalize import normalize, split_holdout

# Reasons listed per batch: a batch of garbage must not make a huge ledger entry.
MAX_REASONS = 50


def generate_batch(lake: DataLake, ledger: Ledger, batch_id: str, size: int) -> dict:
    """Draw ``size`` records for ``batch_id`` into the lake (once) and return its ledger entry."""
    batch = ledger.find(batch_id)
    if batch is None:
        number = ledger.claim_generated_number(batch_id)
        batch = ledger.open(batch_id, "generator", generated_number=number)
    if batch["status"] == "received" and not lake.exists("raw", batch_id):
        records = generator.generate(size, seed=generator.seed_for(batch_id), batch_id=batch_id)
        lake.write("raw", batch_id, records)
        batch = ledger.update(batch_id, rows=len(records))
    return batch


def receive_batch(lake: DataLake, ledger: Ledger, batch_id: str, records: pd.DataFrame,
                  source: str = "ingest", **fields) -> dict:
    """Put records that arrived from outside into the lake as batch ``batch_id``."""
    lake.write("raw", batch_id, records)
    ledger.open(batch_id, source, **fields)
    return ledger.update(batch_id, rows=len(records))


def reason_counts(quarantine: pd.DataFrame) -> dict[str, int]:
    """How many quarantined rows failed each check (a row may fail several)."""
    counts = Counter(reason for text in quarantine.get("reason", ()) for reason in text.split("; "))
    return dict(counts.most_common(MAX_REASONS))


def normalize_batch(lake: DataLake, ledger: Ledger, batch_id: str) -> dict:
    """Check a received batch: clean rows to train on and to hold out, the rest to quarantine."""
    batch = ledger.get(batch_id)
    if batch["status"] != "received":
        return batch
    result = normalize(lake.read("raw", batch_id), batch_id)
    train, holdout = split_holdout(result.clean, batch_id)
    if len(result.quarantine):
        lake.write("quarantine", batch_id, result.quarantine)
    lake.write("holdout", batch_id, holdout)
    lake.write("normalized", batch_id, train)
    reasons = reason_counts(result.quarantine)
    fields = {"rows": len(result.clean) + len(result.quarantine), "clean": len(result.clean),
              "quarantined": len(result.quarantine), "holdout": len(holdout), "reasons": reasons}
    if result.clean.empty:
        top = "; ".join(f"{reason} ({count})" for reason, count in list(reasons.items())[:3])
        return ledger.update(batch_id, status="empty", **fields,
                             failure=f"no row passed the checks: {top or 'the batch has no rows'}")
    return ledger.update(batch_id, status="normalized", **fields)
