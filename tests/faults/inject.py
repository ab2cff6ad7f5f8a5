"""Faults a test loads into a real worker: ``celery -A worker worker -I tests.faults.inject``.

Nothing here runs unless its variable is set; each names a generated batch by its number
(counted from 1 in the pipeline home), so a test can pick its victim before it exists:

- ``FAULT_KILL_TRAINING=N``: a train step that would learn batch N SIGKILLs its own process,
  every time (a batch that always kills its worker: a native crash, the OOM killer).
- ``FAULT_STALL_PUBLISH=N``: the first step that learns batch N writes its artifact and then
  stalls for ``FAULT_STALL_SECONDS`` (60) before its metadata, saying so in the log, so a test
  can kill the worker with a partial version on disk, or let a backlog build up behind it.
- ``FAULT_SLOW_TRAINING=N``: a step that would learn batch N sleeps (holding the train lock),
  every time, past any time limit a test sets.
- ``FAULT_TRAIN_TIME_LIMITS=SOFT,HARD``: pipeline.train's time limits in seconds, instead of
  celeryconfig's (which, set on the tasks, win over the worker's --time-limit options).
- ``FAULT_LEAKY_NORMALIZE=N``: normalizing batch N fails, every time, with an error that quotes
  ``REDIS_URL`` and ``AWS_SECRET_ACCESS_KEY``, as a library's error may quote what it was given.
"""

from __future__ import annotations

import os
import signal
import time

from loguru import logger

import app.tasks.pipeline
from app.lifecycle.learning import Learner
from app.storage import Storage

_train = Learner.train
_normalize_batch = app.tasks.pipeline.normalize_batch
_stall_next_artifact = False


def _number(variable: str) -> int | None:
    raw = os.environ.get(variable)
    return int(raw) if raw else None


def _victim(learner: Learner, batch_ids: list[str], variable: str) -> str | None:
    number = _number(variable)
    if number is None:
        return None
    for batch_id in batch_ids:
        if learner.home.ledger.get(batch_id).get("generated_number") == number:
            return batch_id
    return None


def train(self: Learner, batch_ids: list[str]):
    global _stall_next_artifact
    if victim := _victim(self, batch_ids, "FAULT_KILL_TRAINING"):
        logger.warning("fault: batch {} kills its worker process (pid {})", victim, os.getpid())
        os.kill(os.getpid(), signal.SIGKILL)
    if victim := _victim(self, batch_ids, "FAULT_STALL_PUBLISH"):
        marker = self.home.storage.url.rstrip("/") + "-stalled"
        if not os.path.exists(marker):
            open(marker, "w").close()
            _stall_next_artifact = victim
    if victim := _victim(self, batch_ids, "FAULT_SLOW_TRAINING"):
        logger.warning("fault: training batch {} slowly", victim)
        time.sleep(600)
    return _train(self, batch_ids)


def normalize_batch(lake, ledger, batch_id: str, *rest):
    number = _number("FAULT_LEAKY_NORMALIZE")
    if number is not None and ledger.get(batch_id).get("generated_number") == number:
        raise RuntimeError(f"lost {os.environ['REDIS_URL']} while reading with the key "
                           f"{os.environ.get('AWS_SECRET_ACCESS_KEY')}")
    return _normalize_batch(lake, ledger, batch_id, *rest)


def _write_bytes(write):
    def write_bytes(self, key: str, data: bytes) -> None:
        global _stall_next_artifact
        write(self, key, data)
        if _stall_next_artifact and key.startswith("models/artifacts/"):
            logger.warning("fault: artifact {} of batch {} written; stalling before its "
                           "metadata", key, _stall_next_artifact)
            _stall_next_artifact = False
            time.sleep(float(os.environ.get("FAULT_STALL_SECONDS", "60")))

    return write_bytes


Learner.train = train
app.tasks.pipeline.normalize_batch = normalize_batch
if _limits := os.environ.get("FAULT_TRAIN_TIME_LIMITS"):
    from worker import app

    _task = app.tasks["pipeline.train"]
    _task.soft_time_limit, _task.time_limit = (float(limit) for limit in _limits.split(","))
for _storage in (Storage, *Storage.__subclasses__()):
    if "write_bytes" in vars(_storage):
        _storage.write_bytes = _write_bytes(vars(_storage)["write_bytes"])
