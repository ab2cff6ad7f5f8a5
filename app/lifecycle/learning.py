"""The learner of a home: how versions are made from batches, and unmade.

One :class:`Learner` per worker process, holding what it caches. Its parts each do one thing:

- :mod:`app.lifecycle.lineage`: the versions later versions build on, loaded or rebuilt from
  the ledger, and their recent batches;
- :mod:`app.lifecycle.backlog`: which waiting batches a step takes, read, with their statistics;
- :mod:`app.lifecycle.training`: the train step, plan, learn, gate, publish;
- :mod:`app.lifecycle.adapting`: the drift monitor and what a rise of the error means;
- :mod:`app.lifecycle.holdout`: the gate's held-out rows;
- :mod:`app.lifecycle.records`: what a published step writes to the ledger, audit and log;
- :mod:`app.lifecycle.retention`: which artifacts and rows go after each publication;
- :mod:`app.lifecycle.forgetting`: a version without a batch.
"""

from __future__ import annotations

from loguru import logger

from app.lifecycle import gate
from app.lifecycle.backlog import NothingToLearn
from app.lifecycle.forgetting import ForgetError, forget
from app.lifecycle.holdout import HoldoutPool
from app.lifecycle.home import Home
from app.lifecycle.lineage import Lineage
from app.lifecycle.retention import Retention
from app.lifecycle.training import StepOutcome, TrainStep
from app.models.stats import Design

__all__ = ["ForgetError", "Learner", "NothingToLearn", "StepOutcome"]


class Learner:
    """Train and forget steps over one :class:`Home`, with what a worker process caches."""

    def __init__(self, home: Home, keep_versions: int = 50, keep_batches: int = 1000,
                 tolerance: float = gate.TOLERANCE):
        self.home = home
        self.design = Design.of(home.dataset)
        self.lineage = Lineage(home, self.design)
        self.holdout = HoldoutPool(home)
        self.retention = Retention(home, self.lineage, keep_versions, keep_batches)
        self.step = TrainStep(home, self.lineage, self.holdout, self.retention, tolerance)

    @property
    def keep_versions(self) -> int:
        return self.retention.keep_versions

    def train(self, batch_ids: list[str]) -> StepOutcome:
        """Learn every batch of ``batch_ids`` that waits for it, as one new version.

        The first is the step's own batch: :class:`~app.data.ledger.UnknownBatch` if the ledger
        has no such batch. The others are taken along; one the ledger does not know is passed
        over and named in the outcome's ``unknown``, never a reason to fail the step.
        """
        outcome = self.step.train(batch_ids)
        if outcome.unknown:
            logger.warning("passed over {} waiting batch id(s) the ledger does not know (left by "
                           "another pipeline home, or by a run killed before they arrived): {}",
                           len(outcome.unknown), ", ".join(outcome.unknown))
        return outcome

    def forget(self, batch_id: str, *, reason: str, by: str) -> dict:
        """Remove ``batch_id`` from the model and the lake (see :mod:`app.lifecycle.forgetting`);
        returns its ledger entry."""
        return forget(self.home, self.lineage, batch_id, reason=reason, by=by)
