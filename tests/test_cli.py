"""`python -m app sample` and `python -m app evaluate`, run as a user runs them."""

import csv
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.data.generator import FIELDS

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args, env=None, timeout=120, input_text=None):
    return subprocess.run([sys.executable, "-m", "app", *args], cwd=ROOT, capture_output=True, input=input_text,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})})


def test_sample_prints_csv_with_the_contract_fields():
    result = run_cli("sample", "25", "--seed", "4")
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(rows) == 25 and tuple(rows[0]) == FIELDS
    assert all(18 <= int(row["idade"]) <= 70 and float(row["salario"]) > 0 for row in rows)
    assert rows[0]["timestamp"].endswith("Z") and "T" in rows[0]["timestamp"]


def test_sample_with_a_seed_is_reproducible():
    assert run_cli("sample", "50", "--seed", "9").stdout == run_cli("sample", "50", "--seed", "9").stdout
    assert run_cli("sample", "50", "--seed", "9").stdout != run_cli("sample", "50", "--seed", "10").stdout


@pytest.mark.parametrize("args", [["sample", "-3"], ["sample", "many"], ["sample"]])
def test_sample_rejects_bad_counts_with_usage(args):
    result = run_cli(*args)
    assert result.returncode == 2 and "usage:" in result.stderr.lower()


def test_evaluate_without_redis_runs_here_and_says_there_is_no_model(tmp_path):
    from app.redis_server import free_port

    port = free_port()
    result = run_cli("evaluate", env={"PIPELINE_HOME": str(tmp_path),
                                      "REDIS_URL": f"redis://:redis-SECRET-1@127.0.0.1:{port}/0"})
    assert result.returncode == 1
    assert (f"Redis at redis://:***@127.0.0.1:{port}/0: nothing listens on 127.0.0.1:{port} "
            "(connection refused); evaluating in this process") in result.stderr
    assert "redis-SECRET-1" not in result.stderr
    assert "error: no model has been trained yet" in result.stderr


@pytest.mark.usefixtures("celery_worker")
def test_evaluate_runs_the_task_on_the_worker_and_prints_its_report(session_home):
    from app.tasks.pipeline import generate
    from tests.support import wait_for

    batch_id = generate.delay(batch_size=800).get(timeout=30)
    wait_for(lambda: session_home.ledger.get(batch_id)["version"], what="a trained model")
    result = run_cli("evaluate", "--n", "700")
    assert result.returncode == 0, result.stderr
    assert "No Celery worker answered" not in result.stderr
    assert "scored on 700 fresh ones" in result.stdout and "R²" in result.stdout


def test_sample_draws_from_any_drift_regime_and_defaults_to_none():
    def salaries(*args, env=None):
        result = run_cli("sample", "40", "--seed", "3", *args, env=env)
        assert result.returncode == 0, result.stderr
        return [row["salario"] for row in csv.DictReader(io.StringIO(result.stdout))]

    plain = salaries()
    assert salaries(env={"DRIFT": "sudden", "DRIFT_AFTER": "1"}) == plain
    assert salaries("--drift", "sudden", "--batch", "4", "--drift-after", "5") == plain
    changed = salaries("--drift", "sudden", "--batch", "5", "--drift-after", "5")
    assert changed != plain
    assert salaries("--drift", "sudden", "--batch", "5", env={"DRIFT_AFTER": "5"}) == changed
    assert salaries("--drift", "gradual", "--batch", "30", "--drift-after", "5") not in (plain, changed)
    result = run_cli("sample", "5", "--drift", "sometimes")
    assert result.returncode == 2 and "sometimes" in result.stderr
