"""Ingesting a large CSV through ``python -m app ingest``: memory stays flat, and how fast.

    .venv/bin/python bench/ingest.py [--rows 1000000] [--batch-size 1000]

It writes ``--rows`` generated records as CSV (``python -m app sample``), starts the
Procfile's ``web`` command over a temporary PIPELINE_HOME with a private Redis, and runs
``python -m app ingest`` on the file, then on a tenth of it. Each command runs in a process of
its own, whose peak resident memory is read from the kernel when it exits (``wait4``). No
worker runs: this measures ingestion (reading, sending, writing batches to the lake and the
ledger, queueing their tasks), not training, which has its own benchmark.

Baselines, in the same run: ``pandas.read_csv`` of the whole file (what loading it whole
costs in memory), and reading the file in the same chunks without sending them (the floor for
rows/s). Flat memory means the ingest's peak is the same for the whole file as for a tenth.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from app.redis_server import private_redis  # noqa: E402
from app.runner import web_server  # noqa: E402

READ_WHOLE = "import pandas, sys; pandas.read_csv(sys.argv[1])"
READ_CHUNKS = ("import sys; from app.cli.files import RecordFile, body\n"
               "from app.dataset import builtin\n"
               "with RecordFile(sys.argv[1], int(sys.argv[2]), ('idade',)) as f:\n"
               "    n = sum(len(body(c, builtin())) > 0 for c in f.chunks())")


def measured(argv: list[str], env: dict) -> tuple[float, float]:
    """Run ``argv``; its wall time (s) and peak RSS (MiB)."""
    started = time.perf_counter()
    process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{argv} failed: {process.stderr.read().decode()[-2000:]}")
    process.returncode = 0
    # ru_maxrss is in KiB on Linux.
    return elapsed, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=1000)
    args = parser.parse_args()
    python = sys.executable
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp, private_redis() as redis_url:
        tmp = Path(tmp)
        env = dict(os.environ, REDIS_URL=redis_url, PIPELINE_HOME=str(tmp / "home"),
                   BATCH_SIZE=str(args.batch_size))
        files = {}
        for rows in (args.rows, args.rows // 10):
            files[rows] = tmp / f"people-{rows}.csv"
            with open(files[rows], "wb") as out:
                subprocess.run([python, "-m", "app", "sample", str(rows), "--seed", "1"],
                               cwd=ROOT, env=env, stdout=out, check=True)
        size = files[args.rows].stat().st_size
        print(f"{args.rows:,} rows, {size / 2**20:,.1f} MiB of CSV; batches of {args.batch_size:,}")
        results = [("pandas.read_csv, whole file (baseline)",
                    args.rows, *measured([python, "-c", READ_WHOLE, str(files[args.rows])], env)),
                   ("read in chunks, nothing sent (baseline)",
                    args.rows, *measured([python, "-c", READ_CHUNKS, str(files[args.rows]),
                                          str(args.batch_size)], env))]
        with web_server(tmp / "home", tmp / "web.log") as url:
            for rows in (args.rows // 10, args.rows):
                results.append((f"python -m app ingest, {rows:,} rows", rows, *measured(
                    [python, "-m", "app", "--url", url, "ingest", str(files[rows]),
                     "--wait", "0"], env)))
    whole_rss = results[0][3]
    floor_rate = results[1][1] / results[1][2]
    print("\n| case | rows | seconds | rows/s | vs reading only | peak RSS (MiB) | vs read_csv whole |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, rows, seconds, rss in results:
        rate = rows / seconds
        print(f"| {name} | {rows:,} | {seconds:,.1f} | {rate:,.0f} | {rate / floor_rate:.2f} | "
              f"{rss:,.0f} | {rss / whole_rss:.2f} |")
    tenth, whole = results[2][3], results[3][3]
    print(f"\ningest peak RSS: {whole:,.0f} MiB for {args.rows:,} rows, {tenth:,.0f} MiB for "
          f"{args.rows // 10:,}: ratio {whole / tenth:.2f} (1.00 = flat)")


if __name__ == "__main__":
    main()
