import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.linear_model import Ridge

from app.data.generator import generate, optimum_r2
from app.models.regressor import IncrementalRidge
from app.models.stats import Design


@pytest.fixture(scope="module")
def batches():
    return [generate(size, seed=seed) for seed, size in enumerate([1000, 250, 4000, 17, 3000])]


def fit_incrementally(batches, model=None):
    model = model or IncrementalRidge()
    for batch in batches:
        model.partial_fit(batch, batch["salario"])
    return model


def test_partial_fit_on_batches_equals_one_fit_on_all_of_them(batches):
    incremental = fit_incrementally(batches)
    everything = pd.concat(batches, ignore_index=True)
    whole = IncrementalRidge().fit(everything, everything["salario"])
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
    model = IncrementalRidge(alpha=0.0).fit(everything, everything["salario"])
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
    known = test[(test["cidade"] != "Atlantis") & (test["cargo"] != "Astronauta")]
    np.testing.assert_allclose(model.predict(known),
                               model.transform(known) @ model.coef_ + model.intercept_, rtol=1e-9)


@pytest.mark.parametrize("unknown", [{"cidade": "Atlantis"}, {"cargo": "Astronauta"},
                                     {"cidade": "Atlantis", "cargo": "Astronauta"}])
def test_an_unseen_category_is_answered_by_the_model_without_that_feature(batches, unknown):
    """What the other features say: exactly the model fitted on them alone, solved from the
    same statistics."""
    model = fit_incrementally(batches)
    everything = pd.concat(batches, ignore_index=True)
    full = model.design_
    without = Design(full.target, full.numbers,
                     tuple(column for column in full.categories if column not in unknown))
    reference = IncrementalRidge(without).fit(everything, everything["salario"])
    records = [{"idade": age, "cidade": "São Paulo", "cargo": "Professor", **unknown}
               for age in (20, 44, 67)]
    np.testing.assert_allclose(model.predict_records(records),
                               reference.predict(pd.DataFrame(records)), rtol=1e-9)
    np.testing.assert_allclose(model.predict(pd.DataFrame(records)),
                               reference.predict(pd.DataFrame(records)), rtol=1e-9)


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
    model = IncrementalRidge(alpha=2.5)
    assert model.get_params() == {"alpha": 2.5, "design": None}
    assert not [name for name in vars(model) if name.endswith("_")]
    assert model.partial_fit(batches[0], batches[0]["salario"]) is model
    fresh = clone(model)
    assert fresh.get_params() == {"alpha": 2.5, "design": None} and not hasattr(fresh, "coef_")
    refit = model.fit(batches[1], batches[1]["salario"])
    assert refit.n_samples_seen_ == len(batches[1])


def test_predict_before_fit_raises_not_fitted():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        IncrementalRidge().predict(generate(3, seed=1))


def test_mismatched_lengths_and_missing_columns_are_errors(batches):
    with pytest.raises(ValueError, match="missing columns: cargo"):
        IncrementalRidge().partial_fit(batches[0].drop(columns="cargo"), batches[0]["salario"])
    with pytest.raises(ValueError, match="rows but y has"):
        IncrementalRidge().partial_fit(batches[0], batches[0]["salario"][:5])


def test_fast_path_before_fit_raises_not_fitted():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        IncrementalRidge().predict_records([{"idade": 30, "cidade": "Recife", "cargo": "Vendedor"}])
