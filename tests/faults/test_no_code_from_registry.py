"""Scenario 8: nothing in the models folder can make the pipeline run code.

The attacker here can write to ``PIPELINE_HOME``: they replace a version's artifact with a
pickle that writes a marker file when loaded, and rewrite its metadata and checksum to match.
A checksum cannot stop that; the format does: an artifact is JSON numbers or a skops file
loaded with an explicit list of trusted types, and the ledger's statistics are ``.npz``
arrays read with ``allow_pickle=False``. Whatever the metadata claims the format to be, the
pickle is never loaded, the web app keeps serving the last good version, and training goes
on, rebuilding what the broken version had learnt from the ledger's per-batch statistics.

Each test fails without its protection: decoding an artifact with ``pickle.loads`` (or
``joblib.load``) creates the marker; ``np.load(..., allow_pickle=True)`` does too; without the
rebuild in ``Lineage.load_or_rebuild`` the train step after a tampered version fails.
"""

from __future__ import annotations

import hashlib
import io
import pickle

import numpy as np
import pytest

from app.data.batches import normalize_batch, receive_batch
from app.data.generator import generate
from app.dataset import builtin
from app.lifecycle.home import Home
from app.lifecycle.learning import Learner
from app.models.registry import CorruptModel
from app.models.regressor import FORMAT as LINEAR_FORMAT, IncrementalRidge
from app.models.stats import Design, SufficientStats

PROBE = {"idade": 35, "cidade": "São Paulo", "cargo": "Professor"}


class WritesMarker:
    """Unpickling this creates ``path``: proof that code from the file ran."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


@pytest.fixture
def marker(tmp_path):
    path = tmp_path / "code-ran"
    yield path
    assert not path.exists(), "code planted in PIPELINE_HOME ran"


def replace_artifact(home: Home, version: int, payload: bytes, format_: str | None = None) -> None:
    """Overwrite ``version``'s artifact and rewrite its metadata to match, as an attacker with
    write access to the folder would."""
    registry = home.registry
    metadata = registry.metadata(version).to_dict()
    home.storage.write_bytes(f"models/artifacts/{metadata['artifact']}", payload)
    metadata.update(sha256=hashlib.sha256(payload).hexdigest(), size_bytes=len(payload))
    if format_ is not None:
        metadata["format"] = format_
    home.storage.write_json(registry.journal.key(version), metadata)


def arrive(home: Home, batch_id: str, seed: int) -> None:
    receive_batch(home.lake, home.ledger, batch_id, generate(400, seed=seed, batch_id=batch_id))
    normalize_batch(home.lake, home.ledger, batch_id, home.dataset)


def trained_home(tmp_path, batches: int = 2) -> Home:
    home = Home(str(tmp_path / "home"))
    learner = Learner(home)
    for number in range(1, batches + 1):
        arrive(home, f"b{number}", seed=number)
        assert learner.train([f"b{number}"]).version == number
    return home


def pickled(marker) -> bytes:
    return pickle.dumps(WritesMarker(marker))


@pytest.mark.parametrize("claimed", [LINEAR_FORMAT, "skops", "joblib", "pickle", None])
def test_a_planted_pickle_is_never_loaded_whatever_format_it_claims(tmp_path, marker, claimed):
    home = trained_home(tmp_path, batches=1)
    replace_artifact(home, 1, pickled(marker), claimed)
    with pytest.raises(CorruptModel, match="not a model this code loads"):
        home.registry.load(1)


def test_a_skops_file_whose_objects_would_run_code_is_refused(tmp_path, marker):
    """skops rebuilds an object of a type it does not know through ``__reduce__`` too, but
    only from a list of trusted types; this one is on none."""
    import skops.io

    home = trained_home(tmp_path, batches=1)
    replace_artifact(home, 1, skops.io.dumps({"model": WritesMarker(marker)}), "skops")
    with pytest.raises(CorruptModel, match="does not trust"):
        home.registry.load(1)


def test_batch_statistics_holding_a_pickle_are_refused(marker):
    """The ledger's ``.npz`` statistics: an object array would be a pickle inside."""
    batch = generate(100, seed=1)
    with np.load(io.BytesIO(SufficientStats.of(Design.of(builtin()), batch).to_npz())) as real:
        arrays = dict(real)
    arrays["category:cidade"] = np.array([WritesMarker(marker), "Recife"], dtype=object)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    with pytest.raises(ValueError, match="allow_pickle"):
        SufficientStats.from_npz(buffer.getvalue())


@pytest.mark.parametrize("damage", ["pickle", "truncated", "garbage"])
def test_the_web_app_keeps_serving_the_last_good_version_and_logs_the_refusal_once(
        tmp_path, marker, damage):
    from loguru import logger

    from app.web import create_app

    home = trained_home(tmp_path, batches=1)
    app = create_app({"TESTING": True, "CONFIGURE_LOGGING": False, "PIPELINE_HOME": home.url,
                      "MODEL_NOTICES": False, "MODEL_CHECK_INTERVAL": 0})
    client = app.test_client()
    assert client.post("/predict", json=PROBE).headers["X-Model-Version"] == "1"

    arrive(home, "b2", seed=2)
    Learner(home).train(["b2"])
    good = home.storage.read_bytes(f"models/artifacts/{home.registry.metadata(2).artifact}")
    payload = {"pickle": pickled(marker), "truncated": good[: len(good) // 2],
               "garbage": b"\x00\xff" * 64}[damage]
    replace_artifact(home, 2, payload)

    lines: list[str] = []
    sink = logger.add(lines.append, level="INFO", format="{message}")
    try:
        answers = [client.post("/predict", json=PROBE) for _ in range(20)]
    finally:
        logger.remove(sink)
    assert {a.status_code for a in answers} == {200}
    assert {a.headers["X-Model-Version"] for a in answers} == {"1"}
    assert 2 in client.get("/health").json["refused_versions"]
    refusals = [line for line in lines if "version 2" in line]
    assert len(refusals) == 1, lines


@pytest.mark.parametrize("damage", ["pickle", "truncated"])
def test_training_goes_on_after_a_tampered_version(tmp_path, marker, damage):
    """The next version learns everything, the broken version's batches included."""
    home = trained_home(tmp_path, batches=3)
    good = home.storage.read_bytes(f"models/artifacts/{home.registry.metadata(3).artifact}")
    replace_artifact(home, 3, pickled(marker) if damage == "pickle" else good[:-10])

    arrive(home, "b4", seed=4)
    outcome = Learner(home).train(["b4"])
    assert outcome.trained and outcome.version == 4
    model = home.registry.load(4).model
    rows = [home.lake.read("normalized", f"b{n}") for n in range(1, 5)]
    import pandas as pd

    everything = pd.concat(rows, ignore_index=True)
    expected = IncrementalRidge().fit(everything, everything["salario"])
    assert model.n_samples_seen_ == len(everything)
    sample = generate(200, seed=99)
    np.testing.assert_allclose(model.predict(sample), expected.predict(sample), rtol=1e-9)
