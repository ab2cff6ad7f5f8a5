"""``GET /health``: the process is up, and which model it serves."""

from __future__ import annotations

import os

from flask import Blueprint

from app.web.openapi import documented
from app.web.holder import get_model_holder

bp = Blueprint("health", __name__)


@bp.get("/health")
@documented(responses={200: "the process answers; the version it serves"})
def health():
    """Always 200 while the process answers; ``model_version`` is null until a model exists.

    Each gunicorn worker serves its own copy of the model, so ``pid`` says which one answered.
    """
    return {"status": "ok", **get_model_holder().status(), "pid": os.getpid()}
