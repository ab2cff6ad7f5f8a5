"""Files of records for the commands: read in chunks (:mod:`app.data.files`), written back.

Reading is the data layer's, the same as the inbox's; here it gets what a command needs
around it: ``-`` for CSV on stdin, a size for the progress bar, JSON bodies for the API, and
errors as one line with exit status 2.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING

import click
import orjson

from app.cli import InputError
from app.data import files
from app.data.files import Chunk, numbers_from_text
from app.dataset import Dataset

if TYPE_CHECKING:  # pandas takes a second to import, and a CLI that only sends files needs none
    import pandas as pd


class FileProblem(InputError):
    """The file cannot be used as given: one line, exit status 2."""


def format_of(path: str) -> str:
    if path == "-":
        return "csv"
    try:
        return files.format_of(path)
    except files.FileProblem as problem:
        raise FileProblem(f"{problem} (or - for CSV on stdin)") from None


def body(chunk: Chunk, dataset: Dataset) -> bytes:
    """``{"records": [...]}`` as JSON: CSV's numbers as numbers, nulls for missing values,
    ISO 8601 for times."""
    if chunk.records is not None:
        return orjson.dumps({"records": chunk.records})
    frame = numbers_from_text(chunk.frame, dataset) if chunk.raw_format == "text" else chunk.frame
    records = frame.to_json(orient="records", date_format="iso", double_precision=15,
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
            if self.path == "-":
                handle = sys.stdin.buffer
            else:
                handle = self._stack.enter_context(open(self.path, "rb"))
                self.length = os.fstat(handle.fileno()).st_size
            chunks = files.read_chunks(handle, self.format, self.size, self.required,
                                       name=self.path)
            # The first chunk is read now, so a header at fault stops the command before
            # anything is sent.
            first = next(chunks, None)
        except files.FileProblem as problem:
            self._stack.close()
            raise FileProblem(str(problem)) from None
        except OSError as error:
            self._stack.close()
            raise FileProblem(f"{self.path}: {error.strerror or error}") from None
        if self.format == "parquet":
            self.length = None  # rows, not bytes: the bar would not match
        self._chunks = self._continue(first, chunks)
        return self

    def __exit__(self, *exc) -> None:
        self._stack.close()

    def chunks(self) -> Iterator[Chunk]:
        """The chunks; a :class:`files.FileProblem` where a later part of the file is broken."""
        return self._chunks

    @staticmethod
    def _continue(first: Chunk | None, rest: Iterator[Chunk]) -> Iterator[Chunk]:
        if first is not None:
            yield first
            yield from rest


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
