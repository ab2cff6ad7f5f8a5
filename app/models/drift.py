"""Change detection on the prequential error: river's ADWIN over the errors of each train step.

Each train step scores the model on the batch before learning it. The absolute errors of that
score, averaged over ``CHUNKS`` consecutive slices of the batch, are the step's observations
(:func:`chunk_errors`). ADWIN keeps a window of them and cuts it when its older and newer parts
differ by more than chance allows. Its bound grows with the window's variance, and a change
inflates that variance, so one mean per batch would need tens of batches of history before a
jump of half the error could pass it; a few dozen slice means per batch let the first changed
batch do it. Only a rise is drift: the error falling (the model still learning, or a change for
the better) is no reason to distrust the past.

The detector is rebuilt from the observations of the versions since the last adaptation
(:meth:`DriftMonitor.replay`), so it needs no state of its own on disk and every worker
reaches the same verdict on the same history.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from river.drift import ADWIN

# The sensitivity: a cut needs evidence at this significance. With 20 observations a batch,
# 0.002 (river's default) gave 2 to 4 false alarms in 1,000 batches of a world that never
# changes; 1e-7 gave none in 4,000 and still sees a rise of a fifth of the error at once.
DELTA = 1e-7
# Observations per train step: the means of this many slices of the batch's absolute errors.
CHUNKS = 20
# Observations before the first verdict (of a fresh model, or after an adaptation): its error
# falls fast over its first batches. Five batches, so a change that soon reverses is still seen.
GRACE_PERIOD = 5 * CHUNKS
# A window may be cut one observation from its end, so a sudden change is seen at once.
MIN_WINDOW = 1


def chunk_errors(y_true, y_pred, chunks: int = CHUNKS) -> list[float]:
    """Mean absolute errors of ``chunks`` consecutive slices (fewer for a small batch).

    >>> chunk_errors([1, 2, 3, 4], [1, 2, 5, 8], chunks=2)
    [0.0, 3.0]
    """
    errors = np.abs(np.asarray(y_true, dtype=float) - np.asarray(y_pred, dtype=float))
    parts = [part for part in np.array_split(errors, min(chunks, len(errors))) if len(part)]
    return [float(part.mean()) for part in parts]


class DriftMonitor:
    """``update(errors)`` after each step; True when the error has risen beyond chance.

    >>> rng = np.random.default_rng(0)
    >>> monitor = DriftMonitor()
    >>> [monitor.update(rng.normal(1000, 40, CHUNKS)) for _ in range(30)].count(True)
    0
    >>> monitor.update(rng.normal(1300, 40, CHUNKS))
    True
    """

    def __init__(self, delta: float = DELTA, grace_period: int = GRACE_PERIOD,
                 min_window: int = MIN_WINDOW):
        self.params = {"delta": delta, "grace_period": grace_period, "min_window": min_window}
        self._adwin = ADWIN(delta=delta, clock=1, grace_period=grace_period,
                            min_window_length=min_window)
        self.observations = 0

    def update(self, errors: Sequence[float]) -> bool:
        """Observe one step's errors (:func:`chunk_errors`); whether they show drift."""
        before = self._adwin.estimation
        detected = False
        for value in errors:
            self._adwin.update(float(value))
            self.observations += 1
            detected = detected or bool(self._adwin.drift_detected)
        return detected and float(np.mean(errors)) > before

    def replay(self, steps: Iterable[Sequence[float]]) -> DriftMonitor:
        """Observe ``steps`` in order, as the steps that produced them did; returns self."""
        for errors in steps:
            self.update(errors)
        return self
