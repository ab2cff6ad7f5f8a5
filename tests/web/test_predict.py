"""POST /predict: answers, and a 400 naming the field for every kind of bad body."""

import json
import random

import pytest

PROBE = {"idade": 35, "cidade": "São Paulo", "cargo": "Professor"}
RECORD = {"idade": 35, "cidade": "Recife", "cargo": "Vendedor"}


def post(client, body):
    """POST ``body``: bytes as they are, anything else as JSON."""
    data = body if isinstance(body, bytes) else json.dumps(body)
    return client.post("/predict", data=data, content_type="application/json")


def test_one_record_gets_one_prediction_and_the_version_that_made_it(client, served, first_model):
    response = post(client, PROBE)
    assert response.status_code == 200
    assert response.get_json() == {"model_version": served,
                                   "predictions": first_model.predict_records([PROBE])}
    assert response.headers["X-Model-Version"] == str(served)


def test_a_batch_gets_predictions_in_record_order(client, served, first_model):
    records = [RECORD, PROBE, {**RECORD, "idade": 70}, {**RECORD, "idade": 18}]
    body = post(client, {"records": records}).get_json()
    assert body == {"model_version": served, "predictions": first_model.predict_records(records)}


def test_a_batch_of_ten_thousand_records_is_accepted(client, served):
    body = post(client, {"records": [RECORD] * 10_000}).get_json()
    assert len(body["predictions"]) == 10_000 and body["model_version"] == served


def test_unknown_and_oddly_spelled_categories_still_get_an_answer(client, served, first_model):
    records = [{"idade": 40, "cidade": "Atlantis", "cargo": "Astronauta"},
               {"idade": 40, "cidade": "  são   PAULO ", "cargo": "professor"}]
    predictions = post(client, {"records": records}).get_json()["predictions"]
    assert predictions[1] == pytest.approx(first_model.predict_records([
        {"idade": 40, "cidade": "São Paulo", "cargo": "Professor"}])[0], rel=1e-12)
    assert 1000 < predictions[0] < 20000


def test_a_whole_number_written_as_a_float_is_an_age(client, served):
    as_float = post(client, {**RECORD, "idade": 35.0}).get_json()
    assert as_float == post(client, RECORD).get_json()


@pytest.mark.parametrize("content_type", [
    "text/plain", "application/x-www-form-urlencoded", None])
def test_any_content_type_is_read_as_json(client, served, content_type):
    """``curl -d`` sends form encoding; the body is still read as JSON."""
    response = client.post("/predict", data=json.dumps(RECORD), content_type=content_type)
    assert response.status_code == 200 and response.get_json()["model_version"] == served


def test_no_model_yet_is_503_until_one_is_saved(client, registry, first_model):
    response = post(client, RECORD)
    assert response.status_code == 503
    assert "no model has been trained yet" in response.get_json()["error"]
    assert response.headers["Retry-After"]


DEEP = b'{"idade": ' + b"[" * 150 + b"]" * 150 + b', "cidade": "a", "cargo": "b"}'

