"""The data lake: one Parquet file per batch and stage, under ``data/`` in the storage.

Stages are prefixes: ``raw`` (as generated or ingested), ``normalized`` (checked rows the model
learns), ``holdout`` (checked rows set aside for the promotion gate, never learnt) and
``quarantine`` (rejected rows with the reason of each). Writes are atomic, so a batch id handed
to the next task always names a complete file.
"""

from __future__ import annotations

import io
import json
import math
import re

import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from app.storage import Storage

STAGES = ("raw", "normalized", "holdout", "quarantine")
CHECKED_STAGES = ("normalized", "holdout")
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


def to_parquet(rows: pd.DataFrame | pa.Table) -> bytes:
    """Parquet of a frame, or of an Arrow table as it is (a file's chunk arrives as one, and
    a round trip through pandas would cost more than writing it)."""
    buffer = io.BytesIO()
    if isinstance(rows, pa.Table):
        pq.write_table(rows, buffer)
    else:
        rows.to_parquet(buffer, index=False)
    return buffer.getvalue()


def _without_dictionaries(schema: pa.Schema) -> pa.Schema:
    """``schema`` with dictionary-encoded text as plain text.

    pandas writes a categorical column as an Arrow dictionary and reads it back as a
    categorical, and turning a batch of names into one costs five times the rest of the read;
    the checks and the model want plain text anyway.
    """
    return pa.schema([pa.field(field.name, field.type.value_type, field.nullable)
                      if pa.types.is_dictionary(field.type) else field for field in schema],
                     metadata=schema.metadata)


def _to_json(value) -> str:
    """orjson, ten times the standard library's speed, except where it would change a value:
    it writes NaN and Infinity as null, and refuses integers beyond 64 bits."""
    if isinstance(value, float) and not math.isfinite(value):
        return json.dumps(value)
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError:
        return json.dumps(value, ensure_ascii=False)


def _from_json(text: str):
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:  # NaN, Infinity, a huge integer: the standard library reads them
        return json.loads(text)


class DataLake:
    def __init__(self, storage: Storage):
        self.storage = storage

    def key(self, stage: str, batch_id: str) -> str:
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}; stages are {', '.join(STAGES)}")
        return f"data/{stage}/{check_batch_id(batch_id)}.parquet"

    def exists(self, stage: str, batch_id: str) -> bool:
        return self.storage.exists(self.key(stage, batch_id))

    def write(self, stage: str, batch_id: str, rows: pd.DataFrame | pa.Table) -> None:
        self.storage.write_bytes(self.key(stage, batch_id), to_parquet(rows))

    def write_records(self, stage: str, batch_id: str, records: list[dict]) -> None:
        """Records as they arrived (any JSON values), each value kept as its JSON text.

        A column may mix types (``35``, ``"35"``, ``null``, an object): Parquet cannot hold
        that, and converting would hide what was sent. :meth:`read_records` gives them back.
        """
        fields = dict.fromkeys(name for record in records for name in record)
        self.write(stage, batch_id, pd.DataFrame(
            {name: [_to_json(record[name]) if name in record else None for record in records]
             for name in fields}, dtype=object))

    def read_records(self, stage: str, batch_id: str) -> pd.DataFrame:
        """What :meth:`write_records` wrote: one object column per field (absent = None)."""
        frame = self.read(stage, batch_id)
        return pd.DataFrame({name: pd.Series([_from_json(text) if isinstance(text, str) else None
                                              for text in frame[name]], dtype=object)
                             for name in frame.columns})

    def read(self, stage: str, batch_id: str, columns: list[str] | None = None) -> pd.DataFrame:
        """A stage of a batch; ``columns`` reads only those (ten times faster for a train
        step, which needs four of the seven: names and timestamps cost most to convert).

        Checked rows (``normalized``, ``holdout``) keep their categories as categoricals: the
        model looks up each distinct value once, not each row (a read and its tidying take half
        the time). Raw and quarantined rows come back as plain text, the form the checks want.
        """
        table = self.read_table(stage, batch_id, columns)
        if stage in CHECKED_STAGES:
            return table.to_pandas()
        return table.cast(_without_dictionaries(table.schema)).to_pandas()

    def read_table(self, stage: str, batch_id: str,
                   columns: list[str] | None = None) -> pa.Table:
        """:meth:`read` as the Arrow table Parquet gives, text still dictionary-encoded."""
        key = self.key(stage, batch_id)
        try:
            data = self.storage.read_bytes(key)
        except FileNotFoundError:
            raise BatchNotFound(f"batch {batch_id} has no {stage} data") from None
        return pq.read_table(io.BytesIO(data), columns=columns)

    def delete(self, batch_id: str) -> None:
        """Remove every row the lake holds for ``batch_id``, at every stage."""
        for stage in STAGES:
            self.storage.delete(self.key(stage, batch_id))
