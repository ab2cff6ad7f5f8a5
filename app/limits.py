"""The limits and defaults that the API, the tasks and the command line share, each defined once,
and the two checks they all make of what a person gives: a whole number within bounds, and a
reason for the audit trail.

Nothing here imports more than the standard library, so the command line can use it at no cost.
"""

from __future__ import annotations

import math
from typing import Any

# The most records (or labels) one request carries: /predict, /ingest, /feedback. The web app's
# MAX_RECORDS setting defaults to it; the command line sends files in calls of at most this many.
MAX_RECORDS = 10_000

# Model versions are numbered from 1; this bound keeps a version a 32-bit signed integer.
MAX_VERSION = 2**31
# Sequence numbers (a batch's ``seq``): the largest whole number a JSON client reads exactly.
MAX_SEQUENCE = 2**53

# POST /evaluate, pipeline.evaluate and ``python -m app evaluate``: how many records to score on.
EVALUATE_N = 5000
EVALUATE_N_MIN, EVALUATE_N_MAX = 2, 1_000_000

# An operator's reason goes into the audit trail: room for a sentence and a ticket link.
MAX_REASON = 1000


class NotWholeNumber(ValueError):
    """Not an int, nor a float with nothing after the point (a bool is not a number)."""


class OutOfRange(ValueError):
    """A whole number outside the bounds asked for."""


def whole_number(value: Any, low: float, high: float, name: str = "value") -> int:
    """``value`` as an int when it is a whole number in [low, high].

    ``35.0`` counts as 35 (a float column exported from pandas writes whole numbers that way);
    ``35.5``, ``True``, ``"35"`` and ``NaN`` do not.

    >>> whole_number(35.0, 18, 70, "age")
    35
    >>> whole_number(True, 18, 70, "age")
    Traceback (most recent call last):
    app.limits.NotWholeNumber: age must be a whole number, got True
    >>> whole_number(0, 1, 1_000_000, "batch_size")
    Traceback (most recent call last):
    app.limits.OutOfRange: batch_size must be between 1 and 1,000,000, got 0
    """
    number = value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        number = int(value)
    if isinstance(number, bool) or not isinstance(number, int):
        raise NotWholeNumber(f"{name} must be a whole number, got {value!r}")
    if not low <= number <= high:
        raise OutOfRange(f"{name} must be between {low:,} and {high:,}, got {number:,}")
    return number


def reason_problem(value: Any) -> str | None:
    """What is wrong with ``value`` as an operator's reason, in a few words; None when nothing.

    A reason is text that is not blank and, trimmed, at most :data:`MAX_REASON` characters.
    """
    if not isinstance(value, str):
        return "must be text"
    text = value.strip()
    if not text:
        return "is required: say why, for the audit trail"
    if len(text) > MAX_REASON:
        return f"must be at most {MAX_REASON:,} characters long"
    return None


def reason(value: Any) -> str:
    """``value`` trimmed, when it is a reason (see :func:`reason_problem`); a ValueError saying
    what is wrong otherwise.

    >>> reason("  incident 42 ")
    'incident 42'
    >>> reason(" ")
    Traceback (most recent call last):
    ValueError: reason is required: say why, for the audit trail
    """
    problem = reason_problem(value)
    if problem is not None:
        raise ValueError(f"reason {problem}")
    return value.strip()
