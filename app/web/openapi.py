"""``GET /openapi.json``: the API described from the pydantic types that check its requests.

A view says what it takes with :func:`documented`, next to its route::

    @bp.post("/evaluate")
    @documented(body=schemas.EvaluateParams, responses={202: "the task was sent"})
    @operator_route
    def evaluate(): ...

The document is built from the app's URL map and these marks, once per app: every route and
method appears, path parameters come from the rule's converters, bodies and query parameters
are the JSON schemas pydantic generates from the very types the views validate with, so the
description cannot drift from the checks. Routes wrapped in
:func:`~app.web.access.operator_route` are marked as needing the operator's token. A route
without a mark is a mistake: a test fails for it.
"""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, Flask, current_app
from pydantic import TypeAdapter

OPENAPI_VERSION = "3.1.0"
_REF = "#/components/schemas/{model}"
# werkzeug's converters as JSON schema; any other converter is described as text.
_CONVERTERS = {"int": {"type": "integer", "minimum": 0}, "float": {"type": "number"}}
_PARAMETER = re.compile(r"<(?:(?P<converter>\w+)(?:\([^)]*\))?:)?(?P<name>\w+)>")
_IGNORED_METHODS = {"HEAD", "OPTIONS"}
_ERROR = {
    "type": "object",
    "properties": {
        "error": {"type": "string", "description": "one sentence saying what is wrong"},
        "errors": {"type": "array", "description": "each field at fault (400 only)",
                   "items": {"type": "object",
                             "properties": {"field": {"type": "string"},
                                            "message": {"type": "string"}}}},
    },
    "required": ["error"],
}

bp = Blueprint("openapi", __name__)


def documented(*, body: Any = None, query: Any = None, responses: dict[int, str] | None = None,
               summary: str | None = None):
    """Mark a view as described: ``body`` and ``query`` are the types its input is checked
    against (a pydantic model, a TypedDict, a union of them; or the name of one the dataset
    in force makes, an attribute of :class:`~app.web.schemas.DatasetRequests`), ``responses``
    its successful answers by status. The summary defaults to the first line of the view's
    docstring."""

    def mark(view):
        view.openapi = {"body": body, "query": query, "responses": responses or {200: "OK"},
                        "summary": summary}
        return view

    return mark


class _Schemas:
    """Components shared by every operation: each type's schema is generated once.
    ``requests``: the dataset's request types, which a mark may name."""

    def __init__(self, requests):
        self.components: dict[str, dict] = {"Error": _ERROR}
        self.requests = requests

    def of(self, kind: Any) -> dict:
        if isinstance(kind, str):
            kind = getattr(self.requests, kind)
        schema = TypeAdapter(kind).json_schema(ref_template=_REF)
        self.components.update(schema.pop("$defs", {}))
        return schema


def _summary(view, mark: dict) -> str:
    if mark["summary"]:
        return mark["summary"]
    doc = (view.__doc__ or "").strip()
    return doc.splitlines()[0].replace("``", "`") if doc else view.__name__


def _path_parameters(rule: str) -> tuple[str, list[dict]]:
    """``/tasks/<task_id>`` -> ``/tasks/{task_id}`` and its parameters."""
    parameters = [{"name": found["name"], "in": "path", "required": True,
                   "schema": dict(_CONVERTERS.get(found["converter"], {"type": "string"}))}
                  for found in _PARAMETER.finditer(rule)]
    return _PARAMETER.sub(lambda found: "{" + found["name"] + "}", rule), parameters


def _query_parameters(schemas: _Schemas, query: Any) -> list[dict]:
    schema = schemas.of(query)
    required = set(schema.get("required", []))
    return [{"name": name, "in": "query", "required": name in required, "schema": field}
            for name, field in schema.get("properties", {}).items()]


def _operation(view, mark: dict, schemas: _Schemas, path_parameters: list[dict]) -> dict:
    operation: dict[str, Any] = {"summary": _summary(view, mark), "operationId": view.__name__}
    parameters = list(path_parameters)
    if mark["query"] is not None:
        parameters += _query_parameters(schemas, mark["query"])
    if parameters:
        operation["parameters"] = parameters
    if mark["body"] is not None:
        operation["requestBody"] = {
            "required": False,
            "content": {"application/json": {"schema": schemas.of(mark["body"])}}}
    error = {"content": {"application/json": {"schema": {"$ref": _REF.format(model="Error")}}}}
    responses = {str(status): {"description": text} for status, text in mark["responses"].items()}
    # Any route may answer 404, 405, 413 or 503 (and 400, 401, 403 where they apply): all
    # with the one error body.
    responses["default"] = {"description": "an error, as JSON", **error}
    operation["responses"] = responses
    if getattr(view, "operator_only", False):
        operation["security"] = [{"apiToken": []}]
    return operation


def build(app: Flask) -> dict:
    """The OpenAPI document of ``app``; ``LookupError`` names any route left undocumented."""
    schemas = _Schemas(app.extensions["requests"])
    paths: dict[str, dict] = {}
    undocumented = []
    for rule in sorted(app.url_map.iter_rules(), key=lambda rule: rule.rule):
        if rule.endpoint == "static":
            continue
        view = app.view_functions[rule.endpoint]
        mark = getattr(view, "openapi", None)
        if mark is None:
            undocumented.append(rule.rule)
            continue
        path, parameters = _path_parameters(rule.rule)
        for method in sorted((rule.methods or set()) - _IGNORED_METHODS):
            paths.setdefault(path, {})[method.lower()] = _operation(view, mark, schemas,
                                                                    parameters)
    if undocumented:
        raise LookupError(f"routes without @documented: {', '.join(undocumented)}")
    dataset = app.extensions["requests"].dataset
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": f"Stream pipeline: {dataset.name}", "version": "1",
                 "description": f"Predictions of {dataset.target} from a model that keeps "
                                "learning; every error is JSON {\"error\": \"...\"}."},
        "paths": paths,
        "components": {
            "schemas": schemas.components,
            "securitySchemes": {"apiToken": {
                "type": "http", "scheme": "bearer",
                "description": "API_TOKEN; when the server has none, loopback clients only"}},
        },
    }


@bp.get("/openapi.json")
@documented(responses={200: "this document"})
def openapi_document():
    """The OpenAPI document of this API."""
    document = current_app.extensions.get("openapi")
    if document is None:
        document = current_app.extensions["openapi"] = build(current_app)
    return document
