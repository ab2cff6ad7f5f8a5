"""The learning curve: each version's prequential scores, drift and gate verdict, oldest first.

One reading of the registry for the model page's chart (app/web/page.py) and the evaluation
report's plot (app/observe/report.py), so the two always show the same curve.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.models.versions import VersionInfo

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
    def of(cls, info: VersionInfo) -> Point:
        scores = info.prequential or {}
        return cls(version=info.version, created_at=info.created_at,
                   n_samples_seen=info.n_samples_seen,
                   mae=scores.get("mae"), mse=scores.get("mse"), r2=scores.get("r2"),
                   drift=info.drift, shift=info.shift if info.population_shift else None,
                   refused=not info.gate_passed, forgot=info.forgot)


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
            info = registry.find(version)
            if info is None:
                continue
            point = known[version] = Point.of(info)
        points.append(point)
    for old in [version for version in known if version <= newest - limit]:
        del known[old]  # out of the window for good: versions only grow
    return points[::-1]
