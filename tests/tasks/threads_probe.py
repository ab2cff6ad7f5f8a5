"""A task a test loads into a real worker (``-I tests.tasks.threads_probe``): what a pool
process's compute libraries (BLAS, OpenMP) would run on."""

from celery import shared_task
from threadpoolctl import threadpool_info


@shared_task(name="probe.compute_threads")
def compute_threads() -> dict[str, int]:
    return {info["filepath"]: info["num_threads"] for info in threadpool_info()}
