"""The model's columns, and sufficient statistics over them that add and subtract exactly.

A :class:`Design` is what a dataset declaration (:mod:`app.dataset`) makes of the model's
columns: each number centred and scaled by its declared bounds (and its square where
declared), then one column per value of each category, in the order first seen. The target is
last. It travels with every statistic and every saved model, so a model always predicts with
the columns it learnt, whatever the declaration in force.

A :class:`SufficientStats` holds, for the rows of one batch (or of many merged), the count,
the means and the co-moment matrix of those columns. Two statistics with different categories
are merged on the union of their columns (a category a batch never had is an all-zero column
there, so embedding is exact), with Chan et al.'s pairwise update. Subtracting reverses that
update, and drops a category nothing left contains.

So a model can learn a batch (``+``), forget one (``-``) or be rebuilt from any set of batches
(``sum``), and each is the statistics one pass over those rows would give, up to rounding.

>>> from app.data.generator import generate
>>> design = Design.of(builtin())
>>> a, b = generate(300, seed=1), generate(200, seed=2)
>>> both = SufficientStats.of(design, pd.concat([a, b]))
>>> merged = SufficientStats.of(design, a) + SufficientStats.of(design, b)
>>> merged.n, bool(np.allclose(merged.comoment, both.reorder(merged.categories).comoment))
(500, True)
>>> (merged - SufficientStats.of(design, b)).n
300
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from app.data.normalize import tidy_codes
from app.dataset import Dataset, builtin

# After a subtraction, a category's count is (count x mean); below this it is gone, not rounding.
_GONE = 0.5
# What artifacts of the first format (one fixed dataset) scaled their one number by.
_FIRST_FORMAT_SCALE = 10.0


@dataclass(frozen=True)
class NumberColumn:
    """A numeric feature as the model sees it: ``(x - center) / scale``, and its square."""

    name: str
    center: float
    scale: float
    square: bool

    @property
    def width(self) -> int:
        return 2 if self.square else 1

    def terms(self, values) -> np.ndarray:
        t = (np.asarray(values, dtype=float).reshape(-1) - self.center) / self.scale
        return np.column_stack([t, t * t]) if self.square else t[:, None]


@dataclass(frozen=True)
class Design:
    """The model's columns: ``numbers`` (their terms first), then one block per category."""

    target: str
    numbers: tuple[NumberColumn, ...]
    categories: tuple[str, ...]

    @classmethod
    def of(cls, dataset: Dataset) -> Design:
        return cls(dataset.target,
                   tuple(NumberColumn(n.name, n.center, n.scale, n.square) for n in dataset.numbers),
                   tuple(c.name for c in dataset.categories))

    @property
    def features(self) -> tuple[str, ...]:
        return (*(number.name for number in self.numbers), *self.categories)

    @property
    def number_width(self) -> int:
        """How many columns the numbers take (a squared number takes two)."""
        return sum(number.width for number in self.numbers)

    def term_names(self) -> list[str]:
        """The numeric columns' names: ``age``, ``age²``."""
        names = []
        for number in self.numbers:
            names += [number.name, f"{number.name}²"] if number.square else [number.name]
        return names

    def number_block(self, records: pd.DataFrame) -> np.ndarray:
        """The numeric columns of tidied ``records``, shape (rows, :attr:`number_width`)."""
        if not self.numbers:
            return np.zeros((len(records), 0))
        return np.hstack([number.terms(records[number.name]) for number in self.numbers])

    def tidy(self, X: pd.DataFrame) -> pd.DataFrame:
        """Numbers as float, categories tidied: the one preprocessing of the model.

        The categorical columns come out as pandas categoricals: their categories are the tidied
        values in the order first seen, and looking them up (:func:`positions`) costs one lookup
        per category, not one per row.
        """
        missing = [column for column in self.features if column not in X.columns]
        if missing:
            raise ValueError(f"missing columns: {', '.join(missing)}")
        records = pd.DataFrame({number.name: np.asarray(X[number.name], dtype=float)
                                for number in self.numbers}, index=pd.RangeIndex(len(X)))
        for column in self.categories:
            codes, categories = tidy_codes(X[column])
            records[column] = pd.Categorical.from_codes(codes, categories=categories)
        return records

    def matrix(self, records: pd.DataFrame, categories: dict[str, list[str]]) -> np.ndarray:
        """The columns of tidied ``records`` over ``categories``: an unknown category is all zeros."""
        blocks = [self.number_block(records)]
        for column in self.categories:
            codes = positions(categories[column], records[column])
            block = np.zeros((len(records), len(categories[column])))
            known = codes >= 0
            block[np.flatnonzero(known), codes[known]] = 1.0
            blocks.append(block)
        return np.hstack(blocks)

    def width(self, categories: dict[str, list[str]]) -> int:
        return self.number_width + sum(len(categories[column]) for column in self.categories)

    # -- documents: plain data, saved with every model and statistic ------------------------

    def to_document(self) -> dict:
        return {"target": self.target, "categories": list(self.categories),
                "numbers": [{"name": n.name, "center": n.center, "scale": n.scale,
                             "square": n.square} for n in self.numbers]}

    @classmethod
    def from_document(cls, document: dict) -> Design:
        """A design from :meth:`to_document`; ``ValueError`` when it is not one."""
        try:
            numbers = tuple(NumberColumn(str(n["name"]), float(n["center"]), float(n["scale"]),
                                         bool(n["square"])) for n in document["numbers"])
            design = cls(str(document["target"]), numbers,
                         tuple(str(name) for name in document["categories"]))
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"malformed design: {error!r}") from None
        if not all(np.isfinite(n.center) and np.isfinite(n.scale) and n.scale > 0
                   for n in design.numbers):
            raise ValueError("a number's centre and scale must be finite, the scale positive")
        return design

    @classmethod
    def first_format(cls) -> Design:
        """The columns of artifacts and statistics written before declarations existed:
        the built-in dataset's, its one number scaled by a fixed 10."""
        design = cls.of(builtin())
        return cls(design.target, tuple(NumberColumn(n.name, n.center, _FIRST_FORMAT_SCALE,
                                                     n.square) for n in design.numbers),
                   design.categories)

    def describe(self) -> list[str]:
        """The model's columns in words, one line each (``python -m app dataset``)."""
        lines = []
        for number in self.numbers:
            scaled = f"({number.name} - {number.center:g}) / {number.scale:g}"
            lines.append(f"{number.name}: {scaled}")
            if number.square:
                lines.append(f"{number.name}²: the square of that")
        lines += [f"{column}=<value>: 1 for rows of that value, one column per value seen"
                  for column in self.categories]
        return lines


