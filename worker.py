"""The one Celery app: `celery -A worker worker` and `celery -A worker beat` load it."""

from celery import Celery, signals
from threadpoolctl import threadpool_limits

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


@signals.worker_process_init.connect
def one_compute_thread(**_):
    """Each pool process computes on one thread (BLAS, OpenMP).

    The pool is already a process per core. A process's own BLAS threads only spin beside the
    other processes' work: streamed training made 65-74k records/s with OpenBLAS's two threads
    per process on two cores, 107-148k with one (bench/README.md).
    """
    threadpool_limits(limits=1)
