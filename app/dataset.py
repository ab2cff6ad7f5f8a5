"""What the pipeline learns: a dataset declared in one TOML file, read and checked once.

A declaration names the target (a numeric column, with optional bounds and unit) and the
features, each a ``number`` (with ``min`` and ``max``, which also fix its scale, and optionally
``square`` and ``whole``) or a ``category`` (non-blank text). ``keep`` lists other text columns
kept beside each row and never learnt. The row checks, the request bodies, the model's columns,
the page and the reports all ask the :class:`Dataset` this module hands out; none of them reads
the file or names a column.

The built-in declaration (``app/data/salary.toml``) is the generator's: with it the scheduled
generator feeds the pipeline; with any other, data comes from ``/ingest``, ``python -m app
ingest`` and the inbox.

A declaration that cannot be used raises :class:`DatasetError`, one line naming the key at fault:

>>> parse('target = "wage"\\n[features.age]\\ntype = "nummber"', "wages.toml")
Traceback (most recent call last):
app.dataset.DatasetError: wages.toml: features.age.type: "nummber" is not number or category
"""

from __future__ import annotations

import functools
import math
import re
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path

BUILTIN_PATH = Path(__file__).resolve().parent / "data" / "salary.toml"
# The longest category or kept text, once trimmed (the same bound /predict applies).
MAX_TEXT = 100
# Columns every batch may carry beside the declared ones: when a record happened (ISO 8601;
# the batch's arrival when absent) and the batch it belongs to.
TIMESTAMP, BATCH_COLUMN = "timestamp", "geracao_id"
SYSTEM_COLUMNS = (TIMESTAMP, BATCH_COLUMN)
KINDS = ("number", "category")
_TOP_KEYS = ("name", "target", "unit", "target_min", "target_max", "prediction", "keep",
             "features")
_KEYS = {"number": ("type", "min", "max", "square", "whole"), "category": ("type",)}
# A column name: printable, trimmed, short. Quoted TOML keys may hold spaces and dots.
_NAME = re.compile(r"[^\s\x00-\x1f\x7f](?:[^\x00-\x1f\x7f]{0,62}[^\s\x00-\x1f\x7f])?")


class DatasetError(ValueError):
    """A declaration that cannot be used; the message is one line naming the key at fault."""


@dataclass(frozen=True)
class Number:
    """A numeric feature: finite, within ``[min, max]``; ``whole``: an integer there."""

    name: str
    min: float
    max: float
    square: bool = False
    whole: bool = False

    kind = "number"

    @property
    def center(self) -> float:
        """The middle of the declared range: the model centres the feature there."""
        return (self.min + self.max) / 2

    @property
    def scale(self) -> float:
        """Half the declared range: the feature is scaled to about [-1, 1]."""
        return (self.max - self.min) / 2


@dataclass(frozen=True)
class Category:
    """A categorical feature: text, one model column per value seen."""

    name: str

    kind = "category"


