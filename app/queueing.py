"""Sending a batch on to be checked and learnt: ``pipeline.normalize`` → ``pipeline.train``.

By name, through whichever Celery app the caller holds (the web app's, the command line's, a
task's own), so nothing that sends needs the tasks' code: one definition of the chain every
arrival path uses (``/ingest``, ``python -m app ingest``, the inbox, the recovery pass).
"""

from __future__ import annotations

from celery import chain


def send_steps(celery_app, *steps: tuple[str, dict]):
    """Send tasks by name, each after the one before; the last one's AsyncResult."""
    return chain(*(celery_app.signature(name, kwargs=kwargs, immutable=True)
                   for name, kwargs in steps)).apply_async()


def check_and_learn(celery_app, batch_id: str):
    """Send ``batch_id`` on to normalize, then train; the train step's AsyncResult."""
    return send_steps(celery_app, ("pipeline.normalize", {"batch_id": batch_id}),
                      ("pipeline.train", {"batch_id": batch_id}))
