"""``GET /status``: is data arriving, how much, and what the model and the queues are doing."""

from __future__ import annotations

from datetime import datetime, timezone

import redis
from flask import Blueprint, current_app

from app import redis_client, settings
from app.data.batches import PENDING_TRAIN
from app.observe import metrics
from app.redis_server import explain
from app.web.openapi import documented
from app.web.holder import get_home

bp = Blueprint("status", __name__)

# A batch is due every GENERATE_EVERY seconds; this many periods without one is a stall.
STALE_PERIODS = 3
# Seconds Redis has to answer before the queues are reported as what went wrong.
REDIS_TIMEOUT = 2


def _redis() -> redis.Redis:
    client = current_app.extensions.get("status_redis")
    if client is None:
        client = current_app.extensions["status_redis"] = redis_client.client(
            current_app.config["REDIS_URL"], socket_timeout=REDIS_TIMEOUT,
            socket_connect_timeout=REDIS_TIMEOUT)
    return client


def queue_lengths() -> dict:
    """Messages waiting in each Celery queue, and batches waiting to be trained; an ``error``
    instead when Redis does not answer, saying why (the rest of the status still does)."""
    names = [queue.name for queue in current_app.extensions["celery"].conf.task_queues or ()]
    try:
        lengths = metrics.queue_lengths(_redis(), names)
        pending = _redis().scard(PENDING_TRAIN)
    except (redis.RedisError, OSError) as error:
        return {"error": explain(current_app.config["REDIS_URL"], error, REDIS_TIMEOUT)}
    return {**lengths, "pending_train": pending}


def live_error() -> dict:
    """The error of answers already given, as their labels came back; an ``error`` instead
    when Redis does not answer."""
    try:
        return metrics.LiveError(_redis(), get_home().url).read()
    except (redis.RedisError, OSError) as error:
        return {"error": explain(current_app.config["REDIS_URL"], error, REDIS_TIMEOUT)}


@bp.get("/status")
@documented(responses={200: "the pipeline's state"})
def status():
    """Batches and records so far, the newest batch's time and whether the stream is stale,
    the newest and the served version, and the queues.

    Stale means the generator stopped feeding: no batch for three of its periods. Without
    the generator (a declared dataset) batches come when someone sends them, so ``stale`` is
    null: a quiet hour is not a fault.
    """
    home = get_home()
    totals = home.ledger.totals()
    stale_after = STALE_PERIODS * settings.load().generate_every if home.dataset.generated else None
    last = totals["last_batch_at"]
    age = None if last is None else (
        datetime.now(timezone.utc) - datetime.fromisoformat(last)).total_seconds()
    serving = home.serving.state()
    return {
        "last_batch_at": last,
        "seconds_since_last_batch": None if age is None else round(age, 3),
        "stale": None if stale_after is None else (age is None or age > stale_after),
        "stale_after_seconds": stale_after,
        "batches": totals["batches"],
        "records": totals["rows"],
        "clean": totals["clean"],
        "quarantined": totals["quarantined"],
        "newest_version": home.registry.latest_version(),
        "serving_version": serving.version,
        "serving_mode": serving.mode,
        "queues": queue_lengths(),
        **({"live": live_error()} if current_app.config["LOG_PREDICTIONS"] else {}),
        # What a command on this machine compares with its own settings, to write batches
        # straight to the store when it reaches the same one (python -m app ingest).
        "fingerprints": {"home": settings.fingerprint(home.url),
                         "redis": settings.fingerprint(current_app.config["REDIS_URL"])},
    }
