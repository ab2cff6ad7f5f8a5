"""Labels that come back: what keeping every answer costs `/predict`, how fast labels are
matched, whether the live error is exact, and the disk a day of kept answers takes.

    .venv/bin/python bench/feedback.py [--rounds 21] [--seconds 3] [--answers 100000]

1. **The cost of keeping answers**: the Procfile's web server twice over one trained model, one
   with ``LOG_PREDICTIONS=1`` and one without, asked ``/predict`` one record at a time by
   ``wrk -t2 -c16`` in alternating rounds; the median round's ratio. Many short rounds, as in
   ``bench/predict.py``: each is a new spread of wrk's connections over the two servers'
   workers, which moves a round more than logging does (five rounds of 8 s gave medians from
   0.87x to 0.96x, single rounds 0.85x to 1.03x).
2. **The loop**: ``--answers`` predictions through the logging server (1,000 records a
   request), their true salaries sent back to ``POST /feedback`` 10,000 at a time; every label
   must match, the feedback batches must be learnt by the Procfile's worker, and the live MAE of
   ``/status`` must equal the one the client computes from its own predictions and labels, to
   1e-9. The matching time is each ``/feedback`` call's.
3. **Disk**: what a day of kept answers at 1,000 requests a second takes: the loop's answers
   (varied records, where wrk sends one record over and over) written again as the Procfile's
   two web processes would keep them at that rate, 500 records a file, a file a second each.
   Beside it, the bytes a record of the one-record rounds took at the rate this machine
   reached (each file holds a second: the slower the rate, the more each file's fixed part
   weighs on a record).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from app.data.generator import generate  # noqa: E402
from app.data.predictions import PREFIX, encode  # noqa: E402
from app.lifecycle.home import Home  # noqa: E402
from app.redis_server import private_redis  # noqa: E402
from app.runner import web_server  # noqa: E402
from bench.predict import RECORD, train_model  # noqa: E402
from bench.support import wrk, wrk_post  # noqa: E402
from bench.support import get_json, post_json, worker_process  # noqa: E402
from bench.table import Figure, report  # noqa: E402

DAY_BAR_BYTES = 2e9
PER_DAY = 1_000 * 86_400
# Records a file holds at 1,000 requests a second: one file a second from each of two processes.
PER_FILE = 500
LABELS_PER_CALL = 10_000


def kept_bytes(home: Path) -> tuple[int, int]:
    """``(bytes, files)`` of the kept answers under ``home``."""
    files = list((home / PREFIX).rglob("*.parquet"))
    return sum(path.stat().st_size for path in files), len(files)


def bytes_per_record_at_day_rate(home: Path, earlier: set[Path]) -> float:
    """Bytes a record of the answers kept under ``home`` since ``earlier`` files, written again
    ``PER_FILE`` records a file, each file one process's consecutive answers."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    files = sorted(set((home / PREFIX).rglob("*.parquet")) - earlier)
    kept = pa.concat_tables([pq.read_table(path) for path in files]).sort_by(
        [("tag", "ascending"), ("seq", "ascending")])
    parts = [kept.slice(start, PER_FILE)
             for start in range(0, kept.num_rows - PER_FILE + 1, PER_FILE)]
    return sum(len(encode(part)) for part in parts) / (PER_FILE * len(parts))


def kept_count(home: Path) -> int:
    """How many answers are kept under ``home``."""
    import pyarrow.parquet as pq

    return sum(pq.ParquetFile(path).metadata.num_rows
               for path in (home / PREFIX).rglob("*.parquet"))


