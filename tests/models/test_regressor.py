import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.linear_model import Ridge

from app.data.generator import generate, optimum_r2
from app.models.regressor import SalaryRegressor


@pytest.fixture(scope="module")
def batches():
    return [generate(size, seed=seed) for seed, size in enumerate([1000, 250, 4000, 17, 3000])]


def fit_incrementally(batches, model=None):
    model = model or SalaryRegressor()
    for batch in batches:
        model.partial_fit(batch, batch["salario"])
    return model


def test_partial_fit_on_batches_equals_one_fit_on_all_of_them(batches):
    incremental = fit_incrementally(batches)
    everything = pd.concat(batches, ignore_index=True)
    whole = SalaryRegressor().fit(everything, everything["salario"])
    test = generate(2000, seed=99)
    np.testing.assert_allclose(incremental.predict(test), whole.predict(test), rtol=1e-9)
    assert incremental.n_samples_seen_ == len(everything)


def test_batch_order_does_not_matter(batches):
    test = generate(2000, seed=99)
    forward = fit_incrementally(batches).predict(test)
    backward = fit_incrementally(batches[::-1]).predict(test)
    np.testing.assert_allclose(forward, backward, rtol=1e-9)


def test_matches_scikit_learn_ridge_on_the_same_features(batches):
    everything = pd.concat(batches, ignore_index=True)
    model = SalaryRegressor(alpha=0.0).fit(everything, everything["salario"])
    features = model.transform(everything)
    reference = Ridge(alpha=1e-9).fit(features, everything["salario"])
    test = generate(500, seed=98)
    np.testing.assert_allclose(model.predict(test),
                               reference.predict(model.transform(test)), rtol=1e-6)


def test_reaches_the_optimum_r2_within_three_percent_after_50k_records():
    model = fit_incrementally([generate(1000, seed=seed) for seed in range(50)])
    test = generate(20_000, seed=1234)
    assert model.score(test, test["salario"]) >= 0.97 * optimum_r2()


def test_fast_path_agrees_with_the_scikit_learn_path(batches):
    model = fit_incrementally(batches)
    test = generate(3000, seed=77).astype({"cidade": object, "cargo": object})
    test.loc[::7, "cidade"] = "Atlantis"
    test.loc[::5, "cargo"] = "  cientista DE dados "
    test.loc[::11, "cargo"] = "Astronauta"
    fast = model.predict_records(test[["idade", "cidade", "cargo"]].to_dict("records"))
    np.testing.assert_allclose(fast, model.predict(test), rtol=1e-9)
    # predict looks effects up by category; the design matrix is what coef_ weighs.
    np.testing.assert_allclose(model.predict(test),
                               model.transform(test) @ model.coef_ + model.intercept_, rtol=1e-9)


def test_unknown_category_gets_the_frequency_weighted_average_effect(batches):
    model = fit_incrementally(batches)
    everything = pd.concat(batches, ignore_index=True)
    known = everything.assign(idade=40)
    average = model.predict(known).mean()
    [unknown] = model.predict_records([{"idade": 40, "cidade": "Atlantis", "cargo": "Astronauta"}])
    assert unknown == pytest.approx(average, rel=1e-9)


def test_new_categories_in_later_batches_are_learnt(batches):
    model = fit_incrementally(batches)
    extra = generate(3000, seed=50).astype({"cidade": object})
    extra["cidade"] = "Cidade Nova"
    extra["salario"] += 5000.0
    model.partial_fit(extra, extra["salario"])
    assert "Cidade Nova" in model.categories_["cidade"]
    probe = {"idade": 40, "cargo": "Professor"}
    new, old = model.predict_records([{**probe, "cidade": "Cidade Nova"},
                                      {**probe, "cidade": "São Paulo"}])
    assert new - old > 2000


def test_follows_scikit_learn_conventions(batches):
    model = SalaryRegressor(alpha=2.5)
    assert model.get_params() == {"alpha": 2.5}
    assert not [name for name in vars(model) if name.endswith("_")]
    assert model.partial_fit(batches[0], batches[0]["salario"]) is model
    fresh = clone(model)
    assert fresh.get_params() == {"alpha": 2.5} and not hasattr(fresh, "coef_")
    refit = model.fit(batches[1], batches[1]["salario"])
    assert refit.n_samples_seen_ == len(batches[1])


def test_predict_before_fit_raises_not_fitted():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        SalaryRegressor().predict(generate(3, seed=1))


def test_mismatched_lengths_and_missing_columns_are_errors(batches):
    with pytest.raises(ValueError, match="missing columns: cargo"):
        SalaryRegressor().partial_fit(batches[0].drop(columns="cargo"), batches[0]["salario"])
    with pytest.raises(ValueError, match="rows but y has"):
        SalaryRegressor().partial_fit(batches[0], batches[0]["salario"][:5])


def test_fast_path_before_fit_raises_not_fitted():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        SalaryRegressor().predict_records([{"idade": 30, "cidade": "Recife", "cargo": "Vendedor"}])
