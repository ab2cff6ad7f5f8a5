"""The inbox: files dropped in a folder (or an ``s3://`` prefix) are ingested once, then moved.

Every ``GENERATE_EVERY`` seconds beat sends ``pipeline.inbox``, which calls :func:`take_all`:
each ready file (``.csv``, ``.parquet``, ``.jsonl``; not a ``.part`` name, not modified in the
last ``SETTLE`` seconds: it may still be being written) is read in chunks of ``BATCH_SIZE``
records, in name order, and each chunk arrives in the lake as a batch (source ``inbox``) that
goes on to normalize and train like any other. Then the file moves to ``done/``; a file that
cannot be used (unreadable, a header without the target or a feature) moves to ``failed/``
with a ``<name>.why.txt`` beside it saying why.

Once means once. A chunk's batch id is a function of the file (its name, size and modification
time) and of the chunk's place in it, and a batch is claimed by creating its ledger entry,
which only one writer can do (create-if-absent, as versions are claimed). So two beats, two
hosts or a restart in the middle of a file never ingest a chunk twice: a second reading of the
file passes over the chunks already in the ledger and ingests the rest.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from loguru import logger

from app.data.batches import receive_chunk
from app.data.files import FileProblem, format_of, read_chunks
from app.data.lake import DataLake
from app.data.ledger import Ledger
from app.dataset import Dataset
from app.storage import Storage

DONE, FAILED = "done", "failed"
# A file still being written is left for the next look: a name ending so, or a modification
# younger than this many seconds.
PARTIAL_SUFFIX = ".part"
SETTLE = 2.0
WHY_SUFFIX = ".why.txt"


@dataclass
class Taken:
    """What became of one file: its batches (sent now, or found in the ledger already)."""

    name: str
    batch_ids: list[str] = field(default_factory=list)
    sent: int = 0
    moved_to: str = DONE
    why: str | None = None


def ready(inbox: Storage, now: float | None = None) -> list[str]:
    """The names of the files waiting in ``inbox``, oldest name first."""
    now = time.time() if now is None else now
    names = []
    for name in inbox.list(""):
        if name.endswith(PARTIAL_SUFFIX):
            continue
        try:
            _, modified = inbox.info(name)
        except FileNotFoundError:  # taken meanwhile by another host
            continue
        if now - modified >= SETTLE:
            names.append(name)
    return names


def file_id(inbox: Storage, name: str, batch_size: int) -> str:
    """A name for this file as it is now, cut in chunks of ``batch_size``: the same file read
    again gets the same batch ids; a new file of the same name gets others."""
    size, modified = inbox.info(name)
    return hashlib.sha256(f"{name}\0{size}\0{modified:.6f}\0{batch_size}".encode()).hexdigest()[:16]


def take(inbox: Storage, name: str, lake: DataLake, ledger: Ledger, dataset: Dataset,
         batch_size: int, send: Callable[[str], None]) -> Taken:
    """Ingest the file ``name`` in batches of ``batch_size``, each sent on with ``send``, then
    move it to ``done/`` (or ``failed/``, with why)."""
    taken = Taken(name)
    try:
        kind = format_of(name)
        prefix = f"inbox-{file_id(inbox, name, batch_size)}"
        with inbox.open(name) as handle:
            chunks = read_chunks(handle, kind, batch_size, required=dataset.learnt_columns,
                                 name=name)
            for number, chunk in enumerate(chunks):
                batch_id = f"{prefix}-{number:06d}"
                taken.batch_ids.append(batch_id)
                if ledger.find(batch_id) is not None:
                    continue  # a reading before this one was stopped after it
                receive_chunk(lake, ledger, batch_id, chunk, source="inbox", file=name,
                              first_row=chunk.first_row)
                send(batch_id)
                taken.sent += 1
    except FileProblem as problem:
        taken.moved_to, taken.why = FAILED, str(problem)
        if taken.batch_ids:
            taken.why += (f" (the rows before it were ingested, as batches "
                          f"{taken.batch_ids[0]} to {taken.batch_ids[-1]})")
    _move(inbox, taken)
    return taken


def _move(inbox: Storage, taken: Taken) -> None:
    """Out of the inbox, without replacing an earlier file of the same name."""
    target = f"{taken.moved_to}/{taken.name}"
    if inbox.exists(target):
        stem, dot, suffix = taken.name.rpartition(".")
        target = f"{taken.moved_to}/{stem}.{time.strftime('%Y%m%dT%H%M%S')}{dot}{suffix}"
    if taken.why is not None:
        inbox.write_bytes(f"{target}{WHY_SUFFIX}", (taken.why + "\n").encode())
    inbox.move(taken.name, target)
    if taken.why is None:
        logger.info("inbox: {} ingested as {} batch(es), {} sent now; moved to {}", taken.name,
                    len(taken.batch_ids), taken.sent, target)
    else:
        logger.warning("inbox: {} cannot be ingested, moved to {}: {}", taken.name, target,
                       taken.why)


def take_all(inbox: Storage, lake: DataLake, ledger: Ledger, dataset: Dataset, batch_size: int,
             send: Callable[[str], None]) -> list[Taken]:
    """Every ready file of ``inbox``, in name order."""
    taken = []
    for name in ready(inbox):
        try:
            taken.append(take(inbox, name, lake, ledger, dataset, batch_size, send))
        except FileNotFoundError:
            continue  # another host took it meanwhile, and moved it on
    return taken
