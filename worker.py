"""The one Celery app: `celery -A worker worker` and `celery -A worker beat` load it."""

from celery import Celery, signals

from app import logs, settings

app = Celery("pipeline", include=["app.tasks.pipeline"])
app.config_from_object("celeryconfig")


@signals.setup_logging.connect
def route_logging_to_loguru(loglevel=None, **_):
    """Celery leaves logging alone when this signal has a receiver; loguru takes it."""
    logs.configure(level=loglevel or "INFO", debug=settings.load().debug)


@signals.worker_init.connect
def warm_up(**_):
    """Run two tiny batches through the pipeline's own functions before the pool forks.

    The first normalize and train in a process pay for what pandas, pandera and pyarrow set up
    on first use: 350 ms more than the next ones. Done here, every pool process inherits it,
    and the first real batch is as fast as the rest.
    """
    from app.lifecycle.warmup import rehearse

    rehearse()
