"""An incrementally trained linear model of ``salario`` from ``idade``, ``cidade`` and ``cargo``.

It keeps exact sufficient statistics (:mod:`app.models.stats`: count, means and the co-moment
matrix of the features and the target) and merges each batch into them, so ``partial_fit`` on
batches gives the same ridge solution as one fit on all the data, whatever the batch sizes or
their order. The feature scaling comes from the same statistics, so it is never stale.

A fitted model is its parameters and its statistics: :meth:`SalaryRegressor.to_document`
writes them as JSON and :meth:`SalaryRegressor.from_document` solves them again, so a saved
model is numbers, never code.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.exceptions import NotFittedError

from app.data.normalize import tidy_category
from app.models.stats import (AGE_CENTER, AGE_SCALE, CATEGORICAL, N_AGE_TERMS, SufficientStats,
                              age_terms, design_matrix, positions, tidy_records)

FORMAT = "salary-regressor/1"


class SalaryRegressor(RegressorMixin, BaseEstimator):
    """Ridge regression on one-hot ``cidade`` and ``cargo`` and a quadratic in ``idade``.

    A city or job title never seen in training gets the average effect of the ones seen
    (weighted by how often each was seen), so it still gets a sensible answer.

    Parameters
    ----------
    alpha : float, default=1.0
        Ridge penalty on the standardised coefficients; it only matters while a category has
        few samples.

    Attributes
    ----------
    categories_ : dict of str to list of str
        The cities and job titles seen, in the order first seen.
    n_samples_seen_ : int
        Records trained on so far.
    stats_ : SufficientStats
        What the model was solved from: every row it learnt, summarised exactly.
    coef_ : ndarray of shape (n_features,)
        Coefficients for :meth:`transform`'s output; each categorical block averages to zero
        over the training data.
    intercept_ : float
        The prediction for an average city and job title at age ``AGE_CENTER``.

    Examples
    --------
    >>> from app.data.generator import generate
    >>> model = SalaryRegressor()
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
    6740.0
    """

    def __init__(self, alpha: float = 1.0):
        self.alpha = alpha

    # -- training ---------------------------------------------------------------------------

    def fit(self, X: pd.DataFrame, y):
        for attribute in [name for name in vars(self) if name.endswith("_")]:
            delattr(self, attribute)
        return self.partial_fit(X, y)

    def partial_fit(self, X: pd.DataFrame, y):
        """Merge one batch into the statistics and solve again."""
        return self.learn(SufficientStats.of(X, y))

    def learn(self, stats: SufficientStats):
        """Merge the statistics of a batch (or of several) and solve again."""
        current = getattr(self, "stats_", SufficientStats.empty())
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

    def _solve(self) -> None:
        stats = self.stats_
        p = len(stats.mean) - 1
        xx, xy = stats.comoment[:p, :p], stats.comoment[:p, p]
        # Standard deviations, so ``alpha`` weighs the same as in Ridge on standardised data.
        scale = np.sqrt(np.clip(np.diag(xx), 0.0, None) / stats.n)
        scale[scale == 0] = 1.0
        standardised = xx / np.outer(scale, scale) + self.alpha * np.eye(p)
        coef = np.linalg.solve(standardised, xy / scale) / scale
        intercept = stats.mean[p] - stats.mean[:p] @ coef

        # Shift each one-hot block so it averages to zero over the data seen: predictions for
        # known categories are unchanged, and an unknown one (all zeros) gets the average.
        offset = N_AGE_TERMS
        for column in CATEGORICAL:
            block = slice(offset, offset + len(stats.categories[column]))
            frequency = stats.mean[block]
            if frequency.sum() > 0:
                shift = frequency @ coef[block] / frequency.sum()
                coef[block] -= shift
                intercept += shift
            offset = block.stop
        self.coef_, self.intercept_ = coef, float(intercept)
        self.target_mean_ = float(stats.mean[p])
        self._tables_ = self._prediction_tables()

    def _prediction_tables(self) -> dict:
        """Per-category effects as plain dicts, for predicting without pandas."""
        tables, offset = {}, N_AGE_TERMS
        for column in CATEGORICAL:
            names = self.categories_[column]
            tables[column] = dict(zip(names, self.coef_[offset:offset + len(names)].tolist()))
            offset += len(names)
        tables["age"] = self.coef_[:N_AGE_TERMS].tolist()
        return tables

    # -- saving: numbers only ---------------------------------------------------------------

    def to_document(self) -> dict:
        """The model as JSON-ready data: its format, parameters and statistics."""
        self._check_fitted()
        return {"format": FORMAT, "params": self.get_params(), "stats": self.stats_.to_document()}

    @classmethod
    def from_document(cls, document: dict) -> SalaryRegressor:
        """A fitted model from :meth:`to_document`'s output; ``ValueError`` if it is not one."""
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT} document")
        params = document.get("params")
        alpha = params.get("alpha") if isinstance(params, dict) else None
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not alpha >= 0:
            raise ValueError(f"alpha must be a non-negative number, got {alpha!r}")
        try:
            stats = SufficientStats.from_document(document["stats"])
        except (KeyError, TypeError) as error:
            raise ValueError(f"malformed statistics: {error!r}") from None
        if not stats.n:
            raise ValueError("the statistics hold no rows")
        return cls(alpha=float(alpha)).set_stats(stats)

    # -- prediction -------------------------------------------------------------------------

    def _check_fitted(self) -> None:
        if not hasattr(self, "_tables_"):
            raise NotFittedError("this SalaryRegressor is not fitted yet: call partial_fit first")

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        """The model's features for records ``X`` (the columns ``coef_`` weighs)."""
        self._check_fitted()
        return design_matrix(tidy_records(X), self.categories_)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Predictions for a frame of records (the scikit-learn path).

        The same numbers as ``transform(X) @ coef_ + intercept_``, but each category's effect
        is looked up by its code instead of multiplied through a one-hot matrix: a train step
        predicts tens of thousands of rows several times, and the matrix cost most of it.
        """
        self._check_fitted()
        records = tidy_records(X)
        prediction = age_terms(records["idade"]) @ self.coef_[:N_AGE_TERMS] + self.intercept_
        offset = N_AGE_TERMS
        for column in CATEGORICAL:
            names = self.categories_[column]
            # A trailing 0 is the effect of an unknown category (code -1): the average.
            effects = np.append(self.coef_[offset:offset + len(names)], 0.0)
            prediction += effects[positions(names, records[column])]
            offset += len(names)
        return prediction

    def predict_records(self, records: list[dict]) -> list[float]:
        """The same predictions as :meth:`predict` from plain dicts, without building a frame.

        A request of one record should not pay for a DataFrame; this reads the learned
        coefficients straight from dicts.
        """
        self._check_fitted()
        (age_linear, age_square), cidades, cargos = (
            self._tables_["age"], self._tables_["cidade"], self._tables_["cargo"])
        intercept = self.intercept_
        predictions = []
        for record in records:
            t = (float(record["idade"]) - AGE_CENTER) / AGE_SCALE
            predictions.append(
                intercept + age_linear * t + age_square * (t * t)
                + _effect(cidades, record["cidade"]) + _effect(cargos, record["cargo"])
            )
        return predictions


def _effect(table: dict[str, float], value: str) -> float:
    effect = table.get(value)
    if effect is None:
        effect = table.get(tidy_category(value), 0.0)
    return effect
