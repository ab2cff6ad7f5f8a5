"""The pipeline's tasks: generate (or the inbox) → normalize → train, evaluate and forget on
demand."""

from __future__ import annotations

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from loguru import logger

from app.data import generator
from app.data import inbox as inbox_files
from app.data import predictions
from app.data.batches import generate_batch, normalize_batch
from app.data.lake import check_batch_id
from app.data.ledger import stalled
from app.lifecycle.challenge import contest, due as challenge_due
from app.lifecycle.learning import Learner, NothingToLearn
from app.limits import EVALUATE_N, EVALUATE_N_MAX, EVALUATE_N_MIN, MAX_VERSION, whole_number
from app.limits import reason as checked_reason
from app.observe.metrics import Tally, count_normalized, count_trained
from app.observe.report import evaluate_and_report
from app.queueing import check_and_learn
from app.settings import MAX_BATCH_SIZE
from app.tasks.base import INBOX_LOCK, PENDING, PipelineTask

# A batch whose status has not moved for this long lost its chain (a Redis that lost its data,
# a worker killed while the broker keeps its message until the visibility timeout): recovery
# sends it on again, then again after twice as long, and so on. Every step is idempotent by
# batch id, so a batch that was only slow (a backlog) is still done once. One still stuck
# after MAX_RECOVERIES tries (about 15 minutes) is failed with the reason, never left hanging.
STALLED_AFTER = 30.0
MAX_RECOVERIES = 5


@shared_task(bind=True, base=PipelineTask, name="pipeline.generate")
def generate(self, batch_size: int | None = None) -> str:
    """Write a batch of new records to the lake, then send it on to normalize and train."""
    dataset = self.home.dataset
    if not dataset.generated:
        raise ValueError(f"the generator makes the built-in dataset's records, not those of "
                         f"{dataset.name} ({dataset.source}): send them to /ingest or the inbox")
    size = whole_number(self.settings.batch_size if batch_size is None else batch_size, 1,
                        MAX_BATCH_SIZE, "batch_size")
    # The task id names the batch: a redelivered message finds its batch already written.
    batch_id = self.request.id or generator.new_batch_id()
    with logger.contextualize(batch_id=batch_id):
        batch = generate_batch(self.home.lake, self.home.ledger, batch_id, size,
                               self.settings.drift, self.settings.drift_after)
        logger.info("generated {} records (batch {} of this home, DRIFT={})", batch["rows"],
                    batch["generated_number"], self.settings.drift)
        check_and_learn(self.app, batch_id)
    return batch_id


@shared_task(bind=True, base=PipelineTask, name="pipeline.normalize", fails_its_batch=True)
def normalize(self, batch_id: str) -> str:
    """Check a raw batch; clean rows go to ``normalized``, rejected ones to ``quarantine``."""
    check_batch_id(batch_id)
    with logger.contextualize(batch_id=batch_id):
        batch = normalize_batch(self.home.lake, self.home.ledger, batch_id, self.home.dataset)
        count_normalized(Tally(self.redis, self.home.url), batch)
        if batch["status"] == "normalized":
            self.redis.sadd(PENDING, batch_id)
        logger.info("normalized: {} clean, {} quarantined, status {}", batch["clean"],
                    batch["quarantined"], batch["status"])
    return batch_id


# A batch with no row to learn fails its train task with the reason, as Celery's expected
# errors do: logged without a traceback, not as an error of the system.
@shared_task(bind=True, base=PipelineTask, name="pipeline.train", throws=(NothingToLearn,))
def train(self, batch_id: str) -> int:
    """Teach the model this batch, and every other one waiting; return the version that learnt it."""
    check_batch_id(batch_id)
    with logger.contextualize(batch_id=batch_id), self.train_lock():
        # A step that killed its process, or passed its time limit, may have done so because
        # of a batch it took along: delivered again or retried, a step learns its batch alone,
        # so only the culprit's own task keeps failing, and the others go through.
        alone = getattr(self.request, "deliveries", 1) > 1 or self.request.retries > 0
        waiting = [] if alone else sorted(
            member.decode() for member in self.redis.smembers(PENDING))
        batch_ids = [batch_id, *[b for b in waiting if b != batch_id]]
        try:
            outcome = self.learner.train(batch_ids)
        except SoftTimeLimitExceeded as error:
            # Nothing was published: a version exists only once its metadata does.
            if len(batch_ids) > 1:
                raise self.retry(exc=error, countdown=0) from None
            # Left pending, the batch would make every later step that takes it along fail.
            self.fail_batch(batch_id, "training passed its soft time limit; nothing was published")
            raise
        if outcome.batch_ids or outcome.unknown:
            self.redis.srem(PENDING, *outcome.batch_ids, *outcome.unknown)
        if outcome.trained:
            count_trained(Tally(self.redis, self.home.url), outcome.metadata)
            if challenge_due(outcome.seqs):
                challenge.delay()
        else:
            self.redis.srem(PENDING, batch_id)
            logger.info("not trained ({}): version {}", outcome.reason, outcome.version)
    return outcome.version


