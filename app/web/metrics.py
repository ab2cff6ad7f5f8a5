"""``GET /metrics``: Prometheus text format; every request is counted and timed on the way out.

What each figure is and where it comes from is in :mod:`app.observe.metrics`.
"""

from __future__ import annotations

import time

from flask import Blueprint, Flask, Response, current_app, g, request
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.multiprocess import MultiProcessCollector

from app import redis_client
from app.observe import metrics
from app.web.openapi import documented
from app.web.holder import get_home, get_model_holder

bp = Blueprint("metrics", __name__)


class _Scrape:
    """The collectors of one answer, in order (what ``generate_latest`` asks of a registry)."""

    def __init__(self, *collectors):
        self.collectors = collectors

    def collect(self):
        for collector in self.collectors:
            yield from collector.collect()


def _processes():
    """The web processes' own figures: every gunicorn worker's files, or this process's."""
    if metrics.multiprocess():
        return MultiProcessCollector(None)
    return REGISTRY


@bp.get("/metrics")
@documented(responses={200: "every figure of the pipeline, in Prometheus text format 0.0.4"})
def export():
    """The pipeline's figures for Prometheus: requests, predictions, versions, batches, queues."""
    holder = get_model_holder()

    def served():
        serving = holder.current()
        return serving.version if serving else None

    pipeline = metrics.PipelineCollector(
        get_home(), current_app.extensions["metrics_redis"],
        [queue.name for queue in current_app.extensions["celery"].conf.task_queues], served)
    # generate_latest writes the classic text format, version 0.0.4: say so, for any Prometheus.
    return Response(generate_latest(_Scrape(_processes(), pipeline)),
                    headers={"Content-Type": CONTENT_TYPE_PLAIN_0_0_4})


def _start() -> None:
    g.metrics_started = time.perf_counter()


def _count(response: Response) -> Response:
    started = g.pop("metrics_started", None)
    route = request.url_rule.rule if request.url_rule is not None else metrics.UNMATCHED_ROUTE
    status = str(response.status_code)
    metrics.HTTP_REQUESTS.labels(route, request.method, status).inc()
    if started is not None:
        metrics.HTTP_LATENCY.labels(route, status).observe(time.perf_counter() - started)
    return response


def init_app(app: Flask) -> None:
    """Count and time every request of ``app``; a Redis client for the worker's counters."""
    app.extensions["metrics_redis"] = redis_client.client(
        app.config["REDIS_URL"], socket_connect_timeout=1, socket_timeout=1)
    app.before_request(_start)
    app.after_request(_count)
    app.register_blueprint(bp)
