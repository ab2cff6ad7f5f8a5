"""Freshness: from sending ``pipeline.generate`` to ``/predict`` answering with its version.

    .venv/bin/python bench/freshness.py [--samples 30] [--batch-size 1000]

Starts a private Redis, the Procfile's worker and its web server over one PIPELINE_HOME.
For each sample it sends one generation (so the clock includes the broker, the chain, the
train step, the publication and the notice to every web process), then asks ``/predict``
every few milliseconds until the answer carries a newer version. The baseline is the same
generate → normalize → train step run in one process: what the work costs without Celery,
the broker or the web processes.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from loguru import logger  # noqa: E402

from app.data.batches import generate_batch, normalize_batch  # noqa: E402
from app.lifecycle.home import Home  # noqa: E402
from app.lifecycle.learning import Learner  # noqa: E402
from app.redis_server import private_redis  # noqa: E402
from app.runner import web_server  # noqa: E402
from bench.support import celery_app, post_json, worker_process  # noqa: E402
from bench.table import Figure, report  # noqa: E402

RECORD = {"idade": 35, "cidade": "São Paulo", "cargo": "Professor"}
BAR_MS = 500.0


def served_version(url: str) -> int | None:
    _, headers = post_json(url + "/predict", RECORD)
    return int(headers["X-Model-Version"])


def in_process_ms(samples: int, size: int) -> list[float]:
    """One batch's generate → normalize → train in this process, per sample."""
    with tempfile.TemporaryDirectory(prefix="bench-fresh-plain-") as temp:
        home = Home(temp)
        learner = Learner(home)
        times = []
        for number in range(samples + 1):
            began = time.perf_counter()
            batch_id = f"plain-{number:05d}"
            generate_batch(home.lake, home.ledger, batch_id, size)
            normalize_batch(home.lake, home.ledger, batch_id, home.dataset)
            learner.train([batch_id])
            times.append(1e3 * (time.perf_counter() - began))
        return times[1:]  # the first step pays for imports


def through_system(samples: int, size: int, temp: Path) -> tuple[list[float], int]:
    """Milliseconds from each generation's message to /predict serving its version."""
    home = temp / "home"
    latencies, missed = [], 0
    with private_redis() as redis_url, worker_process(redis_url, home, temp / "worker.log",
                                                      BATCH_SIZE=str(size)):
        app = celery_app(redis_url)
        # Unmeasured: the first version, so that web processes have a model to answer from.
        app.send_task("pipeline.generate", kwargs={"batch_size": size}).get(timeout=60)
        with web_server(home, temp / "web.log") as url:
            before = served_version(url)
            for _ in range(samples):
                began = time.perf_counter()
                app.send_task("pipeline.generate", kwargs={"batch_size": size})
                while (version := served_version(url)) == before:
                    if time.perf_counter() - began > 10:
                        missed += 1
                        break
                    time.sleep(0.002)
                else:
                    latencies.append(1e3 * (time.perf_counter() - began))
                before = version
                time.sleep(0.2)  # let the step finish its bookkeeping: no backlog between samples
    return latencies, missed


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=1000)
    options = parser.parse_args(argv)
    logger.remove()
    plain = in_process_ms(options.samples, options.batch_size)
    with tempfile.TemporaryDirectory(prefix="bench-fresh-") as temp:
        latencies, missed = through_system(options.samples, options.batch_size, Path(temp))
    if missed:
        print(f"{missed} of {options.samples} versions never reached /predict within 10 s")
    report([
        Figure("freshness p95, generate -> /predict", p95(latencies), "ms", BAR_MS, "the bar",
               higher=False, bar=1.0, note=f"BATCH_SIZE={options.batch_size}, "
                                            f"{len(latencies)} samples"),
        Figure("freshness p50, generate -> /predict", statistics.median(latencies), "ms",
               statistics.median(plain), "the same step in one process", higher=False),
    ])
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
