"""Pushed notices: "a version was published" and "what is served changed", on Redis pub/sub.

Web processes poll the registry's markers every quarter second; a notice makes every one of
them, on every host, look at once instead. A notice is only a hint to look: it carries no state
a reader would trust, so a lost one (Redis restarting, a subscriber reconnecting) costs one
polling interval, never a wrong answer.

The channel is named after the pipeline home (a hash of its URL): two pipelines sharing a Redis
(pub/sub ignores database numbers) never wake each other.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable

import redis
from loguru import logger

from app import redis_client

RECONNECT_DELAY = 1.0


def channel(home_url: str) -> str:
    return f"pipeline:notices:{hashlib.sha256(home_url.encode()).hexdigest()[:16]}"


class Notifier:
    """Announces changes to the home's channel; never fails the caller."""

    def __init__(self, redis_url: str, home_url: str):
        self.client = redis_client.client(redis_url, socket_connect_timeout=1, socket_timeout=1)
        self.channel = channel(home_url)

    def __call__(self, event: str, version: int | None) -> None:
        try:
            self.client.publish(self.channel, json.dumps({"event": event, "version": version}))
        except redis.RedisError as error:
            # Readers fall back to polling: the notice is an optimisation, not the truth.
            logger.debug("notice {} {} not sent: {}", event, version, error)


class Listener(threading.Thread):
    """Calls ``on_notice(notice)`` for every notice on the home's channel, until stopped.

    Reconnects after a Redis failure, and then calls ``on_notice(None)``: notices sent while
    it was away are lost, so whoever listens should look for itself once.
    """

    def __init__(self, redis_url: str, home_url: str, on_notice: Callable[[dict | None], None]):
        super().__init__(name="pipeline-notices", daemon=True)
        self.redis_url = redis_url
        self.channel = channel(home_url)
        self.on_notice = on_notice
        self.stopping = threading.Event()
        self.subscribed = threading.Event()

    def run(self) -> None:
        first = True
        while not self.stopping.is_set():
            try:
                client = redis_client.client(self.redis_url, socket_connect_timeout=2,
                                             health_check_interval=10)
                with client.pubsub(ignore_subscribe_messages=True) as pubsub:
                    pubsub.subscribe(self.channel)
                    self.subscribed.set()
                    if not first:
                        self.on_notice(None)
                    first = False
                    while not self.stopping.is_set():
                        message = pubsub.get_message(timeout=1.0)
                        if message is not None:
                            self.on_notice(_parse(message.get("data")))
            except (redis.RedisError, OSError) as error:
                self.subscribed.clear()
                logger.debug("notices interrupted ({}); reconnecting", type(error).__name__)
                self.stopping.wait(RECONNECT_DELAY)

    def stop(self) -> None:
        self.stopping.set()


def _parse(data) -> dict:
    try:
        notice = json.loads(data)
    except (TypeError, ValueError):
        return {}
    return notice if isinstance(notice, dict) else {}
