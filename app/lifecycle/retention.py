"""Retention: after each publication, one old version's artifact and one old batch's rows go.

Never a listing: the version ``keep_versions`` below the one just published loses its artifact
(its metadata stays, listed), unless it is protected (the newest, the served, the pinned, the
lineage head); the batch ``keep_batches`` before each batch just learnt loses its lake rows once
it is done with (its statistics stay in the ledger, for forgetting and rebuilding).
"""

from __future__ import annotations

from app.data.ledger import UnknownBatch
from app.lifecycle.home import Home
from app.lifecycle.lineage import Lineage

# A batch in one of these has no further use for its rows.
DONE = ("trained", "refused", "empty", "failed")


class Retention:
    def __init__(self, home: Home, lineage: Lineage, keep_versions: int = 50,
                 keep_batches: int = 1000):
        self.home = home
        self.lineage = lineage
        self.keep_versions = keep_versions
        self.keep_batches = keep_batches

    def protected_versions(self, newest: int) -> set[int]:
        """Versions whose artifacts retention never removes."""
        serving = self.home.serving
        head = self.lineage.head(newest)
        protected = {newest, serving.state().version, serving.pinned_version(),
                     head.version if head else None}
        return {version for version in protected if version}

    def after(self, newest: int, seqs: list[int]) -> None:
        """Run after version ``newest`` learnt the batches numbered ``seqs``."""
        old = newest - self.keep_versions
        if old >= 1 and old not in self.protected_versions(newest):
            self.home.registry.prune_artifact(old)
        for seq in seqs:
            self._drop_rows(seq - self.keep_batches)

    def _drop_rows(self, seq: int) -> None:
        """Delete the lake rows of batch number ``seq`` once it is done with (stats stay)."""
        if seq < 1:
            return
        try:
            batch_id = self.home.ledger.order.get(seq)["batch_id"]
            batch = self.home.ledger.get(batch_id)
        except (FileNotFoundError, UnknownBatch):
            return
        if batch["seq"] == seq and batch["status"] in DONE:
            self.home.lake.delete(batch_id)
