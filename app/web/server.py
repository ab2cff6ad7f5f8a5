"""The web server's worker class (``gunicorn.conf.py`` names it): slow and idle clients cannot
take the web app down.

gunicorn's sync worker reads a request while it answers nothing else, and gunicorn's docs say
it assumes a buffering proxy in front; there is none here, and several hosts bind 0.0.0.0.
Four connections sending half a request's head and then waiting left ``/health`` and
``/predict`` unanswered for as long as they stayed open.

This worker is gunicorn's gevent worker, so every connection waits in gevent's event loop
(one greenlet each) until its request is whole, and the app only ever sees whole requests:

- a request's head must arrive within gunicorn's ``keepalive`` seconds, counted from the
  connection's opening or its previous answer, which is also how long an idle kept-alive
  connection is kept: else the connection is closed;
- its body within ``BODY_DEADLINE`` seconds of the head: else ``408`` and the connection is
  closed. A body declared longer than the app's ``MAX_CONTENT_LENGTH`` is not read at all:
  the app answers 413 from its ``Content-Length`` (see app/web/errors.py); a streamed
  (chunked) one is read one byte past the limit, enough for the app's 413; either way the
  connection is then closed;
- a process holds at most gunicorn's ``worker_connections``; past that a new connection is
  answered ``503`` at once, rather than left in the kernel's queue.

Unlike gunicorn's own gevent worker, nothing is monkey-patched. The app then runs as under the
sync worker: one request at a time, to its end, in the worker's main thread, its Redis and
storage calls blocking as before; the locks and threads made when the master imported the app
stay real ones (a patched process would mix them with greenlets, and a greenlet waiting on a
real lock that another greenlet holds stops the whole process). Only the HTTP connections are
gevent's.
"""

from __future__ import annotations

import contextlib
import io
import json

import gevent
from gevent import socket
from gunicorn import util
from gunicorn.workers.ggevent import GeventWorker
from loguru import logger

BODY_DEADLINE = 10.0
# Room in each listener's greenlet pool above the connection limit: gevent stops accepting
# when the pool is full, so this many connections at a time can be accepted to be refused.
REFUSALS_AT_ONCE = 100


def answer(status: str, sentence: str, *headers: str) -> bytes:
    """A whole HTTP answer that closes the connection, its body JSON as every error's is."""
    body = json.dumps({"error": sentence}).encode()
    head = [f"HTTP/1.1 {status}", "Content-Type: application/json",
            f"Content-Length: {len(body)}", "Connection: close", *headers]
    return "\r\n".join(head).encode() + b"\r\n\r\n" + body


REQUEST_TIMEOUT = answer("408 Request Timeout",
                         f"the request's body did not arrive within {BODY_DEADLINE:g} s")
SERVER_FULL = answer("503 Service Unavailable",
                     "the server holds as many connections as it can; try again in a moment",
                     "Retry-After: 1")


class BufferingWorker(GeventWorker):

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.connection_limit = self.cfg.worker_connections
        self.worker_connections = self.connection_limit + REFUSALS_AT_ONCE  # the pools' size
        self.connections = 0
        self.full = False

    def patch(self):
        """Only the listening sockets become gevent's (see the module's docstring)."""
        self.sockets = [socket.socket(s.FAMILY, socket.SOCK_STREAM, fileno=s.sock.detach())
                        for s in self.sockets]

    def handle(self, listener, client, addr):
        if self.connections >= self.connection_limit:
            self.refuse(client)
            return
        self.connections += 1
        try:
            super().handle(listener, client, addr)
        finally:
            self.connections -= 1
            if self.full and self.connections < self.connection_limit:
                self.full = False
                logger.info("web process {} accepts connections again", self.pid)

    def refuse(self, client) -> None:
        if not self.full:
            self.full = True
            logger.warning("web process {} holds {} connections, its limit: new ones are "
                           "answered 503 until some close", self.pid, self.connection_limit)
        with contextlib.suppress(OSError):
            client.sendall(SERVER_FULL)
        # Closing with its request unread would reset the connection, and the client could
        # lose the answer with it.
        util.close_graceful(client, timeout=0.1)

    def handle_request(self, listener_name, req, sock, addr):
        """Serve ``req`` once its whole body is here; 408 when it is not within the deadline."""
        limit = self.wsgi.config["MAX_CONTENT_LENGTH"]
        length = next((int(value) for name, value in req.headers if name == "CONTENT-LENGTH"),
                      None)
        # A body declared over the limit is not read: the app refuses it from its length.
        whole = length is None or length <= limit
        if whole:
            try:
                with gevent.Timeout(BODY_DEADLINE) as deadline:
                    # One byte over the limit is enough for the app to refuse a streamed body.
                    body = req.body.read(limit + 1)
            except gevent.Timeout as error:
                if error is not deadline:
                    raise
                sock.sendall(REQUEST_TIMEOUT)
                util.close_graceful(sock)
                raise StopIteration() from None
            req.body = io.BytesIO(body)
            whole = len(body) <= limit
        if whole:
            served = super().handle_request(listener_name, req, sock, addr)
            # The other connections whose requests are here go first: a client that sends its
            # next request as soon as it has an answer would otherwise be answered again and
            # again while they wait (wrk -c16: p99 374 ms, against 15 ms this way).
            gevent.idle()
            return served
        # The rest of the body is still on its way: the connection cannot carry another
        # request, and closing it with bytes unread would reset it, losing the answer.
        req.force_close()
        try:
            return super().handle_request(listener_name, req, sock, addr)
        finally:
            util.close_graceful(sock)
