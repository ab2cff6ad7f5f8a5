"""Real data through a real system: `make run` with DATASET=examples/cps1985.toml (AER's CPS1985
hourly wages), fed by `python -m app ingest` and by the inbox, asked for predictions and an
evaluation as a user would."""

import urllib.request
from pathlib import Path

import pytest

from app.storage import open_storage
from examples.cps1985 import cps1985
from tests.faults.conftest import make_system, redis_server  # noqa: F401 - fixtures
from tests.support import http_json, create_bucket, wait_for
from tests.test_cli import run_cli

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[2]
DECLARATION = str(ROOT / "examples" / "cps1985.toml")
RECORD = {"education": 16, "experience": 10, "age": 32, "ethnicity": "cauc", "region": "other",
          "gender": "female", "occupation": "management", "sector": "other", "union": "no",
          "married": "yes"}


def final(home, batch_ids) -> bool:
    return all(home.ledger.get(batch_id)["status"] in ("trained", "refused")
               for batch_id in batch_ids)


def test_a_wage_file_is_ingested_learnt_predicted_and_evaluated(make_system, tmp_path):
    system = make_system(DATASET=DECLARATION)
    system.ready(("worker", "beat", "web"))
    path = tmp_path / "cps1985.csv"
    cps1985().to_csv(path, index=False)
    result = run_cli("--url", system.web_url, "ingest", str(path), "--batch-size", "50")
    assert result.returncode == 0, result.stderr
    batch_ids = [line.split()[1].rstrip(":") for line in result.stdout.splitlines()
                 if line.startswith("batch ")]
    assert len(batch_ids) == 11 and "534 records sent in 11 batches" in result.stdout
    assert all("0 quarantined" in line for line in result.stdout.splitlines()
               if line.startswith("batch "))
    wait_for(lambda: final(system.home, batch_ids), timeout=120, what="every batch learnt")
    answer = http_json(system.web_url, "/predict", RECORD)
    assert 1 < answer["predictions"][0] < 45 and answer["model_version"] >= 1
    schema = http_json(system.web_url, "/openapi.json")["components"]["schemas"]["Record"]
    assert set(schema["properties"]) == set(RECORD)
    assert http_json(system.web_url, "/dataset")["target"] == "wage"
    page = urllib.request.urlopen(system.web_url + "/", timeout=30).read().decode()
    assert "<h1>CPS 1985 wages model</h1>" in page and "MAE on the next batch (USD/hour)" in page
    task = http_json(system.web_url, "/evaluate", {"n": 500})["task_id"]
    done = wait_for(lambda: (state := http_json(system.web_url, f"/tasks/{task}"))["state"] in (
        "SUCCESS", "FAILURE") and state, timeout=120, what="the evaluation")
    assert done["state"] == "SUCCESS", done
    evaluation = done["result"]
    assert "ground_truth" not in evaluation and evaluation["records"] == "held-out"
    assert 0 < evaluation["r2"] < 1 and "USD/hour" in evaluation["report"]
    # The generator is off: every batch came from the file.
    assert {batch["source"] for batch in system.home.ledger.newest_first()} == {"ingest"}


@pytest.mark.parametrize("where", ["local", "s3"])
def test_a_file_in_the_inbox_is_ingested_once_with_two_beats_on_two_hosts(
        make_system, tmp_path, request, where):
    env = {"DATASET": DECLARATION, "BATCH_SIZE": "100"}
    if where == "s3":
        endpoint = request.getfixturevalue("s3_endpoint")
        create_bucket(endpoint, "inbox-tests")
        env["INBOX"] = f"s3://inbox-tests/{tmp_path.name}"
    else:
        env["INBOX"] = str(tmp_path / "inbox")
    # Two hosts, each with its worker and beat, sharing the Redis and the pipeline home.
    first, second = make_system(**env), make_system(**env, SERVICES="worker,beat")
    first.ready(("worker", "beat", "web"))
    second.ready(("worker", "beat"))
    inbox = open_storage(env["INBOX"])
    inbox.write_bytes("cps1985.csv", cps1985().to_csv(index=False).encode())
    wait_for(lambda: inbox.list("done") == ["cps1985.csv"], timeout=120, what="the file done")
    arrived = [batch for batch in first.home.ledger.newest_first() if batch["source"] == "inbox"]
    assert len(arrived) == 6 and sum(batch["rows"] for batch in arrived) == 534
    wait_for(lambda: final(first.home, [b["batch_id"] for b in arrived]), timeout=120,
             what="every batch learnt")
    learnt = [b for m in first.home.registry.list() for b in m.batch_ids]
    assert sorted(learnt) == sorted(b["batch_id"] for b in arrived), "a batch learnt twice"
    assert inbox.list("") == []
