"""Settings read from the environment: the one place that parses them.

Every value is read when :func:`load` is called, not at import, so a test or a child process
that sets the environment first always sees its own values.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


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


@dataclass(frozen=True)
class Settings:
    redis_url: str
    pipeline_home: Path
    batch_size: int
    generate_every: int
    debug: bool

    @property
    def data_dir(self) -> Path:
        return self.pipeline_home / "data"

    @property
    def models_dir(self) -> Path:
        return self.pipeline_home / "models"

    @property
    def reports_dir(self) -> Path:
        return self.pipeline_home / "reports"


def load() -> Settings:
    return Settings(
        redis_url=os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0",
        pipeline_home=Path(os.environ.get("PIPELINE_HOME") or "./var").resolve(),
        batch_size=_positive_int("BATCH_SIZE", 1000),
        generate_every=_positive_int("GENERATE_EVERY", 5),
        debug=os.environ.get("PIPELINE_DEBUG", "") not in ("", "0", "false"),
    )
