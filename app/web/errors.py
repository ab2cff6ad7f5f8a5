"""Every error the API gives is JSON ``{"error": "<one sentence>", ...}``, from one handler.

The handler takes every :class:`~werkzeug.exceptions.HTTPException`: the ones the views raise
(400 with the field at fault, 404 for an unknown version, 503 while no model exists) and
Flask's own (404 for an unknown route, 405, 413 for a body over ``MAX_CONTENT_LENGTH``). An
exception nothing handles reaches it as a 500, after Flask has logged the traceback; the client
gets a sentence, never the traceback.

Two kinds of error are turned into HTTP errors here, so that no view handles them itself: what a
body or query breaks (:class:`~app.web.schemas.InvalidInput`, a 400 naming the field;
:class:`~app.web.schemas.TooManyRecords`, a 413), and a store that cannot be used now (any
:class:`OSError`: see :mod:`app.storage`), a 503 on every route; but a file that is missing
from a store that works is a 500, logged with its traceback.
"""

from __future__ import annotations

from flask import Flask, current_app, request
from loguru import logger
from werkzeug.exceptions import (BadRequest, HTTPException, InternalServerError,
                                 RequestEntityTooLarge, ServiceUnavailable)

from app.web.schemas import InvalidInput, TooManyRecords


class InvalidRequest(BadRequest):
    """A 400 whose answer also lists each field at fault."""

    def __init__(self, invalid: InvalidInput):
        super().__init__(invalid.message)
        self.errors = invalid.errors


def read_body(app: Flask | None = None) -> bytes:
    """The request body; a 413 when it is over ``MAX_CONTENT_LENGTH``, however it was sent.

    A body with a ``Content-Length`` over the limit is refused before it is read. A streamed
    (chunked) body has no length: Werkzeug stops reading it at the limit and returns what it
    read, so reaching the limit is taken as going over it.
    """
    limit = (app or current_app).config["MAX_CONTENT_LENGTH"]
    incoming = request._get_current_object()
    length = incoming.content_length
    if length is not None:
        if limit is not None and length > limit:
            raise RequestEntityTooLarge()
        # The server's input stream holds exactly ``length`` bytes (PEP 3333); reading it
        # directly skips Werkzeug's wrapper, a fifth of a one-record /predict's own time.
        return incoming.environ["wsgi.input"].read(length)
    body = incoming.get_data(cache=False)
    if limit is not None and len(body) >= limit:
        raise RequestEntityTooLarge()
    return body


def _sentence(error: HTTPException) -> str:
    """The error's own description when a view wrote one, else a sentence for its code."""
    if error.description and error.description != type(error).description:
        return error.description
    if error.code == 404:
        return f"{request.path} is not a route of this API"
    if error.code == 405:
        allowed = ", ".join(sorted(getattr(error, "valid_methods", None) or []))
        return f"{request.method} is not allowed on {request.path}; allowed: {allowed}"
    if error.code == 413:
        limit = current_app.config["MAX_CONTENT_LENGTH"]
        return f"the body is larger than the limit of {limit:,} bytes"
    if error.code == 400:
        return "the request is malformed"
    if error.code == 500:
        return "the server failed to answer this request; the error has been logged"
    return f"{error.name.lower()}"


def json_error(error: HTTPException):
    """Keep the error's status and headers (``Allow``, ``Retry-After``); make the body JSON."""
    body = {"error": _sentence(error)}
    if isinstance(error, InvalidRequest) and error.errors:
        body["errors"] = error.errors
    response = error.get_response()
    response.set_data(current_app.json.dumps(body))
    response.mimetype = "application/json"
    return response


# Seconds a client is told to wait before asking again while the store cannot be used.
STORE_RETRY_AFTER = 5


def store_unavailable(error: OSError):
    """A 503 for a store that cannot be read or written now, whichever view met it."""
    logger.warning("{} {}: the storage cannot be used now: {}: {}", request.method, request.path,
                   type(error).__name__, error)
    return json_error(ServiceUnavailable(
        f"the pipeline's storage cannot be used now ({type(error).__name__}); try again in a "
        "few seconds", retry_after=STORE_RETRY_AFTER))


def missing_file(error: FileNotFoundError):
    """A 500: a file a view needed is absent while the store works, which waiting will not
    mend (the store's own failures are its other OSErrors)."""
    logger.opt(exception=error).error("{} {}: a file the answer needs is missing: {}",
                                      request.method, request.path, error)
    return json_error(InternalServerError())


def init_app(app: Flask) -> None:
    app.register_error_handler(HTTPException, json_error)
    # What a body or query breaks, raised by the checks (app.web.schemas) wherever a view
    # calls them: a 400 naming the field, or a 413, with no handling in the view.
    app.register_error_handler(InvalidInput, lambda invalid: json_error(InvalidRequest(invalid)))
    app.register_error_handler(TooManyRecords,
                               lambda error: json_error(RequestEntityTooLarge(str(error))))
    # The storage (a local folder or S3) failing under any view: app.storage raises only OSError.
    app.register_error_handler(OSError, store_unavailable)
    app.register_error_handler(FileNotFoundError, missing_file)
