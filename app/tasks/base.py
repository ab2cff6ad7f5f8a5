"""What every pipeline task shares: per-process resources and the task id in each log line."""

from __future__ import annotations

from functools import cached_property

import redis
from celery import Task
from loguru import logger

from app import settings
from app.data.lake import DataLake
from app.models.registry import ModelRegistry


class PipelineTask(Task):
    """Celery makes one instance per task per process, so these are built once per process."""

    # A Redis that went away (restart, failover) is worth waiting for; anything else is a
    # real failure and is reported as one.
    autoretry_for = (redis.ConnectionError, redis.TimeoutError)
    retry_backoff = True
    retry_backoff_max = 60
    max_retries = 10

    @cached_property
    def settings(self) -> settings.Settings:
        return settings.load()

    @cached_property
    def lake(self) -> DataLake:
        return DataLake(self.settings.data_dir)

    @cached_property
    def registry(self) -> ModelRegistry:
        return ModelRegistry(self.settings.models_dir)

    @cached_property
    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.app.conf.broker_url)

    def __call__(self, *args, **kwargs):
        with logger.contextualize(task_id=self.request.id or "-"):
            return super().__call__(*args, **kwargs)
