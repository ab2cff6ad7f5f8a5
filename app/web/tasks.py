"""``POST /evaluate`` starts an evaluation task; ``GET /tasks/<id>`` says how a task is doing.

The views only send and read tasks by name through the Celery app bound in
``app.extensions["celery"]``; the worker does the work.
"""

from __future__ import annotations

import redis
from flask import Blueprint, current_app, request, url_for
from kombu.exceptions import OperationalError
from werkzeug.exceptions import NotFound, ServiceUnavailable

from app.limits import EVALUATE_N
from app.models.registry import VersionNotFound
from app.web import schemas
from app.web.access import operator_route
from app.web.errors import read_body
from app.web.openapi import documented
from app.web.holder import get_model_holder

bp = Blueprint("tasks", __name__)

# Celery's ids are UUIDs; nothing longer can be a task, and it is not worth a Redis lookup.
MAX_TASK_ID = 255
# Ready states whose result is an exception: the answer gives its text, never a traceback.
_ERROR_STATES = {"FAILURE", "RETRY", "REVOKED"}
_BROKER_DOWN = (OperationalError, redis.RedisError, OSError)


def _celery():
    return current_app.extensions["celery"]


def _unavailable(error: Exception) -> ServiceUnavailable:
    return ServiceUnavailable(f"the task queue (Redis) cannot be reached: {type(error).__name__}",
                              retry_after=5)


@bp.post("/evaluate")
@documented(body=schemas.EvaluateParams, responses={202: "the evaluation task was sent"})
@operator_route
def evaluate():
    """202 ``{"task_id": ...}`` for ``pipeline.evaluate``; 404 for an unknown version.

    The version is checked here, so a typo gets an answer now rather than a failed task later.
    """
    params = schemas.evaluate_params(read_body())
    registry = get_model_holder().registry
    newest = registry.latest_version()
    if newest is None:
        raise ServiceUnavailable("no model has been trained yet, so there is nothing to evaluate",
                                 retry_after=5)
    for field in ("version", "baseline_version"):
        version = params.get(field)
        if version is not None:
            try:
                registry.metadata(version)
            except VersionNotFound:
                raise NotFound(f"model version {version} does not exist; the newest is "
                               f"{newest}") from None
    kwargs = {"version": params.get("version"), "n": params.get("n", EVALUATE_N),
              "baseline_version": params.get("baseline_version")}
    try:
        result = _celery().send_task("pipeline.evaluate", kwargs=kwargs)
    except _BROKER_DOWN as error:
        raise _unavailable(error) from None
    return {"task_id": result.id}, 202, {"Location": url_for("tasks.task", task_id=result.id)}


def _describe_result(state: str, result):
    if state == "SUCCESS":
        return result
    if state in _ERROR_STATES:
        if isinstance(result, BaseException):
            return f"{type(result).__name__}: {result}"
        return None if result is None else str(result)
    return None  # PENDING, RECEIVED, STARTED: nothing to show yet


@bp.get("/tasks/<task_id>")
@documented(responses={200: "the task's state, and its result once there is one"})
def task(task_id: str):
    """``{"task_id", "state", "result"}``.

    ``result`` is the return value once the state is SUCCESS, the error's text for FAILURE,
    and null before. Celery cannot tell a queued task from an id it never saw: both are PENDING.
    """
    if len(task_id) > MAX_TASK_ID:
        raise NotFound(f"no task has an id longer than {MAX_TASK_ID} characters")
    try:
        # One read of the stored state, so the state and the result always belong together.
        meta = _celery().backend.get_task_meta(task_id)
    except _BROKER_DOWN as error:
        raise _unavailable(error) from None
    state = meta.get("status", "PENDING")
    result = _describe_result(state, meta.get("result"))
    if isinstance(result, dict) and str(result.get("report_url", "")).startswith("/"):
        # The worker knows the report's path, not where this app is reached from.
        result = {**result, "report_url": request.host_url.rstrip("/") + result["report_url"]}
    return {"task_id": task_id, "state": state, "result": result}
