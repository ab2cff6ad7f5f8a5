"""What must hold in a home once faults stop, whatever they were: the chaos run's checker
(``bench/chaos.py``) and the failover tests call :func:`check` after the system settles.

Like a Jepsen checker it reads the whole history (the ledger and the registry) and names every
violation, rather than stopping at the first: an empty list means the run kept its promises.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from app.data.ledger import FINAL
from app.lifecycle.home import Home
from app.models.registry import CorruptModel, VersionNotFound
from app.models.versions import VersionInfo

# A batch in one of these statuses says why it was not learnt.
NEEDS_REASON = {"failed": "failure", "empty": "failure", "forgotten": "forgotten"}
# The statuses of a batch some version learnt (refused: the gate left that version out).
LEARNT = ("trained", "refused")


@dataclass
class Report:
    """What :func:`check` looked at, and each violation in a sentence."""

    batches: int = 0
    versions: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    checked: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations


def check(home: Home, open_after: float | None = None) -> Report:
    """Every invariant of ``home``: batches final, each learnt once, versions consecutive,
    the newest version's rows equal to the ledger's, the served model loadable.

    ``open_after``: a time (epoch seconds) from which batches may still be on their way (the
    system was stopped while it ran): those not final yet are left out of the checks.
    """
    report = Report()
    batches, flying = {}, set()
    for batch in home.ledger.newest_first():
        if _in_flight(batch, open_after):
            flying.add(batch["batch_id"])
        else:
            batches[batch["batch_id"]] = batch
    versions = {info.version: info for info in home.registry.newest_first()}
    report.batches, report.versions = len(batches), len(versions)
    for batch in batches.values():
        report.statuses[batch["status"]] = report.statuses.get(batch["status"], 0) + 1
    _every_batch_final(batches, report)
    _each_batch_learnt_once(batches, versions, flying, report)
    _versions_consecutive(versions, report)
    _rows_learnt(home, versions, report)
    _served_loadable(home, report)
    return report


def _in_flight(batch: dict, open_after: float | None) -> bool:
    return (open_after is not None and batch["status"] not in FINAL
            and datetime.fromisoformat(batch["created_at"]).timestamp() >= open_after)


def _every_batch_final(batches: dict[str, dict], report: Report) -> None:
    report.checked.append("every batch final (trained, refused, empty, failed, forgotten), "
                          "with a reason when not learnt")
    for batch_id, batch in batches.items():
        if batch["status"] not in FINAL:
            report.violations.append(f"batch {batch_id} is still {batch['status']}")
        elif (reason := NEEDS_REASON.get(batch["status"])) and not batch.get(reason):
            report.violations.append(f"batch {batch_id} is {batch['status']} without a reason")


def _each_batch_learnt_once(batches: dict[str, dict], versions: dict[int, VersionInfo],
                            flying: set[str], report: Report) -> None:
    report.checked.append("each batch learnt by exactly one version, the one the ledger names")
    learnt: dict[str, int] = {}
    for version in sorted(versions):
        for batch_id in versions[version].batch_ids:
            if batch_id in learnt:
                report.violations.append(f"batch {batch_id} learnt by versions "
                                         f"{learnt[batch_id]} and {version}")
            learnt.setdefault(batch_id, version)
    for batch_id, batch in batches.items():
        if batch["status"] in LEARNT and learnt.get(batch_id) != batch.get("version"):
            report.violations.append(
                f"batch {batch_id} is {batch['status']} by version {batch.get('version')}, "
                f"but the registry has it learnt by {learnt.get(batch_id)}")
    for batch_id, version in learnt.items():
        status = batches.get(batch_id, {}).get("status")
        if status not in (*LEARNT, "forgotten") and batch_id not in flying:
            report.violations.append(f"batch {batch_id}, learnt by version {version}, is "
                                     f"{status or 'not in the ledger'}")


def _versions_consecutive(versions: dict[int, VersionInfo], report: Report) -> None:
    report.checked.append("version numbers unique and consecutive from 1")
    if versions and sorted(versions) != list(range(1, max(versions) + 1)):
        missing = sorted(set(range(1, max(versions) + 1)) - set(versions))
        report.violations.append(f"version numbers are not consecutive: missing {missing[:10]}")


def lineage(versions: dict[int, VersionInfo], newest: int) -> list[int]:
    """``newest`` and the versions it learnt on from, back to a start from nothing (the
    first version, or a refit after drift)."""
    chain, version = [], newest
    while version is not None and version in versions and version not in chain:
        chain.append(version)
        if versions[version].drift:
            break
        version = versions[version].parent_version
    return chain


def _rows_learnt(home: Home, versions: dict[int, VersionInfo], report: Report) -> None:
    """The newest version's ``n_samples_seen`` is the rows the ledger's statistics hold for
    the batches of its lineage (the forgotten ones subtracted by their forget step)."""
    report.checked.append("newest version's n_samples_seen equals the ledger's rows learnt "
                          "along its lineage")
    newest = max((v for v, info in versions.items() if info.is_champion), default=None)
    if newest is None:
        return
    rows = 0
    for version in lineage(versions, newest):
        for batch_id in versions[version].batch_ids:
            if home.ledger.find(batch_id) and home.ledger.get(batch_id)["status"] == "forgotten":
                continue
            try:
                with np.load(io.BytesIO(home.ledger.read_stats(batch_id))) as arrays:
                    rows += int(arrays["n"])
            except (OSError, ValueError, KeyError) as error:
                report.violations.append(f"the statistics of batch {batch_id} (version "
                                         f"{version}) cannot be read: {error}")
    seen = versions[newest].n_samples_seen
    if seen != rows:
        report.violations.append(f"version {newest} says n_samples_seen={seen}, the ledger's "
                                 f"statistics of its lineage hold {rows} rows")


def _served_loadable(home: Home, report: Report) -> None:
    report.checked.append("the served model loads")
    version = home.serving.state().version or home.registry.latest_version()
    if version is None:
        return
    try:
        home.registry.load(version)
    except (VersionNotFound, CorruptModel, OSError, ValueError) as error:
        report.violations.append(f"the served version {version} does not load: {error}")
