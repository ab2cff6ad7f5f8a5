"""The challenger: a different kind of model, refit now and then, that may win the serving slot.

The original stream trainer used a tree ensemble; :class:`ChallengerRegressor` keeps one (a
``HistGradientBoostingRegressor`` on the declared numbers, with the declared categories as
native categories). It is
refit from scratch on a recent window of batches, so it forgets by construction, and it can
find shapes the linear champion cannot (which it would need if the world stopped being
additive).

Saved with skops, whose loader rebuilds objects from a list of types instead of running
pickle's instructions; :func:`load_skops` refuses a file holding any type not listed here.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.exceptions import NotFittedError
from threadpoolctl import threadpool_limits

from app.data.normalize import tidy_category
from app.dataset import builtin
from app.models.stats import Design, positions

# Every type a challenger artifact may hold; anything else is refused before loading.
# (skops already trusts scikit-learn's estimators and numpy's arrays.) The boosting model
# keeps a preprocessor for its categorical columns whose validator is
# ``partial(check_array, ...)``: skops rebuilds a partial from its parts, each checked against
# this list, so trusting ``functools.partial`` admits partials of listed functions only.
TRUSTED_TYPES: list[str] = [
    "app.models.challenger.ChallengerRegressor",
    "app.models.stats.Design",
    "app.models.stats.NumberColumn",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "functools.partial",
    "sklearn.utils.validation.check_array",
]


# The trees bin a categorical feature's values, this many at most: rarer values beyond it are
# treated as unseen (missing), which the trees send down the branch most rows took.
MAX_CATEGORY_VALUES = 254


class ChallengerRegressor(RegressorMixin, BaseEstimator):
    """Gradient-boosted trees on a design's numbers and the codes of its categories.

    A category value not seen in training is a missing value to the trees, which send it
    down the branch most training rows took.

    Examples
    --------
    >>> from app.data.generator import generate
    >>> train, test = generate(20000, seed=1), generate(5000, seed=2)
    >>> model = ChallengerRegressor().fit(train, train["salario"])
    >>> round(model.score(test, test["salario"]), 1)  # the truth's own R² is 0.79
    0.8
    >>> model.predict_records([{"idade": 35, "cidade": "Atlantis", "cargo": "Professor"}])[0] > 0
    True
    """

    def __init__(self, design: Design | None = None, max_iter: int = 60,
                 learning_rate: float = 0.1, max_leaf_nodes: int = 15, random_state: int = 0):
        self.design = design
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.random_state = random_state

    def fit(self, X: pd.DataFrame, y):
        self.design_ = self.design if self.design is not None else Design.of(builtin())
        records = self.design_.tidy(X)
        self.categories_ = {column: _most_frequent(records[column])
                            for column in self.design_.categories}
        target = np.asarray(y, dtype=float)
        numbers = len(self.design_.numbers)
        booster = HistGradientBoostingRegressor(
            max_iter=self.max_iter, learning_rate=self.learning_rate,
            max_leaf_nodes=self.max_leaf_nodes,
            categorical_features=list(range(numbers, numbers + len(self.design_.categories))),
            random_state=self.random_state)
        # One thread: a refit in the background must not take every core from the train steps
        # (OpenMP threads spin while they wait, which on a busy machine costs 30 times the work).
        with threadpool_limits(limits=1):
            self.estimator_ = booster.fit(self._features(records), target)
        self.n_samples_seen_ = int(len(target))
        self.target_mean_ = float(target.mean())
        return self

    def _features(self, records: pd.DataFrame) -> np.ndarray:
        columns = [records[number.name].to_numpy(dtype=float) for number in self.design_.numbers]
        for column in self.design_.categories:
            codes = positions(self.categories_[column], records[column]).astype(float)
            codes[codes < 0] = np.nan
            columns.append(codes)
        return np.column_stack(columns)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        if not hasattr(self, "estimator_"):
            raise NotFittedError("this ChallengerRegressor is not fitted yet: call fit first")
        return self.estimator_.predict(self._features(self.design_.tidy(X)))

    def predict_records(self, records: list[dict]) -> list[float]:
        """Predictions for plain dicts, as the web app asks for them."""
        frame = pd.DataFrame({
            **{number.name: [float(record[number.name]) for record in records]
               for number in self.design_.numbers},
            **{column: [tidy_category(record[column]) for record in records]
               for column in self.design_.categories}})
        return self.predict(frame).tolist()

    def probe(self) -> dict:
        """A record any fitted model must answer: numbers at their centres, categories unseen."""
        return {**{number.name: number.center for number in self.design_.numbers},
                **{column: "an unseen value" for column in self.design_.categories}}


def _most_frequent(column: pd.Series) -> list[str]:
    """The values of a categorical column the trees tell apart: all of them, or the
    ``MAX_CATEGORY_VALUES`` most frequent, sorted."""
    counts = column.value_counts(sort=True)
    return sorted(counts.index[:MAX_CATEGORY_VALUES].astype(str).tolist())


def load_skops(payload: bytes):
    """The model in a skops ``payload``; ``ValueError`` if it holds a type not trusted here."""
    import skops.io

    untrusted = [name for name in skops.io.get_untrusted_types(data=payload)
                 if name not in TRUSTED_TYPES]
    if untrusted:
        raise ValueError(f"the artifact holds types this code does not trust: {', '.join(untrusted)}")
    return skops.io.loads(payload, trusted=TRUSTED_TYPES)
