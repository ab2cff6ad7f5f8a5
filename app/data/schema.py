"""The row schema: what a record must be to be learnt, built with pandera from the declaration.

Every batch, generated or ingested, is checked against :func:`row_schema` before training
(see :mod:`app.data.normalize`). Each check is named by the reason a failing row is given in
the quarantine, so the schema is also the list of every reason there is, for a dataset
(:mod:`app.dataset`) declaring a target and features:

- the target or a feature absent from the batch: ``missing column <field>`` for every row;
  present but null: ``missing <field>``;
- a ``number`` feature: a number (not text, not a boolean) within its ``min`` and ``max``
  (``<field> out of range 18-70``); declared ``whole``, a whole one (``35.0`` counts as 35);
- the target: a finite number, within its bounds when it has any;
- a ``category`` feature, and a ``keep`` column (optional): text, not blank once trimmed, at
  most ``MAX_TEXT`` characters once trimmed;
- ``timestamp`` (optional): ISO 8601; ``geracao_id``: the batch's own id.

A field the declaration does not name is not a reason to quarantine a row: the batch reports
it (:attr:`Verdict.unknown_fields`) and the field is not kept.

The checks are vectorised (each takes a whole column), so a batch costs a few passes over its
columns whatever its size.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd
import pandera.pandas as pa

from app.dataset import BATCH_COLUMN, MAX_TEXT, TIMESTAMP, Dataset, Number, span, within


def as_numbers(column: pd.Series) -> pd.Series:
    """Numbers as float; anything else (text, booleans, infinities, objects) as NaN."""
    if pd.api.types.is_bool_dtype(column):
        return pd.Series(np.nan, index=column.index)
    if column.dtype == object:
        column = column.map(lambda value: value if isinstance(value, (int, float)) and not isinstance(
            value, bool) else np.nan)
    numeric = pd.to_numeric(column, errors="coerce").astype("float64")
    return numeric.where(np.isfinite(numeric))


def _typed_text(column: pd.Series) -> bool:
    """Whether ``column`` holds text and nothing else (missing values aside): a string dtype."""
    return pd.api.types.is_string_dtype(column) and column.dtype != object


def is_text(column: pd.Series) -> pd.Series:
    present = column.notna()
    if _typed_text(column) or not present.any():  # typed text, or nothing (an absent column)
        return present
    return column.map(lambda value: isinstance(value, str)).astype(bool)


def trimmed(column: pd.Series) -> pd.Series:
    """The text values trimmed; anything that is not text as an empty string."""
    if _typed_text(column):
        return column.str.strip().fillna("")
    return column.where(is_text(column), "").astype(str).str.strip()


def as_timestamps(column: pd.Series) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(column):
        return column if column.dt.tz is not None else column.dt.tz_localize("UTC")
    if _typed_text(column):
        import pyarrow as pa
        import pyarrow.compute as pc

        try:
            # ISO 8601 with its zone, read by Arrow in a fourth of pandas' time; a time without
            # a zone (which pandas reads as UTC) or any other text takes pandas' way.
            parsed = pc.cast(pa.array(column), pa.timestamp("ms", tz="UTC"))
            return pd.Series(parsed.to_pandas(), index=column.index)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            pass
    text = column.where(is_text(column))
    return pd.to_datetime(text, errors="coerce", utc=True, format="ISO8601")


def with_timestamps_read(raw: pd.DataFrame) -> pd.DataFrame:
    """``raw`` with its timestamp column as times when every value reads as one: read once,
    the checks and the normalizer then take it as it is; left as it is otherwise."""
    if TIMESTAMP not in raw or pd.api.types.is_datetime64_any_dtype(raw[TIMESTAMP]):
        return raw
    times = as_timestamps(raw[TIMESTAMP])
    if (times.notna() == raw[TIMESTAMP].notna()).all():
        return raw.assign(**{TIMESTAMP: times})
    return raw


def categories_as_text(raw: pd.DataFrame, dataset: Dataset) -> pd.DataFrame:
    """``raw`` with each text column (a category, a ``keep``) that is coded in numbers or
    booleans as the text they stand for (:func:`_as_category`).

    Parquet and JSON keep a category coded ``0``/``1`` as numbers where CSV gives text, and
    either is the same category. A column coded so holds nothing but numbers (missing values
    aside); a number among text is a stray value, and its row is quarantined.
    """
    converted = {}
    for name in dataset.text_columns:
        column = raw.get(name)
        if column is None or _typed_text(column) or pd.api.types.is_datetime64_any_dtype(column):
            continue
        if pd.api.types.is_integer_dtype(column) and not pd.api.types.is_bool_dtype(column):
            converted[name] = column.astype("str")  # one cast, not a call per row
        elif pd.api.types.is_numeric_dtype(column) or _coded_in_numbers(column):
            converted[name] = column.map(_as_category).astype(object)
    return raw.assign(**converted) if converted else raw


def _coded_in_numbers(column: pd.Series) -> bool:
    """Whether every value present is a number or a boolean (of a categorical: every category)."""
    values = (column.cat.categories.to_series() if isinstance(column.dtype, pd.CategoricalDtype)
              else column.dropna())
    return len(values) > 0 and values.map(lambda value: isinstance(value, (int, float))).all()


def _as_category(value):
    """A number or a boolean as the text a CSV file written by pandas gives it, so that
    Parquet, JSON and CSV copies of the same data name the same categories (``4`` and ``4.0``
    are ``"4"``, ``true`` is ``"True"``); NaN (a float column's missing value) as missing;
    anything else as it is, for the checks to name.

    >>> [_as_category(value) for value in (4, 4.0, 2.5, True, float("nan"), "x", [1])]
    ['4', '4', '2.5', 'True', None, 'x', [1]]
    """
    if isinstance(value, (bool, int)):
        return str(value)
    if isinstance(value, float):
        if np.isnan(value):
            return None
        if np.isfinite(value):
            return str(int(value)) if value.is_integer() else repr(value)
    return value


def _check(reason: str, passes) -> pa.Check:
    """A check that fails a row with ``reason``; nulls are left to the column's nullability."""
    return pa.Check(passes, name=reason, ignore_na=True)


_last_lengths = threading.local()


def trimmed_length(column: pd.Series) -> pd.Series:
    """The length of each value once trimmed (0 for what is not text). The blank and the too
    long checks both ask it of the same column, one after the other: the second gets the
    first's answer. pandera hands each check a Series of its own, over the same array: the
    array, not the Series, tells it is the same column."""
    last = getattr(_last_lengths, "value", None)
    if last is not None and last[0] is column.array and last[1].index.equals(column.index):
        return last[1]
    lengths = trimmed(column).str.len()
    _last_lengths.value = (column.array, lengths)
    return lengths


def _text_checks(field: str) -> list[pa.Check]:
    return [
        _check(f"{field} is not text", is_text),
        _check(f"{field} is blank", lambda s: ~is_text(s) | (trimmed_length(s) > 0)),
        _check(f"{field} longer than {MAX_TEXT} characters",
               lambda s: trimmed_length(s) <= MAX_TEXT),
    ]


def _number(s: pd.Series) -> pd.Series:
    return as_numbers(s).notna()


def _within(low: float | None, high: float | None):
    def passes(s: pd.Series) -> pd.Series:
        return ~_number(s) | within(as_numbers(s), low, high)

    return passes


def _number_checks(feature: Number) -> list[pa.Check]:
    checks = [_check(f"{feature.name} is not a number", _number)]
    if feature.whole:
        checks.append(_check(f"{feature.name} is not a whole number",
                             lambda s: ~_number(s) | (as_numbers(s) == np.floor(as_numbers(s)))))
    checks.append(_check(f"{feature.name} out of range {span(feature.min, feature.max)}",
                         _within(feature.min, feature.max)))
    return checks


def _target_checks(dataset: Dataset) -> list[pa.Check]:
    checks = [_check(f"{dataset.target} is not a finite number", _number)]
    bounds = dataset.target_range()
    if bounds is not None:
        checks.append(_check(f"{dataset.target} out of range {bounds}",
                             _within(dataset.target_min, dataset.target_max)))
    return checks


@lru_cache(maxsize=64)
def row_schema(dataset: Dataset, batch_id: str | None = None) -> pa.DataFrameSchema:
    """The schema ``dataset``'s rows are checked against; ``batch_id``: the batch id column
    (``geracao_id``) it expects."""
    batch = [_check(f"{BATCH_COLUMN} is not text", is_text)]
    if batch_id is not None:
        batch.append(_check(f"{BATCH_COLUMN} is not this batch ({batch_id})",
                            lambda s: ~is_text(s) | (s.astype(str) == batch_id)))
    columns = {name: pa.Column(required=False, nullable=True, checks=_text_checks(name))
               for name in dataset.keep}
    for feature in dataset.features:
        checks = (_number_checks(feature) if isinstance(feature, Number)
                  else _text_checks(feature.name))
        columns[feature.name] = pa.Column(required=True, nullable=False, checks=checks)
    columns[dataset.target] = pa.Column(required=True, nullable=False,
                                        checks=_target_checks(dataset))
    columns[TIMESTAMP] = pa.Column(required=False, nullable=True, checks=[
        _check(f"{TIMESTAMP} is not ISO 8601", lambda s: as_timestamps(s).notna()),
    ])
    columns[BATCH_COLUMN] = pa.Column(required=False, nullable=True, checks=batch)
    # strict: a column the schema does not know is reported (see check()).
    return pa.DataFrameSchema({name: columns[name] for name in dataset.columns}, strict=True,
                              name="record")


@dataclass(frozen=True)
class Verdict:
    """``reasons``: for each failing row (by position), every reason it fails, in the schema's
    order; rows that pass are absent, so a clean batch costs nothing per row."""

    reasons: dict[int, list[str]]
    unknown_fields: list[str]

    def failing(self, rows: int) -> np.ndarray:
        mask = np.zeros(rows, dtype=bool)
        mask[list(self.reasons)] = True
        return mask


def plain_text(raw: pd.DataFrame) -> pd.DataFrame:
    """``raw`` with categorical text columns (what Parquet gives back) as plain text.

    The text checks are vectorised for text columns; on a categorical one they would fall
    back to looking at every value in Python.
    """
    categorical = [name for name, dtype in raw.dtypes.items()
                   if isinstance(dtype, pd.CategoricalDtype)
                   and pd.api.types.is_string_dtype(dtype.categories)]
    if not categorical:
        return raw
    return raw.astype({name: "str" for name in categorical})


def check(raw: pd.DataFrame, dataset: Dataset, batch_id: str | None = None) -> Verdict:
    """Check every row of ``raw`` (a default RangeIndex) and say why each failing one fails."""
    reasons: dict[int, list[str]] = {}
    unknown: list[str] = []
    try:
        row_schema(dataset, batch_id).validate(raw, lazy=True)
    except pa.errors.SchemaErrors as errors:
        for case in errors.failure_cases.itertuples(index=False):
            if case.check == "column_in_schema":
                unknown.append(str(case.failure_case))
                continue
            if case.check == "column_in_dataframe":
                reason = f"missing column {case.failure_case}"
            elif case.check == "not_nullable":
                reason = f"missing {case.column}"
            else:
                reason = str(case.check)
            rows = range(len(raw)) if case.index is None or pd.isna(case.index) else [int(case.index)]
            for row in rows:
                found = reasons.setdefault(row, [])
                if reason not in found:
                    found.append(reason)
    return Verdict(reasons=reasons, unknown_fields=unknown)
