"""Every Redis client of the system comes from here: the one module that knows a plain
``REDIS_URL`` (``redis://``, ``rediss://``, ``unix://``) from a Sentinel one.

A Sentinel URL lists the sentinels, ``;``-separated, the database after the last one:
``sentinel://[:password@]h1:26379;sentinel://h2:26379;sentinel://h3:26379/0``; the primary's
name is ``REDIS_SENTINEL_MASTER`` (default ``mymaster``). The password, when given, is the
primary's (the sentinels themselves are asked without one, as kombu does). A client made here
never caches the primary's address: redis-py's ``master_for`` asks the sentinels on every
(re)connect, and turns a ``ReadOnlyError`` (a primary demoted under a live connection) into a
connection error, so the next command goes to the new primary.

Celery's broker and result backend and RedBeat's lock take their settings from
:func:`celery_settings`, the app's locks, notices, metrics and pages from :func:`client`.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import redis
from redis.sentinel import Sentinel

from app.settings import sentinel_master, split_password

SENTINEL_SCHEME = "sentinel"
SENTINEL_PORT = 26379


def is_sentinel(url: str) -> bool:
    """
    >>> is_sentinel("sentinel://h1:26379;sentinel://h2:26379/0"), is_sentinel("redis://h/0")
    (True, False)
    """
    return url.strip().lower().startswith(f"{SENTINEL_SCHEME}://")


@dataclass(frozen=True)
class SentinelURL:
    """A Sentinel ``REDIS_URL`` taken apart."""

    sentinels: tuple[tuple[str, int], ...]
    db: int
    username: str | None
    password: str | None

    def url(self) -> str:
        """The same URL with the database and credentials on every sentinel: kombu reads the
        database from the first one, Celery's result backend the credentials.

        >>> parse_sentinel("sentinel://:pw@h1;sentinel://h2:26380/3").url()
        'sentinel://:pw@h1:26379/3;sentinel://:pw@h2:26380/3'
        """
        auth = f"{self.username or ''}:{self.password}@" if self.password else (
            f"{self.username}@" if self.username else "")
        return ";".join(f"{SENTINEL_SCHEME}://{auth}{host}:{port}/{self.db}"
                        for host, port in self.sentinels)


def parse_sentinel(url: str) -> SentinelURL:
    """A Sentinel URL's sentinels, database and credentials (from the first sentinel that
    gives any); ValueError naming what is wrong.

    >>> parse_sentinel("sentinel://h1:26379;sentinel://h2:26379;sentinel://h3/2")
    SentinelURL(sentinels=(('h1', 26379), ('h2', 26379), ('h3', 26379)), db=2, username=None, password=None)
    """
    sentinels, db, username, password = [], 0, None, None
    for chunk in filter(None, (part.strip() for part in url.split(";"))):
        parts = urlsplit(chunk)
        if parts.scheme.lower() != SENTINEL_SCHEME or not parts.hostname:
            raise ValueError(f"a Sentinel URL lists sentinel://host:port parts separated by "
                             f"';', got a part {parts.scheme}://{parts.hostname or ''}")
        sentinels.append((parts.hostname, parts.port or SENTINEL_PORT))
        if parts.path.strip("/"):
            db = int(parts.path.strip("/"))
        if password is None and parts.password is not None:
            username, password = parts.username or None, unquote(parts.password)
    if not sentinels:
        raise ValueError("a Sentinel URL names no sentinel")
    return SentinelURL(tuple(sentinels), db, username, password)


def client(url: str, **options) -> redis.Redis:
    """A client of the Redis ``url`` names (``options`` as for ``redis.Redis``): for a Sentinel
    URL, of whichever server is the primary at each connection."""
    if not is_sentinel(url):
        return redis.Redis.from_url(url, **options)
    spec = parse_sentinel(url)
    # The sentinels are asked with the same timeouts, so a dead one costs no more than a
    # dead primary would.
    timeouts = {name: options[name] for name in ("socket_timeout", "socket_connect_timeout")
                if options.get(name) is not None}
    sentinel = Sentinel(list(spec.sentinels), sentinel_kwargs=timeouts)
    credentials = {"password": spec.password, "username": spec.username}
    return sentinel.master_for(sentinel_master(), db=spec.db, **credentials, **options)


def celery_settings(url: str) -> dict:
    """Celery's and RedBeat's Redis settings for ``url``: the broker and result backend URLs,
    their transport options' additions, and RedBeat's URL and options (its password in the
    options, which Celery masks when it shows a worker's settings, as it does not the URL).
    """
    if not is_sentinel(url):
        redbeat_url, password = split_password(url)
        return {"broker_url": url, "result_backend": url, "transport_options": {},
                "redbeat_redis_url": redbeat_url,
                "redbeat_redis_options": {"password": password} if password else {}}
    spec = parse_sentinel(url)
    master = sentinel_master()
    redbeat = {"sentinels": list(spec.sentinels), "service_name": master, "db": spec.db}
    if spec.password:
        redbeat["password"] = spec.password
    if spec.username:
        redbeat["username"] = spec.username
    # RedBeat takes the Sentinel branch for a URL of this scheme, and only shows the URL (in
    # beat's banner, parsed as one host): the first sentinel stands for them all.
    host, port = spec.sentinels[0]
    return {"broker_url": spec.url(), "result_backend": spec.url(),
            "transport_options": {"master_name": master},
            "redbeat_redis_url": f"redis-sentinel://{host}:{port}/{spec.db}",
            "redbeat_redis_options": redbeat}
