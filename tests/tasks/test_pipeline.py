"""The tasks on a real Redis and a real worker, as a user's client would call them."""

import pytest

from app.data.generator import generate
from app.tasks.pipeline import evaluate, generate as generate_task, normalize, train
from tests.support import wait_for

pytestmark = pytest.mark.usefixtures("celery_worker")


def failure_of(async_result, timeout=30):
    with pytest.raises(Exception) as caught:
        async_result.get(timeout=timeout)
    assert async_result.state == "FAILURE"
    return str(caught.value)


def trained_version(registry, batch_id):
    return wait_for(lambda: registry.version_for_batch(batch_id), what=f"batch {batch_id} trained")


def test_generate_chains_normalize_and_train_into_a_new_version(home_lake, home_registry):
    batch_id = generate_task.delay(batch_size=300).get(timeout=30)
    version = trained_version(home_registry, batch_id)
    metadata = home_registry.metadata(version)
    assert metadata["batch_id"] == batch_id and metadata["n_batch"] == 300
    raw = home_lake.read("raw", batch_id)
    assert len(raw) == 300 and (raw["geracao_id"] == batch_id).all()
    assert len(home_lake.read("normalized", batch_id)) == 300
    assert home_registry.load(version).model.n_samples_seen_ == metadata["n_samples_seen"]


def test_generate_uses_batch_size_setting_when_none_is_given(home_registry):
    batch_id = generate_task.delay().get(timeout=30)
    version = trained_version(home_registry, batch_id)
    assert home_registry.metadata(version)["n_batch"] == 1000  # BATCH_SIZE default


def test_a_batch_delivered_twice_is_trained_once(home_registry):
    batch_id = generate_task.delay(batch_size=120).get(timeout=30)
    version = trained_version(home_registry, batch_id)
    seen = home_registry.metadata(home_registry.latest_version())["n_samples_seen"]
    assert train.delay(batch_id).get(timeout=30) == version
    assert normalize.delay(batch_id).get(timeout=30) == batch_id
    assert home_registry.metadata(home_registry.latest_version())["n_samples_seen"] == seen


def test_rejected_rows_are_quarantined_counted_and_the_rest_trained(home_lake, home_registry):
    records = generate(200, seed=8, batch_id="with-bad-rows").astype(
        {"cidade": object, "idade": object})
    records.loc[[3, 9], "idade"] = 150
    records.loc[10, "cidade"] = None
    home_lake.write("raw", "with-bad-rows", records)
    version = (normalize.si("with-bad-rows") | train.si("with-bad-rows")).delay().get(timeout=30)
    quarantine = home_lake.read("quarantine", "with-bad-rows")
    assert sorted(quarantine["row"]) == [3, 9, 10]
    assert home_registry.metadata(version)["n_batch"] == 197


@pytest.mark.parametrize("task, args, message", [
    (normalize, ["../../etc"], "invalid batch id"),
    (train, [""], "invalid batch id"),
    (normalize, ["no-such-batch"], "batch no-such-batch has no raw data"),
    (train, ["no-such-batch"], "batch no-such-batch has no normalized data"),
    (generate_task, ["many"], "batch_size must be a whole number"),
    (generate_task, [0], "batch_size must be between 1 and 1,000,000"),
    (generate_task, [True], "batch_size must be a whole number"),
])
def test_bad_arguments_fail_with_a_readable_reason(task, args, message):
    assert message in failure_of(task.apply_async(args))


def test_evaluate_scores_the_newest_version_and_keeps_a_report(home_registry, pipeline_home):
    trained_version(home_registry, generate_task.delay(batch_size=2000).get(timeout=30))
    result = evaluate.delay(n=1500).get(timeout=60)
    assert {"model_version", "n", "mse", "rmse", "mae", "r2", "report"} <= set(result)
    assert result["n"] == 1500 and result["model_version"] == home_registry.latest_version()
    assert result["rmse"] ** 2 == pytest.approx(result["mse"])
    assert result["r2"] > result["baseline"]["r2"]
    assert f"version {result['model_version']}" in result["report"]
    saved = list((pipeline_home / "reports").glob(f"evaluation-v{result['model_version']:06d}-*"))
    assert saved


@pytest.mark.parametrize("kwargs, message", [
    ({"version": 99999}, "model version 99999 does not exist"),
    ({"version": "1"}, "version must be a whole number"),
    ({"n": 1}, "n must be between 2 and 1,000,000"),
])
def test_evaluate_rejects_bad_arguments_readably(home_registry, kwargs, message):
    assert message in failure_of(evaluate.apply_async(kwargs=kwargs))
