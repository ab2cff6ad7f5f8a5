"""A million rows in bulk: dropped in the inbox of a running system, and sent by `python -m app
ingest`, each timed until the served version has learnt the last row.

    .venv/bin/python bench/bulk.py [--rows 1000000] [--batch-size 100000]

Two files of ``--rows`` rows: generated salary records (``python -m app sample``'s), and AER's
CPS1985 wages repeated to the same size (declared by ``examples/cps1985.toml``). For each, a
system is started as ``make run`` starts it (``python -m app.runner`` with the worker, beat and
the web app; a private Redis; its own PIPELINE_HOME; ``BATCH_SIZE=--batch-size``;
``GENERATE_EVERY=1``; a declaration other than the built-in one, so the generator is off):

1. **The inbox**: the file is moved into ``INBOX`` whole (written beside it, then renamed), and
   timed from there until every batch made of it is learnt and served.
2. **The command**: ``python -m app ingest FILE --batch-size N`` on the same system (it writes
   to the store directly: it runs on the system's machine), timed from its start until the
   served version has learnt its last batch.

Beside them, measured in the same run on the same file: reading it whole with pyarrow (the
rate no ingestion can beat), and the inbox's work alone on its rows, in this process: reading
and checking them, then the train steps (what it costs without queueing, serving or a second
process). Peak resident memory: the highest of every process of the system (``VmHWM``), and of
the command.

The inbox's bar against pyarrow (0.15x) is marked known not to hold (``bench/table.py``): pyarrow
reads these files with both cores at 4.7 to 15 million rows a second, so it asks 0.7 to 2.3
million rows/s end to end, while the inbox's work alone, one process reading, checking and
learning, runs at 0.35 to 0.49 million (three make bench runs, docs/performance.md). The
reason printed under the table gives this run's figures; in a run where the bar holds, it
counts as held.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: the repository's packages come first
    sys.path.insert(0, str(ROOT))

from loguru import logger  # noqa: E402

from app.cli.data import write_sample  # noqa: E402
from app.data.batches import normalize_batch, receive_chunk  # noqa: E402
from app.data.files import read_chunks  # noqa: E402
from app.dataset import BUILTIN_PATH, load  # noqa: E402
from app.lifecycle.home import Home  # noqa: E402
from app.lifecycle.learning import Learner  # noqa: E402
from app.redis_server import free_port, private_redis  # noqa: E402
from bench.support import get_json  # noqa: E402
from bench.table import Figure, report  # noqa: E402
from examples.cps1985 import cps1985  # noqa: E402

INBOX_BAR = 300_000  # rows a second, end to end
INGEST_BAR = 250_000
INBOX_SHARE = 0.15  # of reading the file whole with pyarrow
MEMORY_BAR = 1 << 30
FINISH_TIMEOUT = 600


def write_files(folder: Path, rows: int) -> dict[str, tuple[Path, Path]]:
    """``{case: (CSV file, its declaration)}``: generated records, and CPS1985 repeated."""
    generated = folder / "generated.csv"
    with open(generated, "w") as out:
        write_sample(rows, 7, out)
    # The built-in declaration under another name: the same records, the generator off.
    salary = folder / "salary.toml"
    shutil.copy(BUILTIN_PATH, salary)
    wages = folder / "cps1985.csv"
    real = cps1985()
    pd.concat([real] * (rows // len(real) + 1), ignore_index=True).head(rows).to_csv(
        wages, index=False)
    return {"generated": (generated, salary),
            "CPS1985 repeated": (wages, ROOT / "examples" / "cps1985.toml")}


def pyarrow_whole(path: Path) -> float:
    """Rows a second reading the whole file with pyarrow: the ceiling."""
    import pyarrow.csv as pacsv

    began = time.perf_counter()
    table = pacsv.read_csv(path)
    return table.num_rows / (time.perf_counter() - began)


@dataclass(frozen=True)
class WorkAlone:
    """Rows a second of the inbox's two halves done alone, one after the other, in this
    process: reading and checking the file (read in chunks, raw rows written, checked, clean
    rows written), and the train steps on those rows."""

    read_and_check: float
    train: float

    def best_on(self, cores: int) -> float:
        """The most any pipeline of these steps reaches on ``cores`` cores: every core busy
        with them and nothing else (no queue, no waiting, no serving)."""
        return cores / (1 / self.read_and_check + 1 / self.train)


def work_alone(path: Path, declaration: Path, batch_size: int, folder: Path) -> WorkAlone:
    dataset = load(declaration)
    home = Home(str(folder), dataset=dataset)
    learner = Learner(home)
    ids = []
    began = time.perf_counter()
    with open(path, "rb") as handle:
        for number, chunk in enumerate(read_chunks(handle, "csv", batch_size,
                                                   dataset.learnt_columns, path.name)):
            batch_id = f"alone-{number:04d}"
            receive_chunk(home.lake, home.ledger, batch_id, chunk, source="ingest")
            normalize_batch(home.lake, home.ledger, batch_id, dataset)
            ids.append(batch_id)
    checked = time.perf_counter()
    for batch_id in ids:
        learner.train([batch_id])
    trained = time.perf_counter()
    rows = sum(home.ledger.get(batch_id)["clean"] for batch_id in ids)
    return WorkAlone(rows / (checked - began), rows / (trained - checked))


def out_of_reach(ceiling: float, alone: WorkAlone) -> str:
    """Why the inbox's share of pyarrow's rate is out of reach, in this run's figures."""
    wanted, cores = INBOX_SHARE * ceiling, os.cpu_count() or 1
    return (f"{INBOX_SHARE:g}x pyarrow's {ceiling:,.0f} rows/s asks {wanted:,.0f} rows/s; the "
            f"inbox's work alone (reading and checking at {alone.read_and_check:,.0f} rows/s, "
            f"then training at {alone.train:,.0f}) runs at {alone.best_on(1):,.0f} rows/s in one "
            f"process, and could reach {alone.best_on(cores):,.0f} only with all {cores} cores "
            f"on it and nothing else running")


