"""Forgetting a batch: its statistics are subtracted from the lineage head, and the result is
published as a new version, exactly the model of every other batch. Its rows are deleted, its
statistics too, and the ledger, the forgotten index (:mod:`app.lifecycle.marks`) and the audit
say so."""

from __future__ import annotations

from loguru import logger

from app.data.ledger import now
from app.lifecycle import marks
from app.lifecycle.home import Home
from app.lifecycle.lineage import Lineage
from app.limits import reason_problem
from app.models.registry import LoadedModel, VersionTaken
from app.models.regressor import IncrementalRidge
from app.models.stats import SufficientStats


class ForgetError(ValueError):
    """A batch that cannot be forgotten (the message says why)."""


def forget(home: Home, lineage: Lineage, batch_id: str, *, reason: str, by: str) -> dict:
    """Remove ``batch_id`` from the model and the lake; returns its ledger entry.

    If the lineage's model learnt the batch, a new version is published without it, whose
    coefficients are those of a model trained on every other batch.
    """
    if problem := reason_problem(reason):
        raise ForgetError(f"a reason {problem}")
    batch = home.ledger.get(batch_id)
    if batch["status"] == "forgotten":
        return batch
    version = publish_without(home, lineage, batch) if batch["status"] == "trained" else None
    home.lake.delete(batch_id)
    home.ledger.delete_stats(batch_id)
    # Indexed before the ledger says "forgotten": a crash in between leaves the batch to
    # be forgotten again (a second index entry for it is harmless), never unmarked.
    mark = marks.forgetting(batch, version)
    home.ledger.forgotten.append(lambda _: mark)
    forgotten = {"at": now(), "reason": reason, "by": by, "version": version,
                 "learnt_by": batch.get("version")}
    entry = home.ledger.update(batch_id, status="forgotten", forgotten=forgotten)
    _audit(home, batch, mark, version, reason=reason, by=by)
    return entry


def publish_without(home: Home, lineage: Lineage, batch: dict) -> int | None:
    """The version published without ``batch``; None when the lineage no longer holds it."""
    batch_id, registry = batch["batch_id"], home.registry
    while True:
        newest = registry.latest_version() or 0
        head = lineage.head(newest)
        if head is None or not learnt(head, batch):
            return None
        remaining = head.model.stats_ - SufficientStats.from_npz(home.ledger.read_stats(batch_id))
        if not remaining.n:
            raise ForgetError(f"batch {batch_id} is all the model has learnt: a model "
                              "without it would have learnt nothing")
        model = IncrementalRidge(alpha=head.model.alpha).set_stats(remaining)
        try:
            info = registry.publish(
                model, newest + 1, batch_id=batch_id, forgot=batch_id,
                parent_version=head.version, window_start_seq=head.metadata.window_start_seq,
                metrics={"prequential": None},
                gate={"passed": True, "batch_hurt": False,
                      "reason": f"forgetting batch {batch_id}: a version without it is "
                                "served as soon as it exists"})
        except VersionTaken:
            continue
        home.notify("version", info.version)
        return info.version


def learnt(head: LoadedModel, batch: dict) -> bool:
    """Whether ``head``'s statistics include ``batch``."""
    window = head.metadata.window_start_seq
    return (batch.get("version") is not None and batch["version"] <= head.version
            and (window is None or batch["seq"] >= window))


def _audit(home: Home, batch: dict, mark: dict, version: int | None, *, reason: str,
           by: str) -> None:
    state = home.serving.state()
    note = ""
    if state.version is not None and marks.learnt_from(home.registry.metadata(state.version),
                                                       mark):
        note = (f"; the {state.mode} version {state.version} learnt from it and is still "
                "served: pin another or follow")
    home.audit.record("forget", reason=reason + note, by=by,
                      from_version=batch.get("version"), to_version=version,
                      batch_id=batch["batch_id"], served_version=state.version,
                      served_learnt_it=bool(note))
    logger.info("forgot batch {} ({}); version {} is the model without it", batch["batch_id"],
                reason, version)
