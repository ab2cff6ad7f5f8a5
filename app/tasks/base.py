"""What every pipeline task shares: per-process resources and the task id in each log line."""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Iterator
from functools import cached_property

import redis
from celery import Task
from celery.exceptions import Retry
from loguru import logger

from app import redis_client, settings
from app.data.batches import PENDING_TRAIN
from app.data.ledger import FINAL
from app.lifecycle.home import Home
from app.lifecycle.learning import Learner
from app.storage import Storage, open_storage

TRAIN_LOCK = "pipeline:train-lock"
# One look at the inbox at a time: a big file takes longer than the period between looks.
INBOX_LOCK = "pipeline:inbox-lock"
# A holder renews its lock every third of this while its work runs, however long the work,
# so a holder that died (its host gone) frees it this soon and the work goes on elsewhere.
# The locks only save work: publication and arrival are safe without them (see
# app.lifecycle.learning and app.data.inbox).
LOCK_TIMEOUT = 10
TRAIN_LOCK_WAIT = 30
# Normalized batches waiting for training; a train step takes all of them at once.
PENDING = PENDING_TRAIN

# The delivery policy. A task whose process dies under it (SIGKILL, the OOM killer, a crash in
# native code) is delivered again at once (acks_late + reject_on_worker_lost); a task that
# raised is retried only for the errors in ``autoretry_for``, with back-off. Every start is
# counted per task id in Redis and the count is dropped when the task returns or raises; a
# count that reaches MAX_DELIVERIES therefore means the task killed its process that often,
# and its batch is quarantined (ledger status ``failed``, with the reason) instead of run again.
MAX_DELIVERIES = 3
DELIVERIES = "pipeline:deliveries:"
DELIVERIES_TTL = 24 * 3600


class TrainLockBusy(RuntimeError):
    """Another train or forget step held the lock for longer than we waited."""


class Poisoned(RuntimeError):
    """The task killed its worker process MAX_DELIVERIES times: it is not run again."""


