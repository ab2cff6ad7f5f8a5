"""The tasks on a real Redis and a real worker, as a user's client would call them."""

import logging

import pytest
from loguru import logger

from app.data.batches import receive_batch
from app.data.generator import generate
from app.tasks.pipeline import evaluate, forget, generate as generate_task, normalize, train
from tests.support import wait_for

pytestmark = pytest.mark.usefixtures("celery_worker")


def failure_of(async_result, timeout=30):
    with pytest.raises(Exception) as caught:
        async_result.get(timeout=timeout)
    assert async_result.state == "FAILURE"
    return str(caught.value)


def trained_version(home, batch_id):
    def version():
        batch = home.ledger.find(batch_id)
        return batch and batch["status"] == "trained" and batch["version"]
    return wait_for(version, what=f"batch {batch_id} trained")


def test_generate_chains_normalize_and_train_into_a_new_version(session_home):
    batch_id = generate_task.delay(batch_size=300).get(timeout=30)
    version = trained_version(session_home, batch_id)
    metadata = session_home.registry.metadata(version)
    batch = session_home.ledger.get(batch_id)
    assert batch_id in metadata.batch_ids
    assert (batch["source"], batch["rows"], batch["clean"], batch["quarantined"]) == (
        "generator", 300, 300, 0)
    raw = session_home.lake.read("raw", batch_id)
    assert len(raw) == 300 and (raw["geracao_id"] == batch_id).all()
    assert len(session_home.lake.read("normalized", batch_id)) == 300 - batch["holdout"]
    loaded = session_home.registry.load(version)
    assert loaded.model.n_samples_seen_ == metadata.n_samples_seen


def test_generate_uses_batch_size_setting_when_none_is_given(session_home):
    batch_id = generate_task.delay().get(timeout=30)
    trained_version(session_home, batch_id)
    assert session_home.ledger.get(batch_id)["rows"] == 1000  # BATCH_SIZE default


def test_a_batch_delivered_twice_is_trained_once(session_home):
    batch_id = generate_task.delay(batch_size=120).get(timeout=30)
    version = trained_version(session_home, batch_id)
    seen = session_home.registry.load().model.n_samples_seen_
    assert train.delay(batch_id).get(timeout=30) == version
    assert normalize.delay(batch_id).get(timeout=30) == batch_id
    assert session_home.registry.load().model.n_samples_seen_ == seen


def test_rejected_rows_are_quarantined_counted_and_the_rest_trained(session_home):
    records = generate(200, seed=8, batch_id="with-bad-rows").astype(
        {"cidade": object, "idade": object})
    records.loc[[3, 9], "idade"] = 150
    records.loc[10, "cidade"] = None
    receive_batch(session_home.lake, session_home.ledger, "with-bad-rows", records)
    version = (normalize.si("with-bad-rows") | train.si("with-bad-rows")).delay().get(timeout=30)
    quarantine = session_home.lake.read("quarantine", "with-bad-rows")
    assert sorted(quarantine["row"]) == [3, 9, 10]
    batch = session_home.ledger.get("with-bad-rows")
    assert (batch["clean"], batch["quarantined"], batch["version"]) == (197, 3, version)
    assert batch["reasons"] == {"idade out of range 18-70": 2, "missing cidade": 1}


def test_a_batch_with_no_clean_row_fails_train_with_the_reason(session_home, caplog):
    """Bad data, not a fault of the system: the task fails with the reason, logged as a
    warning without a traceback (Celery's "raised expected")."""
    records = generate(30, seed=9, batch_id="all-bad").astype({"idade": object})
    records["idade"] = "old"
    receive_batch(session_home.lake, session_home.ledger, "all-bad", records)
    ours = []
    sink = logger.add(lambda message: ours.append(message.record), level="DEBUG")
    try:
        message = failure_of((normalize.si("all-bad") | train.si("all-bad")).delay())
    finally:
        logger.remove(sink)
    assert "no row passed the checks: idade is not a number (30)" in message
    assert session_home.ledger.get("all-bad")["status"] == "empty"
    [end] = [record for record in ours if "pipeline.train ended" in record["message"]]
    assert end["level"].name == "WARNING" and "outcome=failure" in end["message"]
    celery = [record for record in caplog.records if record.name == "celery.app.trace"
              and "NothingToLearn" in record.getMessage()]
    assert celery and all(record.levelno < logging.ERROR and record.exc_info is None
                          and "raised expected" in record.getMessage() for record in celery)


