"""GET /health and GET /models."""

import pytest


def test_health_is_ok_with_a_null_version_before_any_model(client):
    body = client.get("/health").get_json()
    assert body["status"] == "ok" and body["model_version"] is None
    assert body["n_samples_seen"] is None and body["loaded_at"] is None


def test_health_names_the_version_served_and_how_much_it_has_seen(client, served, first_model):
    body = client.get("/health").get_json()
    assert body["status"] == "ok" and body["model_version"] == served
    assert body["n_samples_seen"] == first_model.n_samples_seen_
    assert body["loaded_at"] and body["model_created_at"] and body["refused_versions"] == []


def test_models_is_empty_before_any_model(client):
    assert client.get("/models").get_json() == {"models": [], "total": 0, "limit": 100,
                                                "contest": None}


def test_models_lists_versions_newest_first_with_their_metadata(client, registry, save_model,
                                                               first_model, second_model):
    versions = [save_model(first_model, "b1"), save_model(second_model, "b2"),
                save_model(first_model, "b3")]
    body = client.get("/models").get_json()
    assert [model["version"] for model in body["models"]] == versions[::-1]
    assert body["total"] == 3
    newest = body["models"][0]
    assert newest == {**registry.metadata(versions[-1]).to_dict(), "forgotten_batches": []}
    assert {"version", "created_at", "n_samples_seen", "sha256"} <= set(newest)


def test_models_limit_keeps_the_newest(client, save_model, first_model):
    for batch in range(5):
        save_model(first_model, f"b{batch}")
    body = client.get("/models?limit=2").get_json()
    assert [model["version"] for model in body["models"]] == [5, 4]
    assert body["total"] == 5 and body["limit"] == 2


@pytest.mark.parametrize("limit", ["0", "-1", "abc", "1.5", "1001", "", "٣", "9" * 5000])
def test_a_bad_models_limit_is_a_400_naming_limit(client, limit):
    response = client.get("/models", query_string={"limit": limit})
    assert response.status_code == 400
    assert response.get_json()["error"] == "limit: must be a whole number between 1 and 1,000"


def test_models_shows_champion_and_challenger_with_their_scores_and_serves_the_winner(
        client, registry, save_model, first_model):
    from app.data.generator import generate
    from app.models.challenger import ChallengerRegressor

    champion = save_model(first_model, "b1")
    rows = generate(3000, seed=5)
    scores = {"champion_version": champion, "champion": {"mse": 2.0e6, "r2": 0.78},
              "challenger": {"mse": 1.9e6, "r2": 0.79}, "winner": "challenger"}
    registry.publish(ChallengerRegressor(max_iter=20).fit(rows, rows["salario"]), champion + 1,
                     kind="challenger", batch_id="b1", batch_ids=[], window_batch_ids=["b1"],
                     lineage=False, metrics={"prequential": None}, contest=scores,
                     gate={"passed": True, "reason": "better beyond chance"})
    body = client.get("/models").get_json()
    assert [m.get("kind", "champion") for m in body["models"]] == ["challenger", "champion"]
    contest = body["contest"]
    assert contest["challenger_version"] == champion + 1 and contest["winner"] == "challenger"
    assert contest["champion"]["mse"] == 2.0e6 and contest["challenger"]["mse"] == 1.9e6
    answer = client.post("/predict", json={"idade": 35, "cidade": "Recife", "cargo": "Professor"})
    assert answer.status_code == 200 and answer.get_json()["model_version"] == champion + 1
