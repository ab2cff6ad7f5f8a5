"""Who arrived changed, or the world did: what a rise in the prequential error means.

The drift monitor (:mod:`app.models.drift`) sees the error rise; it cannot see why. A batch of
older people, or of another region, is predicted worse by a model that saw few of them (their
target may vary more), though the relation between the features and the target is the one
the model knows. Starting again from such a batch would throw away everything learnt for a
false alarm. So when the monitor fires, the train step asks two questions, both answered from
the sufficient statistics (:mod:`app.models.stats`), exactly:

1. **Did the features move?** Each of the batch's columns (a number's terms, a category's
   share) against the model's history: a mean more than ``Z_MOVED`` standard errors away, or a
   category value never seen, is a shifted population (:func:`population_moved`). If nothing
   moved, the error rose for the same people: the relation changed (as it does when the
   generator's world changes).
2. **Did the relation move too?** Two models can follow from the batch: *learning on* (the
   history plus the batch) and *starting again* (the batch alone). If the relation held,
   learning on fits the batch's rows as well as a fit of the batch alone does, beyond the
   degrees of freedom the latter spent on them; if it moved, the fit of the batch alone is
   better beyond chance (an F test, like Chow's for a structural break) and by more than
   ``TOLERANCE`` of its error (:func:`relation_moved`: on a batch of 100,000 rows a trace of
   misfit is significant, and no reason to forget the past).

A population shift keeps learning on; a changed relation starts again, as before.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats as scipy_stats

from app.models.stats import SufficientStats

# A column's batch mean this many standard errors from its history's moved (well beyond the
# largest of a few dozen columns' chance deviations).
Z_MOVED = 6.0
# The relation moved when a fit of the batch alone beats learning on by more than this share
# of its error...
TOLERANCE = 0.05
# ...with this significance (an F test on the batch's rows).
P_CHANGED = 1e-4
# Columns named in a shift's description at most.
DESCRIBED = 3


@dataclass(frozen=True)
class Movement:
    """How one column of the batch differs from the history: ``z`` standard errors."""

    text: str
    z: float


def _column_names(stats: SufficientStats) -> list[tuple[str, str | None]]:
    """``(feature, category value or None)`` for each of ``stats``' columns, target excluded."""
    names: list[tuple[str, str | None]] = []
    for number in stats.design.numbers:
        names.append((number.name, None))
        if number.square:
            names.append((f"{number.name}²", None))
    for column in stats.design.categories:
        names += [(column, value) for value in stats.categories[column]]
    return names


def population_moved(batch: SufficientStats, history: SufficientStats) -> list[Movement]:
    """The columns of ``batch`` whose mean is far from ``history``'s, most moved first; empty
    when the batch's features look like the history's."""
    if not batch.n or not history.n:
        return []
    union = history.union_categories(batch.in_design(history.design))
    mine, theirs = batch.in_design(history.design).reorder(union), history.reorder(union)
    width = len(mine.mean) - 1
    spread = np.sqrt(np.clip(np.diag(theirs.comoment)[:width], 0.0, None) / theirs.n)
    error = spread / np.sqrt(mine.n)
    difference = mine.mean[:width] - theirs.mean[:width]
    names = _column_names(mine)
    moved = []
    numbers = {number.name: number for number in mine.design.numbers}
    for (name, value), diff, se, before, after in zip(names, difference, error,
                                                       theirs.mean, mine.mean):
        if value is not None and before == 0 and after > 0:
            moved.append(Movement(f"new {name} {value} ({after:.0%} of the batch)", np.inf))
            continue
        if se == 0 or abs(diff) < Z_MOVED * se:
            continue
        z = abs(diff) / se
        if value is not None:
            moved.append(Movement(f"{'more' if diff > 0 else 'fewer'} {name} {value} "
                                  f"({after:.0%} against {before:.0%})", z))
        elif name in numbers:
            number = numbers[name]
            to_value = after * number.scale + number.center
            from_value = before * number.scale + number.center
            moved.append(Movement(f"{'higher' if diff > 0 else 'lower'} {name} (mean "
                                  f"{to_value:.3g} against {from_value:.3g})", z))
        else:  # a square: the values spread differently about the declared centre
            moved.append(Movement(f"{name.rstrip('²')} spread {'wider' if diff > 0 else 'narrower'}",
                                  z))
    return sorted(moved, key=lambda movement: -movement.z)


def describe(moved: list[Movement]) -> str:
    """``higher age (mean 64 against 44); more city Recife (13% against 6%)``."""
    return "; ".join(movement.text for movement in moved[:DESCRIBED])


def residual_sum(model, batch: SufficientStats) -> float:
    """The sum of squared residuals of a fitted :class:`IncrementalRidge` on the rows ``batch``
    summarises, from the statistics alone."""
    own = batch.in_design(model.design_)
    union = model.stats_.union_categories(own)
    aligned = own.reorder(union)
    coef = np.zeros(len(aligned.mean) - 1)
    known = model.stats_.positions_in(union)[:-1]
    coef[known] = model.coef_
    p = len(coef)
    mean_error = aligned.mean[p] - aligned.mean[:p] @ coef - model.intercept_
    return float(aligned.comoment[p, p] - 2 * coef @ aligned.comoment[:p, p]
                 + coef @ aligned.comoment[:p, :p] @ coef + aligned.n * mean_error ** 2)


def parameters(stats: SufficientStats) -> int:
    """The columns a fit of ``stats`` alone spends: the numbers' terms, each category's values
    but one (their indicators sum to the intercept's), and the intercept."""
    return (stats.design.number_width + 1
            + sum(max(len(values) - 1, 0) for values in stats.categories.values()))


def relation_moved(batch: SufficientStats, learn_on, start_again) -> tuple[bool, str]:
    """Whether ``start_again`` (fit of the batch alone) fits the batch's rows better than
    ``learn_on`` (the history plus the batch) beyond chance and tolerance; and in words."""
    spent = parameters(batch)
    freedom = batch.n - spent
    if freedom <= 0:
        return False, (f"the batch's {batch.n} rows are too few to fit its {spent} columns "
                       "alone: no sign the relation moved")
    alone = residual_sum(start_again, batch)
    together = residual_sum(learn_on, batch)
    noise = max(alone / freedom, np.finfo(float).tiny)
    excess = together / batch.n / noise - 1
    statistic = max(together - alone, 0.0) / spent / noise
    p_value = float(scipy_stats.f.sf(statistic, spent, freedom))
    moved = excess > TOLERANCE and p_value < P_CHANGED
    words = (f"learning on fits the batch {excess:+.1%} against a fit of the batch alone "
             f"(F = {statistic:.3g}, p = {p_value:.2g})")
    return moved, words
