"""One step of incremental training: the newest model learns one normalised batch."""

from __future__ import annotations

from dataclasses import dataclass

from loguru import logger

from app.data.lake import DataLake
from app.models.metrics import regression_metrics
from app.models.registry import ModelRegistry, VersionNotFound
from app.models.regressor import SalaryRegressor


@dataclass(frozen=True)
class TrainOutcome:
    version: int | None
    trained: bool
    n_batch: int
    reason: str = ""


def train_batch(lake: DataLake, registry: ModelRegistry, batch_id: str) -> TrainOutcome:
    """Train the newest version on ``batch_id`` and save the result as a new version.

    Idempotent: a batch that already trained a version returns that version again. Callers
    must hold the train lock, so the version read here is still the newest when saving.
    """
    already = registry.version_for_batch(batch_id)
    if already is not None:
        return TrainOutcome(already, trained=False, n_batch=0, reason="batch already trained")

    batch = lake.read("normalized", batch_id)
    try:
        parent = registry.load()
    except VersionNotFound:
        parent = None
    if batch.empty:
        return TrainOutcome(parent.version if parent else None, trained=False, n_batch=0,
                            reason="batch has no valid rows")

    model = parent.model if parent else SalaryRegressor()
    metrics = {
        # Scoring the old model on data it has not seen yet is the honest online estimate.
        "prequential": (regression_metrics(batch["salario"], model.predict(batch))
                        if parent else None),
    }
    model.partial_fit(batch, batch["salario"])
    metrics["batch_after_update"] = regression_metrics(batch["salario"], model.predict(batch))
    metadata = registry.save(model, batch_id=batch_id, n_batch=len(batch), metrics=metrics,
                             parent_version=parent.version if parent else None)
    logger.info("trained version {} on {} rows ({} seen in all)", metadata["version"],
                len(batch), metadata["n_samples_seen"])
    return TrainOutcome(metadata["version"], trained=True, n_batch=len(batch))
