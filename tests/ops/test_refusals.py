"""`make run` refuses a Redis or an S3 home it cannot use with one line saying why, in an
operator's words, before anything starts, and never prints a password doing so.

Each case runs ``python -m app.runner`` as a user would, with recognisable secrets, against a
Redis over TLS with an ACL user (a CA and certificate made for the test), a plain Redis with a
password, or moto's S3 server checking keys as AWS does; the whole output is searched for the
secrets.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from app.redis_server import free_port
from tests.faults.conftest import RedisServer
from tests.support import S3_CREDENTIALS, moto_server, wait_for

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(120)

PASSWORD = f"redis-SECRET-{secrets.token_hex(6)}"
WRONG_PASSWORD = f"wrong-SECRET-{secrets.token_hex(6)}"
AWS_SECRET = f"aws-SECRET-{secrets.token_hex(10)}"
# A Procfile whose one process says what it was given, then waits to be stopped.
PROCFILE = "probe: sh -c 'echo \"probe got $REDIS_URL\"; exec sleep 600'\n"


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory):
    """Redis over TLS only, with the ACL user ``pipeline`` and the default user off."""
    with RedisServer(tmp_path_factory.mktemp("tls-redis"), password=PASSWORD, user="pipeline",
                     tls=True) as server:
        yield server


@pytest.fixture(scope="module")
def plain_redis(tmp_path_factory):
    with RedisServer(tmp_path_factory.mktemp("plain-redis"), password=PASSWORD) as server:
        yield server


def run(tmp_path, started: bool = False, **env: str) -> subprocess.CompletedProcess:
    """`make run` over a one-line Procfile, until it refuses to start, or (``started``) until
    its process has started and a Ctrl-C stops it."""
    procfile = tmp_path / "Procfile"
    procfile.write_text(PROCFILE)
    environment = {key: value for key, value in os.environ.items()
                   if not key.startswith(("AWS_", "SERVICES", "PIPELINE_DEBUG"))}
    environment.update({"PIPELINE_HOME": str(tmp_path / "home"),
                        "AWS_SECRET_ACCESS_KEY": AWS_SECRET, **env})
    log = tmp_path / "run.log"
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "app.runner", "--procfile", str(procfile)], cwd=ROOT,
            env=environment, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        if started:
            wait_for(lambda: "probe got" in log.read_text() or process.poll() is not None,
                     timeout=60, what="the probe to start")
            if process.poll() is None:  # an ended run's group id may be another's by now
                os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return subprocess.CompletedProcess(process.args, process.returncode, log.read_text())


def refusal(result: subprocess.CompletedProcess, *secrets_: str) -> str:
    """The refusal's words, once checked that it is the whole output, one line, with a non-zero
    exit status, and that no secret is in it."""
    for secret in (PASSWORD, WRONG_PASSWORD, AWS_SECRET, *secrets_):
        assert secret not in result.stdout, result.stdout
    assert result.returncode == 1, result.stdout
    assert result.stdout.count("\n") == 1, result.stdout
    assert result.stdout.startswith("runner | cannot start: "), result.stdout
    return result.stdout.strip().removeprefix("runner | cannot start: ")


def masked(url: str) -> str:
    return url.replace(WRONG_PASSWORD, "***").replace(PASSWORD, "***")


def test_redis_over_tls_with_an_acl_user_starts_and_the_password_is_shown_masked(
        tmp_path, tls_redis):
    result = run(tmp_path, started=True, REDIS_URL=tls_redis.url)
    assert f"runner | Redis at {masked(tls_redis.url)}; " in result.stdout
    # What a child prints is masked too, by the runner.
    assert f"probe  | probe got {masked(tls_redis.url)}" in result.stdout
    assert PASSWORD not in result.stdout
    assert result.returncode == 0, result.stdout


# Each case: REDIS_URL, given the servers, and what `make run` says of it after "Redis at <URL>".
def wrong_password(tls, plain):
    return (tls.url.replace(PASSWORD, WRONG_PASSWORD),
            " refused the login of user pipeline: wrong user or password")


def wrong_user(tls, plain):
    return (tls.url.replace("pipeline:", "nobody:"),
            " refused the login of user nobody: wrong user or password")


def no_password(tls, plain):
    return (f"redis://127.0.0.1:{plain.port}/0",
            " demands a password, and REDIS_URL gives none")


def a_ca_that_did_not_sign_the_certificate(tls, plain):
    return (tls.url.replace(tls.tls["ca"], tls.tls["other_ca"]),
            ": its TLS certificate is not trusted (self-signed certificate in certificate chain);"
            f" checked against the CA file {tls.tls['other_ca']}")


def a_ca_file_that_does_not_exist(tls, plain):
    missing = str(tls.workdir / "no-such-ca.crt")
    return tls.url.replace(tls.tls["ca"], missing), f": cannot read ssl_ca_certs={missing}"


def tls_needed(tls, plain):
    return (f"redis://pipeline:{PASSWORD}@127.0.0.1:{tls.port}/0",
            " wants TLS: it refuses plain connections (use rediss://)")


def tls_not_offered(tls, plain):
    return (f"rediss://:{PASSWORD}@127.0.0.1:{plain.port}/0?ssl_cert_reqs=required",
            " does not offer TLS: it answers without it (use redis://)")


def nothing_listening(tls, plain):
    port = free_port()
    return (f"rediss://pipeline:{PASSWORD}@127.0.0.1:{port}/0?ssl_cert_reqs=required",
            f": nothing listens on 127.0.0.1:{port} (connection refused)")


def a_name_that_does_not_resolve(tls, plain):
    return (f"redis://pipeline:{PASSWORD}@no-such-host.invalid:6379/0",
            ": the name no-such-host.invalid does not resolve")


@pytest.mark.parametrize("case", [
    wrong_password, wrong_user, no_password, a_ca_that_did_not_sign_the_certificate,
    a_ca_file_that_does_not_exist, tls_needed, tls_not_offered, nothing_listening,
    a_name_that_does_not_resolve], ids=lambda case: case.__name__)
def test_a_redis_it_cannot_use_stops_make_run_with_one_line_saying_why(
        case, tmp_path, tls_redis, plain_redis):
    url, words = case(tls_redis, plain_redis)
    assert refusal(run(tmp_path, REDIS_URL=url)) == f"Redis at {masked(url)}{words}"


def test_a_home_folder_that_cannot_be_made(tmp_path):
    (tmp_path / "a-file").write_text("")
    result = run(tmp_path, PIPELINE_HOME=str(tmp_path / "a-file" / "home"))
    assert refusal(result) == (f"PIPELINE_HOME={tmp_path / 'a-file' / 'home'}: cannot make the "
                               "folder: Not a directory")


def test_the_inbox_folder_is_made_before_anything_starts_or_the_run_refused(tmp_path, tls_redis):
    run(tmp_path, started=True, REDIS_URL=tls_redis.url)
    assert (tmp_path / "home" / "inbox").is_dir()
    (tmp_path / "a-file").write_text("")
    result = run(tmp_path, INBOX=str(tmp_path / "a-file" / "inbox"))
    assert refusal(result) == (f"INBOX={tmp_path / 'a-file' / 'inbox'}: cannot make the "
                               "folder: Not a directory")


# -- S3 ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def s3(tls_redis):
    """moto's S3 server checking keys and signatures as AWS does, with one user allowed
    everything in S3 and the bucket ``pipeline-home``: the environment that reaches it."""
    import boto3

    with moto_server() as endpoint:
        anyone = dict(endpoint_url=endpoint, region_name="us-east-1",
                      aws_access_key_id="setup", aws_secret_access_key="setup")
        iam = boto3.client("iam", **anyone)
        iam.create_user(UserName="pipeline")
        key = iam.create_access_key(UserName="pipeline")["AccessKey"]
        iam.put_user_policy(UserName="pipeline", PolicyName="s3", PolicyDocument=json.dumps(
            {"Version": "2012-10-17",
             "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
        boto3.client("s3", **anyone).create_bucket(Bucket="pipeline-home")
        # From here on moto authenticates every request (it counts none as free any more).
        urllib.request.urlopen(urllib.request.Request(
            f"{endpoint}/moto-api/reset-auth", data=b"0", method="POST",
            headers={"Content-Type": "text/plain"}), timeout=10).close()
        yield {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": key["AccessKeyId"],
               "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"],
               "AWS_DEFAULT_REGION": S3_CREDENTIALS["AWS_DEFAULT_REGION"],
               "REDIS_URL": tls_redis.url, "PIPELINE_HOME": "s3://pipeline-home/run"}


def test_an_s3_home_with_the_right_keys_starts(tmp_path, s3):
    result = run(tmp_path, started=True, **s3)
    assert "PIPELINE_HOME=s3://pipeline-home/run;" in result.stdout
    assert "probe  | probe got " in result.stdout
    assert s3["AWS_SECRET_ACCESS_KEY"] not in result.stdout and PASSWORD not in result.stdout
    assert result.returncode == 0, result.stdout


# Each case: what changes in the environment, given the working one, and what `make run` says.
def wrong_secret_key(s3):
    return ({"AWS_SECRET_ACCESS_KEY": AWS_SECRET},
            f"S3 at {s3['AWS_ENDPOINT_URL']} refused the secret key of access key "
            f"{s3['AWS_ACCESS_KEY_ID']}: AWS_SECRET_ACCESS_KEY is wrong")


def unknown_access_key(s3):
    return ({"AWS_ACCESS_KEY_ID": "AKIANOSUCHKEY0000000"},
            f"S3 at {s3['AWS_ENDPOINT_URL']} does not know the access key AKIANOSUCHKEY0000000 "
            "(AWS_ACCESS_KEY_ID)")


def unknown_bucket(s3):
    return ({"PIPELINE_HOME": "s3://no-such-bucket/run"},
            f"S3 at {s3['AWS_ENDPOINT_URL']} has no bucket no-such-bucket")


def endpoint_not_answering(s3):
    port = free_port()
    return ({"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"},
            f"S3 at http://127.0.0.1:{port}: nothing listens on 127.0.0.1:{port} "
            "(connection refused)")


@pytest.mark.parametrize("case", [wrong_secret_key, unknown_access_key, unknown_bucket,
                                  endpoint_not_answering], ids=lambda case: case.__name__)
def test_an_s3_home_it_cannot_use_stops_make_run_with_one_line_saying_why(case, tmp_path, s3):
    change, words = case(s3)
    environment = {**s3, **change}
    result = run(tmp_path, **environment)
    assert refusal(result, s3["AWS_SECRET_ACCESS_KEY"]) == (
        f"PIPELINE_HOME={environment['PIPELINE_HOME']}: {words}")
