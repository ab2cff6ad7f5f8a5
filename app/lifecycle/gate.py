"""The promotion gate: a new version is served only if it does not do worse than the served one.

Both are scored on the same held-out rows: the ``holdout`` share of recent batches, which no
version learnt (see :func:`app.data.normalize.split_holdout`). A candidate whose mean squared
error is more than ``tolerance`` above the served version's, by a margin those rows show beyond
chance, is refused: it is kept in the registry, not served, and the audit says why with both
figures. "Beyond chance" is a paired test on the rows' squared errors (the difference is more
than ``Z`` standard errors from zero; on few rows, where the spread itself is a guess, as many
as Student's t asks for at the same confidence): a few dozen held-out rows move a mean squared
error by several percent on their own, and a version must not be refused for that, nor for two
rows that happen to agree.

The gate also says whether the candidate's own batch made it worse than the version it was
built from (``batch_hurt``). Only then do later versions leave that batch out; a candidate that
is merely no better than a challenger being served stays the base of the next step.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

from app.dataset import figure
from app.models.metrics import regression_metrics

# Refuse a candidate whose holdout MSE is more than 5% above the served version's...
TOLERANCE = 0.05
# ...by at least this many standard errors of the paired difference (for many rows).
Z = 3.0
CONFIDENCE = float(scipy_stats.norm.cdf(Z))


def predictions(model, rows: pd.DataFrame) -> np.ndarray:
    return np.asarray(model.predict(rows), dtype=float)


def worse_beyond_chance(mine: np.ndarray, theirs: np.ndarray, truth: np.ndarray,
                        tolerance: float) -> bool:
    """Whether squared errors ``mine`` exceed ``theirs`` by more than ``tolerance``, surely."""
    difference = (mine - truth) ** 2 - (theirs - truth) ** 2
    excess = difference.mean() - tolerance * ((theirs - truth) ** 2).mean()
    if excess <= 0:
        return False
    if len(difference) < 2:
        return False
    spread = difference.std(ddof=1) / np.sqrt(len(difference))
    return bool(excess > scipy_stats.t.ppf(CONFIDENCE, len(difference) - 1) * spread)


def judge(candidate, pool: pd.DataFrame, target: str, served=None, parent=None,
          tolerance: float = TOLERANCE) -> dict:
    """The gate's verdict on ``candidate`` over ``pool``'s rows, whose column ``target`` is the
    truth; ``served`` and ``parent`` are LoadedModels or None."""
    verdict = {"passed": True, "batch_hurt": False, "tolerance": tolerance,
               "holdout_rows": int(len(pool)), "served_version": served.version if served else None,
               "parent_version": parent.version if parent else None}
    if served is None or pool.empty:
        verdict["reason"] = ("nothing is served yet" if served is None
                             else "no held-out rows yet to compare on")
        return verdict
    truth = pool[target].to_numpy(dtype=float)
    mine = predictions(candidate, pool)
    theirs = predictions(served.model, pool)
    base = theirs if parent is None or parent.version == served.version else predictions(parent.model, pool)
    mine_scores, theirs_scores = regression_metrics(truth, mine), regression_metrics(truth, theirs)
    verdict.update(candidate=mine_scores, served=theirs_scores,
                   parent=regression_metrics(truth, base),
                   passed=not worse_beyond_chance(mine, theirs, truth, tolerance),
                   batch_hurt=worse_beyond_chance(mine, base, truth, tolerance))
    change = mine_scores["mse"] / theirs_scores["mse"] - 1 if theirs_scores["mse"] else 0.0
    verdict["reason"] = (
        f"holdout MSE {figure(mine_scores['mse'])} is {change:+.1%} against "
        f"{figure(theirs_scores['mse'])} for the served version {served.version} on {len(pool):,} "
        "held-out rows (" + ("not worse beyond chance and" if verdict["passed"] else
                             "worse beyond chance and beyond") + f" the {tolerance:.0%} tolerance)")
    return verdict
