"""What every pipeline task shares: per-process resources and the task id in each log line."""

from __future__ import annotations

import contextlib
from functools import cached_property

import redis
from celery import Task
from loguru import logger

from app import settings
from app.lifecycle.home import Home
from app.lifecycle.learning import Learner

TRAIN_LOCK = "pipeline:train-lock"
# Training a step takes well under a second; a holder that died frees the lock this soon. The
# lock only saves work: publication is safe without it (see app.lifecycle.learning).
TRAIN_LOCK_TIMEOUT = 30
TRAIN_LOCK_WAIT = 30


class TrainLockBusy(RuntimeError):
    """Another train or forget step held the lock for longer than we waited."""


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
    def learner(self) -> Learner:
        return Learner(self.home, keep_versions=self.settings.keep_versions,
                       keep_batches=self.settings.keep_batches)

    @cached_property
    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.app.conf.broker_url)

    @contextlib.contextmanager
    def train_lock(self):
        """Hold the lock that lets one train or forget step run at a time."""
        lock = self.redis.lock(TRAIN_LOCK, timeout=TRAIN_LOCK_TIMEOUT,
                               blocking_timeout=TRAIN_LOCK_WAIT)
        if not lock.acquire():
            raise TrainLockBusy(f"the train lock was busy for {TRAIN_LOCK_WAIT} s")
        try:
            yield
        finally:
            try:
                lock.release()
            except redis.exceptions.LockError:
                # It expired mid-step and may be another's now; publication stayed safe.
                logger.warning("the train lock expired before release ({} s)", TRAIN_LOCK_TIMEOUT)

    def __call__(self, *args, **kwargs):
        with logger.contextualize(task_id=self.request.id or "-"):
            return super().__call__(*args, **kwargs)
