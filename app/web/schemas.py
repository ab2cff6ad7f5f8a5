"""What the API accepts, checked strictly with pydantic, and errors that name the field.

Rules:

- The body is JSON, whatever the ``Content-Type`` says (so ``curl -d`` works). It is parsed by
  pydantic-core, which refuses nesting deeper than a fixed limit instead of overflowing the
  stack. ``NaN`` and ``Infinity`` are parsed, then refused by the field they sit in, so the
  error names that field.
- A record to predict is exactly the declared features (:mod:`app.dataset`, and
  :class:`DatasetRequests`, built from it): a missing field or any other field is an error.
- A ``number`` feature is a finite number within its declared ``min`` and ``max``; declared
  ``whole``, a whole one (``35.0`` is accepted as 35, as the normaliser accepts it in batches: a
  float column exported from pandas writes them that way; ``35.5`` is not). Text such as
  ``"35"``, ``true``, ``NaN`` and ``Infinity`` are never numbers.
- A ``category`` feature is text of 1 to 100 characters once leading and trailing spaces
  are stripped. Any spelling is accepted: the model tidies it, and a value it has not seen
  still gets an answer.
- ``{"records": [...]}`` holds 1 to ``max_records`` records.

Errors name the field as a path: ``records[3].age``, or ``age`` for a single record.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Annotated, Any, Literal

import pydantic_core
from pydantic import (BeforeValidator, ConfigDict, Field, StringConstraints, TypeAdapter,
                      ValidationError, WithJsonSchema)
from pydantic_core import PydanticCustomError
from typing_extensions import NotRequired, Required, TypedDict  # pydantic needs it rather than typing's on Python < 3.12

from app import limits
from app.dataset import MAX_TEXT, TIMESTAMP, Dataset, Number, number_text
from app.lifecycle.audit import ACTIONS
from app.limits import EVALUATE_N_MAX, EVALUATE_N_MIN, MAX_REASON, MAX_VERSION

# Errors listed in one answer: a batch of 10,000 bad records must not make a huge answer.
MAX_LISTED_ERRORS = 20
MODELS_MAX_LIMIT = 1000
AUDIT_LIMIT, AUDIT_MAX_LIMIT = 50, 1000
BATCHES_LIMIT, BATCHES_MAX_LIMIT = 100, 1000


class TooManyRecords(ValueError):
    """More records than one request may carry (a 413)."""


class InvalidInput(ValueError):
    """The body breaks a rule: ``message`` is one sentence, ``errors`` lists field and message."""

    def __init__(self, message: str, errors: list[dict] | None = None):
        super().__init__(message)
        self.message = message
        self.errors = errors or []


def _kind(value: Any) -> str:
    """How to name a value in an error without echoing what may be large or private."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return repr(value) if abs(value) < 1e15 else "a number far out of range"
    if isinstance(value, int):
        return str(value) if abs(value) < 10**15 else "a number far out of range"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _whole_number(low: float, high: float):
    """A check: :func:`app.limits.whole_number`, its errors as pydantic's."""
    bounds = {"low": number_text(low), "high": number_text(high)}

    def check(value: Any) -> int:
        try:
            return limits.whole_number(value, low, high)
        except limits.NotWholeNumber:
            raise PydanticCustomError("whole_number", "must be a whole number, got {got}",
                                      {"got": _kind(value)}) from None
        except limits.OutOfRange:
            raise PydanticCustomError("out_of_range", "must be between {low} and {high}, got {got}",
                                      {**bounds, "got": _kind(value)}) from None

    return check


