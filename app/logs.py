"""Logging: loguru is configured here and nowhere else.

Standard-library logging (Celery's, Flask's, gunicorn's) is routed into loguru, so every
process writes one line per event in one format, with the task and batch ids when known.
"""

from __future__ import annotations

import logging
import sys

from loguru import logger

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


def configure(level: str | int = "INFO", debug: bool = False) -> None:
    """Send everything to stderr through loguru.

    ``enqueue=True`` makes the sink safe across the worker's forked pool processes.
    ``diagnose`` prints variable values in tracebacks, which may hold secrets: debug only.
    """
    if isinstance(level, int):
        level = logging.getLevelName(level)
    logger.remove()
    logger.configure(extra={"task_id": "-", "batch_id": "-"})
    logger.add(sys.stderr, level=level, format=FORMAT, enqueue=True,
               backtrace=debug, diagnose=debug)
    logging.basicConfig(handlers=[InterceptHandler()], level=0, force=True)
