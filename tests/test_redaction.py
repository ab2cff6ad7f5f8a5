"""No password leaves a process: ``settings.redact`` masks every URL's password and every secret
the environment holds, and every log event goes through it, traceback and JSON included."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app import settings

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "redis-SECRET-8c1f2e"
AWS_SECRET = 'aws-SECRET/with"quote\\and+slash'


@pytest.mark.parametrize("text, masked", [
    ("rediss://pipeline:s3cret@cache:6380/0?ssl_ca_certs=/etc/ca.pem&ssl_cert_reqs=required",
     "rediss://pipeline:***@cache:6380/0?ssl_ca_certs=/etc/ca.pem&ssl_cert_reqs=required"),
    ("cannot start: Redis at redis://:s3cret@127.0.0.1:6379/0 refused",
     "cannot start: Redis at redis://:***@127.0.0.1:6379/0 refused"),
    ("sentinel://:pw1@h1:26379;sentinel://:pw2@h2:26379;sentinel://h3:26379/0",
     "sentinel://:***@h1:26379;sentinel://:***@h2:26379;sentinel://h3:26379/0"),
    ("redis://ops:p@ss:w0rd@cache:6379/0", "redis://ops:***@cache:6379/0"),
    ("redis://cache:6379/0?password=s3cret&db=1", "redis://cache:6379/0?password=***&db=1"),
    ("https://minio:9000/bucket?X-Amz-Security-Token=abc&x=1",
     "https://minio:9000/bucket?X-Amz-Security-Token=***&x=1"),
    ("redis://cache:6379/0 and celery@host.example ready", "redis://cache:6379/0 and "
     "celery@host.example ready"),
])
def test_redact_masks_the_password_of_every_url_in_the_text(text, masked):
    assert settings.redact(text) == masked


def test_redact_masks_the_environments_secrets_wherever_they_appear(monkeypatch):
    monkeypatch.setenv("REDIS_URL", "rediss://pipeline:pw%40" + PASSWORD + "@cache:6380/0")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", AWS_SECRET)
    monkeypatch.setenv("FLOWER_BASIC_AUTH", "ops:flower-SECRET-1,dev:flower-SECRET-3")
    monkeypatch.setenv("API_TOKEN", "ci:token-SECRET-2")
    text = (f"pw@{PASSWORD} pw%40{PASSWORD} {AWS_SECRET} {json.dumps({'k': AWS_SECRET})} "
            "flower-SECRET-1 flower-SECRET-3 Bearer ci:token-SECRET-2 (users ops, dev and ci)")
    assert settings.redact(text) == ('*** *** *** {"k": "***"} *** *** Bearer ci:*** '
                                     '(users ops, dev and ci)')


def test_a_short_secret_is_masked_in_urls_but_not_searched_for_in_free_text(monkeypatch):
    """"redis" as a password must not turn every redis-server in the logs into ***."""
    monkeypatch.setenv("REDIS_URL", "redis://:redis@cache:6379/0")
    assert settings.redact("redis-server at redis://:redis@cache:6379/0") == (
        "redis-server at redis://:***@cache:6379/0")


LOGGING = """
import logging, os, sys
from loguru import logger
from app import logs
logs.configure()
logger.info("connected to {}", os.environ["REDIS_URL"])
logging.getLogger("kombu").warning("Cannot connect to %s", os.environ["REDIS_URL"])
try:
    raise ConnectionError(f"lost {os.environ['REDIS_URL']} (password {sys.argv[1]})")
except ConnectionError:
    logger.exception("a library's error quoting its URL")
logger.complete()
"""


@pytest.mark.parametrize("log_json", ["", "1"])
@pytest.mark.parametrize("debug", [False, True])
def test_every_log_event_is_masked_on_stderr_and_in_the_log_file(tmp_path, log_json, debug):
    """Messages, standard-library records, tracebacks (with PIPELINE_DEBUG's variable values
    too), as text lines or JSON."""
    log_file = tmp_path / "pipeline.log"
    env = dict(os.environ, LOG_FILE=str(log_file), LOG_JSON=log_json,
               REDIS_URL=f"rediss://pipeline:{PASSWORD}@cache:6380/0")
    code = LOGGING.replace("logs.configure()", f"logs.configure(debug={debug})")
    result = subprocess.run([sys.executable, "-c", code, PASSWORD], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    for output in (result.stderr, log_file.read_text()):
        assert "rediss://pipeline:***@cache:6380/0" in output
        assert "Cannot connect to" in output and "ConnectionError: lost" in output
        assert PASSWORD not in output, output
