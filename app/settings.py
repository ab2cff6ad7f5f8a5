"""Settings read from the environment: the one place that parses them.

Every value is read when :func:`load` is called, not at import, so a test or a child process
that sets the environment first always sees its own values.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit, urlunsplit

if TYPE_CHECKING:  # fsspec is slow to import, and the command line's sample never needs it
    from app.dataset import Dataset
    from app.storage import Storage

DRIFT_SCENARIOS = ("none", "sudden", "gradual", "covariate")
# The most records one batch may hold (BATCH_SIZE, a generate task's batch_size, a batch a
# command writes to the store directly).
MAX_BATCH_SIZE = 1_000_000
# The roles `make run` can start on one host; `redis` is the private Redis (see app.runner).
SERVICES = ("redis", "worker", "beat", "web", "flower")
# The primary's name the sentinels know, for a Sentinel REDIS_URL (see app.redis_client).
DEFAULT_SENTINEL_MASTER = "mymaster"


def _positive_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, got {raw!r}") from None
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {value}")
    return value


def _choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = os.environ.get(name) or default
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def _services(raw: str | None) -> tuple[str, ...]:
    """``SERVICES`` as a tuple in the canonical order; every role when unset or empty.

    >>> _services(" web , worker,web")
    ('worker', 'web')
    """
    if raw is None or not raw.strip():
        return SERVICES
    names = {name.strip() for name in raw.split(",") if name.strip()}
    unknown = sorted(names - set(SERVICES))
    if unknown:
        raise ValueError(f"SERVICES names unknown roles {', '.join(unknown)}: choose among "
                         f"{', '.join(SERVICES)}, comma-separated, got {raw!r}")
    return tuple(name for name in SERVICES if name in names)


def split_password(url: str) -> tuple[str, str | None]:
    """``url`` without its password, and the password (None when it has none).

    >>> split_password("redis://:s3cret@127.0.0.1:6379/0")
    ('redis://127.0.0.1:6379/0', 's3cret')
    >>> split_password("rediss://ops:s3cret@cache:6380/1")
    ('rediss://ops@cache:6380/1', 's3cret')
    >>> split_password("redis://127.0.0.1:6379/0")
    ('redis://127.0.0.1:6379/0', None)
    """
    parts = urlsplit(url)
    if parts.password is None:
        return url, None
    host = parts.netloc.rpartition("@")[2]
    netloc = f"{parts.username}@{host}" if parts.username else host
    return urlunsplit(parts._replace(netloc=netloc)), parts.password


MASK = "***"
# The environment's secrets: the passwords of the URLs these variables hold, and the values of
# these others (for a ``name:secret`` pair, the part after the first colon: the name is no secret).
SECRET_URL_VARIABLES = ("REDIS_URL", "PIPELINE_HOME", "AWS_ENDPOINT_URL", "PIPELINE_URL",
                        "FLASK_FLOWER_URL")
SECRET_VARIABLES = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "FLOWER_BASIC_AUTH",
                    "API_TOKEN")
# A shorter secret is too likely to be an ordinary word ("redis", "admin") to be masked wherever
# it appears in free text; it is still masked where a URL holds it.
MIN_SECRET_LENGTH = 8
# scheme://user:password@ ; the password may hold '@' (unquoted), never '/', ';' (which
# separates the URLs of a Sentinel list) or white space.
_URL_PASSWORD = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^\s:@/;]*:)[^\s/;]*@")
_SECRET_PARAMETER = re.compile(r"(?P<head>[?&][^=&\s]*(?:password|secret|token)[^=&\s]*=)[^&#;\s]*",
                               re.IGNORECASE)


def known_secrets() -> set[str]:
    """The secrets this process was given in its environment (see SECRET_VARIABLES), as they
    appear raw, URL-encoded in a URL and escaped in JSON, at least MIN_SECRET_LENGTH long."""
    found = set()
    for name in SECRET_URL_VARIABLES:
        for url in (os.environ.get(name) or "").split(";"):
            # A malformed URL must not make every log line fail; its password is still masked
            # by the URL pattern.
            with contextlib.suppress(ValueError):
                found.add(split_password(url)[1] or "")
    for name in SECRET_VARIABLES:
        # FLOWER_BASIC_AUTH may list several users: "ops:pw1,dev:pw2".
        for value in (os.environ.get(name) or "").split(","):
            found.add(value.partition(":")[2] or value)
    forms = {form for secret in found
             for form in (secret, unquote(secret), json.dumps(unquote(secret))[1:-1])}
    return {form for form in forms if len(form) >= MIN_SECRET_LENGTH}


def redact(text: str) -> str:
    """``text`` with every secret in it replaced by ``***``: the password of each URL, the value
    of each query parameter named like a password, secret or token, and each of
    :func:`known_secrets` wherever it appears. The one function every line, page and stored
    error goes through before it leaves a process.

    >>> redact("Redis at rediss://pipeline:s3cret@cache:6380/0?ssl_cert_reqs=required")
    'Redis at rediss://pipeline:***@cache:6380/0?ssl_cert_reqs=required'
    >>> redact("sentinel://:pw@h1:26379;sentinel://:pw@h2:26379/0")
    'sentinel://:***@h1:26379;sentinel://:***@h2:26379/0'
    >>> redact("redis://cache:6379/0?password=s3cret&db=1")
    'redis://cache:6379/0?password=***&db=1'
    """
    text = _SECRET_PARAMETER.sub(rf"\g<head>{MASK}", _URL_PASSWORD.sub(rf"\g<head>{MASK}@", text))
    for secret in sorted(known_secrets(), key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def fingerprint(url: str) -> str:
    """A short name for ``url`` that reveals nothing of it: two processes tell whether they use
    the same store or Redis by comparing these (``GET /status``).

    >>> fingerprint("redis://127.0.0.1:6379/0")
    '27399e8594c34d7c'
    """
    import hashlib

    return hashlib.sha256(url.encode()).hexdigest()[:16]


def home_url(raw: str) -> str:
    """``PIPELINE_HOME`` as a URL: an absolute path for a local folder, else as given.

    >>> home_url("s3://bucket/prefix/")
    's3://bucket/prefix'
    """
    if "://" in raw and not raw.startswith("file://"):
        return raw.rstrip("/")
    return str(Path(raw.removeprefix("file://")).resolve())


@dataclass(frozen=True)
class Settings:
    redis_url: str
    pipeline_home: str
    batch_size: int
    generate_every: int
    keep_versions: int
    keep_batches: int
    drift: str
    drift_after: int
    api_token: str | None
    debug: bool
    services: tuple[str, ...] = SERVICES
    log_json: bool = False
    log_file: str | None = None
    flower_port: int = 5555
    dataset_path: str | None = None
    inbox: str | None = None
    log_predictions: bool = False
    keep_predictions_days: int = 7
    redis_sentinel_master: str = DEFAULT_SENTINEL_MASTER

    @property
    def local_home(self) -> Path | None:
        """``PIPELINE_HOME`` as a folder of this machine, or None when it is object storage."""
        return None if "://" in self.pipeline_home else Path(self.pipeline_home)

    @property
    def system_log(self) -> Path | None:
        """The running system's log: ``LOG_FILE``, else ``logs/pipeline.log`` in a local home
        (``make run`` has its processes write there); None when neither applies."""
        if self.log_file:
            return Path(self.log_file)
        return None if self.local_home is None else self.local_home / "logs" / "pipeline.log"

    def storage(self) -> Storage:
        from app.storage import open_storage

        return open_storage(self.pipeline_home)

    def dataset(self) -> Dataset:
        """The declaration ``DATASET`` names (the built-in one when unset); a
        :class:`~app.dataset.DatasetError` naming the key when it cannot be used."""
        from app.dataset import load

        return load(self.dataset_path)

    @property
    def inbox_url(self) -> str:
        """``INBOX``, else the ``inbox`` folder of ``PIPELINE_HOME``."""
        return self.inbox or f"{self.pipeline_home}/inbox"


def sentinel_master() -> str:
    """The primary's name the sentinels know: ``REDIS_SENTINEL_MASTER``, else ``mymaster``.
    Alone, because every Redis client needs it and none needs the rest of the settings."""
    return os.environ.get("REDIS_SENTINEL_MASTER") or DEFAULT_SENTINEL_MASTER


def load() -> Settings:
    return Settings(
        redis_url=os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0",
        pipeline_home=home_url(os.environ.get("PIPELINE_HOME") or "./var"),
        batch_size=_positive_int("BATCH_SIZE", 1000),
        generate_every=_positive_int("GENERATE_EVERY", 5),
        keep_versions=_positive_int("KEEP_VERSIONS", 50),
        keep_batches=_positive_int("KEEP_BATCHES", 1000),
        drift=_choice("DRIFT", "none", DRIFT_SCENARIOS),
        drift_after=_positive_int("DRIFT_AFTER", 100),
        api_token=os.environ.get("API_TOKEN") or None,
        debug=_flag("PIPELINE_DEBUG"),
        services=_services(os.environ.get("SERVICES")),
        log_json=_flag("LOG_JSON"),
        log_file=os.environ.get("LOG_FILE") or None,
        flower_port=_positive_int("FLOWER_PORT", 5555),
        dataset_path=os.environ.get("DATASET") or None,
        inbox=home_url(os.environ["INBOX"]) if os.environ.get("INBOX") else None,
        log_predictions=_flag("LOG_PREDICTIONS"),
        keep_predictions_days=_positive_int("KEEP_PREDICTIONS_DAYS", 7),
        redis_sentinel_master=sentinel_master(),
    )


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")
