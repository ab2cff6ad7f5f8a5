"""Two systems on one Redis database (issue 20, part 1): the second one's `make run` stops
before it starts anything, naming both homes, instead of the two taking each other's batches;
a system with the same home shares the database, and a stopped one frees it."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

# Only a line of no role runs: the claim is taken before any process starts.
IDLE = {"SERVICES": "redis"}


def test_a_second_home_on_the_same_redis_database_is_refused_naming_both(make_system,
                                                                         tmp_path):
    first = make_system(add={"idle": "sleep 600"}, **IDLE)
    first.wait_for_line(r"started idle")
    other = tmp_path / "other-home"
    second = make_system(add={"idle": "sleep 600"}, PIPELINE_HOME=str(other), **IDLE)
    assert second.process.wait(timeout=60) == 1
    refusal = "\n".join(second.lines("runner"))
    assert "cannot start" in refusal and "is used by another system" in refusal, refusal
    assert f"PIPELINE_HOME={tmp_path / 'home'}" in refusal and f"PIPELINE_HOME={other}" in refusal
    assert "started" not in refusal

    # The same home (another host of one deployment) shares the claim.
    same = make_system(add={"idle": "sleep 600"}, **IDLE)
    same.wait_for_line(r"started idle")
    same.stop()
    # Stopped, the first system frees the database for the other home.
    first.stop()
    third = make_system(add={"idle": "sleep 600"}, PIPELINE_HOME=str(other), **IDLE)
    third.wait_for_line(r"started idle")
