"""What a published train step writes down: its batches' status in the ledger, its events in
the audit (an adaptation, drift, a population shift, a refused promotion) and the log lines."""

from __future__ import annotations

from loguru import logger

from app.dataset import figure
from app.lifecycle.home import Home
from app.models.versions import VersionInfo


def published(home: Home, info: VersionInfo) -> None:
    """Record version ``info`` that a train step just published."""
    for batch_id in info.batch_ids:
        home.ledger.update(batch_id, status=info.batch_status, version=info.version)
    if info.drift_confirmed:
        _adapted(home, info)
    if info.drift:
        _drift(home, info)
    if info.population_shift:
        _population_shift(home, info)
    if not info.gate_passed:
        _refused(home, info)
    # The line names the version's own batch, not the one whose task ran the step: a step
    # takes along every batch waiting, and its task's batch may have been learnt already.
    logger.bind(batch_id=info.batch_id).info(
        "version {} learnt {:,} rows of {} batch(es), {:,} in all; {}", info.version,
        info.n_batch, len(info.batch_ids), info.n_samples_seen,
        "promoted" if info.gate_passed else "not promoted")


def _adapted(home: Home, info: VersionInfo) -> None:
    for batch_id in home.registry.metadata(info.drift_confirmed).batch_ids:
        home.ledger.update(batch_id, status="trained")
    home.audit.record("adapted", reason="the next batch confirmed the change: the model now "
                      "learns from the batches since it, and nothing before",
                      from_version=info.gate["served_version"], to_version=info.version,
                      window_start_seq=info.window_start_seq)


def _drift(home: Home, info: VersionInfo) -> None:
    mae = figure(info.prequential["mae"])
    logger.warning("drift detected on batch {}: prequential MAE rose to {}; {}; version {} "
                   "is refit on the batches since the change", info.batch_id, mae,
                   info.relation, info.version)
    home.audit.record("drift", reason=f"the relation changed: prequential MAE rose to {mae} on "
                      f"batch {info.batch_id}; {info.relation}",
                      from_version=info.parent_version, to_version=info.version,
                      batch_id=info.batch_id)


def _population_shift(home: Home, info: VersionInfo) -> None:
    logger.info("the population shifted on batch {} (prequential MAE rose to {}): {}; "
                "version {} learns on", info.batch_id, figure(info.prequential["mae"]),
                info.shift, info.version)
    home.audit.record("population_shift", reason=f"the population shifted: {info.shift}",
                      from_version=info.parent_version, to_version=info.version,
                      batch_id=info.batch_id)


def _refused(home: Home, info: VersionInfo) -> None:
    verdict = info.gate
    logger.warning("version {} is not served: {}", info.version, verdict["reason"])
    home.audit.record("refused_promotion", reason=verdict["reason"],
                      from_version=verdict["served_version"], to_version=info.version,
                      batch_id=info.batch_id, candidate_mse=verdict["candidate"]["mse"],
                      served_mse=verdict["served"]["mse"], batch_left_out=not info.lineage)
