"""The data lake: one Parquet file per batch and stage under ``PIPELINE_HOME/data``.

Stages are folders: ``raw`` (as generated), ``normalized`` (checked rows, ready to train on)
and ``quarantine`` (rejected rows with the reason). Files are written atomically, so a batch
id handed to the next task always names a complete file.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from app.atomic import atomic_write

STAGES = ("raw", "normalized", "quarantine")
_BATCH_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


class BatchNotFound(LookupError):
    """The batch has no file at this stage."""


def check_batch_id(batch_id: object) -> str:
    """Return ``batch_id`` when it is a safe file name; raise ``ValueError`` otherwise."""
    if not isinstance(batch_id, str) or not _BATCH_ID.fullmatch(batch_id):
        raise ValueError(
            f"invalid batch id {batch_id!r}: expected 1-128 letters, digits, '_', '-' or '.'"
        )
    return batch_id


class DataLake:
    def __init__(self, root: Path):
        self.root = Path(root)

    def path(self, stage: str, batch_id: str) -> Path:
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}; stages are {', '.join(STAGES)}")
        return self.root / stage / f"{check_batch_id(batch_id)}.parquet"

    def exists(self, stage: str, batch_id: str) -> bool:
        return self.path(stage, batch_id).exists()

    def write(self, stage: str, batch_id: str, frame: pd.DataFrame) -> Path:
        path = self.path(stage, batch_id)
        atomic_write(path, lambda temp: frame.to_parquet(temp, index=False))
        return path

    def read(self, stage: str, batch_id: str) -> pd.DataFrame:
        path = self.path(stage, batch_id)
        try:
            return pd.read_parquet(path)
        except FileNotFoundError:
            raise BatchNotFound(f"batch {batch_id} has no {stage} data at {path}") from None
