"""``GET /models``: the registry's versions, newest first, with their metadata."""

from __future__ import annotations

from flask import Blueprint, current_app, request

from app.web.errors import InvalidRequest
from app.web.openapi import documented
from app.web.schemas import InvalidInput, ModelsQuery
from app.web.serving import get_model_holder

bp = Blueprint("models", __name__)


def _limit() -> int:
    """``?limit=N``: how many versions to list (``MODELS_LIMIT`` when absent)."""
    raw = request.args.get("limit")
    highest = current_app.config["MODELS_MAX_LIMIT"]
    if raw is None:
        return current_app.config["MODELS_LIMIT"]
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 9 and 1 <= int(raw) <= highest):
        message = f"must be a whole number between 1 and {highest:,}"
        raise InvalidRequest(InvalidInput(f"limit: {message}",
                                          [{"field": "limit", "message": message}]))
    return int(raw)


@bp.get("/models")
@documented(query=ModelsQuery, responses={200: "the versions, newest first"})
def list_models():
    """``{"models": [...], "total": N}``: at most ``limit`` versions, newest first.

    Read by number from the newest down, never by listing a folder: as fast with 100,000
    versions as with 100.
    """
    limit = _limit()
    registry = get_model_holder().registry
    models = registry.list(limit)
    return {"models": models, "total": models[0]["version"] if models else 0, "limit": limit}
