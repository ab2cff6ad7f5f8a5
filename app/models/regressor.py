"""An incrementally trained ridge regression over a dataset's declared columns.

It keeps exact sufficient statistics (:mod:`app.models.stats`: count, means and the co-moment
matrix of the columns and the target) and merges each batch into them, so ``partial_fit`` on
batches gives the same ridge solution as one fit on all the data, whatever the batch sizes or
their order. The feature scaling comes from the same statistics, so it is never stale.

A fitted model is its parameters and its statistics, which carry their :class:`Design`:
:meth:`IncrementalRidge.to_document` writes them as JSON and
:meth:`IncrementalRidge.from_document` solves them again, so a saved model is numbers, never
code, and predicts with the columns it learnt.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.exceptions import NotFittedError

from app.data.normalize import tidy_category
from app.dataset import builtin
from app.models.stats import Design, SufficientStats, positions

FORMAT = "incremental-ridge/2"
# Artifacts written before declarations existed: the built-in dataset's columns, implied.
FIRST_FORMAT = "salary-regressor/1"


class IncrementalRidge(RegressorMixin, BaseEstimator):
    """Ridge regression on a design's numeric terms and one-hot categories.

    A category never seen in training still gets an answer: that of the model solved without
    that feature, from the same statistics (what the other features say of it).

    Parameters
    ----------
    design : Design, default=None
        The columns to learn (:meth:`Design.of` a dataset); None: the built-in dataset's.
    alpha : float, default=1.0
        Ridge penalty on the standardised coefficients; it only matters while a category has
        few samples.

    Attributes
    ----------
    categories_ : dict of str to list of str
        The values of each category seen, in the order first seen.
    n_samples_seen_ : int
        Records trained on so far.
    stats_ : SufficientStats
        What the model was solved from: every row it learnt, summarised exactly.
    coef_ : ndarray of shape (n_columns,)
        Coefficients for :meth:`transform`'s output; each categorical block averages to zero
        over the training data.
    intercept_ : float
        The prediction for average categories with every number at its declared centre.

    Examples
    --------
    >>> from app.data.generator import generate
    >>> model = IncrementalRidge()
    >>> for seed in (1, 2):
    ...     batch = generate(20000, seed=seed)
    ...     model = model.partial_fit(batch, batch["salario"])
    >>> model.n_samples_seen_
    40000
    >>> test = generate(5000, seed=3)
    >>> round(model.score(test, test["salario"]), 2)
    0.79
    >>> [unknown] = model.predict_records([{"idade": 35, "cidade": "Atlantis", "cargo": "Professor"}])
    >>> round(unknown, -1)  # the truth, for a city of average premium: 6721
    6730.0
    """

    def __init__(self, design: Design | None = None, alpha: float = 1.0):
        self.design = design
        self.alpha = alpha

    @property
    def design_(self) -> Design:
        """The columns: those of the statistics once fitted, else ``design``, else the
        built-in dataset's."""
        if hasattr(self, "stats_"):
            return self.stats_.design
        return self.design if self.design is not None else Design.of(builtin())

    # -- training ---------------------------------------------------------------------------

    def fit(self, X: pd.DataFrame, y):
        for attribute in [name for name in vars(self) if name.endswith("_")]:
            delattr(self, attribute)
        return self.partial_fit(X, y)

    def partial_fit(self, X: pd.DataFrame, y):
        """Merge one batch into the statistics and solve again."""
        return self.learn(SufficientStats.of(self.design_, X, y))

    def learn(self, stats: SufficientStats):
        """Merge the statistics of a batch (or of several) and solve again."""
        current = getattr(self, "stats_", None) or SufficientStats.empty(self.design_)
        return self.set_stats(current + stats)

    def set_stats(self, stats: SufficientStats):
        """Solve from ``stats``: the model of exactly the rows they summarise."""
        self.stats_ = stats
        if stats.n:
            self._solve()
        return self

    @property
    def n_samples_seen_(self) -> int:
        return self.stats_.n

    @property
    def categories_(self) -> dict[str, list[str]]:
        return self.stats_.categories

    def _solve_columns(self, keep: np.ndarray) -> tuple[np.ndarray, float]:
        """The ridge solution on the columns ``keep`` only: ``(coefficients, intercept)``."""
        stats = self.stats_
        p = len(stats.mean) - 1
        xx, xy = stats.comoment[np.ix_(keep, keep)], stats.comoment[keep, p]
        # Standard deviations, so ``alpha`` weighs the same as in Ridge on standardised data.
        scale = np.sqrt(np.clip(np.diag(xx), 0.0, None) / stats.n)
        scale[scale == 0] = 1.0
        standardised = xx / np.outer(scale, scale) + self.alpha * np.eye(len(keep))
        try:
            coef = np.linalg.solve(standardised, xy / scale) / scale
        except np.linalg.LinAlgError:
            # Without a penalty (alpha=0) each category's block is collinear with the
            # intercept: any solution predicts the same, the shortest is as good as another.
            coef = np.linalg.lstsq(standardised, xy / scale, rcond=None)[0] / scale
        return coef, float(stats.mean[p] - stats.mean[keep] @ coef)

    def _blocks(self) -> list[slice]:
        """Where each category's one-hot block sits among the columns."""
        blocks, offset = [], self.design_.number_width
        for column in self.design_.categories:
            blocks.append(slice(offset, offset + len(self.categories_[column])))
            offset = blocks[-1].stop
        return blocks

    def _solve(self) -> None:
        stats = self.stats_
        p = len(stats.mean) - 1
        coef, intercept = self._solve_columns(np.arange(p))
        # Shift each one-hot block so it averages to zero over the data seen: predictions are
        # unchanged, and each coefficient reads as its category's effect against the average.
        for block in self._blocks():
            frequency = stats.mean[block]
            if frequency.sum() > 0:
                shift = frequency @ coef[block] / frequency.sum()
                coef[block] -= shift
                intercept += shift
        self.coef_, self.intercept_ = coef, float(intercept)
        self.target_mean_ = float(stats.mean[p])
        self._without_ = {0: (coef, self.intercept_)}
        self._tables_ = {0: self._prediction_tables(0)}

    def _coefficients(self, unseen: int) -> tuple[np.ndarray, float]:
        """``(coef, intercept)`` for rows whose categories in the bit set ``unseen`` (bit i: the
        design's i-th category) were never seen: the model solved without those blocks, from
        the same statistics. It answers with what the other features say, including what they
        say through their link with the unknown feature (a new job title of well-educated
        people is predicted as such), where the full model's coefficients are those of a world
        in which that feature is known. Full-length, zero on the blocks left out."""
        found = self._without_.get(unseen)
        if found is None:
            blocks = self._blocks()
            dropped = np.zeros(len(self.coef_), dtype=bool)
            for i, block in enumerate(blocks):
                if unseen >> i & 1:
                    dropped[block] = True
            coef = np.zeros(len(self.coef_))
            coef[~dropped], intercept = self._solve_columns(np.flatnonzero(~dropped))
            found = self._without_[unseen] = (coef, intercept)
        return found

    def _prediction_tables(self, unseen: int) -> tuple[float, list[tuple], list[tuple[str, dict]]]:
        """For :meth:`_coefficients` ``(unseen)``: the intercept, each number's scaling and
        coefficients, each category's effects as a plain dict: what predicting from dicts
        needs, without pandas."""
        design = self.design_
        coef, intercept = self._coefficients(unseen)
        coef = coef.tolist()
        numbers, at = [], 0
        for number in design.numbers:
            square = coef[at + 1] if number.square else 0.0
            numbers.append((number.name, number.center, number.scale, coef[at], square))
            at += number.width
        categories = []
        for column in design.categories:
            names = self.categories_[column]
            categories.append((column, dict(zip(names, coef[at:at + len(names)]))))
            at += len(names)
        return intercept, numbers, categories

    # -- saving: numbers only ---------------------------------------------------------------

    def to_document(self) -> dict:
        """The model as JSON-ready data: its format, parameters and statistics (with design)."""
        self._check_fitted()
        return {"format": FORMAT, "params": {"alpha": self.alpha},
                "stats": self.stats_.to_document()}

    @classmethod
    def from_document(cls, document: dict) -> IncrementalRidge:
        """A fitted model from :meth:`to_document`'s output; ``ValueError`` if it is not one."""
        if not isinstance(document, dict) or document.get("format") not in (FORMAT, FIRST_FORMAT):
            raise ValueError(f"not a {FORMAT} document")
        params = document.get("params")
        alpha = params.get("alpha") if isinstance(params, dict) else None
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not alpha >= 0:
            raise ValueError(f"alpha must be a non-negative number, got {alpha!r}")
        implied = Design.first_format() if document["format"] == FIRST_FORMAT else None
        try:
            stats = SufficientStats.from_document(document["stats"], implied)
        except (KeyError, TypeError) as error:
            raise ValueError(f"malformed statistics: {error!r}") from None
        if not stats.n:
            raise ValueError("the statistics hold no rows")
        return cls(alpha=float(alpha)).set_stats(stats)

    # -- prediction -------------------------------------------------------------------------

    def _check_fitted(self) -> None:
        if not hasattr(self, "_tables_"):
            raise NotFittedError("this IncrementalRidge is not fitted yet: call partial_fit first")

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        """The model's columns for records ``X`` (the columns ``coef_`` weighs)."""
        self._check_fitted()
        return self.design_.matrix(self.design_.tidy(X), self.categories_)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Predictions for a frame of records (the scikit-learn path).

        The same numbers as ``transform(X) @ coef_ + intercept_`` for rows whose categories
        were all seen, but each category's effect is looked up by its code instead of
        multiplied through a one-hot matrix: a train step predicts tens of thousands of rows
        several times, and the matrix cost most of it. Rows with a category never seen are
        answered by the model without it (:meth:`_coefficients`).
        """
        self._check_fitted()
        design = self.design_
        records = design.tidy(X)
        numbers = design.number_block(records)
        codes = [positions(self.categories_[column], records[column])
                 for column in design.categories]
        unseen = np.zeros(len(records), dtype=np.int64)
        for i, code in enumerate(codes):
            unseen |= (code < 0).astype(np.int64) << i
        prediction = np.empty(len(records))
        for pattern in np.unique(unseen):
            rows = unseen == pattern
            coef, intercept = self._coefficients(int(pattern))
            values = numbers[rows] @ coef[:design.number_width] + intercept
            for block, code in zip(self._blocks(), codes):
                # A trailing 0 is the effect of an unseen category (code -1): left out.
                values += np.append(coef[block], 0.0)[code[rows]]
            prediction[rows] = values
        return prediction

    def predict_records(self, records: list[dict]) -> list[float]:
        """The same predictions as :meth:`predict` from plain dicts, without building a frame.

        A request of one record should not pay for a DataFrame; this reads the learned
        coefficients straight from dicts.
        """
        self._check_fitted()
        return [self._predict_record(record, 0) for record in records]

    def _predict_record(self, record: dict, unseen: int) -> float:
        tables = self._tables_.get(unseen)
        if tables is None:
            tables = self._tables_[unseen] = self._prediction_tables(unseen)
        value, numbers, categories = tables
        for name, center, scale, linear, square in numbers:
            t = (float(record[name]) - center) / scale
            value += linear * t + square * (t * t)
        missing = 0
        for i, (name, table) in enumerate(categories):
            effect = _effect(table, record[name])
            if effect is None:
                missing |= 1 << i
            else:
                value += effect
        if missing & ~unseen:
            return self._predict_record(record, unseen | missing)
        return value

    def probe(self) -> dict:
        """A record any fitted model must answer: numbers at their centres, categories unseen."""
        design = self.design_
        return {**{number.name: number.center for number in design.numbers},
                **{column: "an unseen value" for column in design.categories}}


def _effect(table: dict[str, float], value: str) -> float | None:
    """``value``'s effect, as sent or tidied; None for a value never seen."""
    effect = table.get(value)
    if effect is None:
        effect = table.get(tidy_category(value))
    return effect
