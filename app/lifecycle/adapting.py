"""How a train step reacts when its error rises: the drift monitor that has seen the lineage's
errors, and whether the batch's people moved (learn on) or the relation did (start again).

The monitor (:class:`~app.models.drift.DriftMonitor`) is rebuilt from the prequential errors
the versions of the head's window recorded, so it needs no state on disk; a worker keeps the
one it updated under the version it published, so the next step replays nothing.
"""

from __future__ import annotations

from app.lifecycle.lineage import Cache
from app.models import shift
from app.models.drift import DriftMonitor
from app.models.registry import LoadedModel, ModelRegistry
from app.models.regressor import IncrementalRidge
from app.models.stats import SufficientStats

# The drift monitor is rebuilt from at most this many steps of history.
DRIFT_REPLAY = 200


class Monitors:
    """Drift monitors by the lineage version whose history they have seen."""

    def __init__(self, registry: ModelRegistry):
        self.registry = registry
        self._cache = Cache(2)

    def take(self, head: LoadedModel | None) -> DriftMonitor:
        """A monitor that has seen the prequential errors of ``head``'s window.

        Taken out of the cache: the caller updates it, and :meth:`keep` s it under the version
        it publishes only if that version is the lineage's next head.
        """
        if head is None:
            return DriftMonitor()
        cached = self._cache.pop(head.version, None)
        if cached is not None:
            return cached
        history: list[list[float]] = []
        for info in self.registry.lineage(head.metadata):
            if len(history) >= DRIFT_REPLAY or info.drift or info.population_shift:
                # Its error is the old model on a new world, or on new people: not the level
                # of what follows.
                break
            if info.prequential:
                history.append(info.prequential.get("chunk_mae") or [info.prequential["mae"]])
        return DriftMonitor().replay(reversed(history))

    def keep(self, version: int, monitor: DriftMonitor) -> None:
        self._cache.put(version, monitor)


def why_the_error_rose(moved: list[shift.Movement], batch: SufficientStats,
                       learn_on: IncrementalRidge) -> tuple[bool, str]:
    """``(True, how)`` when the batch's people moved (``moved``: how, from
    :func:`app.models.shift.population_moved`) but the relation held (learn on); ``(False,
    why)`` when the relation changed (start again). See :mod:`app.models.shift`."""
    if not moved:
        return False, "the same people as before: the relation between the features and "\
                      "the target changed"
    start_again = IncrementalRidge(alpha=learn_on.alpha).set_stats(batch)
    changed, fit = shift.relation_moved(batch, learn_on, start_again)
    if changed:
        return False, f"the population shifted ({shift.describe(moved)}) and the relation "\
                      f"changed with it: {fit}"
    return True, f"{shift.describe(moved)}; the relation held: {fit}"
