"""Crash-safe file writes: a reader sees the old file or the new one, never half of one."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path


def fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def _temp_beside(path: Path) -> Iterator[Path]:
    """A temporary file in ``path``'s folder (so rename stays on one file system), removed on failure."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    temp = Path(name)
    try:
        yield temp
    finally:
        temp.unlink(missing_ok=True)


def _write_synced(temp: Path, write: Callable[[Path], None]) -> None:
    write(temp)
    with open(temp, "rb+") as handle:
        os.fsync(handle.fileno())


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(temp_path)``, fsync, then rename over ``path``."""
    with _temp_beside(path) as temp:
        _write_synced(temp, write)
        os.replace(temp, path)
    fsync_dir(path.parent)


def atomic_create(path: Path, write: Callable[[Path], None]) -> None:
    """Like :func:`atomic_write`, but raise ``FileExistsError`` rather than replace ``path``.

    ``link`` fails when the name is taken, which makes it an exclusive rename: two writers
    racing for one name cannot both win, and the loser's data is not lost silently.
    """
    with _temp_beside(path) as temp:
        _write_synced(temp, write)
        os.link(temp, path)
    fsync_dir(path.parent)


def write_text(path: Path, text: str, *, exclusive: bool = False) -> None:
    writer = atomic_create if exclusive else atomic_write
    writer(path, lambda temp: temp.write_text(text, encoding="utf-8"))
