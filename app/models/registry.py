"""The model registry: every version, published so that neither a crash nor a writer can corrupt it.

Layout under ``models/`` in the storage::

    artifacts/v000000042-<sha>.json   the model: its parameters and statistics, as JSON
    artifacts/v000000043-<sha>.skops  or a challenger, in skops' format (trusted types only)
    versions/000000042.json           its metadata; creating this file publishes version 42
    versions/HEAD                     a hint of the newest version, for readers to poll

Publishing writes the artifact first, then creates the metadata exclusively (see
:mod:`app.journal`): a version exists only once its metadata does, two writers can never both
publish version 42, and version numbers have no gaps. A crash mid-publish leaves at worst an
artifact that no metadata names, which :meth:`ModelRegistry.sweep` removes.

Nothing is ever unpickled. A linear model is numbers in JSON; a challenger is loaded by skops
with an explicit list of trusted types. The metadata's sha256 catches a damaged file, but it is
not what keeps code from running: whoever can write a file can rewrite its checksum too.
"""

from __future__ import annotations

import functools

import hashlib
import json
import platform
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata as package_metadata
from typing import Any

from app.journal import Journal
from app.models.regressor import FIRST_FORMAT, FORMAT as LINEAR_FORMAT, IncrementalRidge
from app.models.versions import VersionInfo
from app.storage import Storage

SKOPS_FORMAT = "skops"
_LIBRARIES = ("scikit-learn", "numpy", "pandas", "skops")


class VersionNotFound(LookupError):
    """No published model has this version."""


class CorruptModel(RuntimeError):
    """A version's artifact is missing, damaged, or not a model this code will load."""


class VersionTaken(RuntimeError):
    """Another writer published this version number first."""


@dataclass(frozen=True)
class LoadedModel:
    version: int
    model: Any
    metadata: VersionInfo


@functools.cache
def _library_versions() -> dict[str, str]:
    """Versions of the libraries a model was made with (read once: it costs a disk scan)."""
    found = {}
    for name in _LIBRARIES:
        try:
            found[name] = package_metadata.version(name)
        except package_metadata.PackageNotFoundError:
            continue
    return found


def encode_model(model) -> tuple[str, bytes]:
    """``(format, bytes)`` for ``model``: JSON for the linear model, skops for a challenger."""
    if isinstance(model, IncrementalRidge):
        return LINEAR_FORMAT, json.dumps(model.to_document(), separators=(",", ":")).encode()
    import skops.io

    return SKOPS_FORMAT, skops.io.dumps(model)


def decode_model(format_: str, payload: bytes):
    """The model in ``payload``; ``ValueError`` for anything that is not one we wrote."""
    if format_ in (LINEAR_FORMAT, FIRST_FORMAT):
        return IncrementalRidge.from_document(json.loads(payload))
    if format_ == SKOPS_FORMAT:
        from app.models.challenger import load_skops

        return load_skops(payload)
    raise ValueError(f"unknown model format {format_!r}")


