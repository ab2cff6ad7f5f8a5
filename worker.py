"""The one Celery app: `celery -A worker worker` and `celery -A worker beat` load it."""

from celery import Celery, signals

from app import logs, settings

app = Celery("pipeline", include=["app.tasks.pipeline"])
app.config_from_object("celeryconfig")


@signals.setup_logging.connect
def route_logging_to_loguru(loglevel=None, **_):
    """Celery leaves logging alone when this signal has a receiver; loguru takes it."""
    logs.configure(level=loglevel or "INFO", debug=settings.load().debug)
