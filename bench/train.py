"""Streamed training through Celery against the same steps in a plain loop.

    .venv/bin/python bench/train.py [--batches 40] [--batch-size 10000]

The baseline runs generate → normalize → train for each batch in one process, one version
per batch, on local Parquet files: the cost of the work itself. The pipeline gets the same
batches as a backlog: ``--batches`` ``pipeline.generate`` messages sent at once to one worker
started with the Procfile's ``worker`` command (private Redis, its own PIPELINE_HOME), and is
timed from the first message to the version that learnt the last batch. A train step takes
every batch waiting for it, so the pipeline makes fewer versions than it has batches: the
table shows how many.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: the repository's packages come first
    sys.path.insert(0, str(ROOT))

from loguru import logger  # noqa: E402

from app.data.batches import generate_batch, normalize_batch  # noqa: E402
from app.lifecycle.home import Home  # noqa: E402
from app.lifecycle.learning import Learner  # noqa: E402
from app.redis_server import private_redis  # noqa: E402
from bench.support import celery_app, worker_process  # noqa: E402
from bench.table import Figure, report  # noqa: E402


def plain_loop(home: Path, batches: int, size: int) -> float:
    """Seconds for ``batches`` generate → normalize → train steps in this process."""
    home_ = Home(str(home))
    learner = Learner(home_)
    began = time.perf_counter()
    for number in range(batches):
        batch_id = f"plain-{number:05d}"
        generate_batch(home_.lake, home_.ledger, batch_id, size)
        normalize_batch(home_.lake, home_.ledger, batch_id, home_.dataset)
        learner.train([batch_id])
    return time.perf_counter() - began


def trained(home: Home) -> int:
    return sum(batch["status"] == "trained" for batch in home.ledger.newest_first())


def through_celery(home_path: Path, batches: int, size: int, log: Path) -> tuple[float, int]:
    """Seconds for the backlog through one worker, and the number of versions it made."""
    with private_redis() as redis_url, worker_process(redis_url, home_path, log,
                                                      BATCH_SIZE=str(size)) as worker:
        app = celery_app(redis_url)
        home = Home(str(home_path))
        began = time.perf_counter()
        for _ in range(batches):
            app.send_task("pipeline.generate", kwargs={"batch_size": size})
        while trained(home) < batches:
            if worker.poll() is not None:
                raise SystemExit(f"the worker died: see {log}")
            time.sleep(0.02)
        return time.perf_counter() - began, home.registry.latest_version() or 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3,
                        help="each figure is the median of this many rounds")
    options = parser.parse_args(argv)
    logger.remove()  # the baseline's own log lines would only slow it down
    records = options.batches * options.batch_size
    plain, pipeline, versions = [], [], []
    for number in range(options.rounds):
        with tempfile.TemporaryDirectory(prefix=f"bench-train-{number}-") as temp:
            plain.append(records / plain_loop(Path(temp) / "plain", options.batches,
                                              options.batch_size))
            seconds, made = through_celery(Path(temp) / "pipeline", options.batches,
                                           options.batch_size, Path(temp) / "worker.log")
            pipeline.append(records / seconds)
            versions.append(made)
    spread = (f"{options.rounds} rounds: {min(pipeline):,.0f}-{max(pipeline):,.0f} rec/s "
              f"(plain {min(plain):,.0f}-{max(plain):,.0f})")
    report([
        Figure("streamed training, records/s", statistics.median(pipeline), "rec/s",
               statistics.median(plain), "plain loop, one process", bar=0.5,
               note=f"{options.batches} batches of {options.batch_size:,} in "
                    f"{statistics.median(versions):.0f} train steps; {spread}"),
        Figure("streamed training, records/s (absolute)", statistics.median(pipeline), "rec/s",
               100_000, "the bar", bar=1.0, note=spread),
    ])
    return 0


if __name__ == "__main__":
    sys.exit(main())
