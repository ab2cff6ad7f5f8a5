"""Whether the registry stays fast as it grows: a save and ``/models`` at 100 to 100,000 versions.

    .venv/bin/python bench/registry.py [--sizes 100 1000 10000 100000] [--repeat 40]

For each size a fresh pipeline home (a local folder in a temporary directory) is filled with
that many versions, laid out as the registry lays them out (``models/versions/<n>.json``
metadata, a ``HEAD`` hint, and the artifacts of the newest ``KEEP_VERSIONS`` only, as
retention leaves them), plus an audit trail of one event per ten versions (at least 100, so
every size fills the same first page). The fill writes
the files directly, without fsync, because it is the setting, not the measure. Then:

- **save**: what a train step does with the registry once its model is fitted: publish the
  next version (artifact, exclusive metadata, ``HEAD``), find what is served and the lineage
  head (what retention protects), and prune the artifact that falls out of ``KEEP_VERSIONS``;
- **/models**: ``GET /models`` (the default page of 100 versions, each marked with the
  forgotten batches it learnt from) through the real Flask app, in process;
- **/serving** and **/audit**: the same for the serving state and a page of the audit trail.

Each figure is the median of ``--repeat`` runs (after a few to warm up); the ratio is to the
100-version figure, so a registry that stays flat shows ratios near 1. Beside each time, the
number of storage calls a run makes (reads, writes, existence checks): on a machine shared with
other work the times wander with the disk's fsyncs, the calls do not, and a registry that
listed a folder or walked its history would show them grow. Nothing is asserted about speed.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import functools
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: the repository's packages come first
    sys.path.insert(0, str(ROOT))

from app.data.generator import generate  # noqa: E402
from app.journal import Journal  # noqa: E402
from app.lifecycle.home import Home  # noqa: E402
from app.lifecycle.learning import Learner  # noqa: E402
from app.models.regressor import IncrementalRidge  # noqa: E402

KEEP_VERSIONS = 50
AUDIT_EVENTS = 100
# Runs before the clock starts: the first calls fill caches (the served model, imports).
WARM_UP = 5


def model() -> IncrementalRidge:
    rows = generate(2000, seed=1)
    return IncrementalRidge().fit(rows, rows["salario"])


def fill(root: Path, versions: int, template: dict, payload: bytes) -> None:
    """``versions`` versions and their audit trail, written as the journal lays them out."""
    registry = Journal(None, "models/versions")
    audit = Journal(None, "models/audit")
    events = max(AUDIT_EVENTS, versions // 10)
    for number in range(1, events + 1):
        event = {"id": number, "at": template["created_at"], "action": "drift",
                 "from_version": number, "to_version": number + 1, "reason": "bench",
                 "by": "pipeline"}
        path = root / audit.key(number)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(event))
    (root / audit.head_key).write_text(str(events))
    for number in range(1, versions + 1):
        artifact = f"v{number:09d}-{template['sha256'][:16]}.json"
        metadata = {**template, "version": number, "artifact": artifact,
                    "batch_id": f"batch-{number}", "batch_ids": [f"batch-{number}"],
                    "parent_version": number - 1 or None}
        path = root / registry.key(number)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(metadata))
        if number > versions - KEEP_VERSIONS:
            artifacts = root / "models/artifacts"
            artifacts.mkdir(parents=True, exist_ok=True)
            (artifacts / artifact).write_bytes(payload)
    (root / registry.head_key).write_text(str(versions))


@contextlib.contextmanager
def counting(storage_class: type) -> Iterator[collections.Counter]:
    """Count calls to the storage's public methods (each read, write, exists...) meanwhile."""
    counts: collections.Counter = collections.Counter()
    originals = {name: value for name, value in vars(storage_class).items()
                 if callable(value) and not name.startswith("_")}

    def counted(name, method):
        @functools.wraps(method)
        def call(*args, **kwargs):
            counts[name] += 1
            return method(*args, **kwargs)
        return call

    for name, method in originals.items():
        setattr(storage_class, name, counted(name, method))
    try:
        yield counts
    finally:
        for name, method in originals.items():
            setattr(storage_class, name, method)


def median_ms(action, repeat: int, storage_class: type) -> tuple[float, float]:
    """The median time of ``action`` in ms, and the storage calls it makes (per run)."""
    for _ in range(WARM_UP):
        action()
    times = []
    with counting(storage_class) as counts:
        for _ in range(repeat):
            started = time.perf_counter()
            action()
            times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times), sum(counts.values()) / repeat


def measure(versions: int, repeat: int, fitted: IncrementalRidge) -> dict[str, float]:
    from app.web import create_app

    root = Path(tempfile.mkdtemp(prefix=f"bench-registry-{versions}-"))
    try:
        home = Home(str(root))
        # One real publication gives the template: the metadata a train step writes.
        template = home.registry.publish(fitted, 1, batch_id="template", batch_ids=["template"],
                                         n_batch=2000, metrics={"prequential": None},
                                         gate={"passed": True}, kind="champion",
                                         lineage=True).to_dict()
        payload = home.storage.read_bytes(f"models/artifacts/{template['artifact']}")
        shutil.rmtree(root / "models")
        fill(root, versions, template, payload)

        home = Home(str(root))
        learner = Learner(home, keep_versions=KEEP_VERSIONS)
        fields = {key: template[key] for key in ("n_batch", "metrics", "gate", "kind", "lineage")}

        def save():
            newest = home.registry.latest_version()
            metadata = home.registry.publish(fitted, newest + 1, batch_id="b", batch_ids=["b"],
                                             parent_version=newest, **fields)
            learner.retention.after(metadata.version, [])

        app = create_app({"TESTING": True, "CONFIGURE_LOGGING": False, "PIPELINE_HOME": str(root),
                          "MODEL_NOTICES": False})
        client = app.test_client()

        def get(path):
            def call():
                answer = client.get(path)
                assert answer.status_code == 200, answer.get_json()
            return call

        storage_class = type(home.storage)
        return {name: median_ms(action, repeat, storage_class) for name, action in
                (("save", save), ("/models", get("/models")), ("/serving", get("/serving")),
                 ("/audit", get("/audit")))}
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1_000, 10_000, 100_000])
    parser.add_argument("--repeat", type=int, default=40)
    options = parser.parse_args()
    os.environ.setdefault("PIPELINE_HOME", tempfile.gettempdir())
    fitted = model()
    rows = []
    for size in options.sizes:
        rows.append((size, measure(size, options.repeat, fitted)))
        print(f"measured {size:,} versions", file=sys.stderr, flush=True)
    base = rows[0][1]
    columns = list(base)
    print(f"{'versions':>9} " + " ".join(f"{c + ' ms':>11} {'ratio':>5} {'calls':>5}"
                                         for c in columns))
    for size, figures in rows:
        print(f"{size:>9,} " + " ".join(
            f"{figures[c][0]:>11.2f} {figures[c][0] / base[c][0]:>5.2f} {figures[c][1]:>5.0f}"
            for c in columns))
    print("ms: median time; ratio: to the first size; calls: storage calls (reads, writes, "
          "exists...) per run")


if __name__ == "__main__":
    main()
