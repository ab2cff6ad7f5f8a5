"""Everything under ``PIPELINE_HOME``, opened once: the lake, the ledger, the registry, the
audit and the serving state, all over one :class:`~app.storage.Storage`.

Tasks hold one per worker process, the web app one per web process, commands one per run.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property

from app.data.lake import DataLake
from app.dataset import Dataset, builtin
from app.data.ledger import Ledger
from app.lifecycle.audit import AuditTrail
from app.lifecycle.marks import ForgottenBatches
from app.lifecycle.serving import ServingControl
from app.models.registry import ModelRegistry
from app.storage import Storage, open_storage


def _ignore(event: str, version: int | None) -> None:
    pass


def _over_storage(part: type) -> cached_property:
    """A part of the home (the lake, the ledger...) opened over its storage on first use."""
    return cached_property(lambda home: part(home.storage))


class Home:
    """``notify(event, version)`` is told of every publication and serving change (see
    :mod:`app.notices`); by default nobody is. ``dataset``: what is learnt here (the built-in
    declaration when None)."""

    def __init__(self, storage: Storage | str,
                 notify: Callable[[str, int | None], None] = _ignore,
                 dataset: Dataset | None = None):
        self.storage = open_storage(storage) if isinstance(storage, str) else storage
        self.notify = notify
        self.dataset = dataset or builtin()

    @classmethod
    def from_settings(cls, settings, announce: bool = True) -> Home:
        """The configured home; ``announce``: tell web processes of changes over Redis."""
        home = cls(settings.storage(), dataset=settings.dataset())
        if announce:
            from app.notices import Notifier

            home.notify = Notifier(settings.redis_url, home.url)
        return home

    @property
    def url(self) -> str:
        return self.storage.url

    lake: DataLake = _over_storage(DataLake)
    ledger: Ledger = _over_storage(Ledger)
    registry: ModelRegistry = _over_storage(ModelRegistry)
    audit: AuditTrail = _over_storage(AuditTrail)

    @cached_property
    def forgotten(self) -> ForgottenBatches:
        return ForgottenBatches(self.ledger)

    @cached_property
    def serving(self) -> ServingControl:
        return ServingControl(self.storage, self.registry, self.audit,
                              notify=lambda event, version: self.notify(event, version))

    def sweep(self, older_than: float = 60.0) -> int:
        """Remove what crashed writes left anywhere in the home; how many files."""
        return self.storage.sweep_temporaries("", older_than) + self.registry.sweep()

    def __repr__(self) -> str:
        return f"Home({self.url!r})"
