"""deploy/prometheus: the alert rules pass their unit tests, and the config and rules load."""

import shutil
import subprocess
from pathlib import Path

import pytest

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
ALERTS = ("PipelineNoBatch", "PipelinePrequentialErrorRising", "PipelineDriftDetected",
          "PipelinePredictErrors", "PipelinePromotionRefused", "PipelineLiveErrorAboveExpected")


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.skip("promtool is not installed (Debian package prometheus; `make system`)")
    return path


def run(promtool: str, *args: str) -> str:
    done = subprocess.run([promtool, *args], cwd=DEPLOY, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def test_every_alert_passes_its_promtool_unit_tests(promtool):
    run(promtool, "test", "rules", "alerts_test.yml")


def test_every_alert_has_a_unit_test_that_shows_it_firing():
    import yaml

    rules = yaml.safe_load((DEPLOY / "alerts.yml").read_text())
    names = [rule["alert"] for group in rules["groups"] for rule in group["rules"]]
    assert sorted(names) == sorted(ALERTS)
    tests = yaml.safe_load((DEPLOY / "alerts_test.yml").read_text())["tests"]
    fired = {case["alertname"] for test in tests for case in test["alert_rule_test"]
             if case["exp_alerts"]}
    assert fired == set(ALERTS)


def test_the_scrape_config_and_its_rules_are_valid(promtool):
    assert "SUCCESS" in run(promtool, "check", "config", "prometheus.yml")
