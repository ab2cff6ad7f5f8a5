"""A train step and a forget step: how versions are made from batches, and unmade.

**Train.** Batches waiting for training are learnt together in one step, one new version:

1. Score the *lineage head* (the newest version later versions build on) on the new rows
   before learning them: the prequential error, an honest online estimate.
2. Feed that error to the drift monitor (:mod:`app.models.drift`). No drift: the candidate is
   the head's statistics plus the new batches', exactly the batch ridge solution. Drift: the
   candidate is refit on the new batches alone, and is a *suspect* until the next step.
3. A pending suspect is judged by the next step's rows, which neither model has seen: if the
   suspect predicts them better than the head, the change is real and the model continues from
   the suspect (the window since the change); if not, the suspect's batches were a one-off
   (a unit error, a broken export) and stay out of the model.
4. The promotion gate (:mod:`app.lifecycle.gate`) scores the candidate against the served
   version on recent held-out rows. The verdict is written into the version's metadata, which
   is what follow mode serves from.
5. Publish with optimistic concurrency: claim ``head + 1``; if another writer took it, re-read,
   merge again and claim the next. So workers on several hosts may train at once, and the
   result equals training the batches one after another.

Retention runs after each publication, one version and one batch at a time (never a listing).

**Forget.** A batch's statistics are subtracted from the lineage head, and the result is
published as a new version: exactly the model of every other batch. Its rows are deleted.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field, replace

import pandas as pd
from loguru import logger

from app.data.lake import BatchNotFound
from app.data.ledger import UnknownBatch, now
from app.dataset import figure
from app.lifecycle import gate, marks
from app.lifecycle.home import Home
from app.models import shift
from app.models.drift import DriftMonitor, chunk_errors
from app.models.metrics import regression_metrics
from app.models.registry import CorruptModel, LoadedModel, VersionNotFound, VersionTaken
from app.models.regressor import IncrementalRidge
from app.models.stats import Design, SufficientStats

# A step learns at most this much of a backlog; the rest waits for the next step.
MAX_BATCHES_PER_STEP = 100
MAX_ROWS_PER_STEP = 2_000_000
# The gate's held-out rows come from this many recent batches of the lineage.
POOL_BATCHES = 20
POOL_MAX_ROWS = 5_000
# The drift monitor is rebuilt from at most this many steps of history.
DRIFT_REPLAY = 200
# A crash between publishing a version and recording it in the ledger is repaired from the
# metadata of the newest versions, this many.
REPAIR_LOOKBACK = 5
# A version whose artifact cannot be loaded is rebuilt from its parent, itself rebuilt if it
# must be, at most this many deep.
REBUILD_DEPTH = 50


class NothingToLearn(ValueError):
    """No batch of the step has rows a version could learn (the message says why)."""


class ForgetError(ValueError):
    """A batch that cannot be forgotten (the message says why)."""


@dataclass
class Plan:
    model: IncrementalRidge
    fields: dict
    monitor: DriftMonitor


@dataclass
class StepOutcome:
    version: int | None
    trained: bool
    batch_ids: list[str] = field(default_factory=list)
    n_rows: int = 0
    reason: str = ""
    metadata: dict | None = None
    seqs: list[int] = field(default_factory=list)  # the learnt batches' numbers in the ledger
    unknown: list[str] = field(default_factory=list)  # waiting ids the ledger does not know


def on_lineage(metadata: dict) -> bool:
    """Whether later versions build on this one (a refused batch's version does not)."""
    return metadata.get("lineage", True) and metadata.get("kind", "champion") == "champion"


class _Cache(OrderedDict):
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


class Learner:
    """Train and forget steps over one :class:`Home`, with what a worker process caches."""

    def __init__(self, home: Home, keep_versions: int = 50, keep_batches: int = 1000,
                 tolerance: float = gate.TOLERANCE):
        self.home = home
        self.keep_versions = keep_versions
        self.keep_batches = keep_batches
        self.tolerance = tolerance
        self._models = _Cache(6)
        self._holdout = _Cache(POOL_BATCHES * 3)
        self._monitors = _Cache(2)  # lineage version -> DriftMonitor that has seen its history
        self.dataset = home.dataset
        self.design = Design.of(home.dataset)

    # -- reading the registry, cached -------------------------------------------------------

    def load(self, version: int) -> LoadedModel:
        loaded = self._models.take(version)
        return loaded if loaded is not None else self._models.put(version, self.home.registry.load(version))

    def lineage_head(self, newest: int) -> LoadedModel | None:
        """The newest version at or below ``newest`` that later versions build on."""
        registry = self.home.registry
        for version in range(newest, 0, -1):
            try:
                metadata = registry.metadata(version)
            except (VersionNotFound, CorruptModel):
                continue
            if on_lineage(metadata):
                return self.load_or_rebuild(version)
        return None

    def load_or_rebuild(self, version: int) -> LoadedModel:
        """``version``, or when its artifact cannot be loaded (damaged, replaced by something
        that is not a model), the same model rebuilt from the ledger's per-batch statistics.

        So a file someone broke or planted in the registry stops neither learning nor
        forgetting: the next version builds on what the broken one had learnt, and carries a
        sound artifact again. :class:`CorruptModel` when the ledger cannot give it back exactly.
        """
        cached = self._models.take(version)
        if cached is not None:
            return cached
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
        metadata = self.home.registry.metadata(version)
        if metadata.get("forgot"):
            raise CorruptModel(f"model version {version} forgot batch {metadata['forgot']}, "
                               "whose statistics are deleted: it cannot be rebuilt")
        parent = metadata.get("parent_version")
        base, params = SufficientStats.empty(self.design), metadata.get("params") or {}
        if parent and not metadata.get("drift"):  # a drift step starts from nothing
            try:
                parent_model = self.load(parent).model
            except CorruptModel:
                parent_model = self._rebuild(parent, depth + 1).model
            base, params = parent_model.stats_, parent_model.get_params()
        ledger = self.home.ledger
        for batch_id in metadata.get("batch_ids") or []:
            try:
                base = base + SufficientStats.from_npz(ledger.read_stats(batch_id))
            except (FileNotFoundError, UnknownBatch, ValueError) as error:
                raise CorruptModel(f"model version {version}: the statistics of its batch "
                                   f"{batch_id} cannot be read ({error})") from None
        if base.n != metadata.get("n_samples_seen"):
            raise CorruptModel(f"model version {version}: rebuilt from the ledger it has "
                               f"{base.n} rows, its metadata says {metadata.get('n_samples_seen')}")
        return LoadedModel(version, IncrementalRidge(**params).set_stats(base), metadata)

    def served(self) -> LoadedModel | None:
        version = self.home.serving.state().version
        if version is None:
            return None
        try:
            return self.load(version)
        except (VersionNotFound, CorruptModel) as error:
            logger.warning("the served version {} cannot be loaded for the gate: {}", version, error)
            return None

    def _holdout_rows(self, batch_id: str) -> pd.DataFrame | None:
        rows = self._holdout.take(batch_id)
        if rows is None:
            try:
                rows = self._holdout.put(batch_id, self.home.lake.read(
                    "holdout", batch_id, columns=self.dataset.learnt_columns))
            except BatchNotFound:
                return None
        return rows

    def pool(self, batch_ids: list[str], limit: int = POOL_MAX_ROWS) -> pd.DataFrame:
        """The held-out rows of ``batch_ids``, the newest ``limit`` of them."""
        frames = [rows for rows in map(self._holdout_rows, batch_ids) if rows is not None]
        if not frames:
            return pd.DataFrame(columns=self.dataset.learnt_columns)
        return pd.concat(frames, ignore_index=True).tail(limit).reset_index(drop=True)

    def recent_lineage_batches(self, head: LoadedModel | None) -> list[str]:
        """Batches learnt by ``head`` and the versions it builds on, within its window."""
        if head is None:
            return []
        window = head.metadata.get("window_start_seq")
        batches: list[str] = []
        metadata = head.metadata
        while len(batches) < POOL_BATCHES:
            batches[:0] = [b for b in metadata.get("batch_ids") or [] if b]
            parent = metadata.get("parent_version")
            if not parent:
                break
            try:
                metadata = self.home.registry.metadata(parent)
            except (VersionNotFound, CorruptModel):
                break
            if metadata.get("window_start_seq") != window:
                break
        return batches[-POOL_BATCHES:]

    def monitor(self, head: LoadedModel | None) -> DriftMonitor:
        """A drift monitor that has seen the prequential errors of ``head``'s window.

        Taken out of the cache: the caller updates it, and puts it back under the version
        it publishes only if that version is the lineage's next head.
        """
        if head is None:
            return DriftMonitor()
        cached = self._monitors.pop(head.version, None)
        if cached is not None:
            return cached
        history: list[float] = []
        window = head.metadata.get("window_start_seq")
        metadata = head.metadata
        while len(history) < DRIFT_REPLAY:
            if metadata.get("drift") or metadata.get("population_shift"):
                # Its error is the old model on a new world, or on new people: not the level
                # of what follows.
                break
            prequential = (metadata.get("metrics") or {}).get("prequential")
            if prequential:
                history.append(prequential.get("chunk_mae") or [prequential["mae"]])
            parent = metadata.get("parent_version")
            if not parent:
                break
            try:
                metadata = self.home.registry.metadata(parent)
            except (VersionNotFound, CorruptModel):
                break
            if metadata.get("window_start_seq") != window:
                break
        return DriftMonitor().replay(reversed(history))

    # -- train ------------------------------------------------------------------------------

    def train(self, batch_ids: list[str]) -> StepOutcome:
        """Learn every batch of ``batch_ids`` that waits for it, as one new version.

        The first is the step's own batch: :class:`UnknownBatch` if the ledger has no such
        batch. The others are taken along; one the ledger does not know (its id was left
        waiting by a run on another home, or by a run killed before its batch arrived) is
        passed over and named in the outcome's ``unknown``, never a reason to fail the step.
        """
        outcome = self._train(batch_ids)
        if outcome.unknown:
            logger.warning("passed over {} waiting batch id(s) the ledger does not know (left by "
                           "another pipeline home, or by a run killed before they arrived): {}",
                           len(outcome.unknown), ", ".join(outcome.unknown))
        return outcome

    def _train(self, batch_ids: list[str]) -> StepOutcome:
        ledger = self.home.ledger
        own, *others = dict.fromkeys(batch_ids)
        entries, unknown = [ledger.get(own)], []
        for batch_id in others:
            entry = ledger.find(batch_id)
            if entry is None:
                unknown.append(batch_id)
            else:
                entries.append(entry)
        waiting = [batch for batch in entries if batch["status"] == "normalized"]
        checked = self.home.registry.latest_version() or 0
        waiting = self._repair(waiting, range(checked, max(checked - REPAIR_LOOKBACK, 0), -1))
        if not waiting:
            return replace(self._nothing_waiting(own), unknown=unknown)
        waiting.sort(key=lambda batch: batch["seq"])
        frames, stats = {}, {}
        total = 0
        for batch in waiting[:MAX_BATCHES_PER_STEP]:
            if frames and total + (batch.get("clean") or 0) > MAX_ROWS_PER_STEP:
                break
            frame = self.home.lake.read("normalized", batch["batch_id"],
                                        columns=self.dataset.learnt_columns)
            frames[batch["batch_id"]] = frame
            stats[batch["batch_id"]] = SufficientStats.of(self.design, frame)
            total += len(frame)
        # Kept before any version learns them: forgetting subtracts exactly these.
        for batch_id, batch_stats in stats.items():
            ledger.write_stats(batch_id, batch_stats.to_npz())
        seqs = {batch["batch_id"]: batch["seq"] for batch in waiting}

        while True:
            newest = self.home.registry.latest_version() or 0
            if newest > checked:
                # Another writer published since the check, maybe these very batches (the same
                # message delivered twice, or a claim lost below): look at its versions too.
                still = {b["batch_id"] for b in self._repair([ledger.get(b) for b in frames],
                                                             range(newest, checked, -1))}
                checked = newest
                if not still:
                    return self._nothing_waiting(next(iter(frames)))
                frames = {b: frame for b, frame in frames.items() if b in still}
                stats = {b: stats[b] for b in frames}
            rows = pd.concat(frames.values(), ignore_index=True)
            if rows.empty:
                raise NothingToLearn(f"batches {', '.join(frames)} hold no row to learn")
            plan = self._plan(newest, list(frames), rows, stats, min(seqs[b] for b in frames))
            try:
                metadata = self.home.registry.publish(plan.model, newest + 1, **plan.fields)
                break
            except VersionTaken:
                continue  # the next turn re-reads what the winner learnt, and merges again
        self.home.notify("version", metadata["version"])
        if plan.fields["lineage"]:
            self._monitors.put(metadata["version"], plan.monitor)
        self._after_publish(metadata, [seqs[b] for b in frames])
        return StepOutcome(metadata["version"], trained=True, batch_ids=list(frames),
                           n_rows=len(rows), metadata=metadata, seqs=[seqs[b] for b in frames],
                           unknown=unknown)

    def _nothing_waiting(self, batch_id: str) -> StepOutcome:
        batch = self.home.ledger.get(batch_id)
        if batch["status"] in ("empty", "failed"):
            raise NothingToLearn(f"batch {batch_id} is {batch['status']}, so no version learnt "
                                 f"it: {batch.get('failure')}")
        if batch["status"] == "forgotten":
            raise NothingToLearn(f"batch {batch_id} was forgotten: {batch['forgotten']['reason']}")
        if batch["status"] == "received":
            raise NothingToLearn(f"batch {batch_id} has not been normalized yet")
        return StepOutcome(batch.get("version"), trained=False,
                           reason=f"batch already {batch['status']}")

    def _plan(self, newest: int, batch_ids: list[str], rows: pd.DataFrame,
              stats: dict[str, SufficientStats], first_seq: int) -> Plan:
        """The candidate for version ``newest + 1``, its metadata, and the drift monitor."""
        head = self.lineage_head(newest)
        target = self.dataset.target
        prequential = score_prequential(head, rows, target)
        fields = {"kind": "champion", "batch_id": batch_ids[-1], "batch_ids": batch_ids,
                  "n_batch": len(rows), "drift": False, "population_shift": False,
                  "suspect": False, "drift_confirmed": None}

        suspect = self._pending_suspect(newest, head)
        if suspect is not None:
            suspect_score = score_prequential(suspect, rows, target)
            if suspect_score["mae"] < prequential["mae"]:
                # The change the suspect saw goes on: the lineage continues from it.
                head, prequential = suspect, suspect_score
                fields["drift_confirmed"] = suspect.version
            else:
                fields["suspect_rejected"] = suspect.version

        fields.update(parent_version=head.version if head else None,
                      window_start_seq=head.metadata.get("window_start_seq") if head else None)
        base = head.model.stats_ if head else SufficientStats.empty(self.design)
        added = sum(stats.values(), SufficientStats.empty(self.design))
        alpha = head.model.alpha if head else IncrementalRidge().alpha
        model = IncrementalRidge(alpha=alpha).set_stats(base + added)
        monitor = self.monitor(head)
        if prequential is not None and monitor.update(prequential["chunk_mae"]):
            moved, why = self._why_the_error_rose(base, added, model)
            if moved:
                fields.update(population_shift=True, shift=why)
            else:
                fields.update(drift=True, suspect=True, window_start_seq=first_seq,
                              relation=why)
                model = IncrementalRidge(alpha=alpha).set_stats(added)
            # What a replay of the new window gives: its errors start with the next step.
            monitor = DriftMonitor()
        pool = self.pool(self.recent_lineage_batches(head))
        verdict = gate.judge(model, pool, target, served=self.served(), parent=head,
                             tolerance=self.tolerance)
        if fields["suspect"]:
            # A refit after drift is trusted only once the gate, or the next batch, agrees.
            lineage = verdict["passed"]
            fields["suspect"] = not lineage
        else:
            lineage = verdict["passed"] or not verdict["batch_hurt"]
        fields.update(lineage=lineage, gate=verdict,
                      metrics={"prequential": prequential, "holdout": verdict.get("candidate")})
        return Plan(model, fields, monitor)

    @staticmethod
    def _why_the_error_rose(history: SufficientStats, batch: SufficientStats,
                            learn_on: IncrementalRidge) -> tuple[bool, str]:
        """``(True, how)`` when the batch's people moved but the relation held (learn on);
        ``(False, why)`` when the relation changed (start again). See :mod:`app.models.shift`."""
        moved = shift.population_moved(batch, history)
        if not moved:
            return False, "the same people as before: the relation between the features and "\
                          "the target changed"
        start_again = IncrementalRidge(alpha=learn_on.alpha).set_stats(batch)
        changed, fit = shift.relation_moved(batch, learn_on, start_again)
        if changed:
            return False, f"the population shifted ({shift.describe(moved)}) and the relation "\
                          f"changed with it: {fit}"
        return True, f"{shift.describe(moved)}; the relation held: {fit}"

    def _pending_suspect(self, newest: int, head: LoadedModel | None) -> LoadedModel | None:
        """The newest champion version, if it is a drift suspect waiting for this step to
        judge it (a challenger published since does not hide it)."""
        floor = head.version if head is not None else 0
        for version in range(newest, floor, -1):
            try:
                metadata = self.home.registry.metadata(version)
                if metadata.get("kind", "champion") == "challenger":
                    continue
                return self.load(version) if metadata.get("suspect") else None
            except (VersionNotFound, CorruptModel):
                return None
        return None

    def _repair(self, waiting: list[dict], versions: range) -> list[dict]:
        """``waiting`` without batches one of ``versions`` already learnt (recording them)."""
        if not waiting:
            return waiting
        registry, ledger = self.home.registry, self.home.ledger
        learnt: dict[str, dict] = {}
        for version in versions:
            try:
                metadata = registry.metadata(version)
            except (VersionNotFound, CorruptModel):
                continue
            for batch_id in metadata.get("batch_ids") or []:
                learnt.setdefault(batch_id, metadata)
        left = []
        for batch in waiting:
            metadata = learnt.get(batch["batch_id"])
            if metadata is None:
                left.append(batch)
            else:
                ledger.update(batch["batch_id"], status=batch_status(metadata),
                              version=metadata["version"])
                logger.info("batch {} was already learnt by version {}: ledger repaired",
                            batch["batch_id"], metadata["version"])
        return left

    def _after_publish(self, metadata: dict, seqs: list[int]) -> None:
        version = metadata["version"]
        ledger, audit = self.home.ledger, self.home.audit
        for batch_id in metadata["batch_ids"]:
            ledger.update(batch_id, status=batch_status(metadata), version=version)
        verdict = metadata["gate"]
        prequential = metadata["metrics"]["prequential"] or {}
        if metadata["drift_confirmed"]:
            for batch_id in self.home.registry.metadata(metadata["drift_confirmed"])["batch_ids"]:
                ledger.update(batch_id, status="trained")
            audit.record("adapted", reason="the next batch confirmed the change: the model now "
                         "learns from the batches since it, and nothing before",
                         from_version=verdict["served_version"], to_version=version,
                         window_start_seq=metadata["window_start_seq"])
        if metadata["drift"]:
            logger.warning("drift detected on batch {}: prequential MAE rose to {}; {}; version {} "
                           "is refit on the batches since the change", metadata["batch_id"],
                           figure(prequential["mae"]), metadata["relation"], version)
            audit.record("drift", reason=f"the relation changed: prequential MAE rose to "
                         f"{figure(prequential['mae'])} on batch {metadata['batch_id']}; "
                         f"{metadata['relation']}", from_version=metadata["parent_version"],
                         to_version=version, batch_id=metadata["batch_id"])
        if metadata.get("population_shift"):
            logger.info("the population shifted on batch {} (prequential MAE rose to {}): {}; "
                        "version {} learns on", metadata["batch_id"], figure(prequential["mae"]),
                        metadata["shift"], version)
            audit.record("population_shift", reason=f"the population shifted: {metadata['shift']}",
                         from_version=metadata["parent_version"], to_version=version,
                         batch_id=metadata["batch_id"])
        if not verdict["passed"]:
            logger.warning("version {} is not served: {}", version, verdict["reason"])
            audit.record("refused_promotion", reason=verdict["reason"],
                         from_version=verdict["served_version"], to_version=version,
                         batch_id=metadata["batch_id"], candidate_mse=verdict["candidate"]["mse"],
                         served_mse=verdict["served"]["mse"],
                         batch_left_out=not metadata["lineage"])
        logger.info("version {} learnt {:,} rows of {} batch(es), {:,} in all; {}", version,
                    metadata["n_batch"], len(metadata["batch_ids"]), metadata["n_samples_seen"],
                    "promoted" if verdict["passed"] else "not promoted")
        self._retain(version, seqs)

    # -- retention --------------------------------------------------------------------------

    def protected_versions(self, newest: int) -> set[int]:
        """Versions whose artifacts retention never removes."""
        serving = self.home.serving
        head = self.lineage_head(newest)
        protected = {newest, serving.state().version, serving.pinned_version(),
                     head.version if head else None}
        return {version for version in protected if version}

    def _retain(self, newest: int, seqs: list[int]) -> None:
        old = newest - self.keep_versions
        if old >= 1 and old not in self.protected_versions(newest):
            self.home.registry.prune_artifact(old)
        for seq in seqs:
            self._drop_rows(seq - self.keep_batches)

    def _drop_rows(self, seq: int) -> None:
        """Delete the lake rows of batch number ``seq`` once it is done with (stats stay)."""
        if seq < 1:
            return
        try:
            batch_id = self.home.ledger.order.get(seq)["batch_id"]
            batch = self.home.ledger.get(batch_id)
        except (FileNotFoundError, UnknownBatch):
            return
        if batch["seq"] == seq and batch["status"] in ("trained", "refused", "empty", "failed"):
            self.home.lake.delete(batch_id)

    # -- forget -----------------------------------------------------------------------------

    def forget(self, batch_id: str, *, reason: str, by: str) -> dict:
        """Remove ``batch_id`` from the model and the lake; returns its ledger entry.

        If the lineage's model learnt the batch, a new version is published without it, whose
        coefficients are those of a model trained on every other batch.
        """
        if not isinstance(reason, str) or not reason.strip():
            raise ForgetError("a reason is required: say why, for the audit trail")
        ledger, registry = self.home.ledger, self.home.registry
        batch = ledger.get(batch_id)
        if batch["status"] == "forgotten":
            return batch
        version = None
        while batch["status"] in ("trained",):
            newest = registry.latest_version() or 0
            head = self.lineage_head(newest)
            if head is None or not self._learnt(head, batch):
                break
            remaining = head.model.stats_ - SufficientStats.from_npz(ledger.read_stats(batch_id))
            if not remaining.n:
                raise ForgetError(f"batch {batch_id} is all the model has learnt: a model "
                                  "without it would have learnt nothing")
            model = IncrementalRidge(alpha=head.model.alpha).set_stats(remaining)
            fields = {"kind": "champion", "batch_id": batch_id, "batch_ids": [],
                      "forgot": batch_id, "n_batch": 0,
                      "parent_version": head.version, "lineage": True,
                      "window_start_seq": head.metadata.get("window_start_seq"),
                      "drift": False, "suspect": False, "drift_confirmed": None,
                      "metrics": {"prequential": None},
                      "gate": {"passed": True, "batch_hurt": False,
                               "reason": f"forgetting batch {batch_id}: a version without it "
                                         "is served as soon as it exists"}}
            try:
                version = registry.publish(model, newest + 1, **fields)["version"]
            except VersionTaken:
                continue
            self.home.notify("version", version)
            break
        self.home.lake.delete(batch_id)
        ledger.delete_stats(batch_id)
        # Indexed before the ledger says "forgotten": a crash in between leaves the batch to
        # be forgotten again (a second index entry for it is harmless), never unmarked.
        mark = marks.forgetting(batch, version)
        ledger.forgotten.append(lambda _: mark)
        forgotten = {"at": now(), "reason": reason, "by": by, "version": version,
                     "learnt_by": batch.get("version")}
        entry = ledger.update(batch_id, status="forgotten", forgotten=forgotten)
        state = self.home.serving.state()
        note = ""
        if state.version is not None and marks.learnt_from(
                self.home.registry.metadata(state.version), mark):
            note = (f"; the {state.mode} version {state.version} learnt from it and is still "
                    "served: pin another or follow")
        self.home.audit.record("forget", reason=reason + note, by=by,
                               from_version=batch.get("version"), to_version=version,
                               batch_id=batch_id, served_version=state.version,
                               served_learnt_it=bool(note))
        logger.info("forgot batch {} ({}); version {} is the model without it", batch_id,
                    reason, version)
        return entry

    def _learnt(self, head: LoadedModel, batch: dict) -> bool:
        """Whether ``head``'s statistics include ``batch``."""
        window = head.metadata.get("window_start_seq")
        return (batch.get("version") is not None and batch["version"] <= head.version
                and (window is None or batch["seq"] >= window))


def batch_status(metadata: dict) -> str:
    """The ledger status of a batch a version learnt: refused if that version left it out."""
    return "trained" if metadata.get("lineage", True) else "refused"


def score_prequential(head: LoadedModel | None, rows: pd.DataFrame, target: str) -> dict | None:
    """``head``'s scores on ``rows`` before learning them, with the drift monitor's observations."""
    if head is None:
        return None
    predicted = head.model.predict(rows)
    return {**regression_metrics(rows[target], predicted),
            "chunk_mae": chunk_errors(rows[target], predicted)}
