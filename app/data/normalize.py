"""Check a raw batch against the row schema (:mod:`app.data.schema`) and split it into clean
rows and quarantined rows with reasons.

Every input row ends up in exactly one of the two outputs: nothing is dropped silently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from app.data import schema
from app.data.generator import FIELDS, seed_for

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


def tidy_codes(values) -> tuple[np.ndarray, np.ndarray]:
    """``(codes, categories)`` of a column of text tidied by :func:`tidy_category`.

    Each distinct value is tidied once; ``categories`` are the distinct tidied ones, in the order
    first seen, and ``codes`` each row's position among them (-1: a missing value). A pandas
    column is factorized as it is: an Arrow-backed one never becomes Python strings per row.

    >>> codes, categories = tidy_codes(["sÃO paulo", "São  Paulo", None, "Recife"])
    >>> codes.tolist(), categories.tolist()
    ([0, 0, -1, 1], ['São Paulo', 'Recife'])
    """
    if not isinstance(values, (pd.Series, pd.Index, np.ndarray)):
        values = np.asarray(values, dtype=object)
    codes, uniques = pd.factorize(values)
    tidied = np.array([tidy_category(str(value)) for value in uniques], dtype=object)
    tidied_codes, categories = pd.factorize(tidied)
    # A trailing -1 is picked by code -1: a missing value stays missing.
    return np.append(tidied_codes, -1)[codes], np.asarray(categories, dtype=object)


def tidy_categories(values) -> np.ndarray:
    """:func:`tidy_category` over a column of text, computed once per distinct value.

    >>> tidy_categories(["sÃO paulo", "São  Paulo", "Recife"]).tolist()
    ['São Paulo', 'São Paulo', 'Recife']
    """
    codes, categories = tidy_codes(values)
    return np.append(categories, None)[codes]  # code -1 (a missing value) picks the None


@dataclass(frozen=True)
class Normalized:
    clean: pd.DataFrame
    quarantine: pd.DataFrame
    unknown_fields: list[str] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        return {"clean": len(self.clean), "quarantined": len(self.quarantine)}


def normalize(raw: pd.DataFrame, batch_id: str | None = None,
              received_at: str | None = None) -> Normalized:
    """Check rows against the schema, tidy categories; reasons for every rejected row.

    ``received_at`` stands in for a missing ``timestamp`` (an ingested record need not have
    one); ``geracao_id`` defaults to ``batch_id``.

    >>> raw = pd.DataFrame({"nome": ["Ana", "Bia"], "idade": [30, 7], "salario": [3000.0, 1.0],
    ...     "cidade": [" são  paulo", "Recife"], "cargo": ["professor", "Vendedor"],
    ...     "timestamp": ["2025-01-01T00:00:00Z"] * 2, "geracao_id": ["b1", "b1"]})
    >>> result = normalize(raw, "b1")
    >>> result.clean[["cidade", "cargo"]].values.tolist()
    [['São Paulo', 'Professor']]
    >>> result.quarantine["reason"].tolist()
    ['idade out of range 18-70']
    """
    raw = schema.plain_text(raw.reset_index(drop=True))
    verdict = schema.check(raw, batch_id)
    reasons = verdict.reasons
    present = raw.drop(columns=verdict.unknown_fields)
    for name in FIELDS:
        if name not in present:
            present[name] = None

    clean = pd.DataFrame(index=raw.index)
    for name in schema.TEXT_FIELDS:
        text = schema.trimmed(present[name])
        clean[name] = text if name == "nome" else pd.Series(tidy_categories(text), index=raw.index)
    clean["nome"] = clean["nome"].where(schema.is_text(present["nome"]))
    clean["idade"] = schema.as_numbers(present["idade"]).fillna(0).astype("int64")
    clean["salario"] = schema.as_numbers(present["salario"])
    timestamp = schema.as_timestamps(present["timestamp"])
    if received_at is not None:
        timestamp = timestamp.where(present["timestamp"].notna(), pd.Timestamp(received_at))
    clean["timestamp"] = timestamp.astype("datetime64[ms, UTC]")
    clean["geracao_id"] = present["geracao_id"].where(present["geracao_id"].notna(),
                                                      batch_id).astype(object)

    # Only rows that are otherwise valid can be duplicates of a kept row.
    failing = pd.Series(verdict.failing(len(raw)), index=raw.index, dtype=bool)
    valid = ~failing
    duplicated = valid & clean[valid].duplicated(subset=list(FIELDS), keep="first").reindex(
        clean.index, fill_value=False)
    for row in np.flatnonzero(duplicated.to_numpy()):
        reasons.setdefault(row, []).append("duplicate of an earlier row")
    failing |= duplicated

    original = present.loc[failing, list(FIELDS)]
    quarantine = original.astype(str).where(original.notna())
    quarantine.insert(0, "row", raw.index[failing])
    quarantine["reason"] = ["; ".join(reasons[row]) for row in np.flatnonzero(failing.to_numpy())]
    kept = clean.loc[~failing, list(FIELDS)].reset_index(drop=True)
    return Normalized(clean=kept, quarantine=quarantine.reset_index(drop=True),
                      unknown_fields=verdict.unknown_fields)


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
