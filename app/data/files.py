"""Files of records read in chunks: CSV, Parquet or JSON lines, by extension.

A file is never loaded whole: CSV is read by pyarrow's streaming reader in blocks, Parquet one
record batch at a time, JSON lines a chunk of lines at a time, so memory stays flat whatever
the file's size. Every chunk holds exactly ``size`` records (the last one fewer), so the same
file read again splits into the same chunks.

A CSV line that does not have the header's number of fields cannot be read as a record: it
is skipped, and the chunk it was met in carries it (``malformed``), so the batch says so.

What each format gives back is what it holds: CSV holds text, so every CSV column comes as
text (empty cells as missing), and :func:`numbers_from_text` reads its numbers later, keeping
a value that is not one for the checks to quarantine; Parquet columns
come typed; JSON lines come as the values each line holds, which may differ in type from line
to line (``35`` here, ``"35"`` there), so they stay plain records.
"""

from __future__ import annotations

import functools
import io
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import TYPE_CHECKING

import orjson
import pandas as pd

from app.dataset import Dataset

if TYPE_CHECKING:
    import pyarrow as pa

FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl",
           ".ndjson": "jsonl"}
# pyarrow reads CSV in blocks of this many bytes: large enough that its per-block cost vanishes.
CSV_BLOCK = 4 << 20
# How much of a malformed line is kept to show which it was.
MALFORMED_TEXT = 200
# How R, Excel and the databases that export CSV write a missing number: such a cell in a
# number column is a missing value (its row quarantined as "missing <field>"), not text.
MISSING_NUMBER = frozenset({"NA", "N/A", "#N/A", "NaN", "nan", "null", "NULL"})


class FileProblem(ValueError):
    """The file cannot be used as given (the message is one line saying why)."""


def format_of(name: str) -> str:
    """``csv``, ``parquet`` or ``jsonl`` by the name's extension; :class:`FileProblem` otherwise."""
    kind = FORMATS.get(PurePath(name).suffix.lower())
    if kind is None:
        raise FileProblem(f"{name}: unknown extension {PurePath(name).suffix or '(none)'!r}; "
                          "use .csv, .parquet or .jsonl")
    return kind


@dataclass
class Chunk:
    """``size`` records of a file: an Arrow table (CSV as text, Parquet typed), or for JSON
    lines the records as parsed; ``first_row`` is 1-based, ``progress`` bytes or rows read so
    far.

    ``raw_format`` says how the lake keeps the chunk as it arrived: ``text`` (CSV, whose
    numbers are read later), ``json`` (records of JSON values) or ``typed`` (Parquet).
    """

    table: pa.Table | None
    records: list[dict] | None
    first_row: int
    progress: int
    raw_format: str = "typed"
    malformed: list[str] = field(default_factory=list)  # CSV lines skipped, and why

    def __len__(self) -> int:
        return len(self.records) if self.records is not None else self.table.num_rows

    @functools.cached_property
    def frame(self) -> pd.DataFrame:
        """The chunk as pandas: made when asked, as the lake keeps a table as it is."""
        if self.table is not None:
            return self.table.to_pandas()
        return pd.DataFrame.from_records(self.records)


def numbers_from_text(raw: pd.DataFrame, dataset: Dataset) -> pd.DataFrame:
    """``raw`` read from text (CSV holds nothing else) with its number columns as numbers.

    A value that does not read as a number stays the text it was, so the checks quarantine
    its row with the reason (``age is not a number``) instead of taking it for a missing value.
    """
    converted = {}
    for name in dataset.number_columns:
        if name not in raw or pd.api.types.is_numeric_dtype(raw[name]):
            continue
        converted[name] = _read_numbers(raw[name])
    return raw.assign(**converted) if converted else raw


def _read_numbers(text: pd.Series) -> pd.Series:
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        # Arrow reads a whole column of clean numbers in a fiftieth of pandas' time...
        return pd.Series(pc.cast(pa.array(text), pa.float64()).to_numpy(zero_copy_only=False),
                         index=text.index)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        pass
    # ...and pandas tells, value by value, which of the others are not numbers.
    text = text.where(~text.isin(MISSING_NUMBER))
    numbers = pd.to_numeric(text, errors="coerce")
    unreadable = numbers.isna() & text.notna()
    return (numbers.astype(object).where(~unreadable, text) if unreadable.any()
            else numbers.astype("float64"))


