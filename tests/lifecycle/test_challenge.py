"""The challenger: refit on a recent window, saved with skops, served only when it is better."""

import os

import numpy as np
import pytest
import skops.io
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from app.data.batches import normalize_batch, receive_batch
from app.data.generator import generate
from app.lifecycle import challenge
from app.lifecycle.challenge import WINDOW_BATCHES, contest, due
from app.lifecycle.learning import Learner
from app.models.challenger import ChallengerRegressor, load_skops


def arrive(home, learner, batch_id, frame):
    receive_batch(home.lake, home.ledger, batch_id, frame, source="ingest")
    normalize_batch(home.lake, home.ledger, batch_id, home.dataset)
    return learner.train([batch_id])


def not_additive(batch_id, seed, n=1500):
    """A world the linear champion cannot represent: pay jumps only for older paulistas."""
    frame = generate(n, seed=seed, batch_id=batch_id)
    rng = np.random.default_rng(seed)
    older_paulista = (frame["idade"] > 45).to_numpy() & (frame["cidade"] == "São Paulo").to_numpy()
    frame["salario"] = np.round(3000 + 9000 * older_paulista + rng.normal(0, 300, n), 2)
    return frame


def test_contests_are_due_every_k_batches():
    assert due([10]) and due([9, 10, 11]) and not due([11, 12])


def test_a_challenger_that_is_no_better_is_published_but_the_champion_stays_served(home):
    learner = Learner(home)
    for i in range(1, 5):
        arrive(home, learner, f"b{i}", generate(1500, seed=i, batch_id=f"b{i}"))
    champion = home.serving.state().version
    metadata = contest(learner)
    assert metadata.kind == "challenger" and metadata.format == "skops"
    assert metadata.window_batch_ids == ["b1", "b2", "b3", "b4"] and metadata.batch_ids == []
    scores = metadata.contest
    assert scores["champion_version"] == champion and scores["winner"] == "champion"
    assert {"mse", "mae", "r2"} <= set(scores["champion"]) and {"mse", "r2"} <= set(scores["challenger"])
    assert metadata.gate["passed"] is False
    assert home.serving.state().version == champion
    assert home.audit.page(action="challenger_served")["events"] == []
    # The same contest again (two steps in a row found it due): nothing new to publish.
    assert contest(learner) is None and home.registry.latest_version() == metadata.version
    loaded = home.registry.load(metadata.version)
    assert isinstance(loaded.model, ChallengerRegressor)
    # Outside the lineage: the next batch builds on the champion, and the ledger is untouched.
    outcome = arrive(home, learner, "b5", generate(1500, seed=5, batch_id="b5"))
    assert home.registry.metadata(outcome.version).parent_version == champion
    assert home.serving.state().version == outcome.version


def test_a_challenger_better_beyond_chance_is_served_and_shown_with_both_scores(home):
    learner = Learner(home)
    for i in range(1, WINDOW_BATCHES + 3):
        arrive(home, learner, f"w{i}", not_additive(f"w{i}", seed=i))
    champion = home.serving.state().version
    metadata = contest(learner)
    scores = metadata.contest
    assert scores["winner"] == "challenger", scores
    assert scores["challenger"]["mse"] < scores["champion"]["mse"]
    assert metadata.window_batch_ids == [f"w{i}" for i in range(3, WINDOW_BATCHES + 3)]
    assert home.serving.state().version == metadata.version != champion
    [event] = home.audit.page(action="challenger_served")["events"]
    assert (event["from_version"], event["to_version"]) == (champion, metadata.version)
    assert event["reason"].endswith("the challenger is better beyond chance and is served")
    served = home.registry.load(metadata.version).model
    assert served.predict_records([{"idade": 60, "cidade": "São Paulo", "cargo": "Médico"}])[0] > 9000


def test_a_window_of_big_batches_is_fit_on_a_sample_of_it(home, monkeypatch):
    # Bulk batches of 100,000 rows make a window of a million; the trees take a bounded share.
    monkeypatch.setattr(challenge, "MAX_CHALLENGER_ROWS", 2000)
    learner = Learner(home)
    for i in range(1, 4):
        arrive(home, learner, f"b{i}", generate(1500, seed=i, batch_id=f"b{i}"))
    metadata = contest(learner)
    assert metadata.window_batch_ids == ["b1", "b2", "b3"]
    assert home.registry.load(metadata.version).model.n_samples_seen_ == 2000


def test_a_skops_file_with_a_type_not_trusted_is_refused():
    frame = generate(300, seed=1)
    trusted = skops.io.dumps(ChallengerRegressor(max_iter=5).fit(frame, frame["salario"]))
    assert load_skops(trusted).n_samples_seen_ == 300
    hostile = skops.io.dumps(make_pipeline(FunctionTransformer(os.system)))
    with pytest.raises(ValueError, match="does not trust.*system"):
        load_skops(hostile)
