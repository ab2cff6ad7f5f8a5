"""A version's metadata, typed: what a version learnt, from what, how it scored, and its file.

One :class:`VersionInfo` per published version. The registry writes it as
``models/versions/NNNNNNNNN.json`` and reads it back through :meth:`VersionInfo.from_dict`, the
one place that knows the defaults: a file written before a key existed (or with a ``null``
there) reads as that key's default, and a key this code does not know is kept, untouched, in
``extra``, so an older or newer writer's file reads and writes back the same.

The stored document is flat JSON with these names (see :meth:`VersionInfo.to_dict`); the keys
that only some versions say (``forgot``, ``contest``, ``shift``...) are left out when unset,
as they always were.

>>> info = VersionInfo.from_dict({"version": 3, "batch_ids": ["b1"], "gate": {"passed": False}})
>>> info.kind, info.on_lineage, info.gate_passed, info.batch_status
('champion', True, False, 'trained')
>>> VersionInfo.from_dict(info.to_dict()) == info
True
>>> "forgot" in info.to_dict(), info.to_dict()["lineage"]
(False, True)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

CHAMPION = "champion"
CHALLENGER = "challenger"


@dataclass(frozen=True)
class VersionInfo:
    """A version's metadata. ``gate``, ``metrics`` and ``contest`` hold the verdicts and scores
    as :mod:`app.lifecycle.gate` and :mod:`app.models.metrics` give them."""

    version: int
    created_at: str = ""
    kind: str = CHAMPION  # or CHALLENGER: outside the lineage, never built on
    batch_id: str | None = None  # the step's own batch (the last it learnt)
    batch_ids: list[str] = field(default_factory=list)  # every batch it learnt, oldest first
    n_batch: int = 0  # rows it learnt in its step
    n_samples_seen: int = 0  # rows its statistics hold in all
    parent_version: int | None = None  # the version it builds on
    lineage: bool = True  # whether later versions build on it (a refused batch's does not)
    window_start_seq: int | None = None  # the first batch of its drift window (None: all)
    drift: bool = False  # refit after the relation changed
    population_shift: bool = False  # the people moved, the relation held: learnt on
    suspect: bool = False  # a refit after drift that the next step judges
    drift_confirmed: int | None = None  # the suspect this step confirmed
    metrics: dict = field(default_factory=dict)  # {"prequential": ..., "holdout": ...}
    gate: dict = field(default_factory=dict)  # the promotion gate's verdict
    # Said by some versions only; left out of the file when None.
    suspect_rejected: int | None = None
    shift: str | None = None  # how the population moved
    relation: str | None = None  # why the relation is said to have changed
    forgot: str | None = None  # the batch a forgetting version is without
    window_batch_ids: list[str] | None = None  # a challenger's window
    contest: dict | None = None  # a challenger's scores and the champion's
    # Written by the registry at publication.
    artifact: str | None = None
    format: str | None = None
    sha256: str | None = None
    size_bytes: int = 0
    estimator: str | None = None
    params: dict = field(default_factory=dict)
    python: str | None = None
    libraries: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)  # keys this code does not know, as read

    # -- what the metadata means -------------------------------------------------------------

    @property
    def is_champion(self) -> bool:
        return self.kind == CHAMPION

    @property
    def on_lineage(self) -> bool:
        """Whether later versions build on this one (a refused batch's version does not)."""
        return self.lineage and self.is_champion

    @property
    def batch_status(self) -> str:
        """The ledger status of the batches it learnt: refused if it left them out."""
        return "trained" if self.lineage else "refused"

    @property
    def gate_passed(self) -> bool:
        """Whether follow mode may serve it: its gate did not refuse it."""
        return self.gate.get("passed", True) is not False

    @property
    def prequential(self) -> dict | None:
        """Its parent's scores on its rows before learning them (None for the first)."""
        return self.metrics.get("prequential")

    # -- the stored document ------------------------------------------------------------------

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> VersionInfo:
        """The metadata of a stored document; a missing or null key takes its default."""
        known = _names()
        values = {key: value for key, value in document.items()
                  if key in known and value is not None}
        extra = {key: value for key, value in document.items() if key not in known}
        return cls(**values, extra=extra)

    def to_dict(self) -> dict[str, Any]:
        """The stored document: flat, the optional keys only when set, unknown keys as read."""
        document = asdict(self)
        extra = document.pop("extra")
        for key in _OPTIONAL:
            if document[key] is None:
                del document[key]
        return {**document, **extra}


# The keys some versions leave out of their file.
_OPTIONAL = ("suspect_rejected", "shift", "relation", "forgot", "window_batch_ids", "contest")


def _names() -> frozenset[str]:
    return frozenset(item.name for item in fields(VersionInfo) if item.name != "extra")
