"""The batch ledger: what became of every batch, from arrival to the version that learnt it.

One document per batch at ``ledger/batches/<batch_id>.json``, rewritten atomically as the
batch moves on; its ``seq`` is its place in arrival order, claimed in the journal
``ledger/order`` (so listing newest first reads by number and never lists a folder). Generated
batches also claim a number in ``ledger/generated``: the generator's drift scenarios count from
it; each forgotten batch claims one in ``ledger/forgotten``. Each batch's sufficient
statistics (written by training) sit beside it as ``ledger/stats/<batch_id>.npz``, plain
arrays: forgetting a batch subtracts them.

A batch's ``status`` is one of:

- ``received``: its raw rows are in the lake;
- ``normalized``: checked; clean rows wait for training;
- ``trained``: a version learnt it (``version``);
- ``refused``: its version was refused by the promotion gate, and later versions do not learn it;
- ``empty``: no row passed the checks, so no version learnt it (``failure`` says why);
- ``failed``: a step failed for good (``failure`` says why);
- ``forgotten``: removed from the model and its rows deleted (``forgotten`` says when and why).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

from app.data.lake import check_batch_id
from app.journal import Journal
from app.storage import Storage

STATUSES = ("received", "normalized", "trained", "refused", "empty", "failed", "forgotten")
# Done for good: recovery leaves these alone.
FINAL = frozenset({"trained", "refused", "empty", "failed", "forgotten"})
# Where a batch came from: the scheduled generator, /ingest or the CLI, the inbox folder, or
# labels that came back for answers given (/feedback).
SOURCES = ("generator", "ingest", "inbox", "feedback")
# Recovery looks this far back: older batches that never finished were reported long ago.
STALLED_SCAN = 200
# Counted in Ledger.totals(): rows that arrived, rows kept, rows quarantined.
COUNTED = ("rows", "clean", "quarantined")
# A claim in the order journal whose batch document is not there yet is waited for this long
# (the arrival may be under way); after that it was an arrival undone, and is passed over.
CLAIM_GRACE = 300.0


TOTALS_KEY = "ledger/totals.json"


class UnknownBatch(LookupError):
    """The ledger has no batch with this id."""


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class Ledger:
    def __init__(self, storage: Storage):
        self.storage = storage
        self.order = Journal(storage, "ledger/order")
        self.generated = Journal(storage, "ledger/generated")
        # One entry per forgetting, so readers find every forgotten batch without a listing.
        self.forgotten = Journal(storage, "ledger/forgotten")

    @staticmethod
    def key(batch_id: str) -> str:
        return f"ledger/batches/{check_batch_id(batch_id)}.json"

    @staticmethod
    def stats_key(batch_id: str) -> str:
        return f"ledger/stats/{check_batch_id(batch_id)}.npz"

    # -- reading ----------------------------------------------------------------------------

    def get(self, batch_id: str) -> dict:
        try:
            return self.storage.read_json(self.key(batch_id))
        except FileNotFoundError:
            raise UnknownBatch(f"batch {batch_id} is not in the ledger") from None

    def find(self, batch_id: str) -> dict | None:
        try:
            return self.get(batch_id)
        except UnknownBatch:
            return None

    def newest_first(self, before: int | None = None) -> Iterator[dict]:
        """Batches from the newest (or from seq ``before - 1``) back to the first."""
        for seq, entry in self.order.newest_first(before):
            batch = self.find(entry["batch_id"])
            # A claim whose batch was created by a faster twin (a message delivered twice)
            # points at a batch with another seq: that batch is listed at its own place.
            if batch is not None and batch["seq"] == seq:
                yield batch

    def count(self) -> int:
        """How many batches arrived (claims of a twin included: an upper bound, read in O(1))."""
        return self.order.head()

    def totals(self) -> dict:
        """``{"batches", "rows", "clean", "quarantined", "last_batch_at"}`` over every batch.

        Read incrementally: ``ledger/totals.json`` holds the sums of the batches whose counts
        are settled (normalized or beyond) up to a ``seq``, and the numbers of those that were
        not yet; a call reads only those and the batches that arrived since, and moves the
        checkpoint on. Each checkpoint is a function of the ledger alone, so two processes
        writing theirs at once cannot count a batch twice (the older one only costs a re-read).
        """
        try:
            saved = self.storage.read_json(TOTALS_KEY)
        except FileNotFoundError:
            saved = {"upto": 0, "open": {}, "sums": dict.fromkeys(("batches", *COUNTED), 0),
                     "last_batch_at": None}
        sums, last_at = dict(saved["sums"]), saved["last_batch_at"]
        head = self.order.head()
        still_open: dict[str, float] = {}
        live = dict.fromkeys(("batches", *COUNTED), 0)
        candidates = {**saved["open"], **{str(seq): time.time()
                                          for seq in range(saved["upto"] + 1, head + 1)}}
        for key, first_seen in candidates.items():
            seq = int(key)
            try:
                batch = self.find(self.order.get(seq)["batch_id"])
            except FileNotFoundError:
                batch = None
            if batch is None or batch["seq"] != seq:
                if batch is None and time.time() - first_seen < CLAIM_GRACE:
                    still_open[key] = first_seen
                continue
            last_at = max(last_at or batch["created_at"], batch["created_at"])
            if batch["status"] == "received":
                still_open[key] = first_seen
                target = live
            else:
                target = sums
            target["batches"] += 1
            for name in COUNTED:
                target[name] += batch.get(name) or 0
        checkpoint = {"upto": max(head, saved["upto"]), "open": still_open, "sums": sums,
                      "last_batch_at": last_at}
        if checkpoint != saved:
            self.storage.write_json(TOTALS_KEY, checkpoint)
        return {**{name: sums[name] + live[name] for name in sums}, "last_batch_at": last_at}

    def read_stats(self, batch_id: str) -> bytes:
        return self.storage.read_bytes(self.stats_key(batch_id))

    # -- writing ----------------------------------------------------------------------------

    def open(self, batch_id: str, source: str, **fields) -> dict:
        """The batch's document, created with a new ``seq`` if it is not in the ledger yet.

        Safe to call twice (a redelivered message): the second call returns the first's batch.
        """
        if source not in SOURCES:
            raise ValueError(f"source must be one of {', '.join(SOURCES)}, got {source!r}")
        existing = self.find(batch_id)
        if existing is not None:
            return existing
        seq, _ = self.order.append(lambda _: {"batch_id": batch_id})
        batch = {
            "batch_id": batch_id, "seq": seq, "source": source, "created_at": now(),
            "updated_at": now(), "status": "received", "rows": None, "clean": None,
            "quarantined": None, "holdout": None, "reasons": {}, "unknown_fields": [],
            "version": None, "failure": None, "forgotten": None, **fields,
        }
        try:
            self.storage.create_json(self.key(batch_id), batch)
        except FileExistsError:
            return self.get(batch_id)
        return batch

    def claim_generated_number(self, batch_id: str) -> int:
        """The next generated batch's number, counted from 1 in this storage."""
        number, _ = self.generated.append(lambda _: {"batch_id": batch_id})
        return number

    def generated_count(self) -> int:
        """How many batches the generator has numbered in this storage (the newest's number)."""
        return self.generated.head()

    def update(self, batch_id: str, **fields) -> dict:
        """Set ``fields`` on the batch and write it back whole."""
        if "status" in fields and fields["status"] not in STATUSES:
            raise ValueError(f"unknown status {fields['status']!r}")
        batch = self.get(batch_id)
        batch.update(fields, updated_at=now())
        self.storage.write_json(self.key(batch_id), batch)
        return batch

    def discard(self, batch_id: str) -> None:
        """Remove a batch that never completed its arrival (its order claim stays, unused)."""
        self.storage.delete(self.key(batch_id))

    def write_stats(self, batch_id: str, data: bytes) -> None:
        self.storage.write_bytes(self.stats_key(batch_id), data)

    def delete_stats(self, batch_id: str) -> None:
        self.storage.delete(self.stats_key(batch_id))


def stalled(ledger: Ledger, older_than: float, scan: int = STALLED_SCAN) -> list[dict]:
    """Batches among the ``scan`` newest that are not done and have not moved for
    ``older_than`` seconds, doubled for each time they were recovered already (``recoveries``):
    their chain was lost. Oldest first."""
    now_ = datetime.now(timezone.utc)
    found = []
    for number, batch in enumerate(ledger.newest_first()):
        if number >= scan:
            break
        wait = timedelta(seconds=older_than * 2 ** batch.get("recoveries", 0))
        if batch["status"] not in FINAL and datetime.fromisoformat(batch["updated_at"]) < now_ - wait:
            found.append(batch)
    return found[::-1]
