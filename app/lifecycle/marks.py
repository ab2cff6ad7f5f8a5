"""Which versions learnt from a batch that was later forgotten.

Forgetting a batch publishes a version without it, but the versions that learnt it stay in the
registry, listed: an operator may have one pinned, and the audit names them. They are marked
instead: ``/models`` gives each version the forgotten batches it learnt from.

Each forgetting is one entry of the ledger's ``forgotten`` journal: the batch, its place in
arrival order (``seq``), the version that first learnt it (``learnt_by``), its status then, and
the version made without it. A version learnt from a forgotten batch when it is

- the version that learnt it, if the gate refused that version (later ones left the batch out);
- else any champion from ``learnt_by`` up to (not including) the version made without it whose
  drift window started at or before the batch: a refit after drift starts afresh and has not
  learnt it. This is the rule :func:`~app.lifecycle.forgetting.forget` applies to find
  whether the lineage still holds the batch.
"""

from __future__ import annotations

import threading

from app.data.ledger import Ledger
from app.models.versions import VersionInfo


def forgetting(batch: dict, version: int | None) -> dict:
    """The ``forgotten`` journal's entry for ``batch`` (its ledger entry before forgetting)."""
    return {"batch_id": batch["batch_id"], "seq": batch["seq"], "status": batch["status"],
            "learnt_by": batch.get("version"), "version": version}


def learnt_from(info: VersionInfo, entry: dict) -> bool:
    """Whether version ``info`` learnt the forgotten batch of ``entry``."""
    version, first = info.version, entry.get("learnt_by")
    if first is None or version < first or not info.is_champion:
        return False
    if entry["status"] == "refused":
        return version == first
    if entry["status"] != "trained" or (entry["version"] is not None and version >= entry["version"]):
        return False
    window = info.window_start_seq
    return window is None or window <= entry["seq"]


class ForgottenBatches:
    """The ledger's forgotten batches, read once each and kept (a web process holds one)."""

    def __init__(self, ledger: Ledger):
        self.journal = ledger.forgotten
        self._lock = threading.Lock()
        self._read = 0
        self._entries: dict[str, dict] = {}

    def entries(self) -> list[dict]:
        """Every forgetting so far: one read of the journal's head, plus the new entries."""
        with self._lock:
            head = self.journal.head()
            for number in range(self._read + 1, head + 1):
                entry = self.journal.get(number)
                self._entries[entry["batch_id"]] = entry
            self._read = max(self._read, head)
            return list(self._entries.values())

    def learnt_by(self, info: VersionInfo, entries: list[dict] | None = None) -> list[str]:
        """The forgotten batches version ``info`` learnt from, oldest first."""
        entries = self.entries() if entries is None else entries
        return [entry["batch_id"] for entry in sorted(entries, key=lambda entry: entry["seq"])
                if learnt_from(info, entry)]