@dataclass(frozen=True)
class Dataset:
    name: str
    target: str
    features: tuple[Number | Category, ...]
    unit: str | None = None
    target_min: float | None = None
    target_max: float | None = None
    keep: tuple[str, ...] = ()
    prediction: str = ""
    source: str = ""
    generated: bool = False  # the built-in declaration: the generator feeds it

    @property
    def numbers(self) -> tuple[Number, ...]:
        return tuple(feature for feature in self.features if isinstance(feature, Number))

    @property
    def categories(self) -> tuple[Category, ...]:
        return tuple(feature for feature in self.features if isinstance(feature, Category))

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(feature.name for feature in self.features)

    @property
    def learnt_columns(self) -> list[str]:
        """What a train step reads of a batch: the features and the target."""
        return [*self.feature_names, self.target]

    @property
    def columns(self) -> tuple[str, ...]:
        """Every column a checked row keeps, in the order the lake stores them."""
        return (*self.keep, *self.feature_names, self.target, *SYSTEM_COLUMNS)

    @property
    def number_columns(self) -> tuple[str, ...]:
        """Columns that hold numbers: the numeric features and the target."""
        return (*(feature.name for feature in self.numbers), self.target)

    @property
    def text_columns(self) -> tuple[str, ...]:
        return (*self.keep, *(feature.name for feature in self.categories))

    def to_document(self) -> dict:
        """The declaration as JSON-ready data (``GET /dataset``)."""
        features = []
        for feature in self.features:
            described = {"name": feature.name, "type": feature.kind}
            if isinstance(feature, Number):
                described.update(min=feature.min, max=feature.max, square=feature.square,
                                 whole=feature.whole)
            features.append(described)
        return {"name": self.name, "target": self.target, "unit": self.unit,
                "target_min": self.target_min, "target_max": self.target_max,
                "features": features, "keep": list(self.keep), "prediction": self.prediction,
                "generated": self.generated}

    @classmethod
    def from_document(cls, document: dict) -> Dataset:
        """The dataset :meth:`to_document` described (what ``GET /dataset`` answers)."""
        features = tuple(
            Number(f["name"], f["min"], f["max"], square=f["square"], whole=f["whole"])
            if f["type"] == "number" else Category(f["name"]) for f in document["features"])
        return cls(name=document["name"], target=document["target"], features=features,
                   unit=document["unit"], target_min=document["target_min"],
                   target_max=document["target_max"], keep=tuple(document["keep"]),
                   prediction=document["prediction"], generated=document["generated"])

    def feature(self, name: str) -> Number | Category:
        return next(feature for feature in self.features if feature.name == name)

    def amount(self, value: float, digits: int = 2) -> str:
        """``value`` in the target's unit, for people: ``1,234.50 USD/hour``."""
        text = f"{value:,.{digits}f}"
        return f"{text} {self.unit}" if self.unit else text

    def target_range(self) -> str | None:
        """The target's bounds in words (``0.01-1,000,000``), or None when it has none."""
        if self.target_min is None and self.target_max is None:
            return None
        return span(self.target_min, self.target_max)


def within(values, low: float | None, high: float | None):
    """Whether each of ``values`` (a numpy array or a pandas Series of numbers) lies in
    ``[low, high]``, as the same kind; a bound of None is no bound, and NaN is within none.

    >>> import numpy as np
    >>> within(np.array([-1.0, 5.0, 200.0, np.nan]), 0, 100).tolist()
    [False, True, False, False]
    """
    inside = values == values  # NaN is the one value not equal to itself
    if low is not None:
        inside = inside & (values >= low)
    if high is not None:
        inside = inside & (values <= high)
    return inside


def number_text(value: float | None) -> str:
    """A bound as people write it: ``18``, ``0.01``, ``1,000,000``, ``-inf`` for none.

    >>> number_text(1_000_000.0), number_text(0.01), number_text(-5)
    ('1,000,000', '0.01', '-5')
    """
    if value is None:
        return "-inf"
    return f"{int(value):,}" if float(value).is_integer() else f"{value:,}"


def figure(value: float) -> str:
    """A score as people read it: whole with thousands separators when large, else 4 digits.

    >>> figure(1234567.8), figure(20.4567), figure(0.0123456)
    ('1,234,568', '20.46', '0.01235')
    """
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"


def span(low: float | None, high: float | None) -> str:
    """``18-70``; ``-5 to 70`` when a minus sign would make the dash ambiguous."""
    low_text, high_text = number_text(low), (number_text(high) if high is not None else "inf")
    joiner = " to " if low_text.startswith("-") else "-"
    return f"{low_text}{joiner}{high_text}"


# -- reading and checking -------------------------------------------------------------------

def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _quoted(value) -> str:
    return f'"{value}"' if isinstance(value, str) else repr(value)


