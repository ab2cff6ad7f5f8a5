"""Flower's settings file: Flower runs it from the folder it starts in (the repository).

Every other Flower setting comes from the environment (``FLOWER_BASIC_AUTH``, ``FLOWER_PORT``
through the Procfile); this file only closes a gap. With ``basic_auth`` set, every page and
API route of Flower demands the password except ``/metrics``, which shows every task name,
worker and count to anyone. It gets the same check as the other pages: with basic auth set, a
request without the right password is refused with 401; without it (Flower on 127.0.0.1
only), it stays open as every page is. ``/healthcheck`` (a bare "OK") stays open, for probes.
"""

import tornado.web
from flower.views.monitor import Metrics

if not getattr(Metrics.get, "__wrapped__", None):
    Metrics.get = tornado.web.authenticated(Metrics.get)
