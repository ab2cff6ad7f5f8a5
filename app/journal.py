"""Numbered documents, claimed one at a time: the index behind versions, batches and the audit.

A journal is a prefix holding ``000000001.json``, ``000000002.json``... Entry ``n`` is claimed
by creating its key exclusively (:meth:`~app.storage.Storage.create`), so two writers on any
number of hosts can never both take ``n``, and numbers have no gaps: a number exists only once
its whole document does. ``HEAD`` is a hint of the newest number, rewritten after each claim;
readers start from it and probe forward, so a hint that lags a crash (or a slower writer) costs
a probe, never a wrong answer.

Nothing lists the prefix: the newest entry is found from ``HEAD`` in a couple of reads and a
page of the newest entries is read by number, so a journal of 100,000 entries answers as fast
as one of 100.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from app.storage import Storage

WIDTH = 9


class Journal:
    def __init__(self, storage: Storage, prefix: str):
        self.storage = storage
        self.prefix = prefix.rstrip("/")

    def key(self, number: int) -> str:
        return f"{self.prefix}/{number:0{WIDTH}d}.json"

    @property
    def head_key(self) -> str:
        return f"{self.prefix}/HEAD"

    # -- reading ----------------------------------------------------------------------------

    def head(self) -> int:
        """The newest number taken (0 when the journal is empty)."""
        try:
            number = int(self.storage.read_bytes(self.head_key))
        except (FileNotFoundError, ValueError):
            number = 0
        while self.storage.exists(self.key(number + 1)):
            number += 1
        return number

    def get(self, number: int) -> Any:
        """Entry ``number``; ``FileNotFoundError`` when it was never taken."""
        return self.storage.read_json(self.key(number))

    def newest_first(self, before: int | None = None) -> Iterator[tuple[int, Any]]:
        """``(number, entry)`` from the newest (or from ``before - 1``) down to 1."""
        start = self.head() if before is None else min(before - 1, self.head())
        for number in range(start, 0, -1):
            try:
                yield number, self.get(number)
            except FileNotFoundError:
                continue  # removed on purpose (retention): the numbers around it stand

    # -- writing ----------------------------------------------------------------------------

    def claim(self, number: int, entry: Any) -> None:
        """Take ``number`` for ``entry``; ``FileExistsError`` when another writer has it."""
        self.storage.create_json(self.key(number), entry)
        self._advance_head(number)

    def append(self, make_entry: Callable[[int], Any]) -> tuple[int, Any]:
        """Take the next free number for ``make_entry(number)``; return both."""
        number = self.head() + 1
        while True:
            entry = make_entry(number)
            try:
                self.claim(number, entry)
                return number, entry
            except FileExistsError:
                number += 1

    def replace(self, number: int, entry: Any) -> None:
        """Rewrite an entry that was claimed (mutable journals: the batch ledger)."""
        self.storage.write_json(self.key(number), entry)

    def _advance_head(self, number: int) -> None:
        # Two writers may write HEAD out of order; the hint then lags and readers probe on.
        self.storage.write_bytes(self.head_key, str(number).encode())
