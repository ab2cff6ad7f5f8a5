"""Who may change state, and who did: the rules of ``API_TOKEN``.

Every route that changes state (all POST and PUT routes but ``/predict``) is wrapped in
:func:`operator_route`:

- ``API_TOKEN`` set: the request must carry ``Authorization: Bearer <token>``; without it, or
  with another, the answer is 401. The comparison takes constant time, and the token is never
  logged or echoed.
- ``API_TOKEN`` unset: only loopback clients (127.0.0.0/8, ::1) are served; others get 403.

``API_TOKEN`` may name its holder as ``name:secret`` (``ops:s3cr3t``); the whole value is the
bearer token either way. :func:`actor` says who made the request, for the audit trail: the
token's name (``token`` when it has none), else the client's address.
"""

from __future__ import annotations

import functools
import hmac
import ipaddress

from flask import current_app, g, request
from werkzeug.exceptions import Forbidden, Unauthorized


def _token() -> str | None:
    return current_app.config.get("API_TOKEN") or None


def _is_loopback(address: str | None) -> bool:
    try:
        return ipaddress.ip_address(address or "").is_loopback
    except ValueError:
        return False


def check_operator() -> str:
    """The request's actor if it may change state; raises 401/403 otherwise."""
    token = _token()
    if token is None:
        if not _is_loopback(request.remote_addr):
            raise Forbidden("this route changes state and answers loopback clients only, "
                            "unless the server sets API_TOKEN")
        return f"client {request.remote_addr}"
    scheme, _, given = (request.headers.get("Authorization") or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
        error = Unauthorized("this route changes state: send Authorization: Bearer <API_TOKEN>")
        error.www_authenticate = None
        raise error
    name, separator, _ = token.partition(":")
    return name if separator and name else "token"


def operator_route(view):
    """Let the view run only for an operator; :func:`actor` then names them."""

    @functools.wraps(view)
    def guarded(*args, **kwargs):
        g.actor = check_operator()
        return view(*args, **kwargs)

    # The OpenAPI document (app.web.openapi) marks such routes as needing the token.
    guarded.operator_only = True
    return guarded


def actor() -> str:
    """Who is making this request (set by :func:`operator_route`)."""
    return g.get("actor") or f"client {request.remote_addr}"
