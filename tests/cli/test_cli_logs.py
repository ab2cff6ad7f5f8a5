"""`python -m app logs`: the summary of plain and JSON log lines, as the system writes them."""

import os
import subprocess
import sys

import pytest
from tests.test_cli import ROOT, run_cli


def write_log(path, as_json: bool):
    """Log lines as a worker writes them (app.logs.configure, LOG_FILE, LOG_JSON)."""
    script = """
from loguru import logger
from app import logs
logs.configure("INFO")
with logger.contextualize(task_id="t1", batch_id="b1"):
    logger.info("normalized: 95 clean, 5 quarantined, status normalized")
    logger.bind(task="pipeline.normalize", outcome="success", duration=0.1, version=None).info(
        "task pipeline.normalize ended: outcome=success batch=b1 version=- duration=0.100s")
with logger.contextualize(task_id="t2", batch_id="b1"):
    logger.warning("drift detected on batch b1: prequential MAE rose to 3,000; version 7 is refit")
    logger.info("version 7 learnt 95 rows of 1 batch(es), 9,000 in all; promoted")
    logger.info("task pipeline.train ended: outcome=success batch=b1 version=7 duration=0.200s")
with logger.contextualize(task_id="t3", batch_id="b2"):
    logger.error("task pipeline.train ended: outcome=failure batch=b2 version=- duration=0.010s "
                 "error=NothingToLearn: batch b2 is empty, so no version learnt it: no row passed")
logger.info("a line of no task")
"""
    env = {**os.environ, "LOG_FILE": str(path), "LOG_JSON": "1" if as_json else "0"}
    subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, check=True,
                   capture_output=True)


def as_make_run_prints(path) -> None:
    """``path``'s lines as `make run` shows them: after each process's name, with the runner's
    own lines between them."""
    names = ["worker", "beat", "web"]
    lines = [f"{names[n % 3]:<6} | {line}" for n, line in enumerate(path.read_text().splitlines())]
    lines.insert(0, "runner | started worker (pid 4242): celery -A worker worker --loglevel=INFO")
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("as_json, relayed", [(False, False), (True, False), (False, True),
                                              (True, True)],
                         ids=["plain", "json", "plain from make run", "json from make run"])
def test_logs_summarises_tasks_failures_quarantine_drift_and_versions(tmp_path, as_json,
                                                                        relayed):
    path = tmp_path / "pipeline.log"
    write_log(path, as_json)
    lines = path.read_text().splitlines()
    assert len(lines) == 7 and lines[0].startswith("{") == as_json
    if relayed:
        as_make_run_prints(path)
    result = run_cli("logs", str(path))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"7 events in {8 if relayed else 7} lines" in out
    assert "pipeline.normalize     INFO 2" in out
    # Two train tasks (t2 succeeded, t3 failed): their events counted under the task's name.
    assert "pipeline.train         INFO 2  WARNING 1  ERROR 1" in out
    assert "pipeline.train         failure  1" in out and "pipeline.train         success  1" in out
    assert "(no task)              INFO 1" in out
    assert "failures: 1" in out and "pipeline.train  batch b2: NothingToLearn: batch b2 is empty" in out
    assert "quarantined rows: 5 in 1 batches" in out and "batch b1: 5" in out
    assert "drift events: 1" in out and "batch b1: prequential MAE rose to 3,000" in out
    assert "versions made: 1" in out and "version 7: learnt 95 rows (batch b1)" in out


def test_logs_names_every_batch_of_a_version_challengers_and_what_it_cut(tmp_path):
    """A step that learnt two batches, a challenger, and more versions than are listed."""
    path = tmp_path / "pipeline.log"
    script = """
from loguru import logger
from app import logs
logs.configure("INFO")
for version in range(1, 25):
    logger.bind(batch_id=f"b{version}").info(
        f"version {version} learnt 95 rows of 1 batch(es), 9,000 in all; promoted")
logger.bind(batch_id="b26").info("version 25 learnt 1,903 rows of 2 batch(es), 9,000 in all; promoted")
logger.info("challenger version 26 (trees on 3,740 rows of 4 batches): not better beyond chance")
"""
    subprocess.run([sys.executable, "-c", script], cwd=ROOT, check=True, capture_output=True,
                   env={**os.environ, "LOG_FILE": str(path), "LOG_JSON": "0"})
    out = run_cli("logs", str(path)).stdout
    assert "versions made: 26 (the last 20 shown)" in out
    assert "version 25: learnt 1,903 rows of 2 batches (the last: batch b26)" in out
    assert "version 26: challenger, trees on 3,740 rows of 4 batches" in out
    assert "version 24: learnt 95 rows (batch b24)" in out and "version 6:" not in out
    assert "failures: 0\n" in out


def test_logs_default_is_the_system_log_and_a_missing_file_is_status_2(tmp_path):
    missing = run_cli("logs", str(tmp_path / "nope.log"))
    assert missing.returncode == 2 and "No such file" in missing.stderr
    path = tmp_path / "home" / "logs" / "pipeline.log"
    path.parent.mkdir(parents=True)
    write_log(path, as_json=False)
    result = run_cli("logs", env={"PIPELINE_HOME": str(tmp_path / "home"), "LOG_FILE": ""})
    assert result.returncode == 0 and "versions made: 1" in result.stdout
