"""Whether the registry stays fast as it grows: a save and ``/models`` at 100 to 100,000 versions.

    .venv/bin/python bench/registry.py [--sizes 100 1000 10000 100000] [--repeat 40]

For each size a fresh pipeline home (a local folder in a temporary directory) is filled with
that many versions, laid out as the registry lays them out (``models/versions/<n>.json``
metadata, a ``HEAD`` hint, and the artifacts of the newest ``KEEP_VERSIONS`` only, as
retention leaves them), plus an audit trail of one event per ten versions. The fill writes
the files directly, without fsync, because it is the setting, not the measure. Then:

- **save**: what a train step does with the registry once its model is fitted: publish the
  next version (artifact, exclusive metadata, ``HEAD``), find what is served and the lineage
  head (what retention protects), and prune the artifact that falls out of ``KEEP_VERSIONS``;
- **/models**: ``GET /models`` (the default page of 100 versions, each marked with the
  forgotten batches it learnt from) through the real Flask app, in process;
- **/serving** and **/audit**: the same for the serving state and a page of the audit trail.

Each figure is the median of ``--repeat`` runs; the ratio is to the 100-version figure, so a
registry that stays flat shows ratios near 1. Nothing is asserted about speed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: the repository's packages come first
    sys.path.insert(0, str(ROOT))

from app.data.generator import generate  # noqa: E402
from app.journal import Journal  # noqa: E402
from app.lifecycle.home import Home  # noqa: E402
from app.lifecycle.learning import Learner  # noqa: E402
from app.models.regressor import SalaryRegressor  # noqa: E402

KEEP_VERSIONS = 50


def model() -> SalaryRegressor:
    rows = generate(2000, seed=1)
    return SalaryRegressor().fit(rows, rows["salario"])


def fill(root: Path, versions: int, template: dict, payload: bytes) -> None:
    """``versions`` versions and their audit trail, written as the journal lays them out."""
    registry = Journal(None, "models/versions")
    audit = Journal(None, "models/audit")
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
        if number % 10 == 0:
            event = {"id": number // 10, "at": template["created_at"], "action": "drift",
                     "from_version": number - 1, "to_version": number, "reason": "bench",
                     "by": "pipeline"}
            path = root / audit.key(number // 10)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(event))
    (root / registry.head_key).write_text(str(versions))
    (root / audit.head_key).write_text(str(versions // 10))


def median_ms(action, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


def measure(versions: int, repeat: int, fitted: SalaryRegressor) -> dict[str, float]:
    from app.web import create_app

    root = Path(tempfile.mkdtemp(prefix=f"bench-registry-{versions}-"))
    try:
        home = Home(str(root))
        # One real publication gives the template: the metadata a train step writes.
        template = home.registry.publish(fitted, 1, batch_id="template", batch_ids=["template"],
                                         n_batch=2000, metrics={"prequential": None},
                                         gate={"passed": True}, kind="champion", lineage=True)
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
            learner._retain(metadata["version"], [])

        app = create_app({"TESTING": True, "CONFIGURE_LOGGING": False, "PIPELINE_HOME": str(root),
                          "MODEL_NOTICES": False})
        client = app.test_client()

        def get(path):
            def call():
                answer = client.get(path)
                assert answer.status_code == 200, answer.get_json()
            return call

        get("/models")()  # the first request loads the served model
        return {"save": median_ms(save, repeat), "/models": median_ms(get("/models"), repeat),
                "/serving": median_ms(get("/serving"), repeat),
                "/audit": median_ms(get("/audit"), repeat)}
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
    header = f"{'versions':>9} " + " ".join(f"{c + ' ms':>11} {'ratio':>6}" for c in columns)
    print(header)
    for size, figures in rows:
        print(f"{size:>9,} " + " ".join(f"{figures[c]:>11.2f} {figures[c] / base[c]:>6.2f}"
                                       for c in columns))


if __name__ == "__main__":
    main()