def positions(names: list[str], column: pd.Series) -> np.ndarray:
    """Each row's position among ``names`` in a categorical column of :meth:`Design.tidy`;
    -1 for a category not among them, or a missing value."""
    values = column.array
    return np.append(pd.Index(names).get_indexer(values.categories), -1)[values.codes]


def _affine(old: Design, new: Design) -> tuple[np.ndarray, np.ndarray]:
    """``(A, b)`` with ``new terms = A @ old terms + b`` for the numeric columns of two designs
    that differ only in centres and scales (a squared term mixes in its linear one)."""
    size = old.number_width
    matrix, offset_vector = np.zeros((size, size)), np.zeros(size)
    at = 0
    for before, after in zip(old.numbers, new.numbers):
        a = before.scale / after.scale
        b = (before.center - after.center) / after.scale
        matrix[at, at], offset_vector[at] = a, b
        if before.square:
            matrix[at + 1, at], matrix[at + 1, at + 1] = 2 * a * b, a * a
            offset_vector[at + 1] = b * b
        at += before.width
    return matrix, offset_vector


def _indicator(codes: np.ndarray, size: int, n: int):
    """A sparse (values by rows) matrix: 1 where a row holds a value (code -1: none)."""
    from scipy import sparse

    rows = np.flatnonzero(codes >= 0)
    return sparse.csr_matrix((np.ones(len(rows)), (codes[rows].astype(np.int64), rows)),
                             shape=(size, n))


