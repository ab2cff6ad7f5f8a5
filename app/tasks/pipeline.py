"""The pipeline's tasks: generate → normalize → train, evaluate and forget on demand."""

from __future__ import annotations

from celery import chain, shared_task
from loguru import logger

from app.data import generator
from app.data.batches import generate_batch, normalize_batch
from app.data.lake import check_batch_id
from app.models.evaluation import MAX_N, evaluate as evaluate_model, save_report
from app.observe.metrics import Tally, count_normalized, count_trained
from app.tasks.base import PipelineTask

MAX_BATCH_SIZE = 1_000_000
# Normalized batches waiting for training; a train step takes all of them at once.
PENDING = "pipeline:pending-train"


def whole_number(name: str, value, low: int, high: int) -> int:
    """``value`` when it is an int (not a bool) in [low, high]; a readable ValueError otherwise."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be a whole number, got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low:,} and {high:,}, got {value:,}")
    return value


def text(name: str, value) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty text, got {value!r}")
    return value


@shared_task(bind=True, base=PipelineTask, name="pipeline.generate")
def generate(self, batch_size: int | None = None) -> str:
    """Write a batch of new records to the lake, then send it on to normalize and train."""
    size = whole_number("batch_size", self.settings.batch_size if batch_size is None
                        else batch_size, 1, MAX_BATCH_SIZE)
    # The task id names the batch: a redelivered message finds its batch already written.
    batch_id = self.request.id or generator.new_batch_id()
    with logger.contextualize(batch_id=batch_id):
        batch = generate_batch(self.home.lake, self.home.ledger, batch_id, size)
        logger.info("generated {} records (batch {} of this home)", batch["rows"],
                    batch["generated_number"])
        chain(normalize.si(batch_id), train.si(batch_id)).apply_async()
    return batch_id


@shared_task(bind=True, base=PipelineTask, name="pipeline.normalize")
def normalize(self, batch_id: str) -> str:
    """Check a raw batch; clean rows go to ``normalized``, rejected ones to ``quarantine``."""
    check_batch_id(batch_id)
    with logger.contextualize(batch_id=batch_id):
        batch = normalize_batch(self.home.lake, self.home.ledger, batch_id)
        count_normalized(Tally(self.redis, self.home.url), batch)
        if batch["status"] == "normalized":
            self.redis.sadd(PENDING, batch_id)
        logger.info("normalized: {} clean, {} quarantined, status {}", batch["clean"],
                    batch["quarantined"], batch["status"])
    return batch_id


@shared_task(bind=True, base=PipelineTask, name="pipeline.train")
def train(self, batch_id: str) -> int:
    """Teach the model this batch, and every other one waiting; return the version that learnt it."""
    check_batch_id(batch_id)
    with logger.contextualize(batch_id=batch_id), self.train_lock():
        waiting = sorted(member.decode() for member in self.redis.smembers(PENDING))
        outcome = self.learner.train([batch_id, *[b for b in waiting if b != batch_id]])
        if outcome.batch_ids:
            self.redis.srem(PENDING, *outcome.batch_ids)
        if outcome.trained:
            count_trained(Tally(self.redis, self.home.url), outcome.metadata)
        else:
            self.redis.srem(PENDING, batch_id)
            logger.info("not trained ({}): version {}", outcome.reason, outcome.version)
    return outcome.version


@shared_task(bind=True, base=PipelineTask, name="pipeline.forget")
def forget(self, batch_id: str, reason: str, by: str = "operator") -> dict:
    """Remove a batch from the model (a new version without it) and its rows from the lake."""
    check_batch_id(batch_id)
    text("reason", reason)
    with logger.contextualize(batch_id=batch_id), self.train_lock():
        entry = self.learner.forget(batch_id, reason=reason, by=by)
    return {"batch_id": batch_id, "version": entry["forgotten"]["version"],
            "status": entry["status"]}


@shared_task(bind=True, base=PipelineTask, name="pipeline.evaluate")
def evaluate(self, version: int | None = None, n: int = 5000) -> dict:
    """Score a model version (the served one by default) on ``n`` fresh records."""
    if version is not None:
        whole_number("version", version, 1, 2**31)
    whole_number("n", n, 2, MAX_N)
    home = self.home
    if version is None:
        version = home.serving.state().version or home.registry.latest_version()
    loaded = home.registry.load(version)
    result = evaluate_model(loaded, n)
    key = save_report(home.storage, result)
    logger.info("evaluated version {}: R² {:.4f}, report {}", loaded.version, result["r2"], key)
    return result
