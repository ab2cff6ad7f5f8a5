"""Version metadata, typed: old files still load, the stored JSON keeps its keys, walks skip
what cannot be read."""

import json

import pytest

from app.data.generator import generate
from app.models.regressor import IncrementalRidge
from app.models.versions import VersionInfo

# Metadata as a train step wrote it before it was typed (version 1 of a lineage).
WRITTEN_BEFORE = {
    "version": 1, "created_at": "2026-01-01T00:00:00.000+00:00", "kind": "champion",
    "batch_id": "b1", "batch_ids": ["b1"], "n_batch": 500, "drift": False,
    "population_shift": False, "suspect": False, "drift_confirmed": None,
    "parent_version": None, "window_start_seq": None, "lineage": True,
    "gate": {"passed": True}, "metrics": {"prequential": None, "holdout": None},
    "n_samples_seen": 500, "artifact": "v000000001-0123456789abcdef.json",
    "format": "incremental-ridge/2", "sha256": "0" * 64, "size_bytes": 10,
    "estimator": "app.models.regressor.IncrementalRidge", "params": {"alpha": 1.0},
    "python": "3.12.0", "libraries": {"numpy": "2.0.0"},
}


def test_a_file_from_before_reads_and_writes_back_the_same():
    assert VersionInfo.from_dict(WRITTEN_BEFORE).to_dict() == WRITTEN_BEFORE


def test_missing_or_null_keys_take_the_defaults_and_unknown_keys_are_kept():
    info = VersionInfo.from_dict({"version": 7, "batch_ids": None, "gate": None,
                                  "written_by_a_newer_release": 1})
    assert (info.kind, info.batch_ids, info.lineage, info.on_lineage, info.gate_passed,
            info.prequential, info.batch_status) == ("champion", [], True, True, True, None,
                                                     "trained")
    assert info.to_dict()["written_by_a_newer_release"] == 1
    assert "forgot" not in info.to_dict() and "contest" not in info.to_dict()


def test_a_challenger_or_a_refused_batch_is_off_the_lineage():
    assert not VersionInfo(1, kind="challenger").on_lineage
    refused = VersionInfo(2, lineage=False, gate={"passed": False})
    assert not refused.on_lineage and refused.batch_status == "refused"
    assert not refused.gate_passed


def test_publish_refuses_a_field_version_info_does_not_have(registry):
    batch = generate(100, seed=1)
    model = IncrementalRidge().partial_fit(batch, batch["salario"])
    with pytest.raises(TypeError):
        registry.publish(model, 1, batch_id="b1", no_such_field=True)
    assert registry.latest_version() is None
    assert registry.storage.list("models/artifacts") == []


def test_the_walks_skip_unreadable_versions_and_stop_at_a_window(registry):
    batch = generate(100, seed=1)
    model = IncrementalRidge().partial_fit(batch, batch["salario"])
    registry.publish(model, 1, batch_id="b1", batch_ids=["b1"])
    registry.publish(model, 2, batch_id="b2", batch_ids=["b2"], parent_version=1)
    registry.publish(model, 3, batch_id="b3", batch_ids=["b3"], parent_version=2,
                     window_start_seq=3)
    registry.publish(model, 4, batch_id="b4", batch_ids=["b4"], parent_version=3,
                     window_start_seq=3)
    registry.storage.write_bytes(registry.journal.key(2), b"not json")
    assert [info.version for info in registry.down()] == [4, 3, 1]
    assert [info.version for info in registry.down(4, 2)] == [4, 3]
    assert [info.version for info in registry.lineage(registry.metadata(4))] == [4, 3]
    assert json.loads(registry.storage.read_bytes(registry.journal.key(4)))["parent_version"] == 3
