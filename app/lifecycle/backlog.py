"""What a train step learns: the waiting batches it takes, their rows and their statistics.

The step's own batch comes first; the other waiting ids are taken along, and one the ledger
does not know (left by a run on another home, or by a run killed before its batch arrived) is
passed over and named, never a reason to fail the step. A batch a recent version already learnt
(a crash between publishing and recording it in the ledger, a message delivered twice, another
writer faster) is not learnt again: the ledger is repaired from that version's metadata.

At most ``MAX_BATCHES_PER_STEP`` batches and ``MAX_ROWS_PER_STEP`` rows are taken; the rest
waits for the next step. Each batch's statistics are kept in the ledger before any version
learns them: forgetting subtracts exactly these.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
from loguru import logger

from app.lifecycle.home import Home
from app.models.stats import Design, SufficientStats

MAX_BATCHES_PER_STEP = 100
MAX_ROWS_PER_STEP = 2_000_000
# A crash between publishing a version and recording it in the ledger is repaired from the
# metadata of the newest versions, this many.
REPAIR_LOOKBACK = 5


class NothingToLearn(ValueError):
    """No batch of the step has rows a version could learn (the message says why)."""


@dataclass
class Backlog:
    own: str  # the step's own batch
    frames: dict[str, pd.DataFrame] = field(default_factory=dict)  # by batch id, oldest first
    stats: dict[str, SufficientStats] = field(default_factory=dict)
    seqs: dict[str, int] = field(default_factory=dict)  # their numbers in the ledger
    unknown: list[str] = field(default_factory=list)  # waiting ids the ledger does not know
    checked: int = 0  # versions up to this one were looked at for batches already learnt

    @classmethod
    def take(cls, home: Home, design: Design, batch_ids: list[str]) -> Backlog:
        """The batches of ``batch_ids`` that wait for training, read (``own`` first)."""
        own, *others = dict.fromkeys(batch_ids)
        backlog = cls(own, checked=home.registry.latest_version() or 0)
        entries = [home.ledger.get(own)]
        for batch_id in others:
            entry = home.ledger.find(batch_id)
            if entry is None:
                backlog.unknown.append(batch_id)
            else:
                entries.append(entry)
        waiting = [batch for batch in entries if batch["status"] == "normalized"]
        waiting = repair(home, waiting, backlog.checked,
                         max(backlog.checked - REPAIR_LOOKBACK, 0))
        backlog._read(home, design, sorted(waiting, key=lambda batch: batch["seq"]))
        return backlog

    def _read(self, home: Home, design: Design, waiting: list[dict]) -> None:
        total = 0
        for batch in waiting[:MAX_BATCHES_PER_STEP]:
            if self.frames and total + (batch.get("clean") or 0) > MAX_ROWS_PER_STEP:
                break
            batch_id = batch["batch_id"]
            frame = home.lake.read("normalized", batch_id, columns=home.dataset.learnt_columns)
            self.frames[batch_id] = frame
            self.stats[batch_id] = SufficientStats.of(design, frame)
            total += len(frame)
        self.seqs = {batch["batch_id"]: batch["seq"] for batch in waiting}
        for batch_id, batch_stats in self.stats.items():
            home.ledger.write_stats(batch_id, batch_stats.to_npz())

    def learnt_since(self, home: Home, newest: int) -> bool:
        """Drop the batches versions published since the last look learnt (the same message
        delivered twice, or a claim lost to another writer); whether any is left."""
        if newest > self.checked:
            entries = [home.ledger.get(batch_id) for batch_id in self.frames]
            still = {batch["batch_id"] for batch in repair(home, entries, newest, self.checked)}
            self.checked = newest
            self.frames = {b: frame for b, frame in self.frames.items() if b in still}
            self.stats = {b: self.stats[b] for b in self.frames}
        return bool(self.frames)

    def rows(self) -> pd.DataFrame:
        """The rows to learn, oldest batch first; :class:`NothingToLearn` when there are none."""
        rows = pd.concat(self.frames.values(), ignore_index=True)
        if rows.empty:
            raise NothingToLearn(f"batches {', '.join(self.frames)} hold no row to learn")
        return rows

    def learnt_seqs(self) -> list[int]:
        return [self.seqs[batch_id] for batch_id in self.frames]


def repair(home: Home, waiting: list[dict], start: int, stop: int) -> list[dict]:
    """``waiting`` without the batches versions ``start`` down to ``stop`` (excluded) already
    learnt, each recorded in the ledger as that version's."""
    if not waiting:
        return waiting
    learnt = {}
    for info in home.registry.down(start, stop):
        for batch_id in info.batch_ids:
            learnt.setdefault(batch_id, info)
    left = []
    for batch in waiting:
        info = learnt.get(batch["batch_id"])
        if info is None:
            left.append(batch)
            continue
        home.ledger.update(batch["batch_id"], status=info.batch_status, version=info.version)
        logger.info("batch {} was already learnt by version {}: ledger repaired",
                    batch["batch_id"], info.version)
    return left
