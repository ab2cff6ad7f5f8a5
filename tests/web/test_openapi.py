"""``GET /openapi.json``: every route described, from the types that check its input."""

from __future__ import annotations

import jsonschema
import pytest
from flask import Flask
from openapi_spec_validator import validate as validate_openapi

from app.web import openapi


@pytest.fixture
def document(client):
    response = client.get("/openapi.json")
    assert response.status_code == 200
    return response.json


def _operations(app: Flask):
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            yield rule, method.lower()


def test_every_route_of_the_app_is_documented(app, document):
    """A route added without @documented fails here: the document would be incomplete."""
    missing = [f"{method.upper()} {rule.rule}" for rule, method in _operations(app)
               if method not in document["paths"].get(openapi._path_parameters(rule.rule)[0], {})]
    assert not missing, f"routes missing from /openapi.json: {missing}"
    assert sum(len(methods) for methods in document["paths"].values()) == len(list(_operations(app)))


def test_the_document_is_valid_openapi(document):
    validate_openapi(document)


def test_an_undocumented_route_is_named(make_app):
    app = make_app()
    app.add_url_rule("/undocumented", "undocumented", lambda: "hi")
    with pytest.raises(LookupError, match="/undocumented"):
        openapi.build(app)


def test_bodies_are_the_schemas_the_views_check(document):
    """The schema in the document accepts what /predict accepts and refuses what it refuses."""
    schema = {**document["paths"]["/predict"]["post"]["requestBody"]["content"]
              ["application/json"]["schema"], "components": document["components"]}
    record = {"idade": 35, "cidade": "Recife", "cargo": "Professor"}
    jsonschema.validate(record, schema)
    jsonschema.validate({"records": [record, {**record, "idade": 70}]}, schema)
    for bad in ({**record, "idade": 17}, {**record, "salario": 1.0}, {"idade": 35},
                {**record, "cidade": "   "}, {"records": []}, {**record, "idade": "35"}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)


def test_paths_parameters_and_security(document):
    task = document["paths"]["/tasks/{task_id}"]["get"]
    assert task["parameters"][0] == {"name": "task_id", "in": "path", "required": True,
                                     "schema": {"type": "string"}}
    limit = document["paths"]["/models"]["get"]["parameters"][0]
    assert (limit["name"], limit["in"], limit["schema"]["maximum"]) == ("limit", "query", 1000)
    # Routes behind operator_route say they need the token; /predict does not.
    assert document["paths"]["/evaluate"]["post"]["security"] == [{"apiToken": []}]
    assert "security" not in document["paths"]["/predict"]["post"]
