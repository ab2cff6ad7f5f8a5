"""The lineage: the versions later versions build on, loaded or rebuilt, and cached per worker.

A version is *on the lineage* when later versions build on it (:attr:`VersionInfo.on_lineage`:
a champion whose batches were not left out). The *head* at ``newest`` is the newest such
version at or below it: the train step scores and extends it, the challenger contests it,
forgetting subtracts from it.

A version whose artifact cannot be loaded (damaged, or replaced by something that is not a
model) is rebuilt from its parent and the per-batch statistics the ledger kept, so a broken
file stops neither learning nor forgetting.
"""

from __future__ import annotations

from collections import OrderedDict

from loguru import logger

from app.data.ledger import UnknownBatch
from app.lifecycle.home import Home
from app.models.registry import CorruptModel, LoadedModel, VersionNotFound
from app.models.regressor import IncrementalRidge
from app.models.stats import Design, SufficientStats

# The lineage's recent batches (whose held-out rows the gate scores on) are this many at most.
RECENT_BATCHES = 20
# A broken version is rebuilt from its parent, itself rebuilt if it must be, this many deep.
REBUILD_DEPTH = 50


class Cache(OrderedDict):
    """A small least-recently-used map."""

    def __init__(self, size: int):
        super().__init__()
        self.size = size

    def put(self, key, value):
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.size:
            self.popitem(last=False)
        return value

    def take(self, key):
        value = self.get(key)
        if value is not None:
            self.move_to_end(key)
        return value


class Lineage:
    """The versions of one :class:`Home` a worker builds on, with the few it keeps loaded."""

    def __init__(self, home: Home, design: Design):
        self.home = home
        self.design = design
        self._models = Cache(6)

    def load(self, version: int) -> LoadedModel:
        loaded = self._models.take(version)
        if loaded is None:
            loaded = self._models.put(version, self.home.registry.load(version))
        return loaded

    def head(self, newest: int) -> LoadedModel | None:
        """The newest version at or below ``newest`` that later versions build on."""
        for info in self.home.registry.down(newest):
            if info.on_lineage:
                return self.load_or_rebuild(info.version)
        return None

    def pending_suspect(self, newest: int, head: LoadedModel | None) -> LoadedModel | None:
        """The newest champion above ``head``, if it is a drift suspect waiting for this step
        to judge it (a challenger published since does not hide it)."""
        floor = head.version if head is not None else 0
        for info in self.home.registry.down(newest, floor):
            if not info.is_champion:
                continue
            if not info.suspect:
                return None
            try:
                return self.load(info.version)
            except CorruptModel:
                return None
        return None

    def recent_batches(self, head: LoadedModel | None) -> list[str]:
        """Batches learnt by ``head`` and the versions it builds on, within its window."""
        batches: list[str] = []
        for info in self.home.registry.lineage(head.metadata) if head is not None else ():
            batches[:0] = [batch_id for batch_id in info.batch_ids if batch_id]
            if len(batches) >= RECENT_BATCHES:
                break
        return batches[-RECENT_BATCHES:]

    def served(self) -> LoadedModel | None:
        """The served version, for the gate to compare with; None when it cannot be loaded."""
        version = self.home.serving.state().version
        if version is None:
            return None
        try:
            return self.load(version)
        except (VersionNotFound, CorruptModel) as error:
            logger.warning("the served version {} cannot be loaded for the gate: {}", version,
                           error)
            return None

    # -- rebuilding -------------------------------------------------------------------------

    def load_or_rebuild(self, version: int) -> LoadedModel:
        """``version``, or when its artifact cannot be loaded, the same model rebuilt from the
        ledger's per-batch statistics: the next version builds on what the broken one had
        learnt, and carries a sound artifact again. :class:`CorruptModel` when the ledger
        cannot give it back exactly.
        """
        try:
            return self.load(version)
        except CorruptModel as error:
            logger.warning("{}; rebuilding version {} from the ledger's batch statistics",
                           error, version)
            return self._models.put(version, self._rebuild(version, depth=0))

    def _rebuild(self, version: int, depth: int) -> LoadedModel:
        """The model of ``version`` from its parent's and the batch statistics it added."""
        if depth > REBUILD_DEPTH:
            raise CorruptModel(f"model version {version}: more than {REBUILD_DEPTH} broken "
                               "versions in a row; it cannot be rebuilt")
        info = self.home.registry.metadata(version)
        if info.forgot:
            raise CorruptModel(f"model version {version} forgot batch {info.forgot}, "
                               "whose statistics are deleted: it cannot be rebuilt")
        base, params = SufficientStats.empty(self.design), info.params
        if info.parent_version and not info.drift:  # a drift step starts from nothing
            try:
                parent = self.load(info.parent_version).model
            except CorruptModel:
                parent = self._rebuild(info.parent_version, depth + 1).model
            base, params = parent.stats_, parent.get_params()
        for batch_id in info.batch_ids:
            try:
                base = base + SufficientStats.from_npz(self.home.ledger.read_stats(batch_id))
            except (FileNotFoundError, UnknownBatch, ValueError) as error:
                raise CorruptModel(f"model version {version}: the statistics of its batch "
                                   f"{batch_id} cannot be read ({error})") from None
        if base.n != info.n_samples_seen:
            raise CorruptModel(f"model version {version}: rebuilt from the ledger it has "
                               f"{base.n} rows, its metadata says {info.n_samples_seen}")
        return LoadedModel(version, IncrementalRidge(**params).set_stats(base), info)