def test_forget_makes_a_version_without_the_batch(session_home):
    batch_id = generate_task.delay(batch_size=400).get(timeout=30)
    trained_version(session_home, batch_id)
    seen = session_home.registry.load().model.n_samples_seen_
    result = forget.delay(batch_id, "a test deletion request").get(timeout=30)
    assert result["status"] == "forgotten"
    metadata = session_home.registry.metadata(result["version"])
    assert metadata.forgot == batch_id
    assert metadata.n_samples_seen == seen - (400 - session_home.ledger.get(batch_id)["holdout"])


@pytest.mark.parametrize("task, args, message", [
    (normalize, ["../../etc"], "invalid batch id"),
    (train, [""], "invalid batch id"),
    (normalize, ["no-such-batch"], "batch no-such-batch is not in the ledger"),
    (train, ["no-such-batch"], "batch no-such-batch is not in the ledger"),
    (forget, ["no-such-batch", "why"], "batch no-such-batch is not in the ledger"),
    (forget, ["some-batch", " "], "reason is required"),
    (generate_task, ["many"], "batch_size must be a whole number"),
    (generate_task, [0], "batch_size must be between 1 and 1,000,000"),
    (generate_task, [True], "batch_size must be a whole number"),
])
def test_bad_arguments_fail_with_a_readable_reason(task, args, message):
    assert message in failure_of(task.apply_async(args))


def test_evaluate_scores_the_served_version_and_keeps_a_report(session_home):
    trained_version(session_home, generate_task.delay(batch_size=2000).get(timeout=30))
    result = evaluate.delay(n=1500).get(timeout=60)
    assert {"model_version", "n", "mse", "rmse", "mae", "r2", "report"} <= set(result)
    assert result["n"] == 1500 and result["model_version"] == session_home.serving.state().version
    assert result["rmse"] ** 2 == pytest.approx(result["mse"])
    assert result["r2"] > result["baseline"]["r2"]
    assert f"version {result['model_version']}" in result["report"]
    assert session_home.storage.read_json("reports/latest.json")["evaluated_at"] == result["evaluated_at"]
    assert result["report_url"] == f"/reports/{result['report_id']}"
    page = session_home.storage.read_bytes(f"reports/{result['report_id']}.html").decode()
    assert page.count("data:image/png;base64,") == 4


def test_evaluate_with_a_baseline_scores_both_on_the_same_records(session_home):
    first = trained_version(session_home, generate_task.delay(batch_size=300).get(timeout=30))
    trained_version(session_home, generate_task.delay(batch_size=300).get(timeout=30))
    result = evaluate.delay(n=800, baseline_version=first).get(timeout=60)
    assert result["baseline_version"] == first
    assert result["baseline_scores"]["n"] == result["n"] == 800
    # The same records: the mean predictor's and the truth's scores are shared by both.
    assert result["report_id"].startswith(f"evaluation-v{result['model_version']:06d}-vs-v{first:06d}")


@pytest.mark.parametrize("kwargs, message", [
    ({"version": 99999}, "model version 99999 does not exist"),
    ({"version": "1"}, "version must be a whole number"),
    ({"n": 1}, "n must be between 2 and 1,000,000"),
    ({"baseline_version": 0}, "baseline_version must be between 1"),
    ({"baseline_version": 99999}, "model version 99999 does not exist"),
])
def test_evaluate_rejects_bad_arguments_readably(session_home, kwargs, message):
    assert message in failure_of(evaluate.apply_async(kwargs=kwargs))


def test_each_task_logs_one_end_line_with_batch_version_duration_and_outcome(session_home):
    from loguru import logger

    records = []
    sink = logger.add(lambda message: records.append(message.record), level="INFO")
    try:
        batch_id = generate_task.delay(batch_size=60).get(timeout=30)
        version = trained_version(session_home, batch_id)
        wait_for(lambda: any(r["extra"].get("task") == "pipeline.train"
                             and r["extra"].get("batch_id") == batch_id for r in records),
                 what="the train step's end line")
        failure_of(normalize.delay("never-arrived"))
    finally:
        logger.remove(sink)
    ends = {(r["extra"]["task"], r["extra"]["batch_id"]): r for r in records
            if "outcome" in r["extra"]}
    for name in ("pipeline.generate", "pipeline.normalize", "pipeline.train"):
        end = ends[(name, batch_id)]
        assert end["extra"]["outcome"] == "success" and end["extra"]["duration"] >= 0
        assert f"task {name} ended: outcome=success batch={batch_id}" in end["message"]
    assert ends[("pipeline.train", batch_id)]["extra"]["version"] == version
    failed = ends[("pipeline.normalize", "never-arrived")]
    assert failed["extra"]["outcome"] == "failure" and failed["level"].name == "ERROR"
    assert "error=UnknownBatch: batch never-arrived is not in the ledger" in failed["message"]