@dataclass(frozen=True)
class SufficientStats:
    """Count, means and co-moment matrix over a design's columns + target (the target last)."""

    n: int
    design: Design
    categories: dict[str, list[str]]
    mean: np.ndarray = field(repr=False)
    comoment: np.ndarray = field(repr=False)

    @classmethod
    def empty(cls, design: Design) -> SufficientStats:
        size = design.number_width + 1
        return cls(0, design, {column: [] for column in design.categories}, np.zeros(size),
                   np.zeros((size, size)))

    @classmethod
    def of(cls, design: Design, rows: pd.DataFrame, y=None) -> SufficientStats:
        """The statistics of these rows (the target from ``y``, else the rows' own column),
        with their categories in the order first seen."""
        target = np.asarray(rows[design.target] if y is None else y, dtype=float)
        return cls.of_tidy(design, design.tidy(rows), target)

    @classmethod
    def of_tidy(cls, design: Design, records: pd.DataFrame, target: np.ndarray) -> SufficientStats:
        """:meth:`of` for records :meth:`Design.tidy` made already.

        The one-hot columns are never built: a category's mean is its share of the rows, its
        co-moments with the (centred) numbers are those numbers' sums over its rows, and with
        another category's values the counts of each pair; so a batch of 100,000 rows costs a
        few passes over its numbers and codes, not a 100,000-by-columns matrix.
        """
        if len(records) != len(target):
            raise ValueError(f"X has {len(records)} rows but y has {len(target)}")
        n = len(records)
        if not n:
            return cls.empty(design)
        categories = {column: records[column].cat.categories.tolist()
                      for column in design.categories}
        numbers = np.column_stack([design.number_block(records), target])
        number_mean = numbers.mean(axis=0)
        centred = numbers - number_mean
        sizes = [len(categories[column]) for column in design.categories]
        indicators = [_indicator(records[column].array.codes, size, n)
                      for column, size in zip(design.categories, sizes)]
        width = design.number_width
        at = np.cumsum([width, *sizes])  # where each block starts; the target after the last
        size = int(at[-1]) + 1
        comoment = np.zeros((size, size))
        blocks = [*range(width), size - 1]  # the numbers' and the target's rows and columns
        comoment[np.ix_(blocks, blocks)] = centred.T @ centred
        mean = np.zeros(size)
        mean[blocks] = number_mean
        shares = [np.asarray(indicator.sum(axis=1)).ravel() / n for indicator in indicators]
        for i, indicator in enumerate(indicators):
            here, share = slice(at[i], at[i + 1]), shares[i]
            mean[here] = share
            sums = indicator @ centred  # each value's sums of the centred numbers
            comoment[here, blocks] = sums
            comoment[blocks, here] = sums.T
            comoment[here, here] = np.diag(share * n) - n * np.outer(share, share)
            for k in range(i + 1, len(indicators)):
                there = slice(at[k], at[k + 1])
                pairs = (indicator @ indicators[k].T).toarray()  # rows of each pair of values
                cross = pairs - n * np.outer(share, shares[k])
                comoment[here, there] = cross
                comoment[there, here] = cross.T
        return cls(n, design, categories, mean, comoment)

    # -- columns ----------------------------------------------------------------------------

    def positions_in(self, categories: dict[str, list[str]]) -> np.ndarray:
        """Where each of this statistic's columns sits among ``categories``' columns."""
        at = list(range(self.design.number_width))
        offset = self.design.number_width
        for column in self.design.categories:
            index = {name: i for i, name in enumerate(categories[column])}
            try:
                at += [offset + index[name] for name in self.categories[column]]
            except KeyError as missing:
                raise ValueError(f"{column} {missing} is not among the target categories") from None
            offset += len(categories[column])
        at.append(offset)  # the target
        return np.asarray(at)

    def reorder(self, categories: dict[str, list[str]]) -> SufficientStats:
        """The same statistics over ``categories`` (a superset, in any order)."""
        size = self.design.width(categories) + 1
        at = self.positions_in(categories)
        mean, comoment = np.zeros(size), np.zeros((size, size))
        mean[at] = self.mean
        comoment[np.ix_(at, at)] = self.comoment
        return SufficientStats(self.n, self.design,
                               {c: list(categories[c]) for c in self.design.categories},
                               mean, comoment)

    def in_design(self, design: Design) -> SufficientStats:
        """The same rows' statistics over ``design``'s columns.

        Designs of the same features that scale them differently (a declaration whose bounds
        changed, an artifact of the first format) map onto each other exactly: the numeric
        terms are an affine function of each other. Any other difference is a ``ValueError``:
        those are statistics of another dataset.
        """
        if design == self.design:
            return self
        if (design.target, design.categories) != (self.design.target, self.design.categories) or [
                (n.name, n.square) for n in design.numbers] != [
                (n.name, n.square) for n in self.design.numbers]:
            raise ValueError(f"statistics of the columns {', '.join(self.design.features)} "
                             f"-> {self.design.target} cannot join a model of "
                             f"{', '.join(design.features)} -> {design.target}")
        width = self.design.number_width
        transform = np.eye(len(self.mean))
        shift = np.zeros(len(self.mean))
        transform[:width, :width], shift[:width] = _affine(self.design, design)
        return SufficientStats(self.n, design, self.categories, transform @ self.mean + shift,
                               transform @ self.comoment @ transform.T)

    def union_categories(self, other: SufficientStats) -> dict[str, list[str]]:
        union = {}
        for column in self.design.categories:
            seen = set(self.categories[column])
            union[column] = self.categories[column] + [
                name for name in other.categories[column] if name not in seen]
        return union

    # -- arithmetic -------------------------------------------------------------------------

    def __add__(self, other: SufficientStats) -> SufficientStats:
        other = other.in_design(self.design)
        if not other.n:
            return self
        if not self.n:
            return other
        union = self.union_categories(other)
        a, b = self.reorder(union), other.reorder(union)
        n = a.n + b.n
        delta = b.mean - a.mean
        comoment = a.comoment + b.comoment + np.outer(delta, delta) * (a.n * b.n / n)
        return SufficientStats(n, self.design, union, a.mean + delta * (b.n / n), comoment)

    def __sub__(self, other: SufficientStats) -> SufficientStats:
        """These statistics without ``other``'s rows, which they must contain."""
        other = other.in_design(self.design)
        if not other.n:
            return self
        if other.n > self.n:
            raise ValueError(f"cannot remove {other.n} rows from statistics of {self.n}")
        if other.n == self.n:
            return SufficientStats.empty(self.design)
        b = other.reorder(self.categories)
        n = self.n - b.n
        mean = (self.n * self.mean - b.n * b.mean) / n
        delta = b.mean - mean
        comoment = self.comoment - b.comoment - np.outer(delta, delta) * (n * b.n / self.n)
        return SufficientStats(n, self.design, self.categories, mean,
                               comoment)._without_empty_categories()

    def _without_empty_categories(self) -> SufficientStats:
        keep = list(range(self.design.number_width))
        categories, offset = {}, self.design.number_width
        for column in self.design.categories:
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
        return SufficientStats(self.n, self.design, categories, self.mean[at],
                               self.comoment[np.ix_(at, at)])

    # -- storage: plain arrays and JSON, so loading can never run code ----------------------

    def to_npz(self) -> bytes:
        buffer = io.BytesIO()
        np.savez(buffer, n=np.int64(self.n), mean=self.mean, comoment=self.comoment,
                 design=np.asarray(json.dumps(self.design.to_document())),
                 **{f"category:{column}": np.asarray(self.categories[column], dtype=str)
                    for column in self.design.categories})
        return buffer.getvalue()

    @classmethod
    def from_npz(cls, data: bytes) -> SufficientStats:
        with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
            if "design" in arrays.files:
                design = Design.from_document(json.loads(str(arrays["design"])))
                key = "category:{}".format
            else:
                design, key = Design.first_format(), "{}".format
            return cls._checked(arrays["n"], design, lambda column: arrays[key(column)],
                                arrays["mean"], arrays["comoment"])

    def to_document(self) -> dict:
        return {"n": self.n, "design": self.design.to_document(), "categories": self.categories,
                "mean": self.mean.tolist(), "comoment": self.comoment.tolist()}

    @classmethod
    def from_document(cls, document: dict, design: Design | None = None) -> SufficientStats:
        """``design``: the columns, when the document predates designs saved with them."""
        if "design" in document:
            design = Design.from_document(document["design"])
        if design is None:
            raise ValueError("the statistics do not say which columns they are of")
        return cls._checked(document["n"], design, document["categories"].__getitem__,
                            document["mean"], document["comoment"])

    @classmethod
    def _checked(cls, n, design: Design, names, mean, comoment) -> SufficientStats:
        """Statistics from their stored parts, checked; ``names(column)``: a column's
        category names."""
        categories = {column: [str(name) for name in names(column)]
                      for column in design.categories}
        stats = cls(int(n), design, categories, np.array(mean, dtype=float),
                    np.array(comoment, dtype=float))
        stats.check()
        return stats

    def check(self) -> None:
        """``ValueError`` unless the arrays fit the categories and are finite."""
        size = self.design.width(self.categories) + 1
        if self.n < 0 or self.mean.shape != (size,) or self.comoment.shape != (size, size):
            raise ValueError(f"statistics of shape {self.mean.shape}/{self.comoment.shape} "
                             f"do not fit {size - 1} features")
        if not (np.isfinite(self.mean).all() and np.isfinite(self.comoment).all()):
            raise ValueError("statistics hold a value that is not a finite number")
