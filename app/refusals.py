"""Why a server could not be used, in an operator's words: what the start-up checks of Redis
(:func:`app.redis_server.refusal`) and of object storage (:func:`app.storage.refusal`) share.

A client library wraps the socket's error in its own (redis-py's ``ConnectionError``,
botocore's ``EndpointConnectionError``), so each row looks for its kind anywhere in the chain
of causes; the first row that matches gives the sentence.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator

# How long a start-up check waits for a server: it may be across a network and behind TLS.
CHECK_TIMEOUT = 5.0


def causes(error: BaseException) -> Iterator[BaseException]:
    """``error``, then what it was raised from or while handling, and so on."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def caused_by(error: BaseException, *kinds: type[BaseException]) -> BaseException | None:
    """The first error in ``error``'s chain of causes that is one of ``kinds``."""
    return next((cause for cause in causes(error) if isinstance(cause, kinds)), None)


def network_trouble(error: BaseException, host: str, port: int | str, timeout: float,
                    trusted: str) -> str | None:
    """What went wrong on the way to ``host:port``, or None when the network was not the trouble.

    ``trusted`` names the CA certificates the client checked the server's certificate against.
    """
    cause = caused_by(error, ssl.SSLCertVerificationError, socket.gaierror,
                      ConnectionRefusedError, TimeoutError)
    if isinstance(cause, ssl.SSLCertVerificationError):
        return (f"its TLS certificate is not trusted ({cause.verify_message}); checked "
                f"against {trusted}")
    if isinstance(cause, socket.gaierror):
        return f"the name {host} does not resolve"
    if isinstance(cause, ConnectionRefusedError):
        return f"nothing listens on {host}:{port} (connection refused)"
    if isinstance(cause, TimeoutError):
        return f"no answer from {host}:{port} within {timeout:g} s"
    return None
