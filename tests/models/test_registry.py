import json
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from app.data.generator import generate
from app.models.registry import CorruptModel, VersionNotFound
from app.models.regressor import SalaryRegressor


def trained(seed=1, n=500):
    batch = generate(n, seed=seed)
    return SalaryRegressor().partial_fit(batch, batch["salario"])


def save(registry, model, batch_id="b1", parent=None):
    return registry.save(model, batch_id=batch_id, parent_version=parent, metrics={"x": 1.0},
                         n_batch=500)


def test_empty_registry_has_no_versions(registry):
    assert registry.versions() == [] and registry.latest_version() is None
    with pytest.raises(VersionNotFound, match="no model has been trained yet"):
        registry.load()


def test_saved_versions_count_up_and_load_back_identical(registry):
    first, second = trained(1), trained(2)
    assert save(registry, first)["version"] == 1
    assert save(registry, second, "b2", parent=1)["version"] == 2
    loaded = registry.load()
    assert loaded.version == 2 and registry.marked_version() == 2
    probe = generate(50, seed=9)
    assert (loaded.model.predict(probe) == second.predict(probe)).all()
    assert (registry.load(1).model.predict(probe) == first.predict(probe)).all()


def test_metadata_records_lineage_versions_and_checksum(registry):
    import hashlib

    metadata = save(registry, trained(), "batch-7")
    on_disk = json.loads((registry.root / "v000001.json").read_text())
    assert on_disk == metadata
    assert metadata["batch_id"] == "batch-7" and metadata["n_samples_seen"] == 500
    assert metadata["sha256"] == hashlib.sha256(
        (registry.root / metadata["artifact"]).read_bytes()).hexdigest()
    assert {"scikit-learn", "numpy", "pandas", "joblib"} <= set(metadata["libraries"])
    assert metadata["python"] and metadata["created_at"].endswith("+00:00")
    assert [m["version"] for m in registry.list()] == [1]


def test_a_tampered_artifact_is_refused(registry):
    metadata = save(registry, trained())
    artifact = registry.root / metadata["artifact"]
    artifact.write_bytes(artifact.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(CorruptModel, match="sha256"):
        registry.load()


def test_a_missing_artifact_is_refused(registry):
    metadata = save(registry, trained())
    (registry.root / metadata["artifact"]).unlink()
    with pytest.raises(CorruptModel, match="missing"):
        registry.load(1)


def test_unknown_version_is_not_found(registry):
    save(registry, trained())
    with pytest.raises(VersionNotFound, match="version 5 does not exist"):
        registry.load(5)


def test_batch_record_says_which_version_trained_it(registry):
    save(registry, trained(), "b1")
    save(registry, trained(2), "b2", parent=1)
    assert registry.version_for_batch("b1") == 1
    assert registry.version_for_batch("b2") == 2
    assert registry.version_for_batch("b3") is None


def test_an_unrecorded_batch_of_the_newest_version_is_recovered(registry):
    """A crash between commit and batch record must not let the batch train again."""
    save(registry, trained(), "b1")
    (registry.root / "batches" / "b1").unlink()
    assert registry.version_for_batch("b1") == 1
    assert (registry.root / "batches" / "b1").read_text() == "1"


def test_two_writers_cannot_both_create_one_version(registry, monkeypatch):
    save(registry, trained(), "b1")
    monkeypatch.setattr(registry, "_next_version", lambda: 1)
    with pytest.raises(FileExistsError):
        save(registry, trained(2), "b2")
    assert registry.load(1).metadata["batch_id"] == "b1"


# A child process saves a version and is killed at the k-th fsync of the save: every step of
# the save (artifact, metadata, batch record, marker, and the folder syncs between) is cut
# once. The registry must load after each cut, and the next save must succeed.
CRASHING_SAVE = textwrap.dedent("""
    import os, signal, sys
    from app.data.generator import generate
    from app.models.registry import ModelRegistry
    from app.models.regressor import SalaryRegressor

    root, batch_id, kill_at = sys.argv[1], sys.argv[2], int(sys.argv[3])
    registry = ModelRegistry(root)
    parent = registry.load()
    batch = generate(300, seed=len(batch_id))
    model = parent.model.partial_fit(batch, batch["salario"])
    calls = 0
    real_fsync = os.fsync
    def fsync(fd):
        global calls
        calls += 1
        if calls == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        real_fsync(fd)
    os.fsync = fsync
    registry.save(model, batch_id=batch_id, parent_version=parent.version, metrics={},
                  n_batch=len(batch))
    print(calls)
""")


def run_save(root, batch_id, kill_at):
    return subprocess.run([sys.executable, "-c", CRASHING_SAVE, str(root), batch_id,
                           str(kill_at)], capture_output=True, text=True, timeout=60)


def test_a_process_killed_at_any_point_of_a_save_leaves_the_registry_loadable(registry):
    save(registry, trained(), "base")
    finished = run_save(registry.root, "probe", kill_at=0)
    assert finished.returncode == 0, finished.stderr
    fsyncs_per_save = int(finished.stdout)
    assert fsyncs_per_save >= 4

    for kill_at in range(1, fsyncs_per_save + 1):
        before = registry.latest_version()
        killed = run_save(registry.root, f"cut-{kill_at}", kill_at)
        assert killed.returncode == -signal.SIGKILL, killed.stderr
        loaded = registry.load()
        assert loaded.version in (before, before + 1)
        # The batch that was cut is either trained (recorded) or not: never half.
        assert registry.version_for_batch(f"cut-{kill_at}") in (None, before + 1)

    after = run_save(registry.root, "after", kill_at=0)
    assert after.returncode == 0, after.stderr
    assert registry.load().metadata["batch_id"] == "after"
    leftovers = [p.name for p in registry.root.rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == [], "the next save clears what crashed saves left behind"


def test_a_process_killed_at_random_moments_while_saving_leaves_the_registry_loadable(registry):
    save(registry, trained(), "base")
    loop = textwrap.dedent("""
        import sys
        from app.models.registry import ModelRegistry
        registry = ModelRegistry(sys.argv[1])
        registry.load()
        print("ready", flush=True)
        i = 0
        while True:
            parent = registry.load()
            registry.save(parent.model, batch_id=f"loop-{parent.version}-{i}",
                          parent_version=parent.version, metrics={}, n_batch=0)
            i += 1
    """)
    for delay in (0.05, 0.13, 0.21, 0.34, 0.55):
        child = subprocess.Popen([sys.executable, "-c", loop, str(registry.root)],
                                 stdout=subprocess.PIPE, text=True)
        assert child.stdout.readline() == "ready\n"
        time.sleep(delay)
        child.send_signal(signal.SIGKILL)
        child.wait()
        assert registry.load().version == registry.latest_version()
    assert registry.latest_version() > 5
