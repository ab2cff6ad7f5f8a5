"""``POST /feedback``: labels for answers already given, learnt from, and the live error.

With ``LOG_PREDICTIONS=1`` each answer of ``/predict`` has an id and is kept (see
:mod:`app.data.predictions`). A label sent back for it is joined to the kept record
(:func:`app.data.feedback.join`); the matched ones become a batch (source ``feedback``) that
goes through normalize and train like any other, and each counts once in the live error of the
version that answered (``live`` in ``/status``, ``pipeline_live_mae`` in ``/metrics``).

A label is claimed in Redis before it is learnt (one key per answer, kept as long as the
answer is), so the same label sent twice, even to two hosts at the same moment, counts once.
"""

from __future__ import annotations

import redis
from flask import Blueprint, current_app, url_for
from kombu.exceptions import OperationalError
from werkzeug.exceptions import ServiceUnavailable

from app import redis_client, settings
from app.data.batches import discard_batch, receive_batch
from app.data.feedback import join
from app.data.generator import new_batch_id
from app.observe.metrics import LiveError
from app.queueing import check_and_learn
from app.web import schemas
from app.web.access import operator_route
from app.web.errors import read_body
from app.web.openapi import documented
from app.web.holder import get_home

bp = Blueprint("feedback", __name__)

_BROKER_DOWN = (OperationalError, redis.RedisError, OSError)


class Claims:
    """Which answers were labelled already: a Redis key each, made only if absent."""

    def __init__(self, client: redis.Redis, home_url: str, keep_days: int):
        self.client, self.keep_seconds = client, keep_days * 86_400
        self.prefix = f"pipeline:labelled:{settings.fingerprint(home_url)}:"

    def claim(self, ids: list[str]) -> set[str]:
        """The ids of ``ids`` never claimed before, now claimed."""
        pipe = self.client.pipeline(transaction=False)
        for prediction_id in ids:
            pipe.set(self.prefix + prediction_id, 1, nx=True, ex=self.keep_seconds)
        return {prediction_id for prediction_id, new in zip(ids, pipe.execute()) if new}

    def release(self, ids) -> None:
        """Give claims back (their batch could not be kept): a later label may count."""
        if len(ids):
            self.client.delete(*(self.prefix + prediction_id for prediction_id in ids))


def _redis() -> redis.Redis:
    client = current_app.extensions.get("feedback_redis")
    if client is None:
        client = current_app.extensions["feedback_redis"] = redis_client.client(
            current_app.config["REDIS_URL"])
    return client


@bp.post("/feedback")
@documented(body=schemas.FeedbackBody,
            responses={202: "the matched labels are a batch on its way to training"})
@operator_route
def feedback():
    """202 ``{"batch_id", "task_id", "matched", "unknown", "repeated"}``: the labels of kept
    answers become a batch (source ``feedback``), learnt like any other; an unknown or expired
    id is counted, not an error; a label given twice for one answer counts once."""
    labels = schemas.feedback_labels(read_body(), current_app.config["MAX_RECORDS"])
    home = get_home()
    environment = settings.load()
    claims = Claims(_redis(), home.url, environment.keep_predictions_days)
    try:
        joined = join(home.storage, home.dataset, labels, claims.claim)
    except _BROKER_DOWN as error:
        raise ServiceUnavailable(f"the kept answers or Redis cannot be read now: "
                                 f"{type(error).__name__}", retry_after=5) from None
    answer = {"batch_id": None, "task_id": None, "matched": joined.matched,
              "unknown": joined.unknown, "repeated": joined.repeated}
    if not environment.log_predictions:
        answer["note"] = "LOG_PREDICTIONS is off here: answers are not kept, so none matches"
    if not joined.matched:
        return answer, 202
    batch_id = new_batch_id()
    try:
        receive_batch(home.lake, home.ledger, batch_id, joined.rows, source="feedback")
        result = check_and_learn(current_app.extensions["celery"], batch_id)
        LiveError(_redis(), home.url).add(joined.live)
    except _BROKER_DOWN as error:
        discard_batch(home.lake, home.ledger, batch_id)
        claims.release(joined.ids)
        raise ServiceUnavailable(f"the labels could not be kept now, send them again: "
                                 f"{type(error).__name__}", retry_after=5) from None
    answer.update(batch_id=batch_id, task_id=result.id)
    return answer, 202, {"Location": url_for("batches.batch", batch_id=batch_id)}