class PipelineTask(Task):
    """Celery makes one instance per task per process, so these are built once per process."""

    # A Redis that went away (restart, failover) is worth waiting for; anything else is a
    # real failure and is reported as one.
    autoretry_for = (redis.ConnectionError, redis.TimeoutError, TrainLockBusy)
    retry_backoff = True
    retry_backoff_max = 60
    max_retries = 10

    @cached_property
    def settings(self) -> settings.Settings:
        return settings.load()

    @cached_property
    def home(self) -> Home:
        return Home.from_settings(self.settings)

    @cached_property
    def inbox_storage(self) -> Storage:
        return open_storage(self.settings.inbox_url)

    @cached_property
    def learner(self) -> Learner:
        return Learner(self.home, keep_versions=self.settings.keep_versions,
                       keep_batches=self.settings.keep_batches)

    @cached_property
    def redis(self) -> redis.Redis:
        return redis_client.client(self.app.conf.broker_url)

    @contextlib.contextmanager
    def holding(self, key: str, wait: float) -> Iterator[bool]:
        """Hold the Redis lock ``key`` (waiting up to ``wait`` seconds for it); yields whether
        it was acquired. While held it is renewed every third of its timeout, however long
        the work takes, so a holder that died (its host gone) frees it within the timeout.

        The lock's token is the task id, so a task delivered again after its process died
        holding the lock takes it over at once instead of waiting for it to expire.
        """
        # Not thread-local: the renewing thread must see the token this one took.
        lock = self.redis.lock(key, timeout=LOCK_TIMEOUT, blocking_timeout=wait,
                               thread_local=False)
        token = (self.request.id or uuid.uuid4().hex).encode()
        with contextlib.suppress(redis.exceptions.LockNotOwnedError):
            lock.do_release(token)  # atomic: only when the lock still holds our token
            logger.warning("took over the lock {} this task held when its process died", key)
        if not lock.acquire(token=token, blocking=wait > 0):
            yield False
            return
        done = threading.Event()
        renewer = threading.Thread(target=_renew, args=(lock, done), daemon=True,
                                   name=f"{key}-renewer")
        renewer.start()
        try:
            yield True
        finally:
            done.set()
            renewer.join()
            try:
                lock.release()
            except redis.exceptions.LockError:
                # It expired mid-step and may be another's now; publication stayed safe.
                logger.warning("the lock {} expired before release ({} s)", key, LOCK_TIMEOUT)

    @contextlib.contextmanager
    def train_lock(self):
        """Hold the lock that lets one train or forget step run at a time."""
        with self.holding(TRAIN_LOCK, TRAIN_LOCK_WAIT) as held:
            if not held:
                raise TrainLockBusy(f"the train lock was busy for {TRAIN_LOCK_WAIT} s")
            yield

    def batch_of(self, args: tuple, kwargs: dict) -> str | None:
        """The batch a call works on: its ``batch_id`` argument (generate names its batch
        after its own task id)."""
        if "batch_id" in kwargs:
            return kwargs["batch_id"]
        if self.name == "pipeline.generate":
            return self.request.id
        return args[0] if args and isinstance(args[0], str) else None

    def fail_batch(self, batch_id: str, reason: str) -> None:
        """Mark a batch that is not done ``failed`` with ``reason``; it is not trained later."""
        self.redis.srem(PENDING, batch_id)
        batch = self.home.ledger.find(batch_id)
        if batch is not None and batch["status"] not in FINAL:
            self.home.ledger.update(batch_id, status="failed", failure=reason)
        logger.error("batch {} failed: {}", batch_id, reason)

    # A task whose failure dooms its batch (normalize: without clean rows nothing can train)
    # sets this, so the batch is marked failed with the reason rather than left "received".
    fails_its_batch = False

    def on_failure(self, exc, task_id, args, kwargs, einfo) -> None:
        """Celery calls this once a task has failed for good (retries spent, or an error
        that is not retried); the chain after it is not sent."""
        if not self.fails_its_batch or isinstance(exc, Poisoned):  # Poisoned already did
            return
        batch_id = self.batch_of(args, kwargs)
        if batch_id is None:
            return
        with logger.contextualize(task_id=task_id, batch_id=batch_id):
            try:
                self.fail_batch(batch_id, f"{self.name} failed: {type(exc).__name__}: {exc}")
            except Exception as error:  # noqa: BLE001 - the recovery pass meets the batch again
                logger.warning("could not mark batch {} failed: {}", batch_id, error)

    def count_delivery(self) -> int:
        """This start's number among the deliveries of the task id that did not return."""
        key = DELIVERIES + self.request.id
        with self.redis.pipeline() as pipe:
            deliveries, _ = pipe.incr(key).expire(key, DELIVERIES_TTL).execute()
        return deliveries

    def __call__(self, *args, **kwargs):
        task_id = self.request.id
        if task_id is None:  # called in-process, not delivered by a worker
            return self._run_logged(args, kwargs)
        with logger.contextualize(task_id=task_id):
            try:
                deliveries = self.count_delivery()
            except redis.RedisError:
                # The task itself will meet the same trouble and retry (autoretry_for).
                deliveries = 1
            if deliveries > 1:
                logger.warning("{} delivered again ({} of {}): its process died under it",
                               self.name, deliveries, MAX_DELIVERIES)
            if deliveries >= MAX_DELIVERIES:
                reason = (f"{self.name} killed its worker process {deliveries - 1} times; "
                          f"quarantined after {MAX_DELIVERIES} deliveries")
                batch_id = self.batch_of(args, kwargs)
                if batch_id is not None:
                    self.fail_batch(batch_id, reason)
                self.redis.delete(DELIVERIES + task_id)
                self._log_end("failure", time.perf_counter(), batch_id, None, reason)
                raise Poisoned(reason)
            self.request.deliveries = deliveries
            try:
                return self._run_logged(args, kwargs)
            finally:
                with contextlib.suppress(redis.RedisError):
                    self.redis.delete(DELIVERIES + task_id)

    def _run_logged(self, args: tuple, kwargs: dict):
        """Run the task, then log one line saying how it ended (what ``app logs`` reads)."""
        started = time.perf_counter()
        batch_id = self.batch_of(args, kwargs)
        try:
            result = super().__call__(*args, **kwargs)
        except Retry as retry:
            if retry.exc is not None:
                _mask_secrets(retry.exc)
            self._log_end("retry", started, batch_id, None, "retried")
            raise
        except Exception as error:
            _mask_secrets(error)
            self._log_end("failure", started, batch_id, None, f"{type(error).__name__}: {error}",
                          expected=isinstance(error, self.throws))
            raise
        version = result if isinstance(result, int) and not isinstance(result, bool) else (
            result.get("version", result.get("model_version")) if isinstance(result, dict)
            else None)
        self._log_end("success", started, batch_id, version, None)
        return result

    def _log_end(self, outcome: str, started: float, batch_id, version, error,
                 expected: bool = False) -> None:
        """``expected``: a failure the data explains (``throws``), a warning, not an error."""
        duration = time.perf_counter() - started
        line = logger.bind(task=self.name, outcome=outcome, duration=round(duration, 4),
                           version=version, **({"batch_id": batch_id} if batch_id else {}))
        text = (f"task {self.name} ended: outcome={outcome} batch={batch_id or '-'} "
                f"version={version if version is not None else '-'} duration={duration:.3f}s")
        if error:
            (line.error if outcome == "failure" and not expected else line.warning)(
                "{} error={}", text, error)
        else:
            line.info("{}", text)


def _mask_secrets(error: BaseException) -> None:
    """Mask the secrets in ``error``'s text, in place, before Celery stores it as the task's
    result, sends it to Flower and on_failure writes it to the ledger: a library's error may
    quote the URL it could not reach, password and all."""
    error.args = tuple(settings.redact(arg) if isinstance(arg, str) else arg
                       for arg in error.args)


def _renew(lock, done: threading.Event) -> None:
    """Push the lock's expiry back every third of its timeout until ``done``."""
    while not done.wait(LOCK_TIMEOUT / 3):
        try:
            lock.extend(LOCK_TIMEOUT, replace_ttl=True)
        except redis.exceptions.RedisError as error:
            # Lost (expired, or Redis away): the step goes on; publication stays safe.
            logger.warning("could not renew a lock: {}", error)
            return
