"""Labels that come back for answers already given: joined to the kept records, by id.

:func:`join` looks the labels' ids up among the kept predictions (:mod:`app.data.predictions`),
lets ``claim`` say which of them were never labelled before (so a label sent twice, to two
hosts at the same moment, counts once), and returns the rows to learn (the features that were
answered, the label as the target) with the live error of each version: how far its answers
were from the truth that came back.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from app.data.predictions import FLUSH_EVERY, find, parse_id
from app.dataset import Dataset, within
from app.storage import Storage


# Waited at most for answers of the last moments to be written (their log writes each second).
SETTLE = FLUSH_EVERY + 0.5


@dataclass
class Joined:
    """What came of a set of labels: ``rows`` to learn, and counts."""

    rows: pd.DataFrame
    matched: int  # labels of kept answers never labelled before: learnt
    unknown: int  # labels of ids not kept (never given, malformed, or swept)
    repeated: int  # labels of answers labelled already: counted once, the first time
    # version -> (labels, sum of absolute errors) of the matched answers it gave
    live: dict[int, tuple[int, float]] = field(default_factory=dict)
    ids: list[str] = field(default_factory=list)  # the matched answers' ids


def _find_settled(storage: Storage, ids) -> pd.DataFrame:
    """:func:`find`, waiting once for the answers of the last second a web process may still
    hold in memory: a label sent right after its answer is not unknown for that."""
    kept = find(storage, ids)
    missing = set(ids) - set(kept["id"])
    recent = [i for i in missing if (parsed := parse_id(i)) and parsed[0] > time.time() * 1000
              - SETTLE * 1000]
    if not recent:
        return kept
    newest = max(parse_id(i)[0] for i in recent) / 1000
    time.sleep(max(0.0, newest + SETTLE - time.time()))
    return pd.concat([kept, find(storage, recent)], ignore_index=True)


def join(storage: Storage, dataset: Dataset, labels: list[dict],
         claim: Callable[[list[str]], set[str]]) -> Joined:
    """Join ``labels`` (``{"prediction_id", "value"}`` each) to the kept records."""
    values: dict[str, float] = {}
    for label in labels:  # the first label of an id in one request is the one
        values.setdefault(label["prediction_id"], float(label["value"]))
    kept = _find_settled(storage, values)
    unknown = len(values) - len(kept)
    if kept.empty:
        return Joined(pd.DataFrame(columns=dataset.learnt_columns), matched=0, unknown=unknown,
                      repeated=len(labels) - unknown)
    new = kept[kept["id"].isin(claim(kept["id"].tolist()))]
    truth = new["id"].map(values).to_numpy(dtype=float)
    rows = new[list(dataset.feature_names)].reset_index(drop=True)
    rows[dataset.target] = truth
    # A label outside the target's declared bounds is quarantined when its batch is checked:
    # it says nothing of how far an answer was from the truth, and one typo (1e9 for 1e4)
    # would swamp every label of the version.
    plausible = within(truth, dataset.target_min, dataset.target_max)
    errors = np.abs(truth - new["prediction"].to_numpy(dtype=float))[plausible]
    versions = new["version"].to_numpy()[plausible]
    live = {}
    for version in np.unique(versions):
        answered = versions == version
        live[int(version)] = (int(answered.sum()), float(errors[answered].sum()))
    return Joined(rows, matched=len(new), unknown=unknown,
                  repeated=len(labels) - len(new) - unknown, live=live, ids=new["id"].tolist())
