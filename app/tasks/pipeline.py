"""The pipeline's tasks: generate → normalize → train, and evaluate on demand."""

from __future__ import annotations

from celery import chain, shared_task
from loguru import logger
from redis.exceptions import LockNotOwnedError

from app.data import generator
from app.data.lake import check_batch_id
from app.data.normalize import normalize as normalize_frame
from app.models.evaluation import MAX_N, evaluate as evaluate_model, save_report
from app.models.training import train_batch
from app.tasks.base import PipelineTask

MAX_BATCH_SIZE = 1_000_000
TRAIN_LOCK = "pipeline:train-lock"
# Far longer than training a batch takes; should a holder die, the lock frees itself.
TRAIN_LOCK_TIMEOUT = 300


def whole_number(name: str, value, low: int, high: int) -> int:
    """``value`` when it is an int (not a bool) in [low, high]; a readable ValueError otherwise."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be a whole number, got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low:,} and {high:,}, got {value:,}")
    return value


@shared_task(bind=True, base=PipelineTask, name="pipeline.generate")
def generate(self, batch_size: int | None = None) -> str:
    """Write a batch of new records to the lake, then send it on to normalize and train."""
    size = whole_number("batch_size", self.settings.batch_size if batch_size is None
                        else batch_size, 1, MAX_BATCH_SIZE)
    # The task id names the batch: a redelivered message finds its batch already written.
    batch_id = self.request.id or generator.new_batch_id()
    with logger.contextualize(batch_id=batch_id):
        if not self.lake.exists("raw", batch_id):
            records = generator.generate(size, seed=generator.seed_for(batch_id),
                                         batch_id=batch_id)
            self.lake.write("raw", batch_id, records)
            logger.info("generated {} records", size)
        chain(normalize.si(batch_id), train.si(batch_id)).apply_async()
    return batch_id


@shared_task(bind=True, base=PipelineTask, name="pipeline.normalize")
def normalize(self, batch_id: str) -> str:
    """Check a raw batch; clean rows go to ``normalized``, rejected ones to ``quarantine``."""
    check_batch_id(batch_id)
    with logger.contextualize(batch_id=batch_id):
        if self.lake.exists("normalized", batch_id):
            logger.info("already normalized")
            return batch_id
        result = normalize_frame(self.lake.read("raw", batch_id), batch_id)
        if len(result.quarantine):
            self.lake.write("quarantine", batch_id, result.quarantine)
        # Written last: its existence says the whole step is done.
        self.lake.write("normalized", batch_id, result.clean)
        logger.info("normalized: {clean} clean, {quarantined} quarantined", **result.counts)
    return batch_id


@shared_task(bind=True, base=PipelineTask, name="pipeline.train")
def train(self, batch_id: str) -> int:
    """Teach the newest model one normalised batch; return the version that learnt it."""
    check_batch_id(batch_id)
    with logger.contextualize(batch_id=batch_id):
        lock = self.redis.lock(TRAIN_LOCK, timeout=TRAIN_LOCK_TIMEOUT, blocking_timeout=30)
        if not lock.acquire():
            logger.warning("train lock busy for 30 s; retrying")
            raise self.retry(countdown=1, max_retries=None)
        try:
            outcome = train_batch(self.lake, self.registry, batch_id)
        finally:
            try:
                lock.release()
            except LockNotOwnedError:
                # The lock timed out mid-training and may be another's now. The version was
                # still created exclusively, so nothing was overwritten; say so and go on.
                logger.warning("train lock expired before release ({} s)", TRAIN_LOCK_TIMEOUT)
        if outcome.version is None:
            raise ValueError(f"batch {batch_id} has no valid rows and no model exists yet")
        if not outcome.trained:
            logger.info("not trained ({}): version {}", outcome.reason, outcome.version)
    return outcome.version


@shared_task(bind=True, base=PipelineTask, name="pipeline.evaluate")
def evaluate(self, version: int | None = None, n: int = 5000) -> dict:
    """Score a model version (the newest by default) on ``n`` fresh records."""
    if version is not None:
        whole_number("version", version, 1, 2**31)
    whole_number("n", n, 2, MAX_N)
    loaded = self.registry.load(version)
    result = evaluate_model(loaded, n)
    path = save_report(self.settings.reports_dir, result)
    logger.info("evaluated version {}: R² {:.4f}, report {}", loaded.version, result["r2"], path)
    return result
