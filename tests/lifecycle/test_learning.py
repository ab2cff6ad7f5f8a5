"""Train and forget steps over a real storage: exact, idempotent, gated, audited."""

import signal
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pandas as pd
import pytest

from app.data.generator import generate
from app.lifecycle.home import Home
from app.lifecycle.learning import ForgetError, Learner, NothingToLearn
from app.models.regressor import IncrementalRidge
from app.models.stats import SufficientStats
from tests.support import arrive, salaries_times_100

PROBE = generate(500, seed=424242)


def fresh_fit(home, batch_ids):
    """A model trained from scratch on the training rows of ``batch_ids``."""
    rows = pd.concat([home.lake.read("normalized", b) for b in batch_ids], ignore_index=True)
    return IncrementalRidge().fit(rows, rows["salario"])


def assert_same_model(actual, expected):
    np.testing.assert_allclose(actual.predict(PROBE), expected.predict(PROBE), rtol=1e-9)
    assert actual.n_samples_seen_ == expected.n_samples_seen_


@pytest.fixture
def learner(home):
    return Learner(home)


def test_the_first_batch_makes_version_one_and_it_is_served(home, learner):
    batch = arrive(home, "b1", seed=1)
    outcome = learner.train(["b1"])
    assert outcome.trained and outcome.version == 1
    metadata = home.registry.metadata(1)
    assert metadata.batch_id == "b1" and metadata.metrics["prequential"] is None
    assert metadata.n_samples_seen == batch["clean"] - batch["holdout"] == metadata.n_batch
    assert home.ledger.get("b1")["status"] == "trained" and home.ledger.get("b1")["version"] == 1
    assert home.serving.state().version == 1


def test_versions_are_exactly_the_batch_fit_of_everything_learnt(home, learner):
    ids = [f"b{i}" for i in range(1, 6)]
    for i, batch_id in enumerate(ids):
        arrive(home, batch_id, seed=i, n=400 + 300 * i)
        learner.train([batch_id])
    assert home.registry.latest_version() == 5
    assert_same_model(home.registry.load(5).model, fresh_fit(home, ids))
    prequential = home.registry.metadata(5).metrics["prequential"]
    assert {"mse", "mae", "r2"} <= set(prequential)


def test_a_backlog_is_learnt_in_one_step(home, learner):
    ids = ["b1", "b2", "b3"]
    for i, batch_id in enumerate(ids):
        arrive(home, batch_id, seed=i)
    outcome = learner.train(["b2", "b1", "b3"])
    assert outcome.version == 1 and outcome.batch_ids == ids
    assert home.registry.metadata(1).batch_ids == ids
    assert all(home.ledger.get(b)["version"] == 1 for b in ids)
    assert_same_model(home.registry.load(1).model, fresh_fit(home, ids))


def test_the_log_line_of_a_version_names_its_own_batch(home, learner):
    """A step run by the task of a batch learnt already (a step before took it along) learns
    the batches waiting since: its line names them, not the task's batch."""
    from loguru import logger

    arrive(home, "b1", seed=1)
    learner.train(["b1"])
    arrive(home, "b2", seed=2)
    lines = []
    sink = logger.add(lambda message: lines.append(message.record), level="INFO")
    try:
        with logger.contextualize(batch_id="b1"):
            assert learner.train(["b1", "b2"]).version == 2
    finally:
        logger.remove(sink)
    [line] = [r for r in lines if r["message"].startswith("version 2 learnt")]
    assert line["extra"]["batch_id"] == "b2"


def test_a_batch_trained_again_makes_no_version(home, learner):
    arrive(home, "b1", seed=1)
    learner.train(["b1"])
    again = learner.train(["b1"])
    assert not again.trained and again.version == 1 and home.registry.latest_version() == 1


def test_a_batch_without_clean_rows_says_why(home, learner):
    bad = generate(30, seed=1, batch_id="bad").astype({"idade": object})
    bad["idade"] = 7
    assert arrive(home, "bad", bad)["status"] == "empty"
    with pytest.raises(NothingToLearn, match="idade out of range"):
        learner.train(["bad"])
    assert home.registry.latest_version() is None


def test_the_gate_refuses_a_unit_error_and_later_versions_leave_it_out(home, learner):
    for i in range(1, 4):
        arrive(home, f"b{i}", seed=i)
        learner.train([f"b{i}"])
    served = home.serving.state().version
    before = home.registry.load(served).model.predict_records([PROBE.iloc[0].to_dict()])

    arrive(home, "x100", salaries_times_100("x100", 99))
    refused = learner.train(["x100"])
    verdict = home.registry.metadata(refused.version).gate
    assert verdict["passed"] is False and verdict["candidate"]["mse"] > 10 * verdict["served"]["mse"]
    assert home.serving.state().version == served
    assert home.ledger.get("x100")["status"] == "refused"
    event = home.audit.page(action="refused_promotion")["events"][0]
    assert event["to_version"] == refused.version and event["from_version"] == served
    assert event["candidate_mse"] > event["served_mse"]

    arrive(home, "b4", seed=4)
    after = learner.train(["b4"])
    assert home.serving.state().version == after.version
    assert_same_model(home.registry.load(after.version).model,
                      fresh_fit(home, ["b1", "b2", "b3", "b4"]))
    now = home.registry.load(after.version).model.predict_records([PROBE.iloc[0].to_dict()])
    assert now[0] == pytest.approx(before[0], rel=0.05)


