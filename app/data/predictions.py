"""Answers kept for their labels to come back: every record ``/predict`` answered, by id.

With ``LOG_PREDICTIONS=1`` each web process keeps a :class:`PredictionLog`. ``/predict`` gives
each record an id and hands the record, the version that answered and the prediction to the
log, which only appends them to a list in memory: the answer never waits for a disk. A thread
of the process writes what arrived to the store once a second, as one Parquet file::

    predictions/2026-12-04/10/24/<first ms>-<last ms>-<process tag>.parquet

so a process killed outright loses at most the last second of ids, and one stopped loses none
(its log is written on the way out). Files, not one per request: a day at 1,000 requests a
second is two files a second, about 13 bytes a record (see :func:`encode`).

An id is the millisecond it was made, the process's random tag and the process's count, in
hex: unique across processes and hosts with nothing shared, and it says where its record lies.
:func:`find` reads only the files of the minutes its ids name. Files older than
``KEEP_PREDICTIONS_DAYS`` are removed by :func:`sweep`, a day's folder at a time.
"""

from __future__ import annotations

import atexit
import io
import os
import re
import secrets
import threading
import time
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
from loguru import logger

from app.dataset import Dataset
from app.storage import Storage

PREFIX = "predictions"
FLUSH_EVERY = 1.0  # seconds: what a process killed outright may lose
ID = re.compile(r"[0-9a-f]{28}")
LAST_MS = 253_402_300_800_000  # the first millisecond of the year 10000: no id is that late
# Columns a kept record has beside the dataset's features.
SYSTEM = ("ms", "tag", "seq", "version", "prediction")


def _folder(ms: int) -> str:
    moment = datetime.fromtimestamp(ms / 1000, timezone.utc)
    return f"{PREFIX}/{moment:%Y-%m-%d/%H/%M}"


def parse_id(prediction_id: str) -> tuple[int, int, int] | None:
    """``(ms, tag, seq)`` of an id; None for anything that is not one.

    >>> parse_id("0193a5b8c40011223344000000ff")
    (1733652169728, 287454020, 255)
    """
    if not isinstance(prediction_id, str) or not ID.fullmatch(prediction_id):
        return None
    ms = int(prediction_id[:12], 16)
    if ms >= LAST_MS:
        return None
    return ms, int(prediction_id[12:20], 16), int(prediction_id[20:], 16)


class PredictionLog:
    """One web process's log of the records it answered, written a second at a time."""

    def __init__(self, storage: Storage, dataset: Dataset, flush_every: float = FLUSH_EVERY):
        self.storage, self.dataset, self.flush_every = storage, dataset, flush_every
        self.tag = int.from_bytes(secrets.token_bytes(4), "big")
        self._features = [feature.name for feature in dataset.features]
        self._seq = 0
        self._pending = self._columns()
        self._lock = threading.Lock()
        self._writing = threading.Lock()
        self.pid = os.getpid()
        self._thread = threading.Thread(target=self._run, daemon=True, name="prediction-log")
        self._thread.start()
        atexit.register(self.flush)

    def _columns(self) -> dict[str, list]:
        return {name: [] for name in ("ms", "version", "prediction", *self._features)}

    def keep(self, version: int, records: list[dict], predictions: list[float]) -> list[str]:
        """Keep ``records`` and their predictions; their ids, in order.

        Each answer is added to the columns of the next file here, a few list appends: the
        write each second then only converts whole lists, and holds the interpreter (which the
        requests share with it) a millisecond, not the five a row-by-row build took.
        """
        ms, count = time.time_ns() // 1_000_000, len(records)
        with self._lock:
            first = self._seq
            self._seq += count
            pending = self._pending
            pending["ms"] += [ms] * count
            pending["version"] += [version] * count
            pending["prediction"] += predictions
            for name in self._features:
                pending[name] += [record[name] for record in records]
        return [f"{ms:012x}{self.tag:08x}{seq:08x}" for seq in range(first, first + count)]

    def _run(self) -> None:
        while True:
            time.sleep(self.flush_every)
            try:
                self.flush()
            except Exception as error:  # noqa: BLE001 - the next second tries again
                logger.warning("could not write the kept predictions: {}", error)

    def flush(self) -> int:
        """Write what was kept since the last write, as one file; how many records."""
        with self._writing:
            with self._lock:
                pending, self._pending = self._pending, self._columns()
                # Ids are handed out in order under the lock: the kept ones run on unbroken.
                first = self._seq - len(pending["ms"])
            if not pending["ms"]:
                return 0
            table = self._table(pending, first)
            start, end = pending["ms"][0], pending["ms"][-1]
            self.storage.write_bytes(f"{_folder(start)}/{start}-{end}-{self.tag:08x}.parquet",
                                     encode(table))
            return table.num_rows

    def _table(self, pending: dict[str, list], first: int):
        import pyarrow as pa

        count = len(pending["ms"])
        columns = {
            "ms": np.array(pending["ms"], dtype=np.int64),
            "tag": np.full(count, self.tag, dtype=np.uint32),
            "seq": np.arange(first, first + count),
            "version": np.array(pending["version"], dtype=np.int64),
            "prediction": np.array(pending["prediction"], dtype=float),
        }
        for feature in self.dataset.features:
            values = pending[feature.name]
            columns[feature.name] = (pa.array(values, pa.float64()) if feature.kind == "number"
                                     else pa.array(values, pa.string()).dictionary_encode())
        return pa.table(columns)


