"""The Flask app: ``gunicorn 'app.web:create_app()'`` (see the Procfile).

Routes, one blueprint per resource: ``POST /predict`` (predict.py), ``GET /health``
(health.py), ``GET /models`` (models.py), ``POST /evaluate`` and ``GET /tasks/<id>``
(tasks.py), ``POST /ingest``, ``GET /batches[/<id>]`` and ``POST /batches/<id>/forget``
(batches.py), ``GET /status`` (status.py), ``GET``/``PUT /serving``, ``POST /serving/rollback``
and ``GET /audit`` (control.py; the serving policy itself is app.lifecycle.serving's),
``GET /openapi.json`` (openapi.py: every route is marked ``@documented``), ``GET /metrics``
(metrics.py, which also counts every request), ``GET /`` (page.py, the model page),
``GET /reports/<id>`` (reports.py), ``GET /dataset`` (dataset.py: the declaration in force),
``POST /feedback`` (feedback.py: labels for answers given). This process's copy of the served
model is kept by holder.py's ``ModelHolder``, loaded on the first request, never at import.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask

from app import limits, logs, settings
from app.web import (batches, control, dataset, errors, feedback, health, holder, metrics,
                     models, openapi, page, predict, reports, schemas, status, tasks)
from worker import app as celery_app

DEFAULTS = {
    # None: from the PIPELINE_HOME environment variable, through app.settings.
    "PIPELINE_HOME": None,
    # 10,000 records of typical length take about 700 kB; this leaves room for long names
    # and pretty-printed JSON. A larger body is refused with 413 before it is read.
    "MAX_CONTENT_LENGTH": 4 * 1024 * 1024,
    # Records (or labels) per /predict, /ingest, /feedback; more is a 413 (or a 400 for /predict).
    "MAX_RECORDS": limits.MAX_RECORDS,
    # Seconds between looks at the registry's markers (one stat each): the fallback when a
    # pushed notice of a new version (MODEL_NOTICES, over Redis pub/sub) is lost.
    "MODEL_CHECK_INTERVAL": 0.25,
    "MODEL_NOTICES": True,
    # None: from the REDIS_URL environment variable, through app.settings.
    "REDIS_URL": None,
    # None: the declaration DATASET names (app.settings); else a Dataset (app.dataset).
    "DATASET": None,
    # None: from LOG_PREDICTIONS: keep every answer, for its label to come back.
    "LOG_PREDICTIONS": None,
    "MODELS_LIMIT": 100,
    "MODELS_MAX_LIMIT": schemas.MODELS_MAX_LIMIT,
    # None: from the API_TOKEN environment variable (see access.py).
    "API_TOKEN": None,
    # The model page links to Flower: this URL, or the page's host on FLOWER_PORT when None.
    "FLOWER_URL": None,
    "FLOWER_PORT": None,
    # Tests turn this off to keep their own log sinks.
    "CONFIGURE_LOGGING": True,
    "LOG_LEVEL": "INFO",
}


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app: defaults, then ``FLASK_*`` environment variables, then ``config``.

    ``FLASK_MAX_RECORDS=500`` and the like override a default (values are parsed as JSON).
    """
    app = Flask(__name__)
    app.config.from_mapping(DEFAULTS)
    app.config.from_prefixed_env()
    if config:
        app.config.from_mapping(config)
    environment = settings.load()
    if app.config["PIPELINE_HOME"] is None:
        app.config["PIPELINE_HOME"] = environment.pipeline_home
    if app.config["REDIS_URL"] is None:
        app.config["REDIS_URL"] = environment.redis_url
    if app.config["FLOWER_PORT"] is None:
        app.config["FLOWER_PORT"] = environment.flower_port
    if app.config["API_TOKEN"] is None:
        app.config["API_TOKEN"] = environment.api_token
    if app.config["DATASET"] is None:
        app.config["DATASET"] = environment.dataset()
    if app.config["LOG_PREDICTIONS"] is None:
        app.config["LOG_PREDICTIONS"] = environment.log_predictions
    app.extensions["requests"] = schemas.DatasetRequests(app.config["DATASET"],
                                                         app.config["MAX_RECORDS"])
    if app.config["CONFIGURE_LOGGING"]:
        logs.configure(app.config["LOG_LEVEL"], debug=environment.debug)
    app.json.sort_keys = False

    # The one Celery app of worker.py: views send tasks by name through it.
    celery_app.set_default()
    app.extensions["celery"] = celery_app

    errors.init_app(app)
    holder.init_app(app)
    metrics.init_app(app)
    for blueprint in (predict.bp, health.bp, models.bp, tasks.bp, control.bp, batches.bp,
                      status.bp, openapi.bp, page.bp, reports.bp, dataset.bp, feedback.bp):
        app.register_blueprint(blueprint)
    return app
