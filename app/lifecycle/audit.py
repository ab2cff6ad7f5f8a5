"""The audit trail: every decision about what is served, or what the model learnt, and who made it.

Append-only: each event is a new numbered document in the journal ``models/audit`` (so it is
kept with the registry, on whatever storage that is), never rewritten. Read newest first, a page
at a time. This module is the trail's only writer.

Actions: ``pin``, ``follow``, ``rollback`` (operators), ``refused_promotion`` (the gate),
``forget`` (an operator, and the version it made), ``drift`` (the detector: the relation between
the features and the target changed), ``population_shift`` (the detector fired, but only who
arrived changed: the model learns on), ``adapted`` (a refit after drift was confirmed),
``quarantined_batch`` (a batch that kept killing its worker).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from app.journal import Journal
from app.storage import Storage

ACTIONS = ("pin", "follow", "rollback", "refused_promotion", "forget", "drift",
           "population_shift", "adapted", "quarantined_batch", "challenger_served")
SYSTEM = "pipeline"


class AuditTrail:
    def __init__(self, storage: Storage):
        self.journal = Journal(storage, "models/audit")

    def record(self, action: str, *, reason: str, by: str = SYSTEM,
               from_version: int | None = None, to_version: int | None = None,
               **details: Any) -> dict:
        """Append one event and return it (with its ``id``, its place in the trail)."""
        if action not in ACTIONS:
            raise ValueError(f"unknown audit action {action!r}")
        at = datetime.now(timezone.utc).isoformat(timespec="milliseconds")

        def event(number: int) -> dict:
            return {"id": number, "at": at, "action": action, "from_version": from_version,
                    "to_version": to_version, "reason": reason, "by": by, **details}

        return self.journal.append(event)[1]

    def page(self, limit: int = 50, before: int | None = None,
             action: str | None = None) -> dict:
        """``{"events": [...], "next_before": id or None}``: newest first, ``limit`` at most.

        ``before`` continues a listing: pass the previous page's ``next_before``.
        """
        events = []
        for _, event in self.journal.newest_first(before):
            if action is not None and event.get("action") != action:
                continue
            events.append(event)
            if len(events) == limit:
                break
        more = bool(events) and events[-1]["id"] > 1 and len(events) == limit
        return {"events": events, "next_before": events[-1]["id"] if more else None}

    def total(self) -> int:
        return self.journal.head()