class ModelRegistry:
    def __init__(self, storage: Storage):
        self.storage = storage
        self.journal = Journal(storage, "models/versions")

    # -- reading ----------------------------------------------------------------------------

    @property
    def marker_key(self) -> str:
        """The key readers poll: it is rewritten after every publication."""
        return self.journal.head_key

    def latest_version(self) -> int | None:
        """The newest published version, or None before the first."""
        return self.journal.head() or None

    def metadata(self, version: int) -> VersionInfo:
        """``version``'s metadata; :class:`VersionNotFound`, or :class:`CorruptModel` when its
        file is not JSON (damaged by hand, never by a publication)."""
        try:
            return VersionInfo.from_dict(self.journal.get(version))
        except FileNotFoundError:
            raise VersionNotFound(f"model version {version} does not exist") from None
        except (ValueError, TypeError, AttributeError) as error:
            raise CorruptModel(f"model version {version}: metadata is unreadable ({error})") from None

    def find(self, version: int) -> VersionInfo | None:
        """``version``'s metadata, or None when there is none or it cannot be read."""
        try:
            return self.metadata(version)
        except (VersionNotFound, CorruptModel):
            return None

    def exists(self, version: int) -> bool:
        return version >= 1 and self.storage.exists(self.journal.key(version))

    # -- the walks: every reader of several versions goes through one of these ---------------

    def down(self, start: int | None = None, stop: int = 0) -> Iterator[VersionInfo]:
        """The versions from ``start`` (the newest by default) down to ``stop`` (excluded),
        passing over numbers whose metadata is gone or unreadable."""
        start = (self.latest_version() or 0) if start is None else start
        for version in range(start, stop, -1):
            info = self.find(version)
            if info is not None:
                yield info

    def lineage(self, info: VersionInfo) -> Iterator[VersionInfo]:
        """``info``, then each version it builds on, up to the start of its drift window (or
        to a parent that cannot be read)."""
        window = info.window_start_seq
        while True:
            yield info
            if not info.parent_version:
                return
            info = self.find(info.parent_version)
            if info is None or info.window_start_seq != window:
                return

    def newest_first(self, before: int | None = None) -> Iterator[VersionInfo]:
        """Metadata of versions from the newest (or from ``before - 1``) down."""
        newest = self.latest_version() or 0
        return self.down(newest if before is None else min(before - 1, newest))

    def list(self, limit: int | None = None) -> list[VersionInfo]:
        listed = []
        for info in self.newest_first():
            if limit is not None and len(listed) >= limit:
                break
            listed.append(info)
        return listed

    def load(self, version: int | None = None,
             metadata: VersionInfo | None = None) -> LoadedModel:
        """Load a version (the newest by default); :class:`CorruptModel` if it cannot be.

        ``metadata``: the version's, when the caller has just read it (one read fewer).
        """
        if version is None:
            version = self.latest_version()
            if version is None:
                raise VersionNotFound("no model has been trained yet")
        if metadata is None:
            metadata = self.metadata(version)
        key = f"models/artifacts/{metadata.artifact}"
        try:
            payload = self.storage.read_bytes(key)
        except FileNotFoundError:
            raise CorruptModel(f"model version {version}: artifact {metadata.artifact} "
                               "is missing (pruned by retention, or deleted)") from None
        except ValueError as error:
            raise CorruptModel(f"model version {version}: {error}") from None
        digest = hashlib.sha256(payload).hexdigest()
        if digest != metadata.sha256:
            raise CorruptModel(f"model version {version}: sha256 of its artifact is {digest}, "
                               f"expected {metadata.sha256}")
        try:
            model = decode_model(metadata.format, payload)
        except Exception as error:  # noqa: BLE001 - whatever the bytes are, they are not served
            raise CorruptModel(f"model version {version}: not a model this code loads "
                               f"({type(error).__name__}: {error})") from None
        return LoadedModel(version, model, metadata)

    # -- writing ----------------------------------------------------------------------------

    def publish(self, model, version: int, **fields) -> VersionInfo:
        """Publish ``model`` as ``version`` with metadata ``fields`` (:class:`VersionInfo`'s,
        the registry fills in the file's); :class:`VersionTaken` if another writer has that
        number. Returns the metadata."""
        format_, payload = encode_model(model)
        digest = hashlib.sha256(payload).hexdigest()
        suffix = "json" if format_ == LINEAR_FORMAT else "skops"
        artifact = f"v{version:09d}-{digest[:16]}.{suffix}"
        seen = int(getattr(model, "n_samples_seen_", fields.pop("n_samples_seen", 0)))
        metadata = VersionInfo(
            version=version,
            created_at=datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
            **fields,
            n_samples_seen=seen,
            artifact=artifact,
            format=format_,
            sha256=digest,
            size_bytes=len(payload),
            estimator=f"{type(model).__module__}.{type(model).__qualname__}",
            params={key: value for key, value in model.get_params().items()
                    if isinstance(value, (int, float, str, bool, type(None)))},
            python=platform.python_version(),
            libraries=dict(_library_versions()),
        )  # built first: metadata with a field VersionInfo does not have leaves no artifact
        self.storage.write_bytes(f"models/artifacts/{artifact}", payload)
        try:
            self.journal.claim(version, metadata.to_dict())
        except FileExistsError:
            # Two writers of the same step (a message delivered twice) write the same bytes
            # under the same name: the winner's version names that file, so it stays.
            if not self._names(version, artifact):
                self.storage.delete(f"models/artifacts/{artifact}")
            raise VersionTaken(f"model version {version} was published by another writer") from None
        return metadata

    def prune_artifact(self, version: int) -> bool:
        """Delete ``version``'s artifact (its metadata stays); whether there was one."""
        info = self.find(version)
        artifact = info.artifact if info is not None else None
        if artifact is None:
            return False
        key = f"models/artifacts/{artifact}"
        if not self.storage.exists(key):
            return False
        self.storage.delete(key)
        return True

    def sweep(self) -> int:
        """Remove artifacts no version names, which crashed publications left.

        Only artifacts older than the newest version's are candidates, so a publication under
        way (its artifact written, its metadata not yet) is never swept.
        """
        removed = 0
        newest = self.latest_version() or 0
        for name in self.storage.list("models/artifacts"):
            try:
                version = int(name[1:10])
            except ValueError:
                continue
            if version < newest and not self._names(version, name):
                self.storage.delete(f"models/artifacts/{name}")
                removed += 1
        return removed

    def _names(self, version: int, artifact: str) -> bool:
        info = self.find(version)
        return info is not None and info.artifact == artifact
