"""The chaos run's checker: quiet on a home that kept its promises, and names each broken one."""

from app.lifecycle import invariants
from app.lifecycle.learning import Learner
from tests.support import arrive


def trained_home(home, count=4):
    learner = Learner(home)
    for number in range(1, count + 1):
        arrive(home, f"b{number}", seed=number, n=300)
        learner.train([f"b{number}"])
    return home


def test_a_home_trained_step_by_step_keeps_every_invariant(home):
    report = invariants.check(trained_home(home))
    assert report.ok, report.violations
    assert report.versions == 4 and report.batches == 4 and report.statuses == {"trained": 4}
    assert len(report.checked) == 5


def test_each_broken_promise_is_named(home):
    trained_home(home)
    arrive(home, "late", seed=9, n=300)  # normalized, never trained
    home.ledger.update("b2", status="failed")  # failed without a reason
    home.ledger.update("b3", version=2)  # the ledger and the registry disagree
    home.ledger.delete_stats("b4")  # the newest version's rows cannot be counted
    report = invariants.check(home)
    violations = "\n".join(report.violations)
    assert not report.ok and len(report.violations) == 6, violations
    assert "batch late is still normalized" in violations
    assert "batch b2 is failed without a reason" in violations
    assert "batch b2, learnt by version 2, is failed" in violations
    assert "batch b3 is trained by version 2, but the registry has it learnt by 3" in violations
    assert "the statistics of batch b4 (version 4) cannot be read" in violations
    assert "version 4 says n_samples_seen=" in violations
