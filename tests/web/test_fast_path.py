"""The fast path (``predict_records``, what /predict uses) agrees with scikit-learn's."""

import json

import numpy as np
import pandas as pd
import pytest

from app.data.generator import generate

# Respellings the fast path must treat exactly as the ColumnTransformer path does.
SPELLINGS = [str.lower, str.upper, lambda s: f"  {s} ", lambda s: s.replace(" ", "   "),
             lambda s: s.title(), lambda s: s]
UNKNOWN = ["Atlantis", "Sao Paulo", "rio-de-janeiro", "Desenvolvedor", "Ninja", "x", "É",
           "Gotham   City", "DE", "d'Ávila"]


def odd_records(n: int, seed: int) -> list[dict]:
    """Generated records with respelled, unknown and mixed-case categories."""
    rng = np.random.default_rng(seed)
    records = generate(n, seed=seed)[["idade", "cidade", "cargo"]].astype(
        {"cidade": object, "cargo": object}).to_dict("records")
    for record in records:
        for field in ("cidade", "cargo"):
            roll = rng.random()
            if roll < 0.15:
                record[field] = str(rng.choice(UNKNOWN))
            elif roll < 0.6:
                record[field] = SPELLINGS[rng.integers(len(SPELLINGS))](record[field])
        record["idade"] = int(record["idade"])
    return records


@pytest.mark.parametrize("model_fixture", ["first_model", "second_model"])
def test_fast_path_agrees_with_scikit_learn_to_1e_9(request, model_fixture):
    model = request.getfixturevalue(model_fixture)
    records = odd_records(5000, seed=11)
    fast = np.array(model.predict_records(records))
    sklearn = model.predict(pd.DataFrame.from_records(records))
    np.testing.assert_allclose(fast, sklearn, rtol=1e-9, atol=0)


def test_predict_route_answers_what_scikit_learn_predicts(client, served, first_model):
    """End to end: /predict's numbers are the ColumnTransformer path's, to 1e-9."""
    records = odd_records(10_000, seed=12)
    response = client.post("/predict", data=json.dumps({"records": records}),
                           content_type="application/json")
    predictions = np.array(response.get_json()["predictions"])
    sklearn = first_model.predict(pd.DataFrame.from_records(records))
    np.testing.assert_allclose(predictions, sklearn, rtol=1e-9, atol=0)


def test_records_really_include_unknown_and_respelled_categories():
    """Guards the two tests above against testing only clean, known categories."""
    records = odd_records(5000, seed=11)
    cities = {record["cidade"] for record in records}
    assert "Atlantis" in cities and "Sao Paulo" in cities and "SÃO PAULO" in cities
