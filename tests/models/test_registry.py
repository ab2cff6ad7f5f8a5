"""The registry: versions published atomically, numbered without gaps, loaded without pickle."""

import hashlib
import json
import os
import pickle

import pytest

from app.data.generator import generate
from app.models.registry import CorruptModel, VersionNotFound, VersionTaken
from app.models.regressor import IncrementalRidge


def trained(seed=1, n=500):
    batch = generate(n, seed=seed)
    return IncrementalRidge().partial_fit(batch, batch["salario"])


def publish(registry, model, batch_id="b1"):
    version = (registry.latest_version() or 0) + 1
    return registry.publish(model, version, batch_id=batch_id, batch_ids=[batch_id],
                            n_batch=500, metrics={"x": 1.0})


def test_empty_registry_has_no_versions(registry):
    assert registry.latest_version() is None and registry.list() == []
    with pytest.raises(VersionNotFound, match="no model has been trained yet"):
        registry.load()


def test_published_versions_count_up_and_load_back_identical(registry):
    first, second = trained(1), trained(2)
    assert publish(registry, first).version == 1
    assert publish(registry, second, "b2").version == 2
    loaded = registry.load()
    assert loaded.version == 2 and registry.latest_version() == 2
    probe = generate(50, seed=9)
    assert (loaded.model.predict(probe) == second.predict(probe)).all()
    assert (registry.load(1).model.predict(probe) == first.predict(probe)).all()


def test_metadata_records_lineage_libraries_and_checksum(registry):
    metadata = publish(registry, trained(), "batch-7")
    assert registry.metadata(1) == metadata
    assert metadata.batch_id == "batch-7" and metadata.n_samples_seen == 500
    payload = registry.storage.read_bytes(f"models/artifacts/{metadata.artifact}")
    assert metadata.sha256 == hashlib.sha256(payload).hexdigest()
    assert metadata.format == "incremental-ridge/2"
    assert {"scikit-learn", "numpy", "pandas"} <= set(metadata.libraries)
    assert metadata.python and metadata.created_at.endswith("+00:00")
    assert [m.version for m in registry.list()] == [1]


def test_the_artifact_is_json_numbers_not_a_pickle(registry):
    metadata = publish(registry, trained())
    document = json.loads(registry.storage.read_bytes(f"models/artifacts/{metadata.artifact}"))
    assert document["format"] == "incremental-ridge/2" and document["stats"]["n"] == 500


def test_a_tampered_artifact_is_refused(registry):
    metadata = publish(registry, trained())
    key = f"models/artifacts/{metadata.artifact}"
    registry.storage.write_bytes(key, registry.storage.read_bytes(key)[:-10] + b"0123456789")
    with pytest.raises(CorruptModel, match="sha256"):
        registry.load()


def test_a_missing_artifact_is_refused(registry):
    metadata = publish(registry, trained())
    registry.storage.delete(f"models/artifacts/{metadata.artifact}")
    with pytest.raises(CorruptModel, match="missing"):
        registry.load(1)


def test_a_pickle_with_a_matching_checksum_is_never_unpickled(registry, tmp_path, monkeypatch):
    """An attacker who can write the folder rewrites the checksum too: the format must refuse."""
    marker = tmp_path / "code-ran"

    class RunsCode:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    metadata = publish(registry, trained())
    payload = pickle.dumps(RunsCode())
    registry.storage.write_bytes(f"models/artifacts/{metadata.artifact}", payload)
    tampered = {**metadata.to_dict(), "sha256": hashlib.sha256(payload).hexdigest()}
    registry.storage.write_json(registry.journal.key(1), tampered)
    with pytest.raises(CorruptModel, match="not a model this code loads"):
        registry.load(1)
    assert not marker.exists()
    # Even a metadata that claims skops gets no further: skops refuses untrusted types.
    registry.storage.write_json(registry.journal.key(1), {**tampered, "format": "skops"})
    with pytest.raises(CorruptModel):
        registry.load(1)
    assert not marker.exists()


def test_unknown_version_is_not_found(registry):
    publish(registry, trained())
    with pytest.raises(VersionNotFound, match="version 5 does not exist"):
        registry.load(5)


def test_two_writers_cannot_both_publish_one_version(registry):
    publish(registry, trained(), "b1")
    with pytest.raises(VersionTaken):
        registry.publish(trained(2), 1, batch_id="b2", batch_ids=["b2"])
    assert registry.load(1).metadata.batch_id == "b1"
    # The loser's artifact is not left behind.
    assert len(registry.storage.list("models/artifacts")) == 1


def test_listing_reads_by_number_and_stops_at_the_limit(registry):
    for seed in range(1, 6):
        publish(registry, trained(seed), f"b{seed}")
    assert [m.version for m in registry.list(limit=2)] == [5, 4]
    assert [m.version for m in registry.newest_first(before=3)] == [2, 1]


def test_a_lagging_head_hint_still_finds_the_newest_version(registry):
    publish(registry, trained(1), "b1")
    publish(registry, trained(2), "b2")
    registry.storage.write_bytes(registry.marker_key, b"1")
    assert registry.latest_version() == 2


def test_sweep_removes_artifacts_no_version_names_and_temporary_files(local_home):
    registry = local_home.registry
    publish(registry, trained(1), "b1")
    registry.storage.write_bytes("models/artifacts/v000000001-orphan.json", b"{}")
    temp = registry.storage.local_path("models/versions") / ".000000009.json.1234.tmp"
    temp.write_text("half")
    publish(registry, trained(2), "b2")
    assert registry.sweep() == 1
    assert registry.storage.sweep_temporaries("models", older_than=0) == 1
    assert not temp.exists()
    assert registry.load(1).version == 1 and registry.load(2).version == 2


def test_pruning_keeps_the_metadata(registry):
    publish(registry, trained(1), "b1")
    publish(registry, trained(2), "b2")
    assert registry.prune_artifact(1) is True
    assert registry.metadata(1).batch_id == "b1"
    with pytest.raises(CorruptModel, match="pruned"):
        registry.load(1)
    assert registry.prune_artifact(1) is False
