"""The learning curve: each version's prequential scores, drift and gate verdict, oldest first.

One reading of the registry for the model page's chart (app/web/page.py) and the evaluation
report's plot (app/observe/report.py), so the two always show the same curve.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.models.registry import CorruptModel, VersionNotFound

# Versions shown at most: the newest this many (older ones stay in /models).
CURVE_VERSIONS = 300


@dataclass(frozen=True)
class Point:
    version: int
    created_at: str
    n_samples_seen: int
    mae: float | None  # prequential: the version before it, on this version's batch, unseen
    mse: float | None
    r2: float | None
    drift: bool  # the relation between the features and the target changed: refit
    shift: str | None  # only who arrived changed (how, in words): the model learnt on
    refused: bool  # the promotion gate refused to serve it
    forgot: str | None  # the batch a forget step removed, for such a version

    @classmethod
    def of(cls, metadata: dict) -> Point:
        scores = (metadata.get("metrics") or {}).get("prequential") or {}
        gate = metadata.get("gate") or {}
        return cls(version=metadata["version"], created_at=metadata.get("created_at", ""),
                   n_samples_seen=int(metadata.get("n_samples_seen") or 0),
                   mae=scores.get("mae"), mse=scores.get("mse"), r2=scores.get("r2"),
                   drift=bool(metadata.get("drift")),
                   shift=metadata.get("shift") if metadata.get("population_shift") else None,
                   refused=gate.get("passed", True) is False,
                   forgot=metadata.get("forgot"))


def learning_curve(registry, limit: int = CURVE_VERSIONS,
                   known: dict[int, Point] | None = None) -> list[Point]:
    """The newest ``limit`` versions as points, oldest first (read by number, never listed).

    ``known``: points read before, by version, filled in as more are read. A version's
    metadata never changes once published, so a web process reads each only once (on S3,
    300 reads per page would take seconds).
    """
    known = {} if known is None else known
    newest = registry.latest_version() or 0
    points = []
    for version in range(newest, max(newest - limit, 0), -1):
        point = known.get(version)
        if point is None:
            try:
                point = known[version] = Point.of(registry.metadata(version))
            except (VersionNotFound, CorruptModel):
                continue
        points.append(point)
    for old in [version for version in known if version <= newest - limit]:
        del known[old]  # out of the window for good: versions only grow
    return points[::-1]