@shared_task(bind=True, base=PipelineTask, name="pipeline.recover")
def recover(self, stalled_after: float = STALLED_AFTER) -> list[str]:
    """Send on again the batches whose chain was lost; return their ids.

    Beat runs this every few seconds. A batch still ``received`` goes to normalize (or, when
    its raw rows were never written, to generate under its own id, which rewrites the same
    rows); a ``normalized`` one goes back to the pending set and to train.
    """
    ledger = self.home.ledger
    resent = []
    for batch in stalled(ledger, stalled_after):
        batch_id, recoveries = batch["batch_id"], batch.get("recoveries", 0) + 1
        with logger.contextualize(batch_id=batch_id):
            if recoveries > MAX_RECOVERIES:
                self.fail_batch(batch_id, f"its chain was lost {MAX_RECOVERIES} times "
                                          f"(last in status {batch['status']})")
                continue
            ledger.update(batch_id, recoveries=recoveries)
            if batch["status"] == "normalized":
                self.redis.sadd(PENDING, batch_id)
                train.si(batch_id).apply_async()
            elif self.home.lake.exists("raw", batch_id):
                check_and_learn(self.app, batch_id)
            elif batch["source"] == "generator":
                generate.apply_async(task_id=batch_id)
            else:
                self.fail_batch(batch_id, "its raw rows were lost before it was normalized")
                continue
            logger.warning("batch {} stalled in status {} since {}: sent on again ({} of {})",
                           batch_id, batch["status"], batch["updated_at"], recoveries,
                           MAX_RECOVERIES)
            resent.append(batch_id)
    return resent


@shared_task(bind=True, base=PipelineTask, name="pipeline.inbox")
def inbox(self) -> list[str]:
    """Ingest the files waiting in ``INBOX``, each once, in batches of ``BATCH_SIZE``; return
    the ids of the batches sent on to normalize and train."""
    with self.holding(INBOX_LOCK, wait=0) as held:
        if not held:
            return []  # another look at the inbox is under way: it takes what is there
        sent = []

        def send(batch_id: str) -> None:
            check_and_learn(self.app, batch_id)
            sent.append(batch_id)

        inbox_files.take_all(self.inbox_storage, self.home.lake, self.home.ledger,
                             self.home.dataset, self.settings.batch_size, send)
    return sent


@shared_task(bind=True, base=PipelineTask, name="pipeline.sweep")
def sweep(self) -> int:
    """Remove what killed steps left (artifacts no version names, old temporaries), and the
    kept answers older than KEEP_PREDICTIONS_DAYS; how many files."""
    removed = self.home.sweep() + predictions.sweep(self.home.storage,
                                                    self.settings.keep_predictions_days)
    if removed:
        logger.info("swept {} files that crashed writes left", removed)
    return removed


@shared_task(bind=True, base=PipelineTask, name="pipeline.challenge")
def challenge(self) -> int | None:
    """Refit the challenger on recent batches and score it with the champion; its version."""
    # A learner of its own: this task runs beside train steps, which use the shared one's caches.
    info = contest(Learner(self.home))
    return info.version if info else None


@shared_task(bind=True, base=PipelineTask, name="pipeline.forget")
def forget(self, batch_id: str, reason: str, by: str = "operator") -> dict:
    """Remove a batch from the model (a new version without it) and its rows from the lake."""
    check_batch_id(batch_id)
    reason = checked_reason(reason)
    with logger.contextualize(batch_id=batch_id), self.train_lock():
        entry = self.learner.forget(batch_id, reason=reason, by=by)
    return {"batch_id": batch_id, "version": entry["forgotten"]["version"],
            "status": entry["status"]}


@shared_task(bind=True, base=PipelineTask, name="pipeline.evaluate")
def evaluate(self, version: int | None = None, n: int = EVALUATE_N,
             baseline_version: int | None = None) -> dict:
    """Score a model version (the served one by default) on ``n`` records it never learnt
    (fresh ones from the generator, else held-out rows of recent batches), with an HTML report;
    ``baseline_version``: score that one on the same records, side by side."""
    if version is not None:
        version = whole_number(version, 1, MAX_VERSION, "version")
    if baseline_version is not None:
        baseline_version = whole_number(baseline_version, 1, MAX_VERSION, "baseline_version")
    n = whole_number(n, EVALUATE_N_MIN, EVALUATE_N_MAX, "n")
    home = self.home
    if version is None:
        version = home.serving.state().version or home.registry.latest_version()
    # The world as the generator draws it now: the regime of the newest generated batch.
    now = generator.regime(self.settings.drift, max(home.ledger.generated_count(), 1),
                           self.settings.drift_after)
    result = evaluate_and_report(home, version, n, baseline_version, regime=now)
    logger.info("evaluated version {}: R² {:.4f}, report {}", result["model_version"],
                result["r2"], result["report_id"])
    return result