BAD_BODIES = [
    # (case, body, the start of the error sentence)
    ("malformed JSON", b'{"idade": 35,', "the body is not valid JSON"),
    ("trailing junk", json.dumps(RECORD).encode() + b" x", "the body is not valid JSON"),
    ("not UTF-8", b"\xff\xfe{}", "the body is not valid JSON"),
    ("empty body", b"", "the body is empty"),
    ("not an object", b"[1, 2]", "the body must be a JSON object"),
    ("a bare number", b"35", "the body must be a JSON object"),
    ("nested beyond the parser's limit", b"[" * 100_000 + b"]" * 100_000,
     "the body is nested too deeply"),
    ("nested junk in a field", DEEP, "idade: must be a whole number, got a list"),
    ("missing field", {"cidade": "Recife", "cargo": "Vendedor"}, "idade: is required"),
    ("unknown field", {**RECORD, "salario": 1.0}, "salario: is not a known field"),
    ("age as text", {**RECORD, "idade": "35"}, "idade: must be a whole number, got text"),
    ("bool as a number", {**RECORD, "idade": True}, "idade: must be a whole number, got true"),
    ("fractional age", {**RECORD, "idade": 35.5}, "idade: must be a whole number, got 35.5"),
    ("null age", {**RECORD, "idade": None}, "idade: must be a whole number, got null"),
    ("age too low", {**RECORD, "idade": 17}, "idade: must be between 18 and 70, got 17"),
    ("age too high", {**RECORD, "idade": 71}, "idade: must be between 18 and 70, got 71"),
    ("huge age", {**RECORD, "idade": 10**40}, "idade: must be between 18 and 70, got a number"),
    ("NaN", b'{"idade": NaN, "cidade": "a", "cargo": "b"}', "idade: must be a whole number, got NaN"),
    ("Infinity", b'{"idade": -Infinity, "cidade": "a", "cargo": "b"}',
     "idade: must be a whole number, got -Infinity"),
    ("number for text", {**RECORD, "cidade": 5}, "cidade: must be text, got 5"),
    ("list for text", {**RECORD, "cargo": ["Vendedor"]}, "cargo: must be text, got a list"),
    ("empty text", {**RECORD, "cidade": ""}, "cidade: must not be empty or blank"),
    ("blank text", {**RECORD, "cargo": " \t "}, "cargo: must not be empty or blank"),
    ("overlong text", {**RECORD, "cidade": "x" * 101}, "cidade: must be at most 100 characters"),
    ("bad record in a batch", {"records": [RECORD, RECORD, RECORD, {**RECORD, "idade": 12}]},
     "records[3].idade: must be between 18 and 70"),
    ("bool in a batch", {"records": [RECORD, {**RECORD, "idade": False}]},
     "records[1].idade: must be a whole number, got false"),
    ("not a record in a batch", {"records": [RECORD, 5]}, "records[1]: must be a JSON object"),
    ("unknown field in a batch record", {"records": [{**RECORD, "nome": "Ana"}]},
     "records[0].nome: is not a known field"),
    ("unknown field beside records", {"records": [RECORD], "model": 1},
     "model: is not a known field"),
    ("records not a list", {"records": RECORD}, "records: must be a list, got an object"),
    ("empty batch", {"records": []}, "records: must hold at least one record"),
    ("too many records", {"records": [RECORD] * 10_001},
     "records: at most 10,000 records are accepted per request, got 10,001"),
]


@pytest.mark.parametrize("case, body, error", BAD_BODIES, ids=[case for case, *_ in BAD_BODIES])
def test_a_bad_body_is_a_400_whose_error_names_the_field(client, served, case, body, error):
    response = post(client, body)
    assert response.status_code == 400
    assert response.is_json and response.get_json()["error"].startswith(error)


def test_every_problem_is_listed_by_field_and_counted_in_the_sentence(client, served):
    body = post(client, {"records": [{"idade": 9, "cidade": "", "cargo": "x", "extra": 1}]}).get_json()
    assert body["error"].endswith("(and 2 more problems)")
    assert [error["field"] for error in body["errors"]] == [
        "records[0].idade", "records[0].cidade", "records[0].extra"]


def test_the_list_of_problems_is_capped_for_a_batch_of_bad_records(client, served):
    body = post(client, {"records": [{**RECORD, "idade": 1}] * 10_000}).get_json()
    assert "(and 9,999 more problems)" in body["error"] and len(body["errors"]) == 20


def random_json(rng: random.Random, depth: int = 0):
    """A random JSON value, biased towards the shapes of a real request."""
    choices = [None, True, False, rng.randint(-100, 100), rng.random() * 100, 35.0,
               float("nan"), float("inf"), "", " ", "Recife", "x" * rng.randint(0, 120)]
    if depth < 4:
        choices += [[random_json(rng, depth + 1) for _ in range(rng.randint(0, 3))]] * 3
        keys = ["idade", "cidade", "cargo", "records", "z"]
        choices += [{rng.choice(keys): random_json(rng, depth + 1)
                     for _ in range(rng.randint(0, 4))}] * 3
        choices += [{**RECORD, rng.choice(["idade", "cidade", "cargo"]): random_json(rng, depth + 1)}] * 4
    return rng.choice(choices)


def test_no_random_body_makes_a_server_error(client, served):
    """Random JSON values and byte-level mutations of a valid body: 200 or 400, never 500."""
    rng = random.Random(20240601)
    valid = json.dumps({"records": [RECORD, PROBE]}).encode()
    for _ in range(400):
        value = random_json(rng)
        response = post(client, json.dumps(value).encode())
        assert response.status_code in (200, 400), (value, response.get_json())
        mutated = bytearray(valid)
        for _ in range(rng.randint(1, 4)):
            mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        response = post(client, bytes(mutated))
        assert response.status_code in (200, 400), (bytes(mutated), response.get_json())
