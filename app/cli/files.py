"""Files of records read in chunks and written back: CSV, Parquet or JSON lines, by extension.

A file is never loaded whole: CSV and JSON lines are read ``size`` records at a time, Parquet
one record batch at a time, so memory stays flat whatever the file's size. Each chunk becomes
the body of one request, built as JSON text straight from the chunk.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import click
import pandas as pd

FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl",
           ".ndjson": "jsonl"}
# CSV holds text only: these columns are sent as numbers when they read as numbers (anything
# else is sent as the text it is, for the server's checks to quarantine with a reason).
NUMERIC = ("idade", "salario")


class FileProblem(click.ClickException):
    """The file cannot be used as given: one line, exit status 2 (a usage error)."""

    exit_code = 2

    def show(self, file=None) -> None:
        click.echo(f"error: {self.format_message()}", err=True, file=file)


def format_of(path: str) -> str:
    if path == "-":
        return "csv"
    kind = FORMATS.get(Path(path).suffix.lower())
    if kind is None:
        raise FileProblem(f"{path}: unknown extension {Path(path).suffix or '(none)'!r}; "
                          "use .csv, .parquet or .jsonl (or - for CSV on stdin)")
    return kind


@dataclass
class Chunk:
    frame: pd.DataFrame
    first_row: int  # 1-based, in the file
    progress: int   # bytes or rows read so far, on the scale of RecordFile.length

    def body(self) -> bytes:
        """``{"records": [...]}`` as JSON: nulls for missing values, ISO 8601 for times."""
        records = self.frame.to_json(orient="records", date_format="iso", double_precision=15,
                                     force_ascii=False)
        return b'{"records":' + records.encode() + b"}"


class RecordFile:
    """``path`` (or ``-``, CSV on stdin) read ``size`` records at a time.

    ``required``: columns the header must name; a header without them, or that cannot be read
    at all, is a :class:`FileProblem`, before anything is sent.
    """

    def __init__(self, path: str, size: int, required: tuple[str, ...] = ()):
        self.path, self.size, self.required = path, size, required
        self.format = format_of(path)
        self.length: int | None = None  # for a progress bar: bytes, or rows for Parquet
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> RecordFile:
        try:
            self._chunks = self._open()
        except FileProblem:
            self._stack.close()
            raise
        except (OSError, ValueError, UnicodeDecodeError) as error:
            self._stack.close()
            raise FileProblem(f"{self.path}: cannot read it as {self.format}: "
                              f"{str(error).splitlines()[0] if str(error) else type(error).__name__}") from None
        return self

    def __exit__(self, *exc) -> None:
        self._stack.close()

    def chunks(self) -> Iterator[Chunk]:
        return self._chunks

    def _check_header(self, columns) -> None:
        missing = [name for name in self.required if name not in columns]
        if missing:
            raise FileProblem(f"{self.path}: the header has no {', '.join(missing)} "
                              f"(it has: {', '.join(map(str, columns)) or 'nothing'})")

    def _open(self) -> Iterator[Chunk]:
        if self.format == "parquet":
            return self._parquet()
        if self.path == "-":
            handle = sys.stdin.buffer
        else:
            handle = self._stack.enter_context(open(self.path, "rb"))
            self.length = os.fstat(handle.fileno()).st_size
        return self._csv(handle) if self.format == "csv" else self._jsonl(handle)

    def _csv(self, handle) -> Iterator[Chunk]:
        reader = pd.read_csv(handle, chunksize=self.size, dtype=str, keep_default_na=False,
                             na_values=[""], encoding="utf-8")
        self._stack.callback(reader.close)
        self._check_header(_header(reader))
        return self._csv_chunks(reader, handle)

    def _csv_chunks(self, reader, handle) -> Iterator[Chunk]:
        row = 1
        for frame in reader:
            for name in NUMERIC:
                if name in frame:
                    numbers = pd.to_numeric(frame[name], errors="coerce")
                    frame[name] = numbers.astype(object).where(numbers.notna(), frame[name])
            yield Chunk(frame, row, _tell(handle))
            row += len(frame)

    def _jsonl(self, handle) -> Iterator[Chunk]:
        lines = (line for line in io.TextIOWrapper(handle, encoding="utf-8") if line.strip())
        first = next(lines, None)
        if first is None:
            raise FileProblem(f"{self.path}: the file holds no record")
        record = json.loads(first)
        if not isinstance(record, dict):
            raise FileProblem(f"{self.path}: line 1 is not a JSON object")
        self._check_header(list(record))
        return self._jsonl_chunks(itertools.chain([first], lines), handle)

    def _jsonl_chunks(self, lines, handle) -> Iterator[Chunk]:
        row = 1
        while batch := list(itertools.islice(lines, self.size)):
            records = []
            for offset, line in enumerate(batch):
                try:
                    records.append(json.loads(line))
                except ValueError as error:
                    raise click.ClickException(f"{self.path}: line {row + offset} is not JSON: "
                                               f"{error}") from None
            yield Chunk(pd.DataFrame.from_records(records), row, _tell(handle))
            row += len(batch)

    def _parquet(self) -> Iterator[Chunk]:
        import pyarrow.parquet as pq

        parquet = pq.ParquetFile(self.path)
        self._stack.callback(parquet.close)
        self.length = parquet.metadata.num_rows
        self._check_header(parquet.schema_arrow.names)
        return self._parquet_chunks(parquet)

    def _parquet_chunks(self, parquet) -> Iterator[Chunk]:
        row = 1
        for batch in parquet.iter_batches(batch_size=self.size):
            frame = batch.to_pandas()
            yield Chunk(frame, row, row - 1 + len(frame))
            row += len(frame)


def _header(reader) -> list[str]:
    """The CSV header as pandas parsed it (before any row is read)."""
    return list(reader._engine.names) if hasattr(reader, "_engine") else []


def _tell(handle) -> int:
    try:
        return handle.tell()
    except (OSError, ValueError):
        return 0


class RecordWriter:
    """Chunks appended to ``path`` (or stdout as CSV when ``path`` is None), by extension."""

    def __init__(self, path: str | None):
        self.path = path
        self.format = "csv" if path is None or path == "-" else format_of(path)
        self._parquet = None
        self._handle = None
        self._first = True

    def __enter__(self) -> RecordWriter:
        if self.format != "parquet":
            self._handle = (sys.stdout.buffer if self.path in (None, "-")
                            else open(self.path, "wb"))
        return self

    def write(self, frame: pd.DataFrame) -> None:
        if self.format == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pandas(frame, preserve_index=False)
            if self._parquet is None:
                self._parquet = pq.ParquetWriter(self.path, table.schema)
            self._parquet.write_table(table.cast(self._parquet.schema))
        elif self.format == "csv":
            self._handle.write(frame.to_csv(index=False, header=self._first,
                                            lineterminator="\n").encode())
        else:
            self._handle.write(frame.to_json(orient="records", lines=True, date_format="iso",
                                             force_ascii=False).encode())
            if len(frame):
                self._handle.write(b"\n")
        self._first = False

    def __exit__(self, *exc) -> None:
        if self._parquet is not None:
            self._parquet.close()
        if self._handle is not None and self._handle is not sys.stdout.buffer:
            self._handle.close()
        elif self._handle is not None:
            self._handle.flush()


class Progress:
    """A progress bar on stderr when it is a terminal (of ``length`` units); silent otherwise."""

    def __init__(self, length: int | None, label: str):
        self._bar = None
        if length and sys.stderr.isatty():
            self._bar = click.progressbar(length=length, label=label, file=sys.stderr)
        self._position = 0

    def __enter__(self) -> Progress:
        if self._bar is not None:
            self._bar.__enter__()
        return self

    def to(self, position: int) -> None:
        if self._bar is not None and position > self._position:
            self._bar.update(position - self._position)
        self._position = max(position, self._position)

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)
