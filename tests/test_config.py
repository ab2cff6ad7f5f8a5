"""Celery reads every setting we write, and the schedule follows the environment."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from celery.app.defaults import DEFAULTS

ROOT = Path(__file__).resolve().parents[1]


def conf_in_subprocess(**env):
    """Import the Celery app in a fresh process with ``env`` set, as `celery -A worker` does."""
    code = ("import json, worker; c = worker.app.conf; print(json.dumps({k: c[k] for k in ("
            "'broker_url', 'result_backend', 'beat_schedule', 'beat_scheduler', "
            "'redbeat_redis_url')}, "
            "default=str))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, env={**os.environ, **env}, timeout=60)
    return result


def test_every_setting_in_celeryconfig_is_one_celery_knows():
    import celeryconfig

    ours = {name for name in vars(celeryconfig)
            if not name.startswith("_") and name.islower() and name not in {"settings", "Queue"}}
    # RedBeat reads its own settings (redbeat_*) from the same configuration, and Celery's
    # Redis result backend reads this one without listing it among its defaults.
    read_elsewhere = {"redis_backend_health_check_interval"}
    assert {name for name in ours - set(DEFAULTS) - read_elsewhere
            if not name.startswith("redbeat_")} == set()
    assert {"task_serializer", "accept_content", "task_acks_late", "worker_send_task_events",
            "worker_prefetch_multiplier", "beat_schedule"} <= ours


def test_the_app_accepts_json_only_and_routes_training_to_its_queue(celery_app):
    conf = celery_app.conf
    assert conf.accept_content == ["json"] and conf.task_serializer == "json"
    assert conf.task_routes["pipeline.train"] == {"queue": "train"}
    assert {queue.name for queue in conf.task_queues} == {"celery", "train", "recover"}
    # Recovery never waits behind a backlog of the other tasks (its messages expire).
    assert conf.task_routes["pipeline.recover"] == {"queue": "recover"}
    assert conf.worker_send_task_events and conf.task_send_sent_event


def test_tasks_are_registered_under_the_contract_names(celery_app):
    assert {"pipeline.generate", "pipeline.normalize", "pipeline.train",
            "pipeline.evaluate"} <= set(celery_app.tasks)


def test_schedule_and_broker_follow_the_environment(tmp_path):
    result = conf_in_subprocess(GENERATE_EVERY="7", BATCH_SIZE="33", PIPELINE_HOME=str(tmp_path),
                                REDIS_URL="redis://example.invalid:6390/3")
    assert result.returncode == 0, result.stderr
    conf = json.loads(result.stdout)
    assert conf["broker_url"] == conf["result_backend"] == "redis://example.invalid:6390/3"
    entry = conf["beat_schedule"]["generate-batch"]
    assert entry["task"] == "pipeline.generate"
    assert float(entry["schedule"]) == 7.0 and entry["kwargs"] == {"batch_size": 33}
    # The schedule's state and the one-beat lock live in that Redis, not in a file.
    assert conf["beat_scheduler"] == "redbeat.RedBeatScheduler"
    assert conf["redbeat_redis_url"] == conf["broker_url"]


@pytest.mark.parametrize("name, value", [("GENERATE_EVERY", "soon"), ("BATCH_SIZE", "-5")])
def test_a_bad_setting_stops_start_up_with_its_name(name, value):
    result = conf_in_subprocess(**{name: value})
    assert result.returncode != 0 and name in result.stderr


def test_redbeat_reads_our_lock_and_wakes_often_enough_to_take_over(celery_app):
    """A waiting beat retries the lock every beat_max_loop_interval s: well within its timeout."""
    from redbeat.schedulers import RedBeatConfig

    config = RedBeatConfig(celery_app)
    assert config.lock_key == "pipeline:redbeat:lock"
    assert config.lock_timeout == 10
    assert celery_app.conf.beat_max_loop_interval * 3 < config.lock_timeout


def test_a_sentinel_url_configures_broker_results_and_beat_for_the_named_primary(tmp_path):
    """Every Celery and RedBeat client follows the primary the sentinels name; the database
    and password reach each sentinel's part (kombu reads the first), and RedBeat's password
    is in its options (masked by Celery), not its URL."""
    code = ("import json, worker; c = worker.app.conf; print(json.dumps({k: c[k] for k in ("
            "'broker_url', 'result_backend', 'broker_transport_options', "
            "'result_backend_transport_options', 'redbeat_redis_url', 'redbeat_redis_options', "
            "'broker_channel_error_retry')}, default=str))")
    url = "sentinel://:s3cret-pw@h1:26379;sentinel://h2:26380;sentinel://h3:26381/4"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, timeout=60,
                            env={**os.environ, "REDIS_URL": url, "PIPELINE_HOME": str(tmp_path),
                                 "REDIS_SENTINEL_MASTER": "pipeline-primary"})
    assert result.returncode == 0, result.stderr
    conf = json.loads(result.stdout)
    every_part = ("sentinel://:s3cret-pw@h1:26379/4;sentinel://:s3cret-pw@h2:26380/4;"
                  "sentinel://:s3cret-pw@h3:26381/4")
    assert conf["broker_url"] == conf["result_backend"] == every_part
    assert conf["broker_transport_options"]["master_name"] == "pipeline-primary"
    assert conf["result_backend_transport_options"] == {"master_name": "pipeline-primary"}
    assert conf["redbeat_redis_url"].startswith("redis-sentinel://")
    assert "s3cret" not in conf["redbeat_redis_url"]
    assert conf["redbeat_redis_options"] == {
        "retry_period": -1, "sentinels": [["h1", 26379], ["h2", 26380], ["h3", 26381]],
        "service_name": "pipeline-primary", "db": 4, "password": "s3cret-pw"}
    # A demoted primary's ReadOnlyError is a channel error: the consumer must reconnect.
    assert conf["broker_channel_error_retry"] is True


def test_the_sentinel_primary_name_is_a_setting(monkeypatch):
    from app import settings

    monkeypatch.delenv("REDIS_SENTINEL_MASTER", raising=False)
    assert settings.load().redis_sentinel_master == "mymaster"
    monkeypatch.setenv("REDIS_SENTINEL_MASTER", "other")
    assert settings.load().redis_sentinel_master == "other"
