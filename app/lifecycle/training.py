"""The train step: the batches waiting for training are learnt together, as one new version.

1. **Plan.** Score the *lineage head* (:mod:`app.lifecycle.lineage`) on the new rows before
   learning them: the prequential error, an honest online estimate. A pending drift suspect is
   judged by the same rows, which neither model has seen: if it predicts them better than the
   head, the change is real and the lineage continues from the suspect (the window since the
   change); if not, the suspect's batches were a one-off (a unit error, a broken export) and
   stay out of the model.
2. **Learn.** The candidate is the head's statistics plus the new batches', exactly the batch
   ridge solution. When the drift monitor sees the error rise (:mod:`app.lifecycle.adapting`)
   and the relation changed, the candidate is refit on the new batches alone, a *suspect*
   until the next step; when only the people moved, it learns on.
3. **Gate.** The promotion gate (:mod:`app.lifecycle.gate`) scores the candidate against the
   served version on recent held-out rows. The verdict is written into the version's metadata,
   which is what follow mode serves from.
4. **Publish** with optimistic concurrency: claim ``head + 1``; if another writer took it,
   re-read, merge again and claim the next. So workers on several hosts may train at once, and
   the result equals training the batches one after another.

Then the ledger, the audit and the log are told (:mod:`app.lifecycle.records`), and retention
runs (:mod:`app.lifecycle.retention`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import pandas as pd

from app.data.ledger import Ledger
from app.lifecycle import gate, records
from app.lifecycle.adapting import Monitors, why_the_error_rose
from app.lifecycle.backlog import Backlog, NothingToLearn
from app.lifecycle.holdout import HoldoutPool
from app.lifecycle.home import Home
from app.lifecycle.lineage import Lineage
from app.lifecycle.retention import Retention
from app.models.drift import DriftMonitor, chunk_errors
from app.models.metrics import regression_metrics
from app.models.registry import LoadedModel, VersionTaken
from app.models.regressor import IncrementalRidge
from app.models.shift import Movement, population_moved
from app.models.stats import SufficientStats
from app.models.versions import VersionInfo


@dataclass
class StepOutcome:
    version: int | None
    trained: bool
    batch_ids: list[str] = field(default_factory=list)
    n_rows: int = 0
    reason: str = ""
    metadata: VersionInfo | None = None
    seqs: list[int] = field(default_factory=list)  # the learnt batches' numbers in the ledger
    unknown: list[str] = field(default_factory=list)  # waiting ids the ledger does not know


@dataclass
class Candidate:
    """The version a step is making: what it builds on, its model, and its metadata so far."""

    head: LoadedModel | None
    prequential: dict | None  # the head's scores on the rows, before learning them
    fields: dict  # VersionInfo's fields
    model: IncrementalRidge | None = None
    monitor: DriftMonitor | None = None
    # How the batches' people differ from the history's (app.models.shift); empty: the same.
    moved: list[Movement] = field(default_factory=list)


class TrainStep:
    def __init__(self, home: Home, lineage: Lineage, holdout: HoldoutPool,
                 retention: Retention, tolerance: float = gate.TOLERANCE):
        self.home = home
        self.lineage = lineage
        self.holdout = holdout
        self.retention = retention
        self.tolerance = tolerance
        self.monitors = Monitors(home.registry)

    def train(self, batch_ids: list[str]) -> StepOutcome:
        """Learn the batches of ``batch_ids`` that wait (see :mod:`~app.lifecycle.backlog`)."""
        backlog = Backlog.take(self.home, self.lineage.design, batch_ids)
        if not backlog.frames:
            return replace(nothing_waiting(self.home.ledger, backlog.own), unknown=backlog.unknown)
        registry = self.home.registry
        while True:
            newest, first = registry.latest_version() or 0, next(iter(backlog.frames))
            if not backlog.learnt_since(self.home, newest):
                return nothing_waiting(self.home.ledger, first)
            rows = backlog.rows()
            candidate = self.plan(newest, rows)
            self.learn(candidate, backlog)
            self.judge(candidate)
            try:
                info = registry.publish(candidate.model, newest + 1, **candidate.fields)
                break
            except VersionTaken:
                continue  # the next turn re-reads what the winner learnt, and merges again
        self.home.notify("version", info.version)
        if info.lineage:
            self.monitors.keep(info.version, candidate.monitor)
        records.published(self.home, info)
        self.retention.after(info.version, backlog.learnt_seqs())
        return StepOutcome(info.version, trained=True, batch_ids=list(backlog.frames),
                           n_rows=len(rows), metadata=info, seqs=backlog.learnt_seqs(),
                           unknown=backlog.unknown)

    def plan(self, newest: int, rows: pd.DataFrame) -> Candidate:
        """What version ``newest + 1`` builds on: the head, or a suspect the rows confirm."""
        head = self.lineage.head(newest)
        target = self.home.dataset.target
        candidate = Candidate(head, score_prequential(head, rows, target), {
            "kind": "champion", "n_batch": len(rows), "drift": False,
            "population_shift": False, "suspect": False, "drift_confirmed": None})
        suspect = self.lineage.pending_suspect(newest, head)
        if suspect is not None:
            scores = score_prequential(suspect, rows, target)
            if scores["mae"] < candidate.prequential["mae"]:
                # The change the suspect saw goes on: the lineage continues from it.
                candidate.head, candidate.prequential = suspect, scores
                candidate.fields["drift_confirmed"] = suspect.version
            else:
                candidate.fields["suspect_rejected"] = suspect.version
        head = candidate.head
        candidate.fields.update(parent_version=head.version if head else None,
                                window_start_seq=head.metadata.window_start_seq if head else None)
        return candidate

    def learn(self, candidate: Candidate, backlog: Backlog) -> None:
        """The head's statistics plus the batches'; refit on the batches alone after drift."""
        design, head = self.lineage.design, candidate.head
        base = head.model.stats_ if head else SufficientStats.empty(design)
        added = sum(backlog.stats.values(), SufficientStats.empty(design))
        alpha = head.model.alpha if head else IncrementalRidge().alpha
        candidate.model = IncrementalRidge(alpha=alpha).set_stats(base + added)
        candidate.fields.update(batch_id=list(backlog.frames)[-1], batch_ids=list(backlog.frames))
        candidate.monitor = self.monitors.take(head)
        candidate.moved = population_moved(added, base)
        prequential = candidate.prequential
        if prequential is None or not candidate.monitor.update(prequential["chunk_mae"]):
            return
        held, why = why_the_error_rose(candidate.moved, added, candidate.model)
        if held:
            candidate.fields.update(population_shift=True, shift=why)
        else:
            first_seq = min(backlog.learnt_seqs())
            candidate.fields.update(drift=True, suspect=True, window_start_seq=first_seq,
                                    relation=why)
            candidate.model = IncrementalRidge(alpha=alpha).set_stats(added)
        # What a replay of the new window gives: its errors start with the next step.
        candidate.monitor = DriftMonitor()

    def judge(self, candidate: Candidate) -> None:
        """The gate's verdict, and whether later versions build on the candidate.

        When the batches bring people the history hardly saw (a file sorted by a column brings
        a new part of the population at each boundary), their own held-out rows join the pool:
        judged on the old part's rows alone, a model that learnt the new part looks worse, is
        refused, and the new part is never learnt. A batch of the same people with a broken
        target (a unit error) is judged on the recent rows alone, and refused.
        """
        batches = self.lineage.recent_batches(candidate.head)
        if candidate.moved:
            batches += candidate.fields["batch_ids"]
        pool = self.holdout.pool(batches)
        verdict = gate.judge(candidate.model, pool, self.home.dataset.target,
                             served=self.lineage.served(), parent=candidate.head,
                             tolerance=self.tolerance)
        fields = candidate.fields
        if fields["suspect"]:
            # A refit after drift is trusted only once the gate, or the next batch, agrees.
            lineage = verdict["passed"]
            fields["suspect"] = not lineage
        else:
            lineage = verdict["passed"] or not verdict["batch_hurt"]
        fields.update(lineage=lineage, gate=verdict, metrics={
            "prequential": candidate.prequential, "holdout": verdict.get("candidate")})


def nothing_waiting(ledger: Ledger, batch_id: str) -> StepOutcome:
    """The outcome for a batch no step needs to learn; :class:`NothingToLearn` if none can."""
    batch = ledger.get(batch_id)
    if batch["status"] in ("empty", "failed"):
        raise NothingToLearn(f"batch {batch_id} is {batch['status']}, so no version learnt "
                             f"it: {batch.get('failure')}")
    if batch["status"] == "forgotten":
        raise NothingToLearn(f"batch {batch_id} was forgotten: {batch['forgotten']['reason']}")
    if batch["status"] == "received":
        raise NothingToLearn(f"batch {batch_id} has not been normalized yet")
    return StepOutcome(batch.get("version"), trained=False,
                       reason=f"batch already {batch['status']}")


def score_prequential(head: LoadedModel | None, rows: pd.DataFrame, target: str) -> dict | None:
    """``head``'s scores on ``rows`` before learning them, with the drift monitor's observations."""
    if head is None:
        return None
    predicted = head.model.predict(rows)
    return {**regression_metrics(rows[target], predicted),
            "chunk_mae": chunk_errors(rows[target], predicted)}
