"""An incrementally trained linear model of ``salario`` from ``idade``, ``cidade`` and ``cargo``.

It keeps exact sufficient statistics (count, means and the co-moment matrix of the features
and the target) and merges each batch into them, so ``partial_fit`` on batches gives the
same ridge solution as one fit on all the data, whatever the batch sizes or their order. The
feature scaling comes from the same statistics, so it is never stale.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.compose import ColumnTransformer
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from app.data.normalize import tidy_categories, tidy_category

FEATURES = ("idade", "cidade", "cargo")
CATEGORICAL = ("cidade", "cargo")
# Age enters as a centred, scaled quadratic so the co-moments stay well conditioned.
AGE_CENTER, AGE_SCALE = 44.0, 10.0


def age_terms(idade) -> np.ndarray:
    """The two age features: the centred, scaled age and its square."""
    t = (np.asarray(idade, dtype=float).reshape(-1) - AGE_CENTER) / AGE_SCALE
    return np.column_stack([t, t * t])


def _age_names(transformer, names):
    return np.array(["idade", "idade_squared"], dtype=object)


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
    coef_ : ndarray of shape (n_features,)
        Coefficients for ``features_``'s output; each categorical block averages to zero
        over the training data.
    intercept_ : float
        The prediction for an average city and job title at age ``AGE_CENTER``.
    features_ : ColumnTransformer
        The fitted preprocessing from records to the model's features.

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
        records = self._records(X)
        target = np.asarray(y, dtype=float)
        if len(records) != len(target):
            raise ValueError(f"X has {len(records)} rows but y has {len(target)}")
        if not hasattr(self, "categories_"):
            self.categories_ = {column: [] for column in CATEGORICAL}
            self.n_samples_seen_ = 0
            self.mean_ = np.zeros(2 + 1)
            self.comoment_ = np.zeros((3, 3))
        self._grow_vocabulary(records)
        if len(records):
            self._merge(np.column_stack([self.features_.transform(records), target]))
            self._solve()
        return self

    def _grow_vocabulary(self, records: pd.DataFrame) -> None:
        """Give new categories their own (zero) rows and columns in the statistics."""
        offset, grown = 2, False
        for column in CATEGORICAL:
            known = self.categories_[column]
            seen = set(known)
            new = [value for value in pd.unique(records[column]) if value not in seen]
            if new:
                grown = True
                at = offset + len(known)
                self.mean_ = np.insert(self.mean_, [at] * len(new), 0.0)
                self.comoment_ = np.insert(self.comoment_, [at] * len(new), 0.0, axis=0)
                self.comoment_ = np.insert(self.comoment_, [at] * len(new), 0.0, axis=1)
                known.extend(new)
            offset += len(known)
        if grown or not hasattr(self, "features_"):
            self.features_ = self._make_features()

    def _make_features(self) -> ColumnTransformer:
        transformer = ColumnTransformer(
            [("idade", FunctionTransformer(age_terms, feature_names_out=_age_names), ["idade"])]
            + [(column, OneHotEncoder(categories=[list(self.categories_[column]) or ["?"]],
                                      handle_unknown="ignore", sparse_output=False), [column])
               for column in CATEGORICAL],
            sparse_threshold=0.0,
        )
        example = {column: self.categories_[column][:1] or ["?"] for column in CATEGORICAL}
        return transformer.fit(pd.DataFrame({"idade": [AGE_CENTER], **example}))

    def _merge(self, batch: np.ndarray) -> None:
        """Chan et al.'s pairwise update of the count, means and co-moment matrix."""
        n_batch = len(batch)
        batch_mean = batch.mean(axis=0)
        centred = batch - batch_mean
        delta = batch_mean - self.mean_
        n_total = self.n_samples_seen_ + n_batch
        self.comoment_ = (self.comoment_ + centred.T @ centred
                          + np.outer(delta, delta) * (self.n_samples_seen_ * n_batch / n_total))
        self.mean_ = self.mean_ + delta * (n_batch / n_total)
        self.n_samples_seen_ = n_total

    def _solve(self) -> None:
        p = len(self.mean_) - 1
        xx, xy = self.comoment_[:p, :p], self.comoment_[:p, p]
        # Standard deviations, so ``alpha`` weighs the same as in Ridge on standardised data.
        scale = np.sqrt(np.diag(xx) / self.n_samples_seen_)
        scale[scale == 0] = 1.0
        standardised = xx / np.outer(scale, scale) + self.alpha * np.eye(p)
        coef = np.linalg.solve(standardised, xy / scale) / scale
        intercept = self.mean_[p] - self.mean_[:p] @ coef

        # Shift each one-hot block so it averages to zero over the data seen: predictions for
        # known categories are unchanged, and an unknown one (all zeros) gets the average.
        offset = 2
        for column in CATEGORICAL:
            block = slice(offset, offset + len(self.categories_[column]))
            frequency = self.mean_[block]
            shift = frequency @ coef[block] / frequency.sum()
            coef[block] -= shift
            intercept += shift
            offset = block.stop
        self.coef_, self.intercept_ = coef, float(intercept)
        self.target_mean_ = float(self.mean_[p])
        self._tables_ = self._prediction_tables()

    def _prediction_tables(self) -> dict:
        """Per-category effects as plain dicts, for predicting without pandas."""
        tables, offset = {}, 2
        for column in CATEGORICAL:
            names = self.categories_[column]
            tables[column] = dict(zip(names, self.coef_[offset:offset + len(names)].tolist()))
            offset += len(names)
        tables["age"] = self.coef_[:2].tolist()
        return tables

    # -- prediction -------------------------------------------------------------------------

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Predictions through the fitted ColumnTransformer (the scikit-learn path)."""
        check_is_fitted(self, "coef_")
        return self.features_.transform(self._records(X)) @ self.coef_ + self.intercept_

    def predict_records(self, records: list[dict]) -> list[float]:
        """The same predictions as :meth:`predict` from plain dicts, without building a frame.

        A request of one record should not pay for a DataFrame and a ColumnTransformer; this
        reads the learned coefficients straight from dicts.
        """
        if not hasattr(self, "_tables_"):
            # check_is_fitted costs a third of a one-record prediction; this is the same test.
            raise NotFittedError("this SalaryRegressor is not fitted yet: call partial_fit first")
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

    @staticmethod
    def _records(X: pd.DataFrame) -> pd.DataFrame:
        missing = [column for column in FEATURES if column not in X.columns]
        if missing:
            raise ValueError(f"missing columns: {', '.join(missing)}")
        records = pd.DataFrame({"idade": np.asarray(X["idade"], dtype=float)})
        for column in CATEGORICAL:
            records[column] = tidy_categories(X[column])
        return records


def _effect(table: dict[str, float], value: str) -> float:
    effect = table.get(value)
    if effect is None:
        effect = table.get(tidy_category(value), 0.0)
    return effect