def check_header(name: str, columns, required) -> None:
    """:class:`FileProblem` unless ``columns`` hold every name in ``required``."""
    missing = [column for column in required if column not in columns]
    if missing:
        raise FileProblem(f"{name}: the header has no {', '.join(missing)} "
                          f"(it has: {', '.join(map(str, columns)) or 'nothing'})")


def read_chunks(handle, kind: str, size: int, required=(), name: str = "") -> Iterator[Chunk]:
    """``handle``'s records, ``size`` at a time; the header is checked for ``required`` first.

    Raises :class:`FileProblem` for a file that cannot be read as ``kind``, before the first
    chunk when the header is at fault, or where the file turns out to be broken.
    """
    import pyarrow as pa

    readers = {"csv": _csv, "parquet": _parquet, "jsonl": _jsonl}
    try:
        chunks = readers[kind](handle, size, required, name)
        yield from chunks
    except (pa.ArrowInvalid, OSError, UnicodeDecodeError, orjson.JSONDecodeError) as error:
        text = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise FileProblem(f"{name}: cannot read it as {kind}: {text}") from None


def _tell(handle) -> int:
    try:
        return handle.tell()
    except (OSError, ValueError, AttributeError):
        return 0


def _header(handle, name: str) -> list[str]:
    """The CSV header line's names, read off ``handle``, which is left after it."""
    import csv

    line = handle.readline()
    if not line.strip():
        raise FileProblem(f"{name}: cannot read it as csv: the file is empty (a CSV file "
                          "starts with a header line)")
    return next(csv.reader([line.decode("utf-8-sig")]))


def _rows(batches, size: int):
    """pyarrow record batches regrouped into tables of exactly ``size`` rows (the last fewer)."""
    import pyarrow as pa

    pending = []
    held = 0
    for batch in batches:
        pending.append(batch)
        held += batch.num_rows
        while held >= size:
            table = pa.Table.from_batches(pending)
            yield table.slice(0, size)
            rest = table.slice(size)
            pending, held = rest.to_batches(), rest.num_rows
    if held:
        yield pa.Table.from_batches(pending)


def _csv(handle, size: int, required, name: str) -> Iterator[Chunk]:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    columns = _header(handle, name)
    check_header(name, columns, required)
    malformed: list[str] = []

    def skip(row) -> str:
        malformed.append(f"{row.actual_columns} fields where the header has "
                         f"{row.expected_columns}: {row.text[:MALFORMED_TEXT]}")
        return "skip"

    reader = pacsv.open_csv(
        handle, read_options=pacsv.ReadOptions(column_names=columns, block_size=CSV_BLOCK),
        parse_options=pacsv.ParseOptions(newlines_in_values=True, invalid_row_handler=skip),
        convert_options=pacsv.ConvertOptions(column_types={column: pa.string() for column in columns},
                                             strings_can_be_null=True, null_values=[""],
                                             quoted_strings_can_be_null=True))
    row = 1
    for table in _rows(reader, size):
        yield Chunk(table, None, row, _tell(handle), raw_format="text", malformed=malformed[:])
        malformed.clear()
        row += table.num_rows


def _parquet(handle, size: int, required, name: str) -> Iterator[Chunk]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(handle)
    check_header(name, parquet.schema_arrow.names, required)
    row = 1
    for batch in parquet.iter_batches(batch_size=size):
        yield Chunk(pa.Table.from_batches([batch]), None, row, row - 1 + batch.num_rows)
        row += batch.num_rows


def _jsonl(handle, size: int, required, name: str) -> Iterator[Chunk]:
    lines = (line for line in io.TextIOWrapper(handle, encoding="utf-8") if line.strip())
    first = next(lines, None)
    if first is None:
        raise FileProblem(f"{name}: the file holds no record")
    record = orjson.loads(first)
    if not isinstance(record, dict):
        raise FileProblem(f"{name}: line 1 is not a JSON object")
    check_header(name, list(record), required)
    row = 1
    lines = itertools.chain([first], lines)
    while batch := list(itertools.islice(lines, size)):
        records = []
        for offset, line in enumerate(batch):
            try:
                records.append(orjson.loads(line))
            except orjson.JSONDecodeError as error:
                raise FileProblem(f"{name}: line {row + offset} is not JSON: {error}") from None
        yield Chunk(None, records, row, _tell(handle), raw_format="json")
        row += len(batch)