class _Checker:
    """Checks one declaration; every error names the key path, as packaging's do."""

    def __init__(self, source: str):
        self.source = source

    def fail(self, key: str, problem: str):
        raise DatasetError(f"{self.source}: {key}: {problem}")

    def name(self, key: str, value) -> str:
        if not isinstance(value, str) or not _NAME.fullmatch(value):
            self.fail(key, f"{_quoted(value)} is not a column name (1-64 printable characters, "
                           "no leading or trailing space)")
        return value

    def number(self, key: str, value, required: bool = False) -> float | None:
        if value is None:
            if required:
                self.fail(key, "is required")
            return None
        if not _is_number(value):
            self.fail(key, f"{_quoted(value)} is not a finite number")
        return float(value)

    def flag(self, key: str, value) -> bool:
        if value is None:
            return False
        if not isinstance(value, bool):
            self.fail(key, f"{_quoted(value)} is not true or false")
        return value

    def unknown(self, key: str, table: dict, allowed: tuple[str, ...]) -> None:
        for name in table:
            if name not in allowed:
                where = f"{key}.{name}" if key else name
                self.fail(where, f"unknown key (allowed: {', '.join(allowed)})")

    def bounds(self, key: str, low: float | None, high: float | None) -> None:
        if low is not None and high is not None and not low < high:
            self.fail(key, f"min {number_text(low)} is not below max {number_text(high)}")

    def feature(self, name: str, table) -> Number | Category:
        key = f"features.{name}"
        self.name(key, name)
        if not isinstance(table, dict):
            self.fail(key, f'must be a table such as {{ type = "category" }}, got {_quoted(table)}')
        kind = table.get("type")
        if kind is None:
            self.fail(f"{key}.type", "is required: number or category")
        if kind not in KINDS:
            self.fail(f"{key}.type", f"{_quoted(kind)} is not number or category")
        self.unknown(key, table, _KEYS[kind])
        if kind == "category":
            return Category(name)
        low = self.number(f"{key}.min", table.get("min"), required=True)
        high = self.number(f"{key}.max", table.get("max"), required=True)
        self.bounds(key, low, high)
        return Number(name, low, high, square=self.flag(f"{key}.square", table.get("square")),
                      whole=self.flag(f"{key}.whole", table.get("whole")))

    def dataset(self, document: dict, default_name: str) -> Dataset:
        self.unknown("", document, _TOP_KEYS)
        if "target" not in document:
            self.fail("target", "is required: the numeric column to learn and predict")
        target = self.name("target", document["target"])
        features_table = document.get("features")
        if not isinstance(features_table, dict) or not features_table:
            self.fail("features", "no features declared: add a [features] table, such as "
                                  'age = { type = "number", min = 0, max = 120 }')
        features = tuple(self.feature(name, table) for name, table in features_table.items())
        if target in features_table:
            self.fail(f"features.{target}", f"the target {target} cannot also be a feature")
        keep = document.get("keep", [])
        if not isinstance(keep, list):
            self.fail("keep", f"must be a list of column names, got {_quoted(keep)}")
        keep = tuple(self.name(f"keep[{index}]", value) for index, value in enumerate(keep))
        taken = {target, *features_table}
        for index, value in enumerate(keep):
            if value in taken:
                self.fail(f"keep[{index}]", f"{value} is already the target or a feature")
        for value in (target, *features_table, *keep):
            if value in SYSTEM_COLUMNS:
                self.fail(value, f"{value} is a column every batch has: choose another name")
        low = self.number("target_min", document.get("target_min"))
        high = self.number("target_max", document.get("target_max"))
        self.bounds("target_min", low, high)
        unit = document.get("unit")
        if unit is not None and (not isinstance(unit, str) or not 0 < len(unit) <= 20):
            self.fail("unit", f"{_quoted(unit)} is not a short text such as \"USD/hour\"")
        name = document.get("name", default_name)
        if not isinstance(name, str) or not 0 < len(name.strip()) <= 60:
            self.fail("name", f"{_quoted(name)} is not a short text")
        prediction = document.get("prediction", f"predicted_{target}")
        self.name("prediction", prediction)
        if prediction in taken or prediction in keep:
            self.fail("prediction", f"{prediction} is already a column of the records")
        return Dataset(name=name.strip(), target=target, features=features, unit=unit,
                       target_min=low, target_max=high, keep=keep, prediction=prediction)


def parse(text: str, source: str = "<declaration>") -> Dataset:
    """The dataset ``text`` declares; :class:`DatasetError` naming the key when it cannot be used."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise DatasetError(f"{source}: not valid TOML: {error}") from None
    return _Checker(source).dataset(document, Path(source).stem or "dataset")


def load(path: str | Path | None = None) -> Dataset:
    """The declaration at ``path`` (the built-in one when None or empty)."""
    resolved = BUILTIN_PATH if not path else Path(path).expanduser().resolve()
    return _load(resolved, _mtime(resolved))


def _mtime(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return 0


@functools.lru_cache(maxsize=8)
def _load(path: Path, _mtime_ns: int) -> Dataset:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DatasetError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise DatasetError(f"{path}: cannot be read: {error}") from None
    return replace(parse(text, str(path)), source=str(path), generated=path == BUILTIN_PATH)


def builtin() -> Dataset:
    """The generator's declaration: what the pipeline learns unless ``DATASET`` says otherwise."""
    return load(BUILTIN_PATH)