class System:
    """``make run`` (worker, beat, web) over a private Redis and a fresh home."""

    def __init__(self, folder: Path, redis_url: str, declaration: Path, batch_size: int):
        self.home_path = folder / "home"
        self.port = free_port()
        self.env = {**os.environ, "REDIS_URL": redis_url, "PIPELINE_HOME": str(self.home_path),
                    "DATASET": str(declaration), "BATCH_SIZE": str(batch_size),
                    "GENERATE_EVERY": "1", "SERVICES": "worker,beat,web",
                    "WEB_PORT": str(self.port), "PIPELINE_URL": f"http://127.0.0.1:{self.port}"}
        folder.mkdir(parents=True, exist_ok=True)
        self.log = folder / "run.log"
        with open(self.log, "wb") as output:
            self.process = subprocess.Popen([sys.executable, "-m", "app.runner"], cwd=ROOT,
                                            env=self.env, stdout=output,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        self.home = Home(str(self.home_path), dataset=load(declaration))

    def ready(self) -> None:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            text = self.log.read_text(errors="replace")
            if "ready." in text and "beat: Starting" in text and "Booting worker" in text:
                with contextlib.suppress(OSError):
                    get_json(f"{self.env['PIPELINE_URL']}/health")
                    return
            if self.process.poll() is not None:
                break
            time.sleep(0.2)
        raise SystemExit(f"the system did not start: see {self.log}")

    def learnt(self, batch_ids: list[str]) -> bool:
        """Whether every batch is learnt (or final) and the served version has learnt them."""
        entries = [self.home.ledger.find(batch_id) for batch_id in batch_ids]
        if not entries or any(e is None or e["status"] not in ("trained", "refused", "empty")
                              for e in entries):
            return False
        served = self.home.serving.state().version or 0
        return served >= max(e.get("version") or 0 for e in entries)

    def inbox_batches(self) -> list[str]:
        return [b["batch_id"] for b in self.home.ledger.newest_first() if b["source"] == "inbox"]

    def peak_rss(self) -> int:
        """The highest peak resident memory of any process of the run (the kernel's VmHWM):
        the runner and everything it started, whose sessions are their own."""
        parents, peaks = {}, {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError, ValueError, IndexError):
                stat = (entry / "stat").read_text()
                parents[int(entry.name)] = int(stat[stat.rindex(")") + 2:].split()[1])
                peaks[int(entry.name)] = next(
                    (int(line.split()[1]) * 1024 for line in (entry / "status").read_text()
                     .splitlines() if line.startswith("VmHWM:")), 0)
        family, grew = {self.process.pid}, True
        while grew:
            children = {pid for pid, parent in parents.items() if parent in family} - family
            family |= children
            grew = bool(children)
        return max(peaks.get(pid, 0) for pid in family)

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGINT)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def wait_until(predicate, what: str) -> None:
    deadline = time.monotonic() + FINISH_TIMEOUT
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.05)


