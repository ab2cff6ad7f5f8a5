"""What is served, and the trail of who changed it: ``/serving``, ``/serving/rollback``, ``/audit``.

The decisions are :mod:`app.lifecycle.serving`'s (the only place that decides what is served);
these views check the body, name the actor for the audit trail and turn refusals into JSON
errors. A change is written to the storage every web process reads and announced on Redis
(:mod:`app.notices`), so every process serves it within a second.
"""

from __future__ import annotations

from flask import Blueprint, request
from werkzeug.exceptions import Conflict, NotFound

from app.lifecycle.audit import ACTIONS
from app.lifecycle.serving import ServingError
from app.limits import MAX_VERSION
from app.models.registry import VersionNotFound
from app.web import schemas
from app.web.access import actor, operator_route
from app.web.errors import read_body
from app.web.openapi import documented
from app.web.holder import get_home, get_model_holder

bp = Blueprint("control", __name__)


def _answer(state) -> dict:
    """The serving state, and which versions it learnt from forgotten batches (if any)."""
    home = get_home()
    answer = state.to_json()
    forgotten = []
    if state.version is not None:
        try:
            forgotten = home.forgotten.learnt_by(home.registry.metadata(state.version))
        except VersionNotFound:
            pass
    answer["forgotten_batches"] = forgotten
    return answer


def _change(make):
    """Run a change of ``ServingControl``; its refusals as 404 (no such version) or 409."""
    try:
        state = make(get_home().serving)
    except VersionNotFound as error:
        raise NotFound(str(error)) from None
    except ServingError as error:
        raise Conflict(str(error)) from None
    # This process looks at once rather than at its next poll: the answer's version is served.
    get_model_holder().refresh_now()
    return _answer(state)


@bp.get("/serving")
@documented(responses={200: "the version served, the mode and why"})
def serving_state():
    """``{"version", "mode" ("follow"/"pinned"), "reason", "since", "by", "forgotten_batches"}``."""
    return _answer(get_home().serving.state())


@bp.put("/serving")
@documented(body=schemas.ServingChange, responses={200: "the new serving state"})
@operator_route
def change_serving():
    """Pin ``{"version": V, "reason"}``, or follow again with ``{"version": "latest", ...}``."""
    params = schemas.serving_change(read_body())
    if params["version"] == "latest":
        return _change(lambda control: control.follow(reason=params["reason"], by=actor()))
    return _change(lambda control: control.pin(params["version"], reason=params["reason"],
                                               by=actor()))


@bp.post("/serving/rollback")
@documented(body=schemas.RollbackParams, responses={200: "the new serving state"})
@operator_route
def rollback():
    """``{"reason", "to": V}``: pin ``to``, or else the newest promoted version older than the
    one served now (so rolling back twice goes back two versions)."""
    params = schemas.rollback_params(read_body())
    return _change(lambda control: control.rollback(reason=params["reason"], by=actor(),
                                                    to=params.get("to")))


@bp.get("/audit")
@documented(query=schemas.AuditQuery, responses={200: "a page of events, newest first"})
def audit():
    """``{"events": [...], "next_before": id or null}``, newest first.

    ``?limit=N`` (default 50, at most 1,000), ``?before=ID`` continues from a previous page's
    ``next_before``, ``?action=pin`` keeps one kind of event.
    """
    limit = schemas.query_number(request.args, "limit", 1, schemas.AUDIT_MAX_LIMIT,
                                 schemas.AUDIT_LIMIT)
    before = schemas.query_number(request.args, "before", 1, MAX_VERSION)
    action = request.args.get("action")
    if action is not None and action not in ACTIONS:
        message = f"must be one of {', '.join(ACTIONS)}"
        raise schemas.InvalidInput(f"action: {message}", [{"field": "action", "message": message}])
    page = get_home().audit.page(limit=limit, before=before, action=action)
    return {**page, "total": get_home().audit.total()}
