"""Memory and growth: what 2,000 batches cost the worker, the web processes and a train step.

    .venv/bin/python bench/growth.py [--batches 2000] [--early 100] [--batch-size 100]

Memory: a private Redis, the Procfile's worker and web server over one PIPELINE_HOME; batches
are sent ten at a time (each group waits for the previous one, so versions keep coming) while
``/predict`` is asked between groups, so every web process loads the new versions. The
resident memory of each process group (a server and its children) after ``--batches`` is
compared with the reading after ``--early``; each reading is the median of ``READINGS``, a
second apart (a collection or an allocation under way moves one reading by megabytes).

Train step time: two homes in this process, one grown to ``--early`` versions and one to
``--batches`` (a :class:`Learner`, one version a batch), then ``WINDOW`` train steps on each,
taken in turn; the median of the old home's steps against the young one's. A mean over a few
steps moved by half when two of them met a disk flush; a median over hundreds does not. And
steps timed at different moments of the run (the first window, then the last, minutes apart)
differed by 15% either way with the machine's state, not the versions: taken in turn, both
meet the same machine. Each figure's spread is printed: the lowest and highest median of its
window's three thirds.
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
from bench.support import celery_app, get_json, group_rss, post_json, worker_process  # noqa: E402
from bench.table import Figure, report  # noqa: E402

GROUP = 10
WINDOW = 200  # train steps around each point, whose median is its figure
READINGS = 5  # memory readings, a second apart, whose median is one figure
RECORD = {"idade": 35, "cidade": "São Paulo", "cargo": "Professor"}


def step_times(batches: int, early: int, size: int) -> tuple[list[float], list[float]]:
    """Seconds of ``WINDOW`` train steps on a home of ``early`` versions and as many on one of
    ``batches`` versions, taken in turn, in this process."""
    with tempfile.TemporaryDirectory(prefix="bench-growth-steps-") as temp:
        homes = [Home(f"{temp}/young"), Home(f"{temp}/old")]
        learners = [Learner(home) for home in homes]
        sent = [0, 0]

        def step(which: int) -> float:
            home = homes[which]
            batch_id = f"step-{sent[which]:05d}"
            sent[which] += 1
            generate_batch(home.lake, home.ledger, batch_id, size)
            normalize_batch(home.lake, home.ledger, batch_id, home.dataset)
            began = time.perf_counter()
            learners[which].train([batch_id])
            return time.perf_counter() - began

        for which, versions in enumerate((early, batches)):
            for _ in range(versions):
                step(which)
        timed = [(step(0), step(1)) for _ in range(WINDOW)]
        return [young for young, _ in timed], [old for _, old in timed]


def memory(batches: int, early: int, size: int, temp: Path) -> dict[str, tuple[list, list]]:
    """Readings of the resident bytes of the worker's and the web server's groups after
    ``early`` and ``batches``."""
    home = temp / "home"
    readings: dict[str, list[list[int]]] = {"worker": [], "web": []}
    with private_redis() as redis_url, worker_process(redis_url, home, temp / "worker.log",
                                                      BATCH_SIZE=str(size)) as worker:
        app = celery_app(redis_url)
        app.send_task("pipeline.generate").get(timeout=60)
        with web_server(home, temp / "web.log") as url:
            web_pgid = _server_pgid(url)
            sent = 1
            while sent < batches:
                results = [app.send_task("pipeline.generate") for _ in range(min(GROUP, batches - sent))]
                for result in results:
                    result.get(timeout=120)
                sent += len(results)
                _wait_trained(Home(str(home)), sent)
                for _ in range(8):  # reach every web worker
                    post_json(url + "/predict", RECORD)
                if (sent >= early and not readings["worker"]) or sent == batches:
                    worker_rss, web_rss = [], []
                    for _ in range(READINGS):
                        worker_rss.append(group_rss(worker.pid))
                        web_rss.append(group_rss(web_pgid))
                        time.sleep(1)
                    readings["worker"].append(worker_rss)
                    readings["web"].append(web_rss)
    return {name: (values[0], values[-1]) for name, values in readings.items()}


def median_and_spread(samples: list[float]) -> tuple[float, str]:
    """The median of ``samples``, and the range of its thirds' medians as text."""
    thirds = [statistics.median(samples[i::3]) for i in range(3)]
    return statistics.median(samples), f"{min(thirds):.4g}-{max(thirds):.4g}"


def _wait_trained(home: Home, count: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while sum(b["status"] in ("trained", "refused") for b in home.ledger.newest_first()) < count:
        if time.monotonic() > deadline:
            raise SystemExit(f"fewer than {count} batches trained after {timeout:.0f} s")
        time.sleep(0.05)


def _server_pgid(url: str) -> int:
    """The process group of the web server: that of whichever worker answers ``/health``."""
    pid = get_json(url + "/health")[0]["pid"]
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat[stat.rindex(")") + 2:].split()[2])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batches", type=int, default=2000)
    parser.add_argument("--early", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=100)
    options = parser.parse_args(argv)
    logger.remove()
    young, old = step_times(options.batches, options.early, options.batch_size)
    early, early_spread = median_and_spread([seconds * 1e3 for seconds in young])
    late, late_spread = median_and_spread([seconds * 1e3 for seconds in old])
    with tempfile.TemporaryDirectory(prefix="bench-growth-") as temp:
        rss = memory(options.batches, options.early, options.batch_size, Path(temp))
    figures = []
    for name, bar in (("worker", 1.1), ("web", 1.05)):
        (before, before_spread), (after, after_spread) = (
            median_and_spread([value / 2**20 for value in values]) for values in rss[name])
        figures.append(Figure(f"{name} RSS after {options.batches:,} batches", after, "MiB",
                              before, f"after {options.early}", higher=False, bar=bar,
                              note=f"spread {after_spread} against {before_spread} MiB"))
    figures.append(Figure(f"train step at {options.batches:,} versions", late, "ms", early,
                          f"at {options.early}", higher=False, bar=1.1,
                          note=f"{options.batch_size} rows a batch; spread {late_spread} "
                               f"against {early_spread} ms"))
    report(figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
