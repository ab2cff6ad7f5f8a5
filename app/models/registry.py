"""The model registry: every trained version, saved so that a crash can never corrupt it.

Layout under ``PIPELINE_HOME/models``::

    v000007.joblib        the fitted estimator
    v000007.json          its metadata, with the artifact's sha256; writing it commits v7
    LATEST                the newest committed version: a cheap marker for readers to poll
    batches/<batch_id>    the version that trained a batch, so a batch is never trained twice

Each file is written to a temporary name, fsynced and renamed. Versions are created with an
exclusive rename, so two writers can never both produce version 7. A version counts only once
its metadata exists, so a crash mid-save leaves at worst an orphan artifact that nothing reads
and the next save removes.
"""

from __future__ import annotations

import hashlib
import io
import json
import platform
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata as package_metadata
from pathlib import Path

import joblib

from app.atomic import atomic_create, write_text
from app.data.lake import check_batch_id

_METADATA = re.compile(r"v(\d+)\.json")
_LIBRARIES = ("scikit-learn", "numpy", "pandas", "joblib")


class VersionNotFound(LookupError):
    """No committed model has this version."""


class CorruptModel(RuntimeError):
    """A model file does not match the checksum recorded when it was saved."""


@dataclass(frozen=True)
class LoadedModel:
    version: int
    model: object
    metadata: dict


def _artifact_name(version: int) -> str:
    return f"v{version:06d}.joblib"


def _metadata_name(version: int) -> str:
    return f"v{version:06d}.json"


class ModelRegistry:
    def __init__(self, root: Path):
        self.root = Path(root)

    # -- reading ----------------------------------------------------------------------------

    def versions(self) -> list[int]:
        """Committed versions, oldest first."""
        if not self.root.is_dir():
            return []
        found = (_METADATA.fullmatch(entry.name) for entry in self.root.iterdir())
        return sorted(int(match.group(1)) for match in found if match)

    def latest_version(self) -> int | None:
        """The newest committed version, from the directory itself (the marker may lag)."""
        versions = self.versions()
        return versions[-1] if versions else None

    @property
    def marker_path(self) -> Path:
        return self.root / "LATEST"

    def marked_version(self) -> int | None:
        """The version the LATEST marker names: cheap, but may lag a crash by one save."""
        try:
            return int(self.marker_path.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    def metadata(self, version: int) -> dict:
        try:
            return json.loads((self.root / _metadata_name(version)).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise VersionNotFound(f"model version {version} does not exist") from None

    def list(self, limit: int | None = None) -> list[dict]:
        """Metadata of committed versions, newest first."""
        newest_first = self.versions()[::-1]
        return [self.metadata(version) for version in newest_first[:limit]]

    def load(self, version: int | None = None) -> LoadedModel:
        """Load a version (the newest by default) after checking its sha256.

        The bytes that are hashed are the bytes unpickled, so a file swapped in between cannot
        slip through.
        """
        if version is None:
            version = self.latest_version()
            if version is None:
                raise VersionNotFound("no model has been trained yet")
        metadata = self.metadata(version)
        path = self.root / metadata["artifact"]
        try:
            payload = path.read_bytes()
        except FileNotFoundError:
            raise CorruptModel(f"model version {version}: artifact {path.name} is missing") from None
        digest = hashlib.sha256(payload).hexdigest()
        if digest != metadata["sha256"]:
            raise CorruptModel(
                f"model version {version}: sha256 of {path.name} is {digest}, "
                f"expected {metadata['sha256']}"
            )
        return LoadedModel(version, joblib.load(io.BytesIO(payload)), metadata)

    def version_for_batch(self, batch_id: str) -> int | None:
        """The version that trained ``batch_id``, or None if it was never trained."""
        try:
            return int((self.root / "batches" / check_batch_id(batch_id)).read_text())
        except FileNotFoundError:
            pass
        # A crash between committing a version and recording its batch leaves only the
        # newest version unrecorded: its metadata says which batch it was.
        latest = self.latest_version()
        if latest is not None and self.metadata(latest).get("batch_id") == batch_id:
            self._record_batch(batch_id, latest)
            return latest
        return None

    # -- writing ----------------------------------------------------------------------------

    def save(self, model, *, batch_id: str, parent_version: int | None, metrics: dict,
             n_batch: int) -> dict:
        """Save ``model`` as the next version and return its metadata.

        Callers serialise saves (the train lock). Should two run at once anyway, the exclusive
        create makes the later one fail with ``FileExistsError`` instead of overwriting.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        self._remove_leftovers()
        version = self._next_version()
        artifact = self.root / _artifact_name(version)
        buffer = io.BytesIO()
        joblib.dump(model, buffer)
        payload = buffer.getvalue()
        atomic_create(artifact, lambda temp: temp.write_bytes(payload))

        metadata = {
            "version": version,
            "created_at": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
            "batch_id": batch_id,
            "parent_version": parent_version,
            "n_batch": n_batch,
            "n_samples_seen": int(model.n_samples_seen_),
            "metrics": metrics,
            "artifact": artifact.name,
            "sha256": hashlib.sha256(payload).hexdigest(),
            "size_bytes": len(payload),
            "estimator": f"{type(model).__module__}.{type(model).__qualname__}",
            "params": model.get_params(),
            "python": platform.python_version(),
            "libraries": {name: package_metadata.version(name) for name in _LIBRARIES},
        }
        write_text(self.root / _metadata_name(version), json.dumps(metadata, indent=2),
                   exclusive=True)
        self._record_batch(batch_id, version)
        write_text(self.marker_path, f"{version}\n")
        return metadata

    def _remove_leftovers(self) -> None:
        """Delete what crashed saves left: temporary files and artifacts never committed.

        Only the holder of the train lock saves, so nothing else is writing these now.
        """
        committed = {_artifact_name(version) for version in self.versions()}
        orphans = [path for path in self.root.glob("v*.joblib") if path.name not in committed]
        for path in [*self.root.glob(".*.tmp"), *self.root.glob("batches/.*.tmp"), *orphans]:
            path.unlink(missing_ok=True)

    def _next_version(self) -> int:
        return (self.latest_version() or 0) + 1

    def _record_batch(self, batch_id: str, version: int) -> None:
        write_text(self.root / "batches" / check_batch_id(batch_id), str(version))