def encode(table) -> bytes:
    """Kept records (an Arrow table) as Parquet, made small: a file is written each second by
    each web process, so what every file repeats (the schema, statistics no reader uses)
    would weigh more than a slow second's records.
    Times and counts are delta-encoded; numbers are split by byte, which zstd compresses best;
    the features' categories and the version are stored once a file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    numbers = [name for name in table.column_names
               if name not in ("ms", "seq", "version", "tag") and pa.types.is_floating(
                   table.schema.field(name).type)]
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd", store_schema=False, write_statistics=False,
                   use_dictionary=[name for name in table.column_names
                                   if name not in ("ms", "seq", *numbers)],
                   column_encoding={"ms": "DELTA_BINARY_PACKED", "seq": "DELTA_BINARY_PACKED",
                                    **dict.fromkeys(numbers, "BYTE_STREAM_SPLIT")})
    return buffer.getvalue()


def find(storage: Storage, ids: Iterable[str]) -> pd.DataFrame:
    """The kept records of ``ids`` (an ``id`` column added), those that are kept; ids that are
    malformed, unknown or swept are simply absent."""
    wanted: dict[tuple[int, int], dict[int, str]] = {}  # (ms, tag) -> seq -> id
    for prediction_id in ids:
        parsed = parse_id(prediction_id)
        if parsed is not None:
            ms, tag, seq = parsed
            wanted.setdefault((ms, tag), {})[seq] = prediction_id
    frames = []
    for name, needed in _files_for(storage, wanted).items():
        try:
            frame = pd.read_parquet(io.BytesIO(storage.read_bytes(name)))
        except FileNotFoundError:
            continue  # swept meanwhile
        keys = list(zip(frame["ms"].tolist(), frame["tag"].tolist(), frame["seq"].tolist()))
        ids_here = [wanted.get((ms, tag), {}).get(seq) for ms, tag, seq in keys]
        chosen = np.array([value is not None for value in ids_here])
        if chosen.any():
            frames.append(frame[chosen].assign(id=[i for i in ids_here if i is not None]))
    if not frames:
        return pd.DataFrame(columns=["id", *SYSTEM])
    return pd.concat(frames, ignore_index=True).drop_duplicates("id")


def _files_for(storage: Storage, wanted: dict[tuple[int, int], dict]) -> dict[str, bool]:
    """The files that may hold the records ``wanted`` names: a record made at a millisecond is
    in a file of its process started at or before it, in that minute's folder or the one
    before (a file opened at 10:24:59.9 holds the next second too)."""
    listings: dict[str, list[tuple[int, int, int, str]]] = {}

    def listing(folder: str) -> list[tuple[int, int, int, str]]:
        if folder not in listings:
            entries = []
            for name in storage.list(folder):
                stem = name.removesuffix(".parquet")
                first, _, rest = stem.partition("-")
                last, _, tag = rest.partition("-")
                if first.isdigit() and last.isdigit():
                    entries.append((int(first), int(last), int(tag, 16), f"{folder}/{name}"))
            listings[folder] = entries
        return listings[folder]

    found: dict[str, bool] = {}
    for ms, tag in wanted:
        for folder in {_folder(ms), _folder(ms - 60_000)}:
            for first, last, file_tag, name in listing(folder):
                if file_tag == tag and first <= ms <= last:
                    found[name] = True
    return found


def sweep(storage: Storage, keep_days: int, now: datetime | None = None) -> int:
    """Remove the kept predictions of the days before the last ``keep_days``; files removed."""
    now = now or datetime.now(timezone.utc)
    oldest = (now - timedelta(days=keep_days)).strftime("%Y-%m-%d")
    removed = 0
    for day in storage.folders(PREFIX):
        if day < oldest:
            removed += storage.delete_tree(f"{PREFIX}/{day}")
    return removed
