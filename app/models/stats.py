"""Sufficient statistics of a ridge regression, per batch, that add and subtract exactly.

A :class:`SufficientStats` holds, for the rows of one batch (or of many merged), the count,
the means and the co-moment matrix of the model's features and the target. Features are the
centred, scaled age and its square, then one column per ``cidade`` and per ``cargo`` the rows
contained, in the order first seen. Two statistics with different categories are merged on the
union of their columns (a category a batch never had is an all-zero column there, so embedding
is exact), with Chan et al.'s pairwise update. Subtracting reverses that update, and drops a
category nothing left contains.

So a model can learn a batch (``+``), forget one (``-``) or be rebuilt from any set of batches
(``sum``), and each is the statistics one pass over those rows would give, up to rounding.

>>> from app.data.generator import generate
>>> a, b = generate(300, seed=1), generate(200, seed=2)
>>> both = SufficientStats.of(pd.concat([a, b]), pd.concat([a, b])["salario"])
>>> merged = SufficientStats.of(a, a["salario"]) + SufficientStats.of(b, b["salario"])
>>> merged.n, bool(np.allclose(merged.comoment, both.reorder(merged.categories).comoment))
(500, True)
>>> (merged - SufficientStats.of(b, b["salario"])).n
300
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import pandas as pd

from app.data.normalize import tidy_codes

CATEGORICAL = ("cidade", "cargo")
FEATURES = ("idade", *CATEGORICAL)
# Age enters as a centred, scaled quadratic so the co-moments stay well conditioned.
AGE_CENTER, AGE_SCALE = 44.0, 10.0
N_AGE_TERMS = 2
# After a subtraction, a category's count is (count x mean); below this it is gone, not rounding.
_GONE = 0.5


def age_terms(idade) -> np.ndarray:
    """The two age features: the centred, scaled age and its square."""
    t = (np.asarray(idade, dtype=float).reshape(-1) - AGE_CENTER) / AGE_SCALE
    return np.column_stack([t, t * t])


def tidy_records(X: pd.DataFrame) -> pd.DataFrame:
    """``idade`` as float and the categories tidied: the one preprocessing of the model.

    The categorical columns come out as pandas categoricals: their categories are the tidied
    values in the order first seen, and looking them up (:func:`positions`) costs one lookup
    per category, not one per row.
    """
    missing = [column for column in FEATURES if column not in X.columns]
    if missing:
        raise ValueError(f"missing columns: {', '.join(missing)}")
    records = pd.DataFrame({"idade": np.asarray(X["idade"], dtype=float)})
    for column in CATEGORICAL:
        codes, categories = tidy_codes(X[column])
        records[column] = pd.Categorical.from_codes(codes, categories=categories)
    return records


def positions(names: list[str], column: pd.Series) -> np.ndarray:
    """Each row's position among ``names`` in a categorical column of :func:`tidy_records`;
    -1 for a category not among them, or a missing value."""
    values = column.array
    return np.append(pd.Index(names).get_indexer(values.categories), -1)[values.codes]


def design_matrix(records: pd.DataFrame, categories: dict[str, list[str]]) -> np.ndarray:
    """The features of tidied ``records`` over ``categories``: an unknown category is all zeros."""
    blocks = [age_terms(records["idade"])]
    for column in CATEGORICAL:
        codes = positions(categories[column], records[column])
        block = np.zeros((len(records), len(categories[column])))
        known = codes >= 0
        block[np.flatnonzero(known), codes[known]] = 1.0
        blocks.append(block)
    return np.hstack(blocks)


def _width(categories: dict[str, list[str]]) -> int:
    return N_AGE_TERMS + sum(len(categories[column]) for column in CATEGORICAL)


@dataclass(frozen=True)
class SufficientStats:
    """Count, means and co-moment matrix over features + target (the target is last)."""

    n: int
    categories: dict[str, list[str]]
    mean: np.ndarray
    comoment: np.ndarray

    @classmethod
    def empty(cls) -> SufficientStats:
        size = N_AGE_TERMS + 1
        return cls(0, {column: [] for column in CATEGORICAL}, np.zeros(size), np.zeros((size, size)))

    @classmethod
    def of(cls, X: pd.DataFrame, y) -> SufficientStats:
        """The statistics of these rows, with their categories in the order first seen."""
        records = tidy_records(X)
        target = np.asarray(y, dtype=float)
        if len(records) != len(target):
            raise ValueError(f"X has {len(records)} rows but y has {len(target)}")
        if not len(records):
            return cls.empty()
        categories = {column: records[column].cat.categories.tolist() for column in CATEGORICAL}
        data = np.column_stack([design_matrix(records, categories), target])
        mean = data.mean(axis=0)
        centred = data - mean
        return cls(len(data), categories, mean, centred.T @ centred)

    # -- columns ----------------------------------------------------------------------------

    def _positions(self, categories: dict[str, list[str]]) -> np.ndarray:
        """Where each of this statistic's columns sits among ``categories``' columns."""
        positions = list(range(N_AGE_TERMS))
        offset = N_AGE_TERMS
        for column in CATEGORICAL:
            index = {name: i for i, name in enumerate(categories[column])}
            try:
                positions += [offset + index[name] for name in self.categories[column]]
            except KeyError as missing:
                raise ValueError(f"{column} {missing} is not among the target categories") from None
            offset += len(categories[column])
        positions.append(offset)  # the target
        return np.asarray(positions)

    def reorder(self, categories: dict[str, list[str]]) -> SufficientStats:
        """The same statistics over ``categories`` (a superset, in any order)."""
        size = _width(categories) + 1
        at = self._positions(categories)
        mean, comoment = np.zeros(size), np.zeros((size, size))
        mean[at] = self.mean
        comoment[np.ix_(at, at)] = self.comoment
        return SufficientStats(self.n, {c: list(categories[c]) for c in CATEGORICAL}, mean, comoment)

    def union_categories(self, other: SufficientStats) -> dict[str, list[str]]:
        union = {}
        for column in CATEGORICAL:
            seen = set(self.categories[column])
            union[column] = self.categories[column] + [
                name for name in other.categories[column] if name not in seen]
        return union

    # -- arithmetic -------------------------------------------------------------------------

    def __add__(self, other: SufficientStats) -> SufficientStats:
        if not other.n:
            return self
        if not self.n:
            return other
        union = self.union_categories(other)
        a, b = self.reorder(union), other.reorder(union)
        n = a.n + b.n
        delta = b.mean - a.mean
        comoment = a.comoment + b.comoment + np.outer(delta, delta) * (a.n * b.n / n)
        return SufficientStats(n, union, a.mean + delta * (b.n / n), comoment)

    def __sub__(self, other: SufficientStats) -> SufficientStats:
        """These statistics without ``other``'s rows, which they must contain."""
        if not other.n:
            return self
        if other.n > self.n:
            raise ValueError(f"cannot remove {other.n} rows from statistics of {self.n}")
        if other.n == self.n:
            return SufficientStats.empty()
        b = other.reorder(self.categories)
        n = self.n - b.n
        mean = (self.n * self.mean - b.n * b.mean) / n
        delta = b.mean - mean
        comoment = self.comoment - b.comoment - np.outer(delta, delta) * (n * b.n / self.n)
        return SufficientStats(n, self.categories, mean, comoment)._without_empty_categories()

    def _without_empty_categories(self) -> SufficientStats:
        keep = list(range(N_AGE_TERMS))
        categories, offset = {}, N_AGE_TERMS
        for column in CATEGORICAL:
            names = self.categories[column]
            counts = self.n * self.mean[offset:offset + len(names)]
            kept = [i for i, count in enumerate(counts) if count >= _GONE]
            categories[column] = [names[i] for i in kept]
            keep += [offset + i for i in kept]
            offset += len(names)
        keep.append(offset)
        if len(keep) == len(self.mean):
            return self
        at = np.asarray(keep)
        return SufficientStats(self.n, categories, self.mean[at], self.comoment[np.ix_(at, at)])

    # -- storage: plain arrays, so loading can never run code --------------------------------

    def to_npz(self) -> bytes:
        buffer = io.BytesIO()
        np.savez(buffer, n=np.int64(self.n), mean=self.mean, comoment=self.comoment,
                 **{column: np.asarray(self.categories[column], dtype=str) for column in CATEGORICAL})
        return buffer.getvalue()

    @classmethod
    def from_npz(cls, data: bytes) -> SufficientStats:
        with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
            categories = {column: [str(name) for name in arrays[column]] for column in CATEGORICAL}
            stats = cls(int(arrays["n"]), categories, np.array(arrays["mean"], dtype=float),
                        np.array(arrays["comoment"], dtype=float))
        stats.check()
        return stats

    def to_document(self) -> dict:
        return {"n": self.n, "categories": self.categories, "mean": self.mean.tolist(),
                "comoment": self.comoment.tolist()}

    @classmethod
    def from_document(cls, document: dict) -> SufficientStats:
        categories = {column: [str(name) for name in document["categories"][column]]
                      for column in CATEGORICAL}
        stats = cls(int(document["n"]), categories, np.asarray(document["mean"], dtype=float),
                    np.asarray(document["comoment"], dtype=float))
        stats.check()
        return stats

    def check(self) -> None:
        """``ValueError`` unless the arrays fit the categories and are finite."""
        size = _width(self.categories) + 1
        if self.n < 0 or self.mean.shape != (size,) or self.comoment.shape != (size, size):
            raise ValueError(f"statistics of shape {self.mean.shape}/{self.comoment.shape} "
                             f"do not fit {size - 1} features")
        if not (np.isfinite(self.mean).all() and np.isfinite(self.comoment).all()):
            raise ValueError("statistics hold a value that is not a finite number")
