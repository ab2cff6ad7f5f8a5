"""Evaluation of a declared dataset's versions, on held-out rows (no generator to draw from)."""

from pathlib import Path

from app.dataset import load
from app.lifecycle.home import Home
from app.lifecycle.learning import Learner
from app.observe.report import evaluate_and_report
from examples.cps1985 import cps1985
from tests.support import arrive

ROOT = Path(__file__).resolve().parents[2]


def test_any_version_is_scored_on_the_held_out_rows_of_the_newest_batches(tmp_path):
    """Version 1 learnt 40 rows, one of them held out: scored on its own batches alone it had
    nothing to be scored on, whatever was learnt since ("learn a few more batches first"). Any
    version is now scored on the rows no version learnt, of the recent batches: the same rows
    for the old version as for the newest, so their scores compare."""
    home = Home(str(tmp_path / "home"), dataset=load(ROOT / "examples" / "cps1985.toml"))
    learner = Learner(home)
    wages = cps1985()
    for number, (start, end) in enumerate([(0, 40), (40, 200), (200, 360), (360, 534)]):
        arrive(home, f"w{number}", frame=wages.iloc[start:end].reset_index(drop=True))
        learner.train([f"w{number}"])
    newest = home.registry.latest_version()
    first, last = evaluate_and_report(home, 1), evaluate_and_report(home, newest)
    assert first["records"] == last["records"] == "held-out"
    held_out = sum(home.ledger.get(f"w{number}")["holdout"] for number in range(4))
    assert home.ledger.get("w0")["holdout"] < 2 < held_out
    assert first["n"] == last["n"] == held_out  # every held-out row of the four batches
