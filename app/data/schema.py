"""The row schema: what a record must be to be learnt, declared once with pandera.

Every batch, generated or ingested, is checked against :func:`row_schema` before training
(see :mod:`app.data.normalize`). Each check is named by the reason a failing row is given in
the quarantine, so the declaration below is also the list of every reason there is:

- a required field (``idade``, ``salario``, ``cidade``, ``cargo``) absent from the batch:
  ``missing column <field>`` for every row; present but null: ``missing <field>``;
- ``idade``: a number (not text, not a boolean), whole (``35.0`` counts as 35), 18 to 70;
- ``salario``: a finite number, above 0 and at most 1,000,000;
- text fields (``nome`` optional, ``cidade``, ``cargo``): text, not blank once trimmed, at most
  ``MAX_TEXT`` characters once trimmed;
- ``timestamp`` (optional): ISO 8601; ``geracao_id``: the batch's own id.

A field the schema does not know is not a reason to quarantine a row: the batch reports it
(:attr:`Verdict.unknown_fields`) and the field is not kept.

The checks are vectorised (each takes a whole column), so a batch costs a few passes over its
columns whatever its size.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd
import pandera.pandas as pa

from app.data.generator import AGE_MAX, AGE_MIN, FIELDS

# Above this a monthly salary is a typo or a unit error, not a salary.
SALARIO_MAX = 1_000_000.0
# The longest city, job title or name kept, once trimmed (the same bound /predict applies).
MAX_TEXT = 100
REQUIRED = ("idade", "salario", "cidade", "cargo")
TEXT_FIELDS = ("nome", "cidade", "cargo")


def as_numbers(column: pd.Series) -> pd.Series:
    """Numbers as float; anything else (text, booleans, infinities, objects) as NaN."""
    if pd.api.types.is_bool_dtype(column):
        return pd.Series(np.nan, index=column.index)
    if column.dtype == object:
        column = column.map(lambda value: value if isinstance(value, (int, float)) and not isinstance(
            value, bool) else np.nan)
    numeric = pd.to_numeric(column, errors="coerce").astype("float64")
    return numeric.where(np.isfinite(numeric))


def is_text(column: pd.Series) -> pd.Series:
    if pd.api.types.is_string_dtype(column) and column.dtype != object:
        return column.notna()
    return column.map(lambda value: isinstance(value, str)).astype(bool)


def trimmed(column: pd.Series) -> pd.Series:
    """The text values trimmed; anything that is not text as an empty string."""
    return column.where(is_text(column), "").astype(str).str.strip()


def as_timestamps(column: pd.Series) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(column):
        return column if column.dt.tz is not None else column.dt.tz_localize("UTC")
    text = column.where(is_text(column))
    return pd.to_datetime(text, errors="coerce", utc=True, format="ISO8601")


def _check(reason: str, passes) -> pa.Check:
    """A check that fails a row with ``reason``; nulls are left to the column's nullability."""
    return pa.Check(passes, name=reason, ignore_na=True)


def _text_checks(field: str) -> list[pa.Check]:
    return [
        _check(f"{field} is not text", is_text),
        _check(f"{field} is blank", lambda s: ~is_text(s) | (trimmed(s).str.len() > 0)),
        _check(f"{field} longer than {MAX_TEXT} characters",
               lambda s: trimmed(s).str.len() <= MAX_TEXT),
    ]


def _number(s: pd.Series) -> pd.Series:
    return as_numbers(s).notna()


@lru_cache(maxsize=64)
def row_schema(batch_id: str | None = None) -> pa.DataFrameSchema:
    """The schema a batch's rows are checked against; ``batch_id``: the ``geracao_id`` it expects."""
    geracao = [_check("geracao_id is not text", is_text)]
    if batch_id is not None:
        geracao.append(_check(f"geracao_id is not this batch ({batch_id})",
                              lambda s: ~is_text(s) | (s.astype(str) == batch_id)))
    columns = {
        "nome": pa.Column(required=False, nullable=True, checks=_text_checks("nome")),
        "idade": pa.Column(required=True, nullable=False, checks=[
            _check("idade is not a number", _number),
            _check("idade is not a whole number",
                   lambda s: ~_number(s) | (as_numbers(s) == np.floor(as_numbers(s)))),
            _check(f"idade out of range {AGE_MIN}-{AGE_MAX}",
                   lambda s: ~_number(s) | as_numbers(s).between(AGE_MIN, AGE_MAX)),
        ]),
        "salario": pa.Column(required=True, nullable=False, checks=[
            _check("salario is not a finite number", _number),
            _check(f"salario out of range (0, {SALARIO_MAX:,.0f}]",
                   lambda s: ~_number(s) | ((as_numbers(s) > 0) & (as_numbers(s) <= SALARIO_MAX))),
        ]),
        "cidade": pa.Column(required=True, nullable=False, checks=_text_checks("cidade")),
        "cargo": pa.Column(required=True, nullable=False, checks=_text_checks("cargo")),
        "timestamp": pa.Column(required=False, nullable=True, checks=[
            _check("timestamp is not ISO 8601", lambda s: as_timestamps(s).notna()),
        ]),
        "geracao_id": pa.Column(required=False, nullable=True, checks=geracao),
    }
    assert tuple(columns) == FIELDS
    # strict: a column the schema does not know is reported (see check()).
    return pa.DataFrameSchema(columns, strict=True, name="record")


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


def check(raw: pd.DataFrame, batch_id: str | None = None) -> Verdict:
    """Check every row of ``raw`` (a default RangeIndex) and say why each failing one fails."""
    reasons: dict[int, list[str]] = {}
    unknown: list[str] = []
    try:
        row_schema(batch_id).validate(raw, lazy=True)
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
