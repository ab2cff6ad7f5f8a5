"""The loop as a client drives it, on `make run` with LOG_PREDICTIONS=1: predict, send the
labels back (over HTTP and with `python -m app feedback`), see them learnt and the live error
on /status, /metrics and the model page."""

import urllib.request

import numpy as np
import pytest

from app.data.generator import generate
from tests.faults.conftest import make_system, redis_server  # noqa: F401 - fixtures
from tests.support import http_json, metric_samples, wait_for
from tests.test_cli import run_cli

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def test_answers_given_then_their_labels_are_learnt_and_measured(make_system, tmp_path):
    system = make_system(LOG_PREDICTIONS="1")
    system.ready(("worker", "beat", "web"))
    wait_for(lambda: system.newest_version() >= 1, timeout=120, what="a first version")
    people = generate(600, seed=41)
    records = people[["idade", "cidade", "cargo"]].astype({"idade": int}).to_dict("records")
    records = [{**r, "cidade": str(r["cidade"]), "cargo": str(r["cargo"])} for r in records]
    answer = http_json(system.web_url, "/predict", {"records": records})
    ids, predicted = answer["prediction_ids"], np.asarray(answer["predictions"])
    truth = people["salario"].to_numpy(dtype=float)
    half = len(ids) // 2
    # Over HTTP...
    labels = [{"prediction_id": i, "value": float(v)} for i, v in zip(ids[:half], truth[:half])]
    reply = wait_for(lambda: (r := http_json(system.web_url, "/feedback", {"labels": labels}))
                     ["matched"] and r, timeout=10, what="the kept answers written")
    assert (reply["matched"], reply["unknown"]) == (half, 0)
    # ...and from a file, as `python -m app feedback` sends it.
    path = tmp_path / "labels.csv"
    path.write_text("prediction_id,value\n" + "".join(
        f"{i},{float(v)!r}\n" for i, v in zip(ids[half:], truth[half:])) + "00000000000000000000000000ff,1\n")
    result = run_cli("--url", system.web_url, "feedback", str(path))
    assert result.returncode == 0, result.stderr
    assert f"{len(ids) - half:,} matched, 1 unknown, 0 labelled already" in result.stdout
    feedback = [b for b in system.home.ledger.newest_first() if b["source"] == "feedback"]
    assert len(feedback) == 2
    wait_for(lambda: all(system.home.ledger.get(b["batch_id"])["status"] == "trained"
                         for b in feedback), timeout=120, what="the feedback batches learnt")
    expected = float(np.mean(np.abs(truth - predicted)))
    live = http_json(system.web_url, "/status")["live"]
    assert live["labelled"] == len(ids) and live["mae"] == pytest.approx(expected, rel=1e-9)
    samples = metric_samples(urllib.request.urlopen(system.web_url + "/metrics").read().decode())
    version = str(answer["model_version"])
    assert samples[("pipeline_live_mae", (("version", version),))] == pytest.approx(expected)
    page = urllib.request.urlopen(system.web_url + "/", timeout=30).read().decode()
    assert "live MAE (labels)" in page and 'class="live"' in page
