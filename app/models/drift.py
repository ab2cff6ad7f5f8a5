"""Change detection on the prequential error: river's ADWIN over one value per train step.

Each train step scores the model on the batch before learning it; the mean absolute error of
that score is one observation. ADWIN keeps a window of them and cuts it when its older and newer
parts differ by more than chance allows. Only a rise is drift: the error falling (the model
still learning, or a change for the better) is no reason to distrust the past.

The detector is rebuilt from the observations of the versions since the last adaptation
(:meth:`DriftMonitor.replay`), so it needs no state of its own on disk and every worker
reaches the same verdict on the same history.
"""

from __future__ import annotations

from collections.abc import Iterable

from river.drift import ADWIN

# The sensitivity: a cut needs evidence at this significance. Tuned on bench/quality.py.
DELTA = 0.002
# Observations before the first verdict: the error falls fast while the first batches arrive.
GRACE_PERIOD = 10
# A window may be cut one observation from its end, so a sudden change is seen at once.
MIN_WINDOW = 1


class DriftMonitor:
    """``update(mae)`` after each step; True when the error has risen beyond chance.

    >>> monitor = DriftMonitor()
    >>> [monitor.update(1000.0 + (i % 3)) for i in range(30)].count(True)
    0
    >>> monitor.update(1300.0)
    True
    """

    def __init__(self, delta: float = DELTA, grace_period: int = GRACE_PERIOD,
                 min_window: int = MIN_WINDOW):
        self.params = {"delta": delta, "grace_period": grace_period, "min_window": min_window}
        self._adwin = ADWIN(delta=delta, clock=1, grace_period=grace_period,
                            min_window_length=min_window)
        self.observations = 0

    def update(self, value: float) -> bool:
        """Observe one step's prequential error; whether it shows drift."""
        before = self._adwin.estimation
        self._adwin.update(float(value))
        self.observations += 1
        return bool(self._adwin.drift_detected) and value > before

    def replay(self, values: Iterable[float]) -> DriftMonitor:
        """Observe ``values`` in order, as the steps that produced them did; returns self."""
        for value in values:
            self.update(value)
        return self
