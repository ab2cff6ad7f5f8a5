"""Retention (``KEEP_VERSIONS``) never removes what is served, pinned or newest."""

import os
import subprocess
import sys
from pathlib import Path

from app.lifecycle.learning import Learner
from tests.support import arrive, salaries_times_100

ROOT = Path(__file__).resolve().parents[2]


def kept(home):
    newest = home.registry.latest_version()
    return [v for v in range(1, newest + 1)
            if home.storage.exists(f"models/artifacts/{home.registry.metadata(v).artifact}")]


def test_the_served_version_is_kept_when_newer_ones_are_refused(local_home):
    home, learner = local_home, Learner(local_home, keep_versions=1)
    for i in range(1, 4):
        arrive(home, f"b{i}", seed=i)
        learner.train([f"b{i}"])
    for i in range(2):
        arrive(home, f"x{i}", salaries_times_100(f"x{i}", seed=90 + i))
        learner.train([f"x{i}"])
    assert home.serving.state().version == 3 and home.registry.latest_version() == 5
    # 3 is served (and the lineage's head), 5 the newest; the refused 4 and the old ones go.
    assert kept(home) == [3, 5]
    assert home.registry.load(3).version == 3
    assert [m.version for m in home.registry.list()] == [5, 4, 3, 2, 1]


def test_a_version_pinned_long_ago_outlives_every_newer_one(local_home):
    home, learner = local_home, Learner(local_home, keep_versions=2)
    arrive(home, "b1", seed=1)
    learner.train(["b1"])
    arrive(home, "b2", seed=2)
    learner.train(["b2"])
    home.serving.rollback(reason="keep the first", by="ops")
    for i in range(3, 9):
        arrive(home, f"b{i}", seed=i)
        learner.train([f"b{i}"])
    assert kept(home) == [1, 7, 8]
    assert home.serving.state().version == 1


def test_keep_versions_reaches_the_worker_s_learner_from_the_environment():
    program = "from app.tasks.pipeline import train; print(train.learner.keep_versions)"
    result = subprocess.run([sys.executable, "-c", program], cwd=ROOT, capture_output=True,
                            text=True, timeout=60, env={**os.environ, "KEEP_VERSIONS": "7"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "7"
