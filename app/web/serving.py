"""The model a web process serves, kept current without a restart.

Each web process (each gunicorn worker) has one :class:`ModelHolder`. A request asks it for
:meth:`~ModelHolder.current`, which is the newest verified version. At most every
``check_interval`` seconds that call also looks at the registry's ``LATEST`` marker with one
``stat``; only when the marker has changed does it read the version number, and only a newer
version is loaded, checked and swapped in. So the model file is read once per version, never
per request, and a version saved now is served by any request that arrives
``check_interval`` plus one load later.

Swapping is one assignment of an immutable :class:`Serving` (model, version and metadata
together), made under a lock that also keeps two threads from loading the same version: a
request sees the old model or the new one, whole, and the version it reports is the one whose
model answered. While one thread loads, the others keep answering with the old model.

A version that fails to load or to verify is refused: logged once, remembered, never retried,
and the previous version keeps serving. Nothing is loaded at import or when the app is built:
the first request loads the model, so a process forked by gunicorn loads its own.
"""

from __future__ import annotations

import math
import os
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from flask import Flask, current_app
from loguru import logger
from werkzeug.exceptions import ServiceUnavailable

from app.models.registry import LoadedModel, ModelRegistry

# A record every model must answer with a finite number before it is served.
PROBE = {"idade": 35, "cidade": "São Paulo", "cargo": "Professor"}
# At start, or when the newest version is refused, older versions are tried down to this many.
MAX_FALLBACK_TRIES = 5
_UNSEEN = object()


class RefusedModel(RuntimeError):
    """A version loaded but is not something this app can serve."""


@dataclass(frozen=True)
class Serving:
    """One loaded version and when this process started serving it."""

    loaded: LoadedModel
    loaded_at: str

    @property
    def version(self) -> int:
        return self.loaded.version

    @property
    def model(self):
        return self.loaded.model

    @property
    def metadata(self) -> dict:
        return self.loaded.metadata


def verify(loaded: LoadedModel) -> None:
    """Raise :class:`RefusedModel` unless ``loaded`` can answer the fast path sensibly."""
    predict = getattr(loaded.model, "predict_records", None)
    if not callable(predict):
        raise RefusedModel(f"a {type(loaded.model).__name__} has no predict_records")
    answer = predict([PROBE])
    if len(answer) != 1 or not math.isfinite(answer[0]):
        raise RefusedModel(f"its answer to a probe record is {answer!r}")


class ModelHolder:
    def __init__(self, registry: ModelRegistry, check_interval: float = 0.25):
        self.registry = registry
        self.check_interval = check_interval
        self._lock = threading.Lock()
        self._serving: Serving | None = None
        self._marker = _UNSEEN  # the marker's stat signature when last looked at
        self._next_check = 0.0  # time.monotonic() after which the marker is looked at again
        self.refused: dict[int, str] = {}  # version -> why, so each is logged once

    def current(self) -> Serving | None:
        """The newest verified version, or None while no version has been trained."""
        if time.monotonic() >= self._next_check:
            self._refresh()
        return self._serving

    def require(self) -> Serving:
        """:meth:`current`, or a 503 for the client while there is nothing to serve."""
        serving = self.current()
        if serving is None:
            raise ServiceUnavailable(
                "no model has been trained yet: the first version appears a few seconds after "
                "the pipeline starts", retry_after=5)
        return serving

    def _refresh(self) -> None:
        # With nothing to serve yet, wait for a thread that is loading; otherwise answer with
        # the current model rather than queue behind the load.
        if not self._lock.acquire(blocking=self._serving is None):
            return
        try:
            if time.monotonic() < self._next_check:
                return  # another thread looked while this one waited for the lock
            try:
                marker = self._marker_signature()
                if marker != self._marker:
                    self._load_newest(first=self._marker is _UNSEEN)
                    self._marker = marker
            except OSError as error:  # the models folder itself is unreadable: try again later
                logger.warning("cannot read the model registry at {}: {}", self.registry.root, error)
            finally:
                self._next_check = time.monotonic() + self.check_interval
        finally:
            self._lock.release()

    def _marker_signature(self):
        try:
            stat = os.stat(self.registry.marker_path)
        except FileNotFoundError:
            return None
        return stat.st_ino, stat.st_mtime_ns, stat.st_size

    def _load_newest(self, first: bool) -> None:
        # At start the directory is the truth (the marker may lag a crash); later the marker is
        # rewritten after every save and names the newest version in a few bytes.
        newest = (None if first else self.registry.marked_version()) or self.registry.latest_version()
        serving = self._serving.version if self._serving else 0
        if newest is None or newest <= serving or newest in self.refused:
            return
        if self._try_load(newest):
            return
        # The newest is refused: the newest older one that loads is still better than nothing
        # or than what is served now.
        older = [v for v in self.registry.versions() if serving < v < newest and v not in self.refused]
        for version in older[::-1][:MAX_FALLBACK_TRIES]:
            if self._try_load(version):
                return

    def _try_load(self, version: int) -> bool:
        try:
            loaded = self.registry.load(version)
            verify(loaded)
        except Exception as error:  # noqa: BLE001 - joblib on a bad file can raise anything
            reason = f"{type(error).__name__}: {error}"
            self.refused[version] = reason
            kept = f"version {self._serving.version} keeps serving" if self._serving else "nothing to serve"
            logger.error("refused model version {} ({}); {}", version, reason, kept)
            return False
        previous = self._serving.version if self._serving else None
        self._serving = Serving(loaded, datetime.now(timezone.utc).isoformat(timespec="milliseconds"))
        logger.info("serving model version {} (was {}) from {}", version, previous,
                    self.registry.root)
        return True

    def status(self) -> dict:
        """What ``/health`` says about the model."""
        serving = self.current()
        return {
            "model_version": serving.version if serving else None,
            "model_created_at": serving.metadata.get("created_at") if serving else None,
            "n_samples_seen": serving.metadata.get("n_samples_seen") if serving else None,
            "loaded_at": serving.loaded_at if serving else None,
            "refused_versions": sorted(self.refused),
        }


def init_app(app: Flask) -> None:
    """Give ``app`` a holder for the registry under ``PIPELINE_HOME``; nothing is loaded yet."""
    registry = ModelRegistry(Path(app.config["PIPELINE_HOME"]) / "models")
    app.extensions["model_holder"] = ModelHolder(registry, app.config["MODEL_CHECK_INTERVAL"])


def get_model_holder() -> ModelHolder:
    """The current app's holder (only inside a request or app context)."""
    return current_app.extensions["model_holder"]
