"""A batch's first two steps, as the tasks run them: arrive in the lake, then get checked.

Each step writes its files first and its ledger entry last, so the ledger never says a step is
done before its data is whole; running a step again after a crash rewrites the same files.
"""

from __future__ import annotations

from collections import Counter

import pandas as pd
import pyarrow as pa

from app.data import generator
from app.data.files import Chunk, numbers_from_text
from app.data.lake import DataLake
from app.data.ledger import Ledger
from app.dataset import BATCH_COLUMN, Dataset

# A Redis set of the normalized batches waiting for a train step (the tasks keep it; /status
# counts it).
PENDING_TRAIN = "pipeline:pending-train"
# Reasons listed per batch: a batch of garbage must not make a huge ledger entry.
MAX_REASONS = 50
# Malformed lines of a file shown on the batch they were met in, at most.
MAX_MALFORMED_SHOWN = 5
MALFORMED = "malformed line (not the header's number of fields)"


def generate_batch(lake: DataLake, ledger: Ledger, batch_id: str, size: int,
                   scenario: str = "none", drift_after: int = 100) -> dict:
    """Draw ``size`` records for ``batch_id`` into the lake (once) and return its ledger entry.

    Its salaries follow the ground truth of ``scenario`` at the batch's generated number.
    """
    batch = ledger.find(batch_id)
    if batch is None:
        number = ledger.claim_generated_number(batch_id)
        batch = ledger.open(batch_id, "generator", generated_number=number, scenario=scenario)
    if batch["status"] == "received" and not lake.exists("raw", batch_id):
        truth = generator.regime(scenario, batch["generated_number"], drift_after)
        records = generator.generate(size, seed=generator.seed_for(batch_id), batch_id=batch_id,
                                     regime=truth)
        lake.write("raw", batch_id, records)
        batch = ledger.update(batch_id, rows=len(records))
    return batch


def receive_batch(lake: DataLake, ledger: Ledger, batch_id: str,
                  records: pd.DataFrame | pa.Table, source: str = "ingest", **fields) -> dict:
    """Put records that arrived from outside into the lake as batch ``batch_id``."""
    return _arrive(lake, ledger, batch_id, lambda: lake.write("raw", batch_id, records),
                   source, rows=len(records), **fields)


def receive_records(lake: DataLake, ledger: Ledger, batch_id: str, records: list[dict],
                    source: str = "ingest", **fields) -> dict:
    """Records as a client sent them (dicts of JSON values) into the lake as ``batch_id``.

    Values are kept exactly as sent (see :meth:`DataLake.write_records`); the checks come later,
    in :func:`normalize_batch`, so a bad row is quarantined with its reason, never refused here.
    A ``geracao_id`` sent with a record is dropped: the record's batch is this one.
    """
    records = [{name: value for name, value in record.items() if name != BATCH_COLUMN}
               for record in records]
    return _arrive(lake, ledger, batch_id, lambda: lake.write_records("raw", batch_id, records),
                   source, rows=len(records), raw_format="json", **fields)


def receive_chunk(lake: DataLake, ledger: Ledger, batch_id: str, chunk: Chunk,
                  source: str = "ingest", **fields) -> dict:
    """A chunk of a file (:mod:`app.data.files`) into the lake as batch ``batch_id``, kept as
    it arrived: CSV as its text, JSON lines as their values, Parquet as typed."""
    if chunk.malformed:
        fields.update(malformed=len(chunk.malformed),
                      malformed_examples=chunk.malformed[:MAX_MALFORMED_SHOWN])
    if chunk.raw_format == "json":
        return receive_records(lake, ledger, batch_id, chunk.records, source, **fields)
    # A batch id a file carries names the batch it once was: the rows' batch is this one.
    table = chunk.table
    if BATCH_COLUMN in table.column_names:
        table = table.drop_columns([BATCH_COLUMN])
    return receive_batch(lake, ledger, batch_id, table, source, raw_format=chunk.raw_format,
                         **fields)


def _arrive(lake: DataLake, ledger: Ledger, batch_id: str, write_rows, source: str,
            **fields) -> dict:
    """Rows first, the ledger entry last: the batch exists once both are whole, or not at all.

    A failure in between removes what was written, so nothing half-arrived is left behind;
    rows left by a process killed in between belong to no ledger entry, so no step reads them.
    """
    try:
        write_rows()
        return ledger.open(batch_id, source, **fields)
    except BaseException:
        ledger.discard(batch_id)
        lake.delete(batch_id)
        raise


def discard_batch(lake: DataLake, ledger: Ledger, batch_id: str) -> None:
    """Undo an arrival whose next step could not be started: the batch is absent again."""
    ledger.discard(batch_id)
    lake.delete(batch_id)


def reason_counts(quarantine: pd.DataFrame) -> dict[str, int]:
    """How many quarantined rows failed each check (a row may fail several)."""
    counts = Counter(reason for text in quarantine.get("reason", ()) for reason in text.split("; "))
    return dict(counts.most_common(MAX_REASONS))


def read_raw(lake: DataLake, batch: dict, dataset: Dataset):
    """A batch's raw rows as they arrived: JSON values as sent, CSV text with its numbers read."""
    if batch.get("raw_format") == "json":
        return lake.read_records("raw", batch["batch_id"])
    raw = lake.read("raw", batch["batch_id"])
    return numbers_from_text(raw, dataset) if batch.get("raw_format") == "text" else raw


def normalize_batch(lake: DataLake, ledger: Ledger, batch_id: str, dataset: Dataset) -> dict:
    """Check a received batch: clean rows to train on and to hold out, the rest to quarantine."""
    # Imported here: pandera takes a fifth of a second to import, which `python -m app
    # ingest` (which only receives batches) would pay before its first row.
    from app.data.normalize import normalize, split_holdout

    batch = ledger.get(batch_id)
    if batch["status"] != "received":
        return batch
    # An ingested record may have no timestamp: it gets the time its batch arrived.
    result = normalize(read_raw(lake, batch, dataset), batch_id,
                       received_at=batch["created_at"], dataset=dataset)
    train, holdout = split_holdout(result.clean, dataset)
    if len(result.quarantine):
        lake.write("quarantine", batch_id, result.quarantine)
    lake.write("holdout", batch_id, holdout)
    lake.write("normalized", batch_id, train)
    reasons = reason_counts(result.quarantine)
    # Lines of a file that could not be read as records are counted as quarantined rows.
    malformed = batch.get("malformed") or 0
    if malformed:
        reasons = {MALFORMED: malformed, **reasons}
    fields = {"rows": len(result.clean) + len(result.quarantine) + malformed,
              "clean": len(result.clean), "quarantined": len(result.quarantine) + malformed,
              "holdout": len(holdout), "reasons": reasons,
              "unknown_fields": result.unknown_fields}
    if result.clean.empty:
        top = "; ".join(f"{reason} ({count})" for reason, count in list(reasons.items())[:3])
        return ledger.update(batch_id, status="empty", **fields,
                             failure=f"no row passed the checks: {top or 'the batch has no rows'}")
    return ledger.update(batch_id, status="normalized", **fields)
