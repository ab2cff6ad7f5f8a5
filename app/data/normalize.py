"""Check a raw batch against the dataset's row schema (:mod:`app.data.schema`) and split it into
clean rows and quarantined rows with reasons.

Every input row ends up in exactly one of the two outputs: nothing is dropped silently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from app.data import schema
from app.dataset import BATCH_COLUMN, TIMESTAMP, Dataset, Number, builtin

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


@dataclass(frozen=True)
class Normalized:
    clean: pd.DataFrame
    quarantine: pd.DataFrame
    unknown_fields: list[str] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        return {"clean": len(self.clean), "quarantined": len(self.quarantine)}


def normalize(raw: pd.DataFrame, batch_id: str | None = None,
              received_at: str | None = None, dataset: Dataset | None = None) -> Normalized:
    """Check rows against the dataset's schema, tidy categories; reasons for every rejected row.

    ``received_at`` stands in for a missing ``timestamp`` (an ingested record need not have
    one); ``geracao_id`` defaults to ``batch_id``. ``dataset``: the declaration in force (the
    built-in one when None).

    >>> raw = pd.DataFrame({"nome": ["Ana", "Bia"], "idade": [30, 7], "salario": [3000.0, 1.0],
    ...     "cidade": [" são  paulo", "Recife"], "cargo": ["professor", "Vendedor"],
    ...     "timestamp": ["2025-01-01T00:00:00Z"] * 2, "geracao_id": ["b1", "b1"]})
    >>> result = normalize(raw, "b1")
    >>> result.clean[["cidade", "cargo"]].values.tolist()
    [['São Paulo', 'Professor']]
    >>> result.quarantine["reason"].tolist()
    ['idade out of range 18-70']
    """
    dataset = dataset or builtin()
    fields = list(dataset.columns)
    raw = schema.with_timestamps_read(schema.categories_as_text(
        schema.plain_text(raw.reset_index(drop=True)), dataset))
    verdict = schema.check(raw, dataset, batch_id)
    present = raw.drop(columns=verdict.unknown_fields)
    for name in fields:
        if name not in present:
            present[name] = None
    clean = _typed(present, dataset, batch_id, received_at)

    # A row repeated with its own timestamp is the same event sent twice; without one, two
    # equal rows are two observations (real data has them) and both are learnt. Only rows
    # that are otherwise valid can be duplicates of a kept row.
    reasons = verdict.reasons
    failing = pd.Series(verdict.failing(len(raw)), index=raw.index, dtype=bool)
    candidates = ~failing & present[TIMESTAMP].notna()
    duplicated = candidates & clean[candidates].duplicated(subset=fields, keep="first").reindex(
        clean.index, fill_value=False)
    for row in np.flatnonzero(duplicated.to_numpy()):
        reasons.setdefault(row, []).append("duplicate of an earlier row")
    failing |= duplicated

    original = present.loc[failing, fields]
    quarantine = original.astype(str).where(original.notna())
    quarantine.insert(0, "row", raw.index[failing])
    quarantine["reason"] = ["; ".join(reasons[row]) for row in np.flatnonzero(failing.to_numpy())]
    kept = clean.loc[~failing, fields].reset_index(drop=True)
    return Normalized(clean=kept, quarantine=quarantine.reset_index(drop=True),
                      unknown_fields=verdict.unknown_fields)


def _typed(present: pd.DataFrame, dataset: Dataset, batch_id: str | None,
           received_at: str | None) -> pd.DataFrame:
    """Every row of ``present`` (all of the dataset's columns) in its column's type, tidied:
    a value that fails its check becomes missing or zero here, and its row is quarantined."""
    clean = pd.DataFrame(index=present.index)
    for name in dataset.keep:
        clean[name] = schema.trimmed(present[name]).where(schema.is_text(present[name]))
    for feature in dataset.features:
        if isinstance(feature, Number):
            numbers = schema.as_numbers(present[feature.name]).fillna(0)
            clean[feature.name] = numbers.astype("int64") if feature.whole else numbers
        else:
            codes, categories = tidy_codes(schema.trimmed(present[feature.name]))
            clean[feature.name] = pd.Categorical.from_codes(codes, categories=categories)
    clean[dataset.target] = schema.as_numbers(present[dataset.target])
    timestamp = schema.as_timestamps(present[TIMESTAMP])
    if received_at is not None:
        timestamp = timestamp.where(present[TIMESTAMP].notna(), pd.Timestamp(received_at))
    clean[TIMESTAMP] = timestamp.astype("datetime64[ms, UTC]")
    clean[BATCH_COLUMN] = present[BATCH_COLUMN].where(present[BATCH_COLUMN].notna(),
                                                      batch_id).astype(object)
    return clean


# The promotion gate scores new versions on rows no version learnt: about one in twenty.
HOLDOUT_EVERY = 20


def holdout_mask(clean: pd.DataFrame, dataset: Dataset) -> np.ndarray:
    """Which of ``clean``'s rows are held out, chosen by each row's content alone.

    A row's features and target hash to a number (pandas' hash, the same on every machine and
    run), and one value in ``HOLDOUT_EVERY`` is held out. So the same rows give the same
    split, and the same model, on any system, whatever batches they arrive in; and a batch
    delivered again splits the same way.

    >>> from app.data.generator import generate
    >>> from app.dataset import builtin
    >>> int(holdout_mask(generate(1000, seed=1), builtin()).sum())
    50
    """
    if clean.empty:
        return np.zeros(0, dtype=bool)
    # One form whatever the dtypes a frame arrived with: numbers as floats, categories as
    # categoricals (hashed by their values, once each: the same hashes as their text).
    content = pd.DataFrame(
        {name: (clean[name].to_numpy(dtype=float) if name in dataset.number_columns
                else clean[name].astype("category"))
         for name in dataset.learnt_columns})
    hashes = pd.util.hash_pandas_object(content, index=False).to_numpy()
    return hashes % HOLDOUT_EVERY == 0


def split_holdout(clean: pd.DataFrame, dataset: Dataset) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(train, holdout)``: the rows :func:`holdout_mask` chooses, set aside.

    >>> from app.data.generator import generate
    >>> from app.dataset import builtin
    >>> train, holdout = split_holdout(generate(1000, seed=1), builtin())
    >>> len(train), len(holdout)
    (950, 50)
    """
    chosen = holdout_mask(clean, dataset)
    return (clean[~chosen].reset_index(drop=True), clean[chosen].reset_index(drop=True))