def through_the_inbox(system: System, path: Path, rows: int, batch_size: int,
                      name: str) -> float:
    """Rows a second from the file landing in the inbox (as ``name``) to the last row served."""
    inbox = system.home_path / "inbox"
    inbox.mkdir(parents=True, exist_ok=True)
    staged = inbox / f"{name}.part"
    shutil.copy(path, staged)
    # The inbox takes a file once it has not changed for a while: settle the copy's time.
    then = time.time() - 10
    os.utime(staged, (then, then))
    expected = len(system.inbox_batches()) + -(-rows // batch_size)
    began = time.perf_counter()
    staged.rename(inbox / name)
    wait_until(lambda: len(batches := system.inbox_batches()) == expected
               and system.learnt(batches), "the inbox's batches to be learnt")
    return rows / (time.perf_counter() - began)


def through_the_command(system: System, path: Path, rows: int,
                        batch_size: int) -> tuple[float, int, str]:
    """Rows a second from ``python -m app ingest`` starting to the last row served; the
    command's peak memory, and its first line (which way it took)."""
    before = set(system.inbox_batches())
    began = time.perf_counter()
    command = subprocess.run([sys.executable, "-m", "app", "ingest", str(path), "--batch-size",
                              str(batch_size), "--wait", "0"], cwd=ROOT, env=system.env,
                             capture_output=True, text=True)
    if command.returncode != 0:
        raise SystemExit(f"python -m app ingest failed: {command.stderr}")
    sent = [line.split()[1].rstrip(":") for line in command.stdout.splitlines()
            if line.startswith("batch ")]
    wait_until(lambda: system.learnt(sent), "the command's batches to be learnt")
    elapsed = time.perf_counter() - began
    assert not before & set(sent)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    return rows / elapsed, peak, command.stderr.splitlines()[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3,
                        help="each figure is the median of this many rounds")
    options = parser.parse_args()
    logger.remove()
    figures = []
    with tempfile.TemporaryDirectory(prefix="bench-bulk-") as root:
        folder = Path(root)
        for case, (path, declaration) in write_files(folder, options.rows).items():
            ceiling = statistics.median(pyarrow_whole(path) for _ in range(options.rounds))
            alone = work_alone(path, declaration, options.batch_size,
                               folder / f"alone-{path.stem}")
            inbox_rates, ingest_rates, ingest_peaks = [], [], []
            with private_redis() as redis_url:
                system = System(folder / f"system-{path.stem}", redis_url, declaration,
                                options.batch_size)
                try:
                    system.ready()
                    for number in range(options.rounds):
                        inbox_rates.append(through_the_inbox(
                            system, path, options.rows, options.batch_size,
                            f"{path.stem}-{number}{path.suffix}"))
                        rate, ingest_peak, way = through_the_command(
                            system, path, options.rows, options.batch_size)
                        ingest_rates.append(rate)
                        ingest_peaks.append(ingest_peak)
                    peak = system.peak_rss()
                finally:
                    system.stop()
            inbox_rate, ingest_rate = (statistics.median(rates)
                                       for rates in (inbox_rates, ingest_rates))
            inbox_spread, ingest_spread = (f"{min(rates):,.0f}-{max(rates):,.0f} rows/s"
                                           for rates in (inbox_rates, ingest_rates))
            print(f"{case}: {options.rows:,} rows in batches of {options.batch_size:,}, "
                  f"{options.rounds} rounds: inbox {inbox_spread}, python -m app ingest "
                  f"{ingest_spread} ({way}); pyarrow whole {ceiling:,.0f} rows/s, read and "
                  f"checked alone {alone.read_and_check:,.0f} rows/s, train steps alone "
                  f"{alone.train:,.0f} rows/s; peak RSS {peak / 2**20:,.0f} MiB (system), "
                  f"{max(ingest_peaks) / 2**20:,.0f} MiB (command)", flush=True)
            figures += [
                Figure(f"bulk {case}: inbox, rows/s end to end", inbox_rate, "rows/s",
                       INBOX_BAR, "the bar", bar=1.0, note=f"spread {inbox_spread}"),
                Figure(f"bulk {case}: inbox against reading it whole", inbox_rate, "rows/s",
                       ceiling, "pyarrow read_csv", bar=INBOX_SHARE,
                       note=f"train steps alone {alone.train:,.0f} rows/s",
                       known_to_fail=out_of_reach(ceiling, alone)),
                Figure(f"bulk {case}: python -m app ingest, rows/s end to end", ingest_rate,
                       "rows/s", INGEST_BAR, "the bar", bar=1.0, note=f"spread {ingest_spread}"),
                Figure(f"bulk {case}: peak RSS of any process",
                       max(peak, *ingest_peaks) / 2**20, "MiB", MEMORY_BAR / 2**20, "1 GiB",
                       higher=False, bar=1.0),
            ]
    report(figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
