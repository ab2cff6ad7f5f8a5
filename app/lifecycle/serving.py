"""Which version is served, and why: the one place that decides it.

Two modes, kept in the journal ``models/serving`` (each change a new entry, so two operators
can never overwrite each other, and every process on every host reads the same answer):

- ``follow`` (the default): serve the newest version the promotion gate let through, that is
  the newest whose metadata does not say ``gate.passed: false``;
- ``pinned``: serve one version, whatever arrives, until an operator follows again.

Writers are operators (pin, follow, rollback); each change is also written to the audit. The
worker only publishes versions with their gate verdict; what follow mode serves is derived from
them, so there is no second place that could disagree.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone

from app.journal import Journal
from app.lifecycle.audit import AuditTrail
from app.limits import reason_problem
from app.models.registry import CorruptModel, ModelRegistry, VersionNotFound
from app.storage import Storage

MODES = ("follow", "pinned")
# Follow mode looks this far below the newest version for one the gate let through.
MAX_REFUSED_RUN = 10_000


class ServingError(ValueError):
    """An operator's request that cannot be done (the message says why)."""


@dataclass(frozen=True)
class ServingState:
    """What is served: ``version`` (None while nothing can be), the mode, and why."""

    version: int | None
    mode: str
    reason: str
    since: str | None
    by: str | None

    def to_json(self) -> dict:
        return {"version": self.version, "mode": self.mode, "reason": self.reason,
                "since": self.since, "by": self.by}


class ServingControl:
    def __init__(self, storage: Storage, registry: ModelRegistry | None = None,
                 audit: AuditTrail | None = None,
                 notify: Callable[[str, int | None], None] | None = None):
        self.storage = storage
        self.registry = registry or ModelRegistry(storage)
        self.audit = audit or AuditTrail(storage)
        self.journal = Journal(storage, "models/serving")
        self.notify = notify or (lambda event, version: None)

    @property
    def marker_key(self) -> str:
        return self.journal.head_key

    # -- reading ----------------------------------------------------------------------------

    def choice(self) -> tuple[int, dict]:
        """The operators' newest choice: ``(number, entry)``; ``(0, follow)`` before any."""
        number = self.journal.head()
        if not number:
            return 0, {"mode": "follow", "version": None, "reason": "the default: serve the "
                       "newest version the promotion gate let through", "at": None, "by": None}
        return number, self.journal.get(number)

    def newest_promoted(self, below: int | None = None) -> int | None:
        """The newest version (under ``below``, if given) that follow mode may serve."""
        newest = self.registry.latest_version() or 0
        start = newest if below is None else min(newest, below - 1)
        for info in self.registry.down(start, max(start - MAX_REFUSED_RUN, 0)):
            if info.gate_passed:
                return info.version
        return None

    def state(self) -> ServingState:
        _, entry = self.choice()
        if entry["mode"] == "pinned":
            return ServingState(entry["version"], "pinned", entry["reason"], entry["at"], entry["by"])
        version = self.newest_promoted()
        return ServingState(version, "follow", entry["reason"], entry["at"], entry["by"])

    def pinned_version(self) -> int | None:
        _, entry = self.choice()
        return entry["version"] if entry["mode"] == "pinned" else None

    # -- writing (operators) ----------------------------------------------------------------

    def pin(self, version: int, *, reason: str, by: str, action: str = "pin") -> ServingState:
        """Serve ``version`` until told otherwise."""
        self._require_reason(reason)
        try:
            self.registry.load(version)
        except VersionNotFound:
            raise
        except CorruptModel as error:
            raise ServingError(f"version {version} cannot be served: {error}") from None
        return self._change({"mode": "pinned", "version": version}, action, reason, by)

    def follow(self, *, reason: str, by: str) -> ServingState:
        """Serve the newest version the gate lets through again."""
        self._require_reason(reason)
        return self._change({"mode": "follow", "version": None}, "follow", reason, by)

    def rollback(self, *, reason: str, by: str, to: int | None = None) -> ServingState:
        """Pin ``to``, or else the newest promoted version older than the one served now."""
        if to is None:
            served = self.state().version
            if served is None:
                raise ServingError("nothing is served yet, so there is nothing to roll back")
            to = self.newest_promoted(below=served)
            if to is None:
                raise ServingError(f"version {served} is the oldest servable version: "
                                   "there is none before it to roll back to")
        return self.pin(to, reason=reason, by=by, action="rollback")

    def _change(self, choice: dict, action: str, reason: str, by: str) -> ServingState:
        before = self.state().version
        at = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
        entry = {**choice, "reason": reason, "at": at, "by": by, "action": action}
        self.journal.append(lambda _: entry)
        after = self.state()
        self.notify("serving", after.version)
        self.audit.record(action, reason=reason, by=by, from_version=before,
                          to_version=after.version)
        return after

    @staticmethod
    def _require_reason(reason: str) -> None:
        if problem := reason_problem(reason):
            raise ServingError(f"a reason {problem}")