def test_pin_holds_while_versions_arrive_then_rollback_and_follow(home, learner):
    for i in range(1, 4):
        arrive(home, f"b{i}", seed=i)
        learner.train([f"b{i}"])
    serving = home.serving
    assert serving.pin(2, reason="incident 42", by="ana").to_json()["version"] == 2
    arrive(home, "b4", seed=4)
    learner.train(["b4"])
    state = serving.state()
    assert (state.version, state.mode, state.reason, state.by) == (2, "pinned", "incident 42", "ana")
    assert serving.rollback(reason="back one more", by="ana").version == 1
    assert serving.follow(reason="fixed", by="bob").version == 4
    actions = [(e["action"], e["from_version"], e["to_version"], e["by"])
               for e in home.audit.page()["events"]]
    assert actions == [("follow", 1, 4, "bob"), ("rollback", 2, 1, "ana"), ("pin", 3, 2, "ana")]


def test_forgetting_a_batch_equals_training_without_it(home, learner):
    ids = [f"b{i}" for i in range(1, 6)]
    for i, batch_id in enumerate(ids):
        arrive(home, batch_id, seed=10 + i, n=700)
        learner.train([batch_id])
    entry = learner.forget("b3", reason="deletion request 7", by="dpo")
    version = entry["forgotten"]["version"]
    assert version == 6 and home.serving.state().version == 6
    others = ["b1", "b2", "b4", "b5"]
    expected = fresh_fit(home, others)
    forgot = home.registry.load(version).model
    assert_same_model(forgot, expected)
    np.testing.assert_allclose(forgot.coef_, expected.coef_, rtol=1e-9, atol=1e-9 * abs(expected.coef_).max())
    assert entry["status"] == "forgotten" and entry["forgotten"]["reason"] == "deletion request 7"
    assert not any(home.lake.exists(stage, "b3") for stage in ("raw", "normalized", "holdout"))
    event = home.audit.page(action="forget")["events"][0]
    assert (event["batch_id"], event["to_version"], event["by"]) == ("b3", 6, "dpo")
    # A later batch builds on the model without it.
    arrive(home, "b6", seed=16, n=700)
    learner.train(["b6"])
    assert_same_model(home.registry.load(7).model, fresh_fit(home, others + ["b6"]))


def test_the_same_records_give_the_same_model_on_any_system(tmp_path):
    """Held-out rows are chosen by their content, not by the batch they came in: a system that
    learnt A and C, and another that learnt A, B and C and forgot B, have the same model."""
    records = {name: generate(800, seed=seed, batch_id=name)
               for name, seed in (("a", 31), ("b", 32), ("c", 33))}
    one, other = Home(str(tmp_path / "one")), Home(str(tmp_path / "other"))
    for home, names in ((one, "ac"), (other, "abc")):
        learner = Learner(home)
        for name in names:
            # Different batch ids on each system, the same rows.
            arrive(home, f"{home.url[-3:]}-{name}", frame=records[name].assign(
                geracao_id=f"{home.url[-3:]}-{name}"))
            learner.train([f"{home.url[-3:]}-{name}"])
    Learner(other).forget("her-b", reason="the other system never had it", by="test")
    test = generate(3000, seed=34)
    first = one.registry.load(one.registry.latest_version()).model
    second = other.registry.load(other.registry.latest_version()).model
    assert first.n_samples_seen_ == second.n_samples_seen_
    np.testing.assert_allclose(first.predict(test), second.predict(test), rtol=1e-9)


def test_forgetting_a_category_s_only_batch_removes_the_category(home, learner):
    arrive(home, "b1", seed=1)
    learner.train(["b1"])
    lonely = generate(300, seed=2, batch_id="lonely").astype({"cidade": object})
    lonely["cidade"] = "Cidade Nova"
    arrive(home, "lonely", lonely)
    learner.train(["lonely"])
    assert "Cidade Nova" in home.registry.load(2).model.categories_["cidade"]
    learner.forget("lonely", reason="wrong city", by="ops")
    model = home.registry.load(3).model
    assert "Cidade Nova" not in model.categories_["cidade"]
    assert_same_model(model, fresh_fit(home, ["b1"]))


def test_forgetting_needs_a_reason_and_a_pinned_version_is_reported(home, learner):
    for i in range(1, 3):
        arrive(home, f"b{i}", seed=i)
        learner.train([f"b{i}"])
    with pytest.raises(ForgetError, match="reason is required"):
        learner.forget("b2", reason=" ", by="ops")
    home.serving.pin(2, reason="hold", by="ops")
    learner.forget("b2", reason="bad export", by="ops")
    assert home.serving.state().version == 2  # still pinned: an operator decides
    assert "pinned version 2 learnt from it" in home.audit.page(action="forget")["events"][0]["reason"]


