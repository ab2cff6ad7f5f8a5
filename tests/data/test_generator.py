import numpy as np
import pandas as pd
import pytest

from app.data.generator import (
    AGE_MAX, AGE_MIN, AGE_PIVOT, CARGOS, CIDADES, FIELDS, GRADUAL_BATCHES, SCENARIOS,
    expected_salary, generate, optimum_r2, regime, seed_for,
)


def test_records_have_the_contract_fields_and_types():
    records = generate(2000, seed=7, batch_id="b-1")
    assert list(records.columns) == list(FIELDS)
    assert records["idade"].dtype == np.int64
    assert records["idade"].between(AGE_MIN, AGE_MAX).all()
    assert records["salario"].dtype == np.float64 and (records["salario"] > 0).all()
    assert set(records["cidade"]) <= set(CIDADES) and set(records["cargo"]) <= set(CARGOS)
    assert (records["geracao_id"] == "b-1").all()
    assert records["timestamp"].dt.tz is not None
    assert records["nome"].str.contains(" ").all()


def test_same_seed_same_records_and_different_seed_different_records():
    pd.testing.assert_frame_equal(generate(500, seed=3), generate(500, seed=3))
    assert not generate(500, seed=3)["salario"].equals(generate(500, seed=4)["salario"])


def test_batch_seed_is_stable_per_batch_id():
    assert seed_for("abc") == seed_for("abc") != seed_for("abd")


def test_optimum_r2_is_in_the_documented_range_and_matches_a_large_sample():
    records = generate(400_000, seed=11)
    truth = expected_salary(records["idade"], records["cidade"], records["cargo"])
    y = records["salario"].to_numpy()
    sample_r2 = 1 - np.sum((y - truth) ** 2) / np.sum((y - y.mean()) ** 2)
    assert 0.6 <= optimum_r2() <= 0.95
    assert sample_r2 == pytest.approx(optimum_r2(), abs=0.005)


def test_salary_noise_has_mean_one_so_the_truth_is_the_conditional_mean():
    records = generate(400_000, seed=12)
    truth = expected_salary(records["idade"], records["cidade"], records["cargo"])
    assert np.mean(records["salario"].to_numpy() / truth) == pytest.approx(1.0, abs=0.002)


def test_generation_is_vectorised_fast_compared_with_a_faker_loop():
    """Ratio against a per-record Faker loop measured in the same run, not an absolute time."""
    import time

    from faker import Faker

    fake = Faker("pt_BR")
    n_loop = 2000
    started = time.perf_counter()
    for _ in range(n_loop):
        fake.name(), fake.city(), fake.job(), fake.random_int(18, 70)
    loop_rate = n_loop / (time.perf_counter() - started)
    generate(1000, seed=1)  # the name pool is built once, outside the measurement
    started = time.perf_counter()
    generate(200_000, seed=1)
    rate = 200_000 / (time.perf_counter() - started)
    assert rate > 20 * loop_rate


# -- drift scenarios ------------------------------------------------------------------------

def test_no_scenario_changes_anything_before_drift_after():
    for scenario in SCENARIOS:
        assert not regime(scenario, 24, drift_after=25).changed
    assert not regime("none", 10_000, drift_after=25).changed
    pd.testing.assert_frame_equal(generate(300, seed=5, regime=regime("sudden", 24, 25)),
                                  generate(300, seed=5))


def test_sudden_changes_the_truth_at_once_and_then_stays():
    before, at, later = (regime("sudden", b, drift_after=25) for b in (24, 25, 200))
    records = generate(5000, seed=6)
    moved = at.expected(records["idade"], records["cidade"], records["cargo"]) - before.expected(
        records["idade"], records["cidade"], records["cargo"])
    analyst = (records["cargo"] == "Analista de Sistemas").to_numpy()
    at_pivot = (records["idade"] == AGE_PIVOT).to_numpy()
    assert np.allclose(moved[analyst & at_pivot], 5000)
    assert np.allclose(at.cargo_base, later.cargo_base) and at.age_slope == later.age_slope
    # The level of salaries barely moves, so the error of a perfect model does not either.
    assert abs(moved.mean()) < 0.05 * before.expected(
        records["idade"], records["cidade"], records["cargo"]).mean()


def test_gradual_moves_a_little_every_batch_for_a_while_then_stays():
    sao_paulo = list(CIDADES).index("São Paulo")
    premiums = [regime("gradual", b, drift_after=25).cidade_premium[sao_paulo]
                for b in range(24, 25 + GRADUAL_BATCHES + 3)]
    steps = np.diff(premiums)
    assert (steps[:GRADUAL_BATCHES] == -20).all() and (steps[GRADUAL_BATCHES:] == 0).all()


@pytest.mark.parametrize("scenario", ["sudden", "gradual"])
def test_each_change_costs_a_model_of_the_old_world_at_least_five_points_of_r2(scenario):
    from app.models.regressor import IncrementalRidge

    old = generate(20_000, seed=7)
    model = IncrementalRidge().fit(old, old["salario"])
    now = regime(scenario, 25 + GRADUAL_BATCHES, drift_after=25)
    new = generate(20_000, seed=8, regime=now)
    truth = now.expected(new["idade"], new["cidade"], new["cargo"])

    def r2(predicted):
        y = new["salario"].to_numpy()
        return 1 - np.sum((y - predicted) ** 2) / np.sum((y - y.mean()) ** 2)

    assert r2(truth) - r2(model.predict(new)) >= 0.05
    assert r2(truth) == pytest.approx(optimum_r2(now), abs=0.01)


def test_generated_batches_follow_the_regime_of_their_number(home):
    from app.data.batches import generate_batch

    for i in range(1, 4):
        generate_batch(home.lake, home.ledger, f"g{i}", 400, scenario="sudden", drift_after=3)
    assert home.ledger.generated_count() == 3
    for i in range(1, 4):
        rows = home.lake.read("raw", f"g{i}")
        batch = home.ledger.get(f"g{i}")
        assert batch["generated_number"] == i and batch["scenario"] == "sudden"
        truth = regime("sudden", i, 3)
        expected = generate(400, seed=seed_for(f"g{i}"), regime=truth)["salario"]
        np.testing.assert_array_equal(rows["salario"].to_numpy(), expected.to_numpy())
    first = home.lake.read("raw", "g1")
    assert np.allclose(first["salario"], generate(400, seed=seed_for("g1"))["salario"])
