"""``GET /dataset``: what this system learns, as its declaration says (see :mod:`app.dataset`).

Clients that send records (``python -m app ingest``, ``predict``) ask it which columns a file
must have, so they never need the declaration file themselves.
"""

from __future__ import annotations

from flask import Blueprint, current_app

from app.models.stats import Design
from app.web.openapi import documented

bp = Blueprint("dataset", __name__)


@bp.get("/dataset")
@documented(responses={200: "the declaration in force, and the model's columns"})
def dataset():
    """The declaration in force: name, target with its bounds and unit, features, and the
    model's columns."""
    declared = current_app.config["DATASET"]
    return {**declared.to_document(), "model_columns": Design.of(declared).describe()}