def test_forgetting_a_batch_not_trained_yet_only_deletes_it(home, learner):
    arrive(home, "b1", seed=1)
    learner.train(["b1"])
    arrive(home, "b2", seed=2)
    entry = learner.forget("b2", reason="sent by mistake", by="ops")
    assert entry["forgotten"]["version"] is None and home.registry.latest_version() == 1
    with pytest.raises(NothingToLearn, match="forgotten"):
        learner.train(["b2"])


def test_retention_prunes_old_artifacts_but_never_the_pinned_or_served(home):
    learner = Learner(home, keep_versions=2)
    arrive(home, "b1", seed=1)
    learner.train(["b1"])
    home.serving.pin(1, reason="keep", by="ops")
    for i in range(2, 7):
        arrive(home, f"b{i}", seed=i)
        learner.train([f"b{i}"])
    kept = [v for v in range(1, 7) if home.storage.exists(
        f"models/artifacts/{home.registry.metadata(v).artifact}")]
    assert kept == [1, 5, 6]
    assert [m.version for m in home.registry.list()] == [6, 5, 4, 3, 2, 1]


def test_lake_rows_of_old_batches_are_dropped_but_their_statistics_stay(home):
    learner = Learner(home, keep_batches=2)
    for i in range(1, 5):
        arrive(home, f"b{i}", seed=i)
        learner.train([f"b{i}"])
    assert [home.lake.exists("normalized", f"b{i}") for i in range(1, 5)] == [False, False, True, True]
    assert SufficientStats.from_npz(home.ledger.read_stats("b1")).n > 0
    learner.forget("b1", reason="still exact", by="ops")
    assert home.registry.load().model.n_samples_seen_ == sum(
        home.ledger.get(f"b{i}")["clean"] - home.ledger.get(f"b{i}")["holdout"] for i in range(2, 5))


def test_two_learners_racing_lose_no_batch_and_train_none_twice(home):
    """Two workers (no lock between them) publish with optimistic concurrency."""
    ids = [f"b{i}" for i in range(12)]
    for i, batch_id in enumerate(ids):
        arrive(home, batch_id, seed=i, n=300)
    errors = []

    def work(learner, mine):
        try:
            for batch_id in mine:
                learner.train([batch_id])
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(Learner(Home(home.storage)), ids[k::2]))
               for k in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    versions = home.registry.list()[::-1]
    assert [m.version for m in versions] == list(range(1, len(versions) + 1))
    learnt = [b for m in versions for b in m.batch_ids]
    assert sorted(learnt) == sorted(ids)
    assert_same_model(home.registry.load().model, fresh_fit(home, ids))


CRASHING_STEP = textwrap.dedent("""
    import os, signal, sys
    from app.lifecycle.home import Home
    from app.lifecycle.learning import Learner

    root, batch_id, kill_at = sys.argv[1], sys.argv[2], int(sys.argv[3])
    learner = Learner(Home(root))
    calls = 0
    real_fsync = os.fsync
    def fsync(fd):
        global calls
        calls += 1
        if calls == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        real_fsync(fd)
    os.fsync = fsync
    learner.train([batch_id])
    print(calls)
""")


def run_step(home, batch_id, kill_at):
    return subprocess.run([sys.executable, "-c", CRASHING_STEP, home.storage.url, batch_id,
                           str(kill_at)], capture_output=True, text=True, timeout=60)


def test_a_step_killed_at_any_write_leaves_everything_loadable_and_learns_once(local_home):
    """Locally, a step is a series of fsync+rename writes: cut it after each one."""
    home, learner = local_home, Learner(local_home)
    arrive(home, "base", seed=1)
    learner.train(["base"])
    arrive(home, "probe", seed=2)
    finished = run_step(home, "probe", kill_at=0)
    assert finished.returncode == 0, finished.stderr
    writes = int(finished.stdout)
    assert writes >= 6

    learnt = ["base", "probe"]
    for kill_at in range(1, writes + 1):
        batch_id = f"cut-{kill_at}"
        arrive(home, batch_id, seed=100 + kill_at, n=300)
        killed = run_step(home, batch_id, kill_at)
        assert killed.returncode == -signal.SIGKILL, killed.stderr
        assert home.registry.load().version == home.registry.latest_version()
        home.ledger.get(batch_id)  # loadable, whatever it says
        # Running the step again (the message redelivered) learns the batch exactly once.
        Learner(Home(home.storage.url)).train([batch_id])
        learnt.append(batch_id)
        assert home.ledger.get(batch_id)["status"] == "trained"
        assert_same_model(home.registry.load().model, fresh_fit(home, learnt))
    home.sweep(older_than=0)
    leftovers = [p for p in home.storage.root.rglob(".*.tmp")]
    assert leftovers == []
