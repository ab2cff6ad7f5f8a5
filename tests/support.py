"""Helpers for tests that wait on other processes, and an S3-compatible store of their own."""

import contextlib
import os
import socket
import subprocess
import sys
import time

import pytest

from app.redis_server import free_port

# moto's server accepts any keys; these only need to be present.
S3_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                  "AWS_DEFAULT_REGION": "us-east-1"}


def tls_files(folder) -> dict[str, str]:
    """A throw-away CA, a server certificate it signed for 127.0.0.1 and localhost, and a
    second CA that signed nothing: the paths, under ``folder``, as ``ca``, ``cert``, ``key``
    and ``other_ca``."""
    import datetime
    import ipaddress
    from pathlib import Path

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)

    def certificate(subject, key, issuer, issuer_key, ca, names=()):
        builder = (x509.CertificateBuilder()
                   .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
                   .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(hours=1))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
                   # Python 3.13's strict checks want both key identifiers.
                   .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                                  critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                       issuer_key.public_key()), critical=False))
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(list(names)),
                                            critical=False)
        return builder.sign(issuer_key, hashes.SHA256())

    def write(name, data):
        (folder / name).write_bytes(data)
        return str(folder / name)

    def self_signed(name):
        key = ec.generate_private_key(ec.SECP256R1())
        return key, certificate(name, key, name, key, ca=True)

    ca_key, ca = self_signed("pipeline test CA")
    _, other_ca = self_signed("pipeline test other CA")
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = certificate("127.0.0.1", server_key, "pipeline test CA", ca_key, ca=False,
                         names=[x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                x509.DNSName("localhost")])
    pem = serialization.Encoding.PEM
    return {"ca": write("ca.crt", ca.public_bytes(pem)),
            "other_ca": write("other-ca.crt", other_ca.public_bytes(pem)),
            "cert": write("server.crt", server.public_bytes(pem)),
            "key": write("server.key", server_key.private_bytes(
                pem, serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption()))}


def arrive(home, batch_id, frame=None, seed=None, n=1000):
    """A batch received and normalized, as ingest or generate then normalize leave it."""
    from app.data.batches import normalize_batch, receive_batch
    from app.data.generator import generate

    if frame is None:
        frame = generate(n, seed=seed if seed is not None else abs(hash(batch_id)) % 10**6,
                         batch_id=batch_id)
    receive_batch(home.lake, home.ledger, batch_id, frame, source="ingest")
    return normalize_batch(home.lake, home.ledger, batch_id, home.dataset)


def salaries_times_100(batch_id, seed, n=1000):
    """A batch with a unit error: every salary a hundred times what it should be."""
    from app.data.generator import generate

    frame = generate(n, seed=seed, batch_id=batch_id)
    frame["salario"] = frame["salario"] * 100
    return frame


def cluster_redis_url(redis_url: str) -> str:
    """A Redis database for the processes a test starts itself (``TEST_REDIS_CLUSTER_DB``),
    emptied: the session's in-process worker never takes their messages."""
    import redis

    url = redis_url.rsplit("/", 1)[0] + "/" + os.environ.get("TEST_REDIS_CLUSTER_DB", "14")
    redis.Redis.from_url(url).flushdb()
    return url


def celery_process(*args, env, log, cwd):
    """``celery -A worker ARGS`` in a child process, its output to ``log``."""
    return subprocess.Popen([sys.executable, "-m", "celery", "-A", "worker", *args], cwd=cwd,
                            env=env, stdout=log, stderr=subprocess.STDOUT)


def stop_processes(processes, timeout: float = 30) -> None:
    """SIGTERM each process, then wait for all; one that will not stop is killed."""
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def http_json(url: str, path: str, body=None):
    """``url + path``'s JSON answer: a POST of ``body`` as JSON, or a GET without one."""
    import json
    import urllib.request

    request = urllib.request.Request(url + path, method="POST" if body is not None else "GET",
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())


def wait_for_listeners(redis_url: str, home_url: str, count: int, timeout: float = 30.0) -> None:
    """Until ``count`` web processes listen to the notices of ``home_url`` (they start their
    listener at their first request): a notice sent sooner could reach none of them."""
    import redis

    from app.notices import channel

    client = redis.Redis.from_url(redis_url)
    wait_for(lambda: dict(client.pubsub_numsub(channel(home_url))).get(
        channel(home_url).encode(), 0) >= count, timeout=timeout,
        what=f"{count} web processes listening to the notices")


def wait_for(predicate, timeout=30.0, interval=0.05, what="condition"):
    """Poll ``predicate`` until it returns something truthy; fail with ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


@contextlib.contextmanager
def moto_server(host: str = "127.0.0.1", port: int | None = None):
    """moto's S3 server in a child process; yields its endpoint URL.

    A real HTTP server speaking S3, so the code under test goes through s3fs and botocore as
    it would against AWS or MinIO.
    """
    port = port or free_port()
    process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", host, "-p", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError), socket.create_connection((host, port), 0.2):
                break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("moto's S3 server did not start")
            time.sleep(0.05)
        yield f"http://{host}:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def create_bucket(endpoint: str, bucket: str) -> None:
    import boto3

    boto3.client("s3", endpoint_url=endpoint, **{
        "aws_access_key_id": S3_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": S3_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        "region_name": S3_CREDENTIALS["AWS_DEFAULT_REGION"]}).create_bucket(Bucket=bucket)


def s3_environment(endpoint: str) -> dict[str, str]:
    """The standard AWS variables that point s3fs (and anything else) at ``endpoint``."""
    return {"AWS_ENDPOINT_URL": endpoint, **S3_CREDENTIALS}


def use_s3(endpoint: str) -> None:
    """Point this process's S3 clients at ``endpoint``."""
    os.environ.update(s3_environment(endpoint))


def metric_samples(text: str) -> dict[tuple, float]:
    """Prometheus text as ``{(sample name, (label, value) pairs sorted): value}``."""
    from prometheus_client.parser import text_string_to_metric_families

    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def promtool_check_metrics(text: str) -> None:
    """Fail unless ``promtool check metrics`` accepts ``text``; skip when promtool is missing."""
    import shutil

    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian package prometheus; `make system`)")
    checked = subprocess.run([promtool, "check", "metrics"], input=text.encode(),
                             capture_output=True, timeout=30)
    assert checked.returncode == 0, checked.stdout.decode() + checked.stderr.decode()


def grow_history(home, batches: int = 32, size: int = 400, change: range = range(12, 20),
                 bad_rows: int = 3) -> None:
    """Train ``batches`` batches into ``home`` as the worker does, so there is a history to show.

    In the batches numbered in ``change`` salaries are 60% higher (a change the drift detector
    sees, then its end); every third batch has ``bad_rows`` rows that go to quarantine.
    """
    from app.data.batches import normalize_batch, receive_batch
    from app.data.generator import generate
    from app.lifecycle.learning import Learner

    learner = Learner(home)
    for number in range(1, batches + 1):
        batch_id = f"history-{number:04d}"
        records = generate(size, seed=number, batch_id=batch_id).astype({"idade": object})
        if number in change:
            records["salario"] = (records["salario"] * 1.6).round(2)
        if number % 3 == 0:
            records.loc[:bad_rows - 1, "idade"] = 150
        receive_batch(home.lake, home.ledger, batch_id, records, source="generator")
        normalize_batch(home.lake, home.ledger, batch_id, home.dataset)
        learner.train([batch_id])
