"""Logging: loguru is configured here and nowhere else.

Standard-library logging (Celery's, Flask's, gunicorn's) is routed into loguru, so every
process writes one line per event in one format, with the task and batch ids when known.

``LOG_JSON=1`` writes each event as one JSON object per line instead (loguru's ``serialize``:
the text line under ``text``, and under ``record`` the level, time, process, module, function,
message and ``extra``, which holds ``task_id``, ``batch_id`` and, on a task's last line,
``task``, ``outcome``, ``duration``, ``version``). ``LOG_FILE=path`` also appends every event
to that file, in the same format; ``make run`` sets it for its processes (see
:attr:`app.settings.Settings.system_log`), and ``python -m app logs`` summarises it. Every
event, on either sink, goes through :func:`app.settings.redact` on its way out.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TextIO

from loguru import logger

from app import settings

FORMAT = ("{time:YYYY-MM-DD HH:mm:ss.SSS} | {level: <7} | {process.name} | "
          "task={extra[task_id]} batch={extra[batch_id]} | {name}:{function} | {message}")


class InterceptHandler(logging.Handler):
    """Hands standard-library records to loguru, keeping their level and origin."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        logger.opt(depth=6, exception=record.exc_info).log(level, record.getMessage())


class Redacted:
    """A sink writing each event to ``stream`` as :func:`app.settings.redact` leaves it.

    The safety net under every line: whatever a library put in a message, an exception's text
    or a traceback (a connection error quoting its URL, a variable shown by ``diagnose``), no
    password leaves the process. ``stream`` is closed with the sink when ``owned``.
    """

    def __init__(self, stream: TextIO, owned: bool = False):
        self.stream, self.owned = stream, owned
        # Loguru draws debug tracebacks with the characters this encoding has.
        self.encoding = getattr(stream, "encoding", None)

    def write(self, message: str) -> None:
        self.stream.write(settings.redact(message))

    def flush(self) -> None:
        self.stream.flush()

    def stop(self) -> None:
        if self.owned:
            self.stream.close()


def configure(level: str | int = "INFO", debug: bool = False) -> None:
    """Send everything to stderr through loguru, and to ``LOG_FILE`` when it is set.

    ``enqueue=True`` makes the sinks safe across the worker's forked pool processes; every
    process of the system appends whole lines to the one file, so it is never rotated here
    (logrotate's ``copytruncate`` suits it). ``diagnose`` prints variable values in
    tracebacks, which may hold secrets: debug only (and masked even then).
    """
    environment = settings.load()
    if isinstance(level, int):
        level = logging.getLevelName(level)
    logger.remove()
    logger.configure(extra={"task_id": "-", "batch_id": "-"})
    # No colours: escape codes inside a traceback's text could split a password in two and
    # hide it from the redaction.
    options = dict(level=level, format=FORMAT, enqueue=True, backtrace=debug, diagnose=debug,
                   serialize=environment.log_json, colorize=False)
    logger.add(Redacted(sys.stderr), **options)
    if environment.log_file:
        Path(environment.log_file).parent.mkdir(parents=True, exist_ok=True)
        # Line-buffered, as loguru opens a file sink: each event reaches the file whole.
        log_file = open(environment.log_file, "a", buffering=1, encoding="utf-8")
        logger.add(Redacted(log_file, owned=True), **options)
    logging.basicConfig(handlers=[InterceptHandler()], level=0, force=True)
