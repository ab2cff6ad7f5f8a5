"""The model a web process serves, kept current without a restart.

Each web process (each gunicorn worker) has one :class:`ModelHolder`. A request asks it for
:meth:`~ModelHolder.current`: the version the serving state names (see
:mod:`app.lifecycle.serving`: the newest version the gate promoted, or the pinned one). At most
every ``check_interval`` seconds that call also looks at the two markers that change when a
version is published or an operator pins or follows (one cheap ``stat`` or ``HEAD`` each); only
when one has changed is the serving state read again, and only a different version is loaded,
checked and swapped in. So a model is read once per version, never per request.

Swapping is one assignment of an immutable :class:`ServedModel` (model, version and metadata
together), made under a lock that also keeps two threads from loading the same version: a
request sees the old model or the new one, whole, and the version it reports is the one whose
model answered. While one thread loads, the others keep answering with the old model.

A version that fails to load or to verify is refused: logged once, remembered, never retried,
and the previous version keeps serving (in follow mode the newest older promoted version is
tried instead). Nothing is loaded at import or when the app is built: the first request loads
the model, so a process forked by gunicorn loads its own.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone

from flask import Flask, current_app
from loguru import logger
from werkzeug.exceptions import ServiceUnavailable

from app.dataset import Dataset
from app.lifecycle.home import Home
from app.lifecycle.serving import ServingState
from app.models.registry import CorruptModel, LoadedModel, VersionNotFound
from app.models.versions import VersionInfo
from app.notices import Listener, Notifier

# When the newest promoted version is refused, older ones are tried down to this many.
MAX_FALLBACK_TRIES = 5
_UNSEEN = object()


class RefusedModel(RuntimeError):
    """A version loaded but is not something this app can serve."""


@dataclass(frozen=True)
class ServedModel:
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
    def metadata(self) -> VersionInfo:
        return self.loaded.metadata


def verify(loaded: LoadedModel, dataset: Dataset) -> None:
    """Raise :class:`RefusedModel` unless ``loaded`` predicts ``dataset``'s target from its
    features and answers the fast path sensibly (a finite number for its probe record)."""
    model = loaded.model
    predict, probe = getattr(model, "predict_records", None), getattr(model, "probe", None)
    if not callable(predict) or not callable(probe):
        raise RefusedModel(f"a {type(model).__name__} has no predict_records or probe")
    design = model.design_
    if (design.target, set(design.features)) != (dataset.target, set(dataset.feature_names)):
        raise RefusedModel(f"it predicts {design.target} from {', '.join(design.features)}; "
                           f"the dataset in force ({dataset.name}) is {dataset.target} from "
                           f"{', '.join(dataset.feature_names)}")
    answer = predict([probe()])
    if len(answer) != 1 or not math.isfinite(answer[0]):
        raise RefusedModel(f"its answer to a probe record is {answer!r}")


class ModelHolder:
    """``notices_from``: a Redis URL whose notices (see :mod:`app.notices`) make the holder
    look at once, from a thread of its own, instead of at the next poll."""

    def __init__(self, home: Home, check_interval: float = 0.25, notices_from: str | None = None):
        self.home = home
        self.notices_from = notices_from
        self._listener: Listener | None = None
        self.registry = home.registry
        self.check_interval = check_interval
        self._lock = threading.Lock()
        self._served: ServedModel | None = None
        self._markers = _UNSEEN  # the markers' signatures when last looked at
        self._next_check = 0.0  # time.monotonic() after which the markers are looked at again
        self.state: ServingState | None = None
        self.refused: dict[int, str] = {}  # version -> why, so each is logged once

    def current(self) -> ServedModel | None:
        """The version to serve, loaded; None while there is none."""
        if self._listener is None and self.notices_from:
            self._listen()
        if time.monotonic() >= self._next_check:
            self._refresh()
        return self._served

    def _listen(self) -> None:
        # Started by the first request, not when the app is built: gunicorn forks workers
        # after importing, and a thread does not survive a fork.
        with self._lock:
            if self._listener is None:
                self._listener = Listener(self.notices_from, self.home.url, self._on_notice)
                self._listener.start()

    def _on_notice(self, notice: dict | None) -> None:
        """Load what the notice announces now, so no request waits for it."""
        version = (notice or {}).get("event") == "version" and (notice or {}).get("version")
        if isinstance(version, int) and self._take_published(version):
            return
        self._refresh(force=True)

    def _take_published(self, version: int) -> bool:
        """In follow mode, serve a just-published ``version`` reading nothing but it.

        Its metadata carries the gate's verdict, so the serving state need not be read again
        (on object storage that is most of the requests a switch makes). The notice itself is
        not trusted: only the version's own files decide. False when the long way must look.
        """
        with self._lock:
            state, served = self.state, self._served
            if (state is None or state.mode != "follow" or version in self.refused
                    or (served is not None and version <= served.version)):
                return False
            try:
                metadata = self.registry.metadata(version)
            except (VersionNotFound, CorruptModel, OSError):
                return False  # the long way decides, and logs why
            # A refused or challenger-lost version is not loaded at all: its artifact can be a
            # model whose first load costs a second (skops, a tree ensemble), and meanwhile
            # the notice of the version that is served would wait for this lock.
            if not metadata.gate_passed:
                return True
            loaded = self._load_checked(version, metadata)
            if loaded is None:
                return False
            self._swap(loaded)
            self.state = replace(state, version=version)
            return True

    def require(self) -> ServedModel:
        """:meth:`current`, or a 503 for the client while there is nothing to serve."""
        served = self.current()
        if served is None:
            raise ServiceUnavailable(
                "no model has been trained yet: the first version appears a few seconds after "
                "the pipeline starts", retry_after=5)
        return served

    def refresh_now(self) -> None:
        """Look at the markers now, waiting for whoever is looking: after a change this
        process made, the version its answer names is the one the next request gets (a
        request only takes the lock if it is free, and the notice listener may hold it)."""
        self._refresh(force=True)

    def _refresh(self, force: bool = False) -> None:
        # With nothing to serve yet, wait for a thread that is loading; otherwise answer with
        # the current model rather than queue behind the load. A notice always waits: it
        # must look after whoever is looking now, or its news could be missed until the poll.
        if not self._lock.acquire(blocking=force or self._served is None):
            return
        try:
            if not force and time.monotonic() < self._next_check:
                return  # another thread looked while this one waited for the lock
            try:
                markers = self._marker_signature()
                if markers != self._markers:
                    self._follow_state()
                    self._markers = markers
            except OSError as error:  # the storage itself is unreadable: try again later
                logger.warning("cannot read the model registry at {}: {}", self.home.url, error)
            finally:
                self._next_check = time.monotonic() + self.check_interval
        finally:
            self._lock.release()

    def _marker_signature(self):
        storage = self.home.storage
        return (storage.signature(self.registry.marker_key),
                storage.signature(self.home.serving.marker_key))

    def _follow_state(self) -> None:
        self.state = self.home.serving.state()
        wanted = self.state.version
        if wanted is None or (self._served and self._served.version == wanted):
            return
        if wanted not in self.refused and self._try_load(wanted):
            return
        if self.state.mode != "follow":
            return  # a pinned version that cannot be served: keep what is served, say so
        # The newest promoted version is refused: the newest older one that loads is still
        # better than nothing.
        below = wanted
        for _ in range(MAX_FALLBACK_TRIES):
            below = self.home.serving.newest_promoted(below=below)
            if below is None or (self._served and below <= self._served.version):
                return
            if below not in self.refused and self._try_load(below):
                return

    def _try_load(self, version: int) -> bool:
        loaded = self._load_checked(version)
        if loaded is None:
            return False
        self._swap(loaded)
        return True

    def _load_checked(self, version: int, metadata: dict | None = None) -> LoadedModel | None:
        """``version`` loaded and verified, or None after logging why it is refused."""
        try:
            loaded = self.registry.load(version, metadata)
            verify(loaded, self.home.dataset)
        except Exception as error:  # noqa: BLE001 - whatever is wrong, it is not served
            reason = f"{type(error).__name__}: {error}"
            self.refused[version] = reason
            kept = f"version {self._served.version} keeps serving" if self._served else "nothing to serve"
            logger.error("refused model version {} ({}); {}", version, reason, kept)
            return None
        return loaded

    def _swap(self, loaded: LoadedModel) -> None:
        version = loaded.version
        previous = self._served.version if self._served else None
        self._served = ServedModel(loaded, datetime.now(timezone.utc).isoformat(timespec="milliseconds"))
        logger.info("serving model version {} (was {}) from {}", version, previous, self.home.url)

    def status(self) -> dict:
        """What ``/health`` says about the model."""
        served = self.current()
        return {
            "model_version": served.version if served else None,
            "model_created_at": served.metadata.created_at if served else None,
            "n_samples_seen": served.metadata.n_samples_seen if served else None,
            "loaded_at": served.loaded_at if served else None,
            "serving_mode": self.state.mode if self.state else None,
            "refused_versions": sorted(self.refused),
        }


def init_app(app: Flask) -> None:
    """Give ``app`` a holder for the registry under ``PIPELINE_HOME``; nothing is loaded yet."""
    redis_url = app.config["REDIS_URL"]
    home = Home(app.config["PIPELINE_HOME"], dataset=app.config["DATASET"])
    if app.config["MODEL_NOTICES"]:
        home.notify = Notifier(redis_url, home.url)
    app.extensions["home"] = home
    app.extensions["model_holder"] = ModelHolder(
        home, app.config["MODEL_CHECK_INTERVAL"],
        notices_from=redis_url if app.config["MODEL_NOTICES"] else None)


def get_home() -> Home:
    """The current app's :class:`~app.lifecycle.home.Home`."""
    return current_app.extensions["home"]


def get_model_holder(app: Flask | None = None) -> ModelHolder:
    """``app``'s holder; by default the current app's (only inside a request or app context)."""
    return (app or current_app).extensions["model_holder"]
