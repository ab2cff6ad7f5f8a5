"""Check a raw batch and split it into clean rows and quarantined rows with reasons.

Every input row ends up in exactly one of the two outputs: nothing is dropped silently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from app.data.generator import AGE_MAX, AGE_MIN, FIELDS, seed_for

# Above this a monthly salary is a typo or a unit error, not a salary.
SALARIO_MAX = 1_000_000.0
TEXT_FIELDS = ("nome", "cidade", "cargo")
_LOWERCASE_PARTICLES = {"de", "da", "do", "das", "dos", "e", "d'"}
_SPACES = re.compile(r"\s+")


def tidy_category(value: str) -> str:
    """One spelling per category: spaces collapsed, words capitalised, particles lowercase.

    Accents are kept: "são paulo" and "Sao Paulo" are different spellings, and guessing which
    one a user meant would be worse than keeping both.

    >>> tidy_category("  rio   DE janeiro ")
    'Rio de Janeiro'
    >>> tidy_category("técnico de enfermagem")
    'Técnico de Enfermagem'
    """
    words = _SPACES.sub(" ", value).strip().lower().split(" ")
    return " ".join(
        word if index and word in _LOWERCASE_PARTICLES else word[:1].upper() + word[1:]
        for index, word in enumerate(words)
    )


def tidy_categories(values) -> np.ndarray:
    """:func:`tidy_category` over a column of text, computed once per distinct value.

    >>> tidy_categories(["sÃO paulo", "São  Paulo", "Recife"]).tolist()
    ['São Paulo', 'São Paulo', 'Recife']
    """
    codes, uniques = pd.factorize(np.asarray(values, dtype=object))
    tidied = np.array([tidy_category(str(value)) for value in uniques] + [None], dtype=object)
    return tidied[codes]  # code -1 (a missing value) picks the trailing None


@dataclass(frozen=True)
class Normalized:
    clean: pd.DataFrame
    quarantine: pd.DataFrame

    @property
    def counts(self) -> dict[str, int]:
        return {"clean": len(self.clean), "quarantined": len(self.quarantine)}


class _Reasons:
    """Collects, per row, every reason that row fails."""

    def __init__(self, index: pd.Index):
        self.reasons = pd.Series([[] for _ in range(len(index))], index=index, dtype=object)

    def add(self, failing: pd.Series, reason: str) -> None:
        for row in failing.index[failing.to_numpy(dtype=bool)]:
            self.reasons[row].append(reason)

    def failing(self) -> pd.Series:
        return self.reasons.map(bool)

    def text(self) -> pd.Series:
        return self.reasons.map("; ".join)


def normalize(raw: pd.DataFrame, batch_id: str | None = None) -> Normalized:
    """Type, range and duplicate checks; tidy categories; reasons for every rejected row.

    >>> raw = pd.DataFrame({"nome": ["Ana", "Bia"], "idade": [30, 7], "salario": [3000.0, 1.0],
    ...     "cidade": [" são  paulo", "Recife"], "cargo": ["professor", "Vendedor"],
    ...     "timestamp": ["2025-01-01T00:00:00Z"] * 2, "geracao_id": ["b1", "b1"]})
    >>> result = normalize(raw, "b1")
    >>> result.clean[["cidade", "cargo"]].values.tolist()
    [['São Paulo', 'Professor']]
    >>> result.quarantine["reason"].tolist()
    ['idade out of range 18-70']
    """
    raw = raw.reset_index(drop=True)
    reasons = _Reasons(raw.index)
    clean = pd.DataFrame(index=raw.index)

    for field in FIELDS:
        if field not in raw.columns:
            reasons.add(pd.Series(True, index=raw.index), f"missing column {field}")
            raw[field] = None
        reasons.add(raw[field].isna(), f"missing {field}")

    for field in TEXT_FIELDS + ("geracao_id",):
        column = raw[field]
        is_text = column.map(lambda value: isinstance(value, str)).astype(bool)
        reasons.add(column.notna() & ~is_text, f"{field} is not text")
        text = column.where(is_text, "").astype(str)
        clean[field] = text if field == "geracao_id" else pd.Series(tidy_categories(text),
                                                                   index=raw.index)
        reasons.add(is_text & (clean[field].str.len() == 0), f"{field} is blank")

    idade = _numbers(raw["idade"])
    reasons.add(raw["idade"].notna() & idade.isna(), "idade is not a number")
    reasons.add(idade.notna() & (idade != np.floor(idade)), "idade is not a whole number")
    reasons.add(idade.notna() & ~idade.between(AGE_MIN, AGE_MAX),
                f"idade out of range {AGE_MIN}-{AGE_MAX}")
    clean["idade"] = idade.fillna(0).astype("int64")

    salario = _numbers(raw["salario"])
    reasons.add(raw["salario"].notna() & salario.isna(), "salario is not a number")
    reasons.add(salario.notna() & ~((salario > 0) & (salario <= SALARIO_MAX)),
                f"salario out of range (0, {SALARIO_MAX:,.0f}]")
    clean["salario"] = salario.astype("float64")

    timestamp = pd.to_datetime(raw["timestamp"], errors="coerce", utc=True, format="ISO8601")
    reasons.add(raw["timestamp"].notna() & timestamp.isna(), "timestamp is not ISO 8601")
    clean["timestamp"] = timestamp.astype("datetime64[ms, UTC]")

    if batch_id is not None:
        reasons.add(raw["geracao_id"].notna() & (clean["geracao_id"] != batch_id),
                    f"geracao_id is not this batch ({batch_id})")

    # Only rows that are otherwise valid can be duplicates of a kept row.
    valid = ~reasons.failing()
    duplicated = valid & clean[valid].duplicated(subset=list(FIELDS), keep="first").reindex(
        clean.index, fill_value=False)
    reasons.add(duplicated, "duplicate of an earlier row")

    failing = reasons.failing()
    quarantine = raw.loc[failing, list(FIELDS)].astype(str).where(raw.loc[failing, list(FIELDS)].notna())
    quarantine.insert(0, "row", raw.index[failing])
    quarantine["reason"] = reasons.text()[failing]
    kept = clean.loc[~failing, list(FIELDS)].reset_index(drop=True)
    return Normalized(clean=kept, quarantine=quarantine.reset_index(drop=True))


def _numbers(column: pd.Series) -> pd.Series:
    """Numbers as float; anything else (text, booleans, infinities) as NaN."""
    def as_number(value):
        if isinstance(value, (bool, np.bool_)):
            return np.nan
        return value
    numeric = pd.to_numeric(column.map(as_number) if column.dtype == object else column,
                            errors="coerce").astype("float64")
    return numeric.where(np.isfinite(numeric))


# The promotion gate scores new versions on rows no version learnt: one in twenty clean rows.
HOLDOUT_FRACTION = 0.05
# Below this a batch keeps every row for training: a handful of held-out rows says nothing.
HOLDOUT_MIN_ROWS = 20


def split_holdout(clean: pd.DataFrame, batch_id: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(train, holdout)``: a fixed share of ``clean``, chosen by the batch id, set aside.

    The same batch always splits the same way, so a redelivered step writes the same files.

    >>> from app.data.generator import generate
    >>> train, holdout = split_holdout(generate(1000, seed=1), "b1")
    >>> len(train), len(holdout)
    (950, 50)
    """
    if len(clean) < HOLDOUT_MIN_ROWS:
        return clean, clean.iloc[:0]
    size = round(len(clean) * HOLDOUT_FRACTION)
    chosen = np.zeros(len(clean), dtype=bool)
    chosen[np.random.default_rng(seed_for(f"holdout:{batch_id}")).choice(len(clean), size, replace=False)] = True
    return (clean[~chosen].reset_index(drop=True), clean[chosen].reset_index(drop=True))