def loop(url: str, home: Home, answers: int) -> dict:
    """Predict ``answers`` records, send their labels back; figures of the round trip."""
    people = generate(answers, seed=23)
    records = [{"idade": int(age), "cidade": str(city), "cargo": str(job)} for age, city, job
               in zip(people["idade"], people["cidade"], people["cargo"])]
    ids, predictions = [], []
    for start in range(0, answers, 1000):
        answer, _ = post_json(f"{url}/predict", {"records": records[start:start + 1000]})
        ids += answer["prediction_ids"]
        predictions += answer["predictions"]
    time.sleep(2)  # the log's thread writes each second
    truth = people["salario"].to_numpy(dtype=float)
    matched, seconds, batches = 0, [], []
    for start in range(0, answers, LABELS_PER_CALL):
        labels = [{"prediction_id": i, "value": float(v)}
                  for i, v in zip(ids[start:start + LABELS_PER_CALL],
                                  truth[start:start + LABELS_PER_CALL])]
        began = time.perf_counter()
        reply, _ = post_json(f"{url}/feedback", {"labels": labels}, timeout=120)
        seconds.append(time.perf_counter() - began)
        matched += reply["matched"]
        batches.append(reply["batch_id"])
    deadline = time.monotonic() + 300
    while not all(home.ledger.get(b)["status"] == "trained" for b in batches):
        if time.monotonic() > deadline:
            raise SystemExit("the feedback batches were not learnt within 5 minutes")
        time.sleep(0.2)
    client_mae = float(np.mean(np.abs(truth - np.asarray(predictions))))
    live = get_json(f"{url}/status")[0]["live"]
    return {"matched": matched, "answers": answers, "seconds": seconds,
            "client_mae": client_mae, "live_mae": live["mae"], "labelled": live["labelled"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--answers", type=int, default=100_000)
    options = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: make system installs it (apt-get install wrk)")
    with tempfile.TemporaryDirectory(prefix="bench-feedback-") as temp, \
            private_redis() as redis_url:
        os.environ["REDIS_URL"] = redis_url
        folder = Path(temp)
        plain_home, kept_home = folder / "plain", folder / "kept"
        for home in (plain_home, kept_home):
            train_model(home)
        script = wrk_post(folder, RECORD)
        os.environ["LOG_PREDICTIONS"] = "0"
        with web_server(plain_home, folder / "plain.log") as plain:
            os.environ["LOG_PREDICTIONS"] = "1"
            with web_server(kept_home, folder / "kept.log") as kept:
                for url in (plain, kept):
                    wrk(url + "/predict", 2, script)  # unmeasured: every worker loads the model
                rounds = []
                for number in range(options.rounds):
                    order = [plain, kept] if number % 2 == 0 else [kept, plain]
                    measured = {url: wrk(url + "/predict", options.seconds, script)
                                for url in order}
                    rounds.append((measured[kept], measured[plain]))
                time.sleep(2)  # the last second's answers written
                size, files = kept_bytes(kept_home)
                kept_records = kept_count(kept_home)
                earlier = set((kept_home / PREFIX).rglob("*.parquet"))
                with worker_process(redis_url, kept_home, folder / "worker.log",
                                    LOG_PREDICTIONS="1"):
                    result = loop(kept, Home(str(kept_home)), options.answers)
                day_per_record = bytes_per_record_at_day_rate(kept_home, earlier)
    ranked = sorted(rounds, key=lambda pair: pair[0].per_second / pair[1].per_second)
    kept_run, plain_run = ranked[len(ranked) // 2]
    kept_rps, kept_p99 = kept_run.per_second, kept_run.p99_ms
    plain_rps, plain_p99 = plain_run.per_second, plain_run.p99_ms
    ratios = ", ".join(f"{k.per_second / p.per_second:.2f}" for k, p in rounds)
    per_record = size / max(kept_records, 1)
    gap = abs(result["live_mae"] - result["client_mae"]) / result["client_mae"]
    print(f"kept answers: {kept_records:,} one-record answers in {files:,} files, {size:,} bytes: "
          f"{per_record:.1f} bytes a record; loop: {result['matched']:,} of {result['answers']:,} "
          f"labels matched, live MAE {result['live_mae']!r} against the client's "
          f"{result['client_mae']!r} (relative gap {gap:.1e}); matching "
          f"{', '.join(f'{s:.2f}' for s in result['seconds'])} s per {LABELS_PER_CALL:,} labels")
    report([
        Figure("/predict 1 record with LOG_PREDICTIONS=1, requests/s", kept_rps, "req/s",
               plain_rps, "the same server without it", bar=0.85,
               note=f"median of {options.rounds} rounds; ratios {ratios}"),
        Figure("/predict 1 record with LOG_PREDICTIONS=1, p99", kept_p99, "ms", plain_p99,
               "the same server without it", higher=False, bar=1.3),
        Figure("feedback: labels matched", result["matched"], "labels", result["answers"],
               "labels sent", bar=1.0,
               note=f"matching {statistics.median(result['seconds']):.2f} s per "
                    f"{LABELS_PER_CALL:,} labels (median)"),
        Figure("feedback: live MAE's gap to the client's own, relative", gap, "",
               1e-9, "1e-9", higher=False, bar=1.0,
               note=f"live {result['live_mae']:.6f}, client {result['client_mae']:.6f}"),
        Figure("kept answers of a day at 1,000 req/s", day_per_record * PER_DAY / 1e9, "GB",
               DAY_BAR_BYTES / 1e9, "2 GB", higher=False, bar=1.0,
               note=f"{day_per_record:.1f} bytes a record {PER_FILE} a file; "
                    f"{per_record:.1f} at this machine's rate"),
    ])
    return 0


if __name__ == "__main__":
    sys.exit(main())
