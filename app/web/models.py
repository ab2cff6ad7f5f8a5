"""``GET /models``: the registry's versions, newest first, with their metadata."""

from __future__ import annotations

from flask import Blueprint, current_app, request

from app.lifecycle.challenge import latest_contest
from app.web import schemas
from app.web.openapi import documented
from app.web.holder import get_home

bp = Blueprint("models", __name__)


@bp.get("/models")
@documented(query=schemas.ModelsQuery, responses={200: "the versions, newest first"})
def list_models():
    """``{"models": [...], "total": N, "contest": ...}``: at most ``limit`` versions, newest
    first, and the latest contest of champion and challenger with both scores (or null).

    Read by number from the newest down, never by listing a folder: as fast with 100,000
    versions as with 100. Each version's ``forgotten_batches`` names the forgotten batches it
    learnt from (see :mod:`app.lifecycle.marks`): such a version stays listed, marked. Its
    ``kind`` says whether it is a champion or a challenger.
    """
    config = current_app.config
    limit = schemas.query_number(request.args, "limit", 1, config["MODELS_MAX_LIMIT"],
                                 config["MODELS_LIMIT"])
    home = get_home()
    models = home.registry.list(limit)
    forgotten = home.forgotten.entries()
    listed = [{**info.to_dict(), "forgotten_batches": home.forgotten.learnt_by(info, forgotten)}
              for info in models]
    return {"models": listed, "total": models[0].version if models else 0, "limit": limit,
            "contest": latest_contest(home.registry)}