def _number_within(low: float, high: float):
    """A check: a finite int or float (not a boolean) in [low, high], as a float."""
    bounds = {"low": number_text(low), "high": number_text(high)}

    def check(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise PydanticCustomError("number", "must be a finite number, got {got}",
                                      {"got": _kind(value)})
        if not low <= value <= high:
            raise PydanticCustomError("out_of_range", "must be between {low} and {high}, got {got}",
                                      {**bounds, "got": _kind(value)})
        return float(value)

    return check


def _finite_number(value: Any) -> float:
    """A check: an int or float (not a boolean), finite, as a float."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise PydanticCustomError("number", "must be a finite number, got {got}",
                                  {"got": _kind(value)})
    return float(value)


def _bounded(low: int, high: int) -> Any:
    """What the OpenAPI document says of a whole number in [low, high]."""
    return Annotated[int, Field(ge=low, le=high)]


def whole_number(low: int, high: int) -> BeforeValidator:
    return BeforeValidator(_whole_number(low, high), json_schema_input_type=_bounded(low, high))


def optional_whole_number(low: int, high: int) -> BeforeValidator:
    check = _whole_number(low, high)
    return BeforeValidator(lambda value: None if value is None else check(value),
                           json_schema_input_type=_bounded(low, high) | None)


# Stripping and a length check cost a third of a regex's time over a batch of 10,000; the
# model tidies spaces away anyway, so the stripped value predicts the same. The pattern only
# tells the OpenAPI document that blank text is refused.
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_TEXT),
                 WithJsonSchema({"type": "string", "minLength": 1, "maxLength": MAX_TEXT,
                                 "pattern": r"\S"})]


class EvaluateParams(TypedDict, total=False):
    __pydantic_config__ = ConfigDict(extra="forbid", strict=True)

    version: Annotated[int | None, optional_whole_number(1, MAX_VERSION)]
    n: Annotated[int, whole_number(EVALUATE_N_MIN, EVALUATE_N_MAX)]
    # Scored on the same records, side by side in the report.
    baseline_version: Annotated[int | None, optional_whole_number(1, MAX_VERSION)]


class ModelsQuery(TypedDict, total=False):
    """``GET /models?limit=N`` (checked by app.web.models against the app's own maximum)."""

    limit: Annotated[int, Field(ge=1, le=MODELS_MAX_LIMIT)]


def _version_or_latest(value: Any) -> int | str:
    """A version number, or ``"latest"``: follow the newest promoted version again."""
    if value == "latest":
        return value
    if isinstance(value, str):
        raise PydanticCustomError("version", 'must be a version number or "latest", got text')
    return _whole_number(1, MAX_VERSION)(value)


def _reason(value: Any) -> str:
    """A check: :func:`app.limits.reason`, its error as pydantic's."""
    problem = limits.reason_problem(value)
    if problem is not None:
        raise PydanticCustomError("reason", problem)
    return value.strip()


Reason = Annotated[str, BeforeValidator(_reason),
                   WithJsonSchema({"type": "string", "minLength": 1, "maxLength": MAX_REASON,
                                   "pattern": r"\S", "description": "why, for the audit trail"})]


class ServingChange(TypedDict):
    """``PUT /serving``: pin ``version``, or follow again with ``"latest"``; always say why."""

    __pydantic_config__ = ConfigDict(extra="forbid", strict=True)

    version: Annotated[int | str, BeforeValidator(
        _version_or_latest,
        json_schema_input_type=_bounded(1, MAX_VERSION) | Literal["latest"])]
    reason: Reason


class RollbackParams(TypedDict, total=False):
    """``POST /serving/rollback``: ``to`` a version (default: the one served before)."""

    __pydantic_config__ = ConfigDict(extra="forbid", strict=True)

    to: Annotated[int | None, optional_whole_number(1, MAX_VERSION)]
    reason: Required[Reason]


class Label(TypedDict):
    """The true value of an answer given: its ``prediction_id`` (from ``/predict``) and value."""

    __pydantic_config__ = ConfigDict(extra="forbid", strict=True)

    prediction_id: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    value: Annotated[float, BeforeValidator(_finite_number, json_schema_input_type=float)]


class FeedbackBody(TypedDict):
    """``POST /feedback``: more labels than ``MAX_RECORDS`` is a 413."""

    __pydantic_config__ = ConfigDict(extra="forbid", strict=True)

    labels: Annotated[list[Label], Field(min_length=1)]


class BatchesQuery(TypedDict, total=False):
    """``GET /batches?limit=N&before=SEQ``: ``before`` pages on from a batch's ``seq``."""

    limit: Annotated[int, Field(ge=1, le=BATCHES_MAX_LIMIT)]
    before: Annotated[int, Field(ge=1)]


class ForgetBody(TypedDict):
    """``POST /batches/<id>/forget``: always say why."""

    __pydantic_config__ = ConfigDict(extra="forbid", strict=True)

    reason: Reason


class AuditQuery(TypedDict, total=False):
    """``GET /audit?limit=N&before=ID&action=A`` (checked by app.web.control)."""

    limit: Annotated[int, Field(ge=1, le=AUDIT_MAX_LIMIT)]
    before: Annotated[int, Field(ge=1, le=MAX_VERSION)]
    action: Literal[ACTIONS]


_EVALUATE = TypeAdapter(EvaluateParams)
_SERVING = TypeAdapter(ServingChange)
_ROLLBACK = TypeAdapter(RollbackParams)
_FORGET = TypeAdapter(ForgetBody)


def _only(body: type) -> str:
    """``the body may have only a, b and c``: the fields of the TypedDict ``body``."""
    names = list(body.__annotations__)
    listed = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
    return f"the body may have only {listed}"


# The fields each body may hold, for the error that names an unknown one.
_FIELDS = {"evaluate": _only(EvaluateParams), "serving": _only(ServingChange),
           "rollback": _only(RollbackParams), "forget": _only(ForgetBody),
           "feedback": 'the body is {"labels": [...]}, each {"prediction_id": "...", "value": x}'}

_MESSAGES = {
    "missing": "is required",
    "extra_forbidden": "is not a known field",
    "string_type": "must be text, got {got}",
    "string_too_short": "must not be empty or blank",
    "string_too_long": "must be at most {max_length:,} characters long",
    "typed_dict_type": "must be a JSON object, got {got}",
    "dict_type": "must be a JSON object, got {got}",
    "list_type": "must be a list, got {got}",
    "too_short": "must hold at least one record",
}


def field_path(location: tuple) -> str:
    """``("records", 3, "idade")`` -> ``"records[3].idade"``."""
    path = ""
    for part in location:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "body"


def _known_fields(location: tuple, scope: str, features: tuple[str, ...]) -> str:
    """What may stand where an unknown field was found."""
    if scope in _FIELDS:
        return _FIELDS[scope]
    if scope == "batch" and len(location) == 1:
        return 'a batch is {"records": [...]} and nothing else'
    return f"a record has only {', '.join(features)}"


def _describe(error: dict, scope: str, features: tuple[str, ...]) -> dict:
    template = _MESSAGES.get(error["type"])
    if template is None:
        message = error["msg"]
    else:
        message = template.format(got=_kind(error.get("input")), **(error.get("ctx") or {}))
    if error["type"] == "too_short" and error["loc"] == ("labels",):
        message = "must hold at least one label"
    if error["type"] == "extra_forbidden":
        message += f" ({_known_fields(error['loc'], scope, features)})"
    elif error["type"] == "missing" and error["loc"] == ("reason",):
        message += ": say why, for the audit trail"
    return {"field": field_path(error["loc"]), "message": message}


def _invalid(error: ValidationError, scope: str, features: tuple[str, ...] = ()) -> InvalidInput:
    """``scope``: "record", "batch", or a body of :data:`_FIELDS`: the shape being checked;
    ``features``: what a record holds."""
    described = [_describe(item, scope, features)
                 for item in error.errors(include_url=False, include_input=True)]
    first = described[0]
    message = f"{first['field']}: {first['message']}"
    if len(described) > 1:
        others = len(described) - 1
        message += f" (and {others:,} more problem{'s' if others > 1 else ''})"
    return InvalidInput(message, described[:MAX_LISTED_ERRORS])


def parse_json(body: bytes) -> Any:
    """The body as JSON values; an :class:`InvalidInput` saying why when it is not JSON."""
    if not body or body.isspace():
        raise InvalidInput("the body is empty: it must be JSON")
    try:
        return pydantic_core.from_json(body, allow_inf_nan=True)
    except ValueError as error:
        reason = str(error)
        if "recursion limit" in reason:
            raise InvalidInput("the body is nested too deeply to be a request") from None
        raise InvalidInput(f"the body is not valid JSON: {reason}") from None


def _validate(adapter: TypeAdapter, data: Any, scope: str, features: tuple[str, ...] = ()) -> Any:
    try:
        return adapter.validate_python(data)
    except ValidationError as error:
        raise _invalid(error, scope, features) from None


def _typed_dict(name: str, fields: dict, doc: str, config: ConfigDict | None = None) -> type:
    kind = TypedDict(name, fields)
    kind.__doc__ = doc
    if config is not None:
        kind.__pydantic_config__ = config
    return kind


class DatasetRequests:
    """The bodies of ``/predict`` and ``/ingest`` for one dataset, as pydantic types.

    Built once per app from the declaration in force: ``PredictBody`` (one record of exactly the
    features, or ``{"records": [...]}`` of them), which requests are checked against, and
    ``IngestBody`` (labelled records), which describes ``/ingest`` in the OpenAPI document (its
    rows are checked by the row schema when their batch is normalized, so a bad row is
    quarantined with its reason, not refused). ``max_records``: the most records one request
    carries (the app's ``MAX_RECORDS``), as the document states it.
    """

    def __init__(self, dataset: Dataset, max_records: int = limits.MAX_RECORDS):
        self.dataset = dataset
        self.features = dataset.feature_names
        strict = ConfigDict(extra="forbid", strict=True)
        self.Record = _typed_dict("Record", {f.name: self._checked(f) for f in dataset.features},
                                  "One record: exactly the declared features.", strict)
        self.Batch = _typed_dict("Batch", {"records": Annotated[list[self.Record],
                                                                Field(min_length=1)]},
                                 f"Records to predict, 1 to {max_records:,}.", strict)
        self.PredictBody = self.Record | self.Batch
        described = {f.name: Required[self._described(f)] for f in dataset.features}
        described[dataset.target] = Required[Annotated[float, Field(
            **({"ge": dataset.target_min} if dataset.target_min is not None else {}),
            **({"le": dataset.target_max} if dataset.target_max is not None else {}))]]
        described.update({name: NotRequired[Annotated[str, Field(max_length=MAX_TEXT)]]
                          for name in dataset.keep})
        described[TIMESTAMP] = NotRequired[Annotated[str, Field(
            description="ISO 8601; the batch's arrival time if absent")]]
        self.LabelledRecord = _typed_dict(
            "LabelledRecord", described,
            "A record to learn from: the features and the target. Checked by the row schema "
            "when its batch is normalized; other fields are reported on the batch, not kept.")
        self.IngestBody = _typed_dict("IngestBody", {"records": Annotated[
            list[self.LabelledRecord], Field(min_length=1, max_length=max_records)]},
            f"POST /ingest: more than {max_records:,} records (MAX_RECORDS) is a 413.")
        self._record, self._batch = TypeAdapter(self.Record), TypeAdapter(self.Batch)

    @staticmethod
    def _checked(feature) -> Any:
        if not isinstance(feature, Number):
            return Text
        check = (_whole_number if feature.whole else _number_within)(feature.min, feature.max)
        return Annotated[int if feature.whole else float, BeforeValidator(
            check, json_schema_input_type=DatasetRequests._described(feature))]

    @staticmethod
    def _described(feature) -> Any:
        if not isinstance(feature, Number):
            return Annotated[str, Field(min_length=1, max_length=MAX_TEXT)]
        return Annotated[int if feature.whole else float, Field(ge=feature.min, le=feature.max)]

    def predict_records(self, body: bytes, max_records: int) -> list[dict]:
        """The records of a ``/predict`` body: one record, or ``{"records": [...]}``."""
        data = parse_json(body)
        if not isinstance(data, dict):
            raise InvalidInput('the body must be a JSON object: one record or {"records": [...]}, '
                               f"got {_kind(data)}")
        if "records" not in data:
            return [_validate(self._record, data, "record", self.features)]
        records = data["records"]
        # Checked before validating, so an oversized batch costs no per-record work.
        if isinstance(records, list) and len(records) > max_records:
            message = (f"at most {max_records:,} records are accepted per request, "
                       f"got {len(records):,}")
            raise InvalidInput(f"records: {message}", [{"field": "records", "message": message}])
        return _validate(self._batch, data, "batch", self.features)["records"]


def evaluate_params(body: bytes) -> dict:
    """``{"version": V, "n": N}``, both optional; an empty body means the defaults."""
    if not body or body.isspace():
        return {}
    return _validate(_EVALUATE, parse_json(body), "evaluate")


def ingest_records(body: bytes, max_records: int) -> list[dict]:
    """The records of a ``/ingest`` body, ``{"records": [{...}, ...]}``, 1 to ``max_records``.

    Only the shape is checked here: a list of JSON objects. What each record holds is checked by
    the row schema when the batch is normalized, so a bad row is quarantined with its reason
    instead of refusing the whole request.
    """
    data = parse_json(body)
    if not isinstance(data, dict) or "records" not in data:
        raise InvalidInput('the body must be a JSON object {"records": [...]}, got '
                           f"{_kind(data) if not isinstance(data, dict) else 'no records'}")
    extra = sorted(set(data) - {"records"})
    if extra:
        raise InvalidInput(f'{extra[0]}: is not a known field (a batch is {{"records": [...]}} '
                           "and nothing else)", [{"field": extra[0], "message": "is not a known field"}])
    records = data["records"]
    if not isinstance(records, list):
        raise InvalidInput(f"records: must be a list of records, got {_kind(records)}",
                           [{"field": "records", "message": "must be a list"}])
    if not records:
        raise InvalidInput("records: must hold at least one record",
                           [{"field": "records", "message": "must hold at least one record"}])
    if len(records) > max_records:
        raise TooManyRecords(f"records: at most {max_records:,} records are accepted per "
                             f"request, got {len(records):,}")
    wrong = [index for index, record in enumerate(records) if not isinstance(record, dict)]
    if wrong:
        errors = [{"field": f"records[{index}]",
                   "message": f"must be a JSON object, got {_kind(records[index])}"}
                  for index in wrong[:MAX_LISTED_ERRORS]]
        message = f"{errors[0]['field']}: {errors[0]['message']}"
        if len(wrong) > 1:
            message += f" (and {len(wrong) - 1:,} more problem{'s' if len(wrong) > 2 else ''})"
        raise InvalidInput(message, errors)
    return records


_FEEDBACK = TypeAdapter(FeedbackBody)


def feedback_labels(body: bytes, max_labels: int) -> list[dict]:
    """The labels of a ``/feedback`` body, ``{"labels": [{"prediction_id", "value"}, ...]}``."""
    data = parse_json(body)
    if not isinstance(data, dict):
        raise InvalidInput(f'the body must be a JSON object {{"labels": [...]}}, got {_kind(data)}')
    labels = data.get("labels")
    if isinstance(labels, list) and len(labels) > max_labels:
        raise TooManyRecords(f"labels: at most {max_labels:,} labels are accepted per request, "
                             f"got {len(labels):,}")
    return _validate(_FEEDBACK, data, "feedback")["labels"]


def reason_param(body: bytes) -> str:
    """The ``reason`` of a body ``{"reason": "..."}``: text, not blank, trimmed."""
    data = _object(body, '{"reason": "..."}')
    return _validate(_FORGET, data, "forget")["reason"]


def _object(body: bytes, what: str) -> dict:
    data = parse_json(body)
    if not isinstance(data, dict):
        raise InvalidInput(f"the body must be a JSON object {what}, got {_kind(data)}")
    return data


def serving_change(body: bytes) -> dict:
    """``{"version": V or "latest", "reason": "..."}``, both required."""
    data = _object(body, '{"version": V or "latest", "reason": "..."}')
    return _validate(_SERVING, data, "serving")


def rollback_params(body: bytes) -> dict:
    """``{"reason": "...", "to": V}``: ``reason`` required, ``to`` optional."""
    data = _object(body, '{"reason": "...", "to": V}')
    return _validate(_ROLLBACK, data, "rollback")


def query_number(args: Mapping[str, str], name: str, low: int, high: int,
                 default: int | None = None) -> int | None:
    """``?name=N`` as a whole number in [low, high]; ``default`` when it is absent."""
    raw = args.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 10 and low <= int(raw) <= high):
        message = f"must be a whole number between {low:,} and {high:,}"
        raise InvalidInput(f"{name}: {message}", [{"field": name, "message": message}])
    return int(raw)
