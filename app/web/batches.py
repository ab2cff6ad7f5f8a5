"""Batches: ``POST /ingest`` brings labelled records in; ``GET /batches`` and
``GET /batches/<id>`` say what became of each batch; ``POST /batches/<id>/forget`` removes one.

One ledger (:mod:`app.data.ledger`) feeds every answer. The views send tasks by name through
the Celery app in ``app.extensions["celery"]``; the worker does the checking and the learning.
"""

from __future__ import annotations

import redis
from flask import Blueprint, current_app, request, url_for
from kombu.exceptions import OperationalError
from werkzeug.exceptions import NotFound, ServiceUnavailable

from app.data.batches import discard_batch, receive_records
from app.data.generator import new_batch_id
from app.data.ledger import UnknownBatch
from app.limits import MAX_SEQUENCE
from app.queueing import check_and_learn, send_steps
from app.web import schemas
from app.web.access import actor, operator_route
from app.web.errors import read_body
from app.web.openapi import documented
from app.web.holder import get_home

bp = Blueprint("batches", __name__)

# What a listing shows of each batch; one batch's page shows its whole ledger entry.
SUMMARY = ("batch_id", "source", "created_at", "status", "rows", "clean", "quarantined",
           "version", "failure")
_BROKER_DOWN = (OperationalError, redis.RedisError, OSError)


def _celery():
    return current_app.extensions["celery"]


def _batch(batch_id: str) -> dict:
    try:
        return get_home().ledger.get(batch_id)
    except (UnknownBatch, ValueError):  # ValueError: not even a possible batch id
        raise NotFound(f"batch {batch_id} is not in the ledger") from None


@bp.post("/ingest")
@documented(body="IngestBody", responses={202: "the batch is kept and on its way to training"})
@operator_route
def ingest():
    """202 ``{"batch_id", "task_id"}``: the records are a batch in the lake and the ledger, and
    ``pipeline.normalize`` → ``pipeline.train`` is on its way (``task_id`` is the train step's).

    The batch is whole or absent: if the tasks cannot be sent, what was written is removed.
    """
    records = schemas.ingest_records(read_body(), current_app.config["MAX_RECORDS"])
    home = get_home()
    batch_id = new_batch_id()
    # A store that cannot be written leaves nothing behind (see receive_records): its OSError
    # is the app's 503 (app.web.errors).
    receive_records(home.lake, home.ledger, batch_id, records)
    try:
        result = check_and_learn(_celery(), batch_id)
    except _BROKER_DOWN as error:
        discard_batch(home.lake, home.ledger, batch_id)
        raise ServiceUnavailable("the task queue (Redis) cannot be reached, so the batch was not "
                                 f"kept: {type(error).__name__}", retry_after=5) from None
    return ({"batch_id": batch_id, "task_id": result.id}, 202,
            {"Location": url_for("batches.batch", batch_id=batch_id)})


@bp.get("/batches")
@documented(query=schemas.BatchesQuery, responses={200: "the batches, newest first"})
def batches():
    """``{"batches": [...], "total": N}`` newest first; ``?limit=N``, ``?before=SEQ`` to page on."""
    limit = schemas.query_number(request.args, "limit", 1, schemas.BATCHES_MAX_LIMIT,
                                 schemas.BATCHES_LIMIT)
    before = schemas.query_number(request.args, "before", 1, MAX_SEQUENCE)
    ledger = get_home().ledger
    listed = []
    for batch in ledger.newest_first(before):
        listed.append(batch)
        if len(listed) == limit:
            break
    answer = {"batches": [{name: batch.get(name) for name in SUMMARY} for batch in listed],
              "total": ledger.count(), "limit": limit}
    if len(listed) == limit and listed[-1]["seq"] > 1:
        answer["next"] = url_for("batches.batches", limit=limit, before=listed[-1]["seq"])
    return answer


@bp.get("/batches/<batch_id>")
@documented(responses={200: "the batch's ledger entry"})
def batch(batch_id: str):
    """The batch's whole ledger entry: counts, quarantine reasons with counts, unknown fields,
    the version that learnt it, why it failed or was forgotten. 404 when unknown."""
    return _batch(batch_id)


@bp.post("/batches/<batch_id>/forget")
@documented(body=schemas.ForgetBody, responses={202: "the forget task was sent"})
@operator_route
def forget(batch_id: str):
    """202 ``{"task_id"}`` for ``pipeline.forget``: a new version exactly without the batch."""
    reason = schemas.reason_param(read_body())
    _batch(batch_id)
    try:
        result = send_steps(_celery(), ("pipeline.forget", {"batch_id": batch_id, "reason": reason,
                                                            "by": actor()}))
    except _BROKER_DOWN as error:
        raise ServiceUnavailable(f"the task queue (Redis) cannot be reached: "
                                 f"{type(error).__name__}", retry_after=5) from None
    return ({"batch_id": batch_id, "task_id": result.id}, 202,
            {"Location": url_for("tasks.task", task_id=result.id)})
