"""One Redis database, one ``PIPELINE_HOME``: the claim that keeps two systems apart.

Two systems on one Redis database share its queues, its waiting set and its locks: each takes
the other's batch ids and messages, and neither trains (issue 20). ``make run`` therefore
claims the database for its home before it starts anything: a key holding the home's URL,
with a TTL that the runner refreshes while it runs and deletes when it stops. A second system
with another home finds the key and stops at once, with a message naming both homes; one with
the same home (another host of the same deployment, ``SERVICES``) shares the claim.

A run killed outright (its host gone) leaves the claim for at most ``CLAIM_TTL`` seconds.
"""

from __future__ import annotations

import threading

import redis
from loguru import logger

from app.settings import redact

CLAIM_KEY = "pipeline:home"
CLAIM_TTL = 30
# Delete the claim only if it is still ours: a run that stopped late must not free another's.
_RELEASE = ("if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) "
            "end return 0")


class HomeTaken(RuntimeError):
    """Another ``PIPELINE_HOME`` holds the claim on this Redis database."""


def claim(client: redis.Redis, home_url: str, where: str = "this Redis database") -> None:
    """Claim the database for ``home_url``, or renew our claim; :class:`HomeTaken` when
    another home holds it."""
    if client.set(CLAIM_KEY, home_url, nx=True, ex=CLAIM_TTL):
        return
    holder = client.get(CLAIM_KEY)
    holder = holder.decode() if isinstance(holder, bytes) else holder
    if holder in (None, home_url):
        # Ours, or expired between the two calls: (re)take it.
        client.set(CLAIM_KEY, home_url, ex=CLAIM_TTL)
        return
    raise HomeTaken(
        f"{where} is used by another system, PIPELINE_HOME={redact(holder)}; this one's is "
        f"PIPELINE_HOME={redact(home_url)}. Two homes on one database would take each other's "
        f"batches and messages: give this one another Redis database (REDIS_URL ending /1, "
        f"/2...), or the same PIPELINE_HOME. A system that is gone frees it within {CLAIM_TTL} s")


def release(client: redis.Redis, home_url: str) -> None:
    client.eval(_RELEASE, 1, CLAIM_KEY, home_url)


class Holder(threading.Thread):
    """Renews the claim every third of its TTL until stopped, then releases it. A Redis away
    for a while is tolerated (the claim is renewed when it is back); a claim taken meanwhile by
    another home is logged, not fought over."""

    def __init__(self, client: redis.Redis, home_url: str):
        super().__init__(name="pipeline-home-claim", daemon=True)
        self.client, self.home_url = client, home_url
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(CLAIM_TTL / 3):
            try:
                claim(self.client, self.home_url)
            except HomeTaken as error:
                logger.error("{}", error)
            except (redis.RedisError, OSError) as error:
                logger.debug("the claim on Redis was not renewed: {}", error)

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=5)
        try:
            release(self.client, self.home_url)
        except (redis.RedisError, OSError) as error:
            logger.debug("the claim on Redis was not released ({}): it expires by itself", error)
