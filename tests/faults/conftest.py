"""The fault suite's processes: a Redis of its own that a test may kill, and `make run` itself.

``redis_server`` is a ``redis-server`` on a free port that a test may SIGKILL and start again on
the same port (its data gone, as after a crash without persistence). ``make_system`` starts
``python -m app.runner`` (what ``make run`` runs) over a copy of the real Procfile, whose lines
a test may extend (``-I tests.faults.inject`` loads a fault into the worker), against that Redis
and a ``PIPELINE_HOME`` of the test's own. The runner's output, every child's lines after its
name, goes to ``system.log``, which tests read and wait on.

The children run in a temporary folder (the Procfile's), with the repository on PYTHONPATH, so
nothing a fault leaves behind lands in the repository.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from app import redis_server as redis_servers
from app.lifecycle.home import Home

# Importing the faults patches the worker's code: --doctest-modules must not import them into the
# test process, where every in-process worker would then run them.
collect_ignore = ["inject.py"]
from app.redis_server import free_port
from app.runner import PROCFILE, read_procfile
from tests.support import tls_files, wait_for

ROOT = Path(__file__).resolve().parents[2]
# Fast enough that a test sees many batches; small enough that training stays quick.
FAST = {"GENERATE_EVERY": "1", "BATCH_SIZE": "200"}


class RedisServer:
    """A ``redis-server`` on a fixed loopback port, no persistence: a restart loses everything.

    With ``password`` it demands one: of ``user``, an ACL user (the default user is then off),
    or of the default user. With ``tls`` it speaks TLS only, with a certificate from a CA of
    its own (``tls["ca"]``; ``tls["other_ca"]`` signed nothing), and ``url`` names that CA.
    Changing ``password`` takes effect at the next start.
    """

    def __init__(self, workdir: Path, password: str | None = None, user: str | None = None,
                 tls: bool = False, options: tuple[str, ...] = ()):
        self.extra = list(options)
        self.binary = redis_servers.find_server()
        if self.binary is None:
            pytest.skip("the fault suite needs redis-server on PATH (apt-get install redis-server)")
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.password, self.user = password, user
        self.tls = tls_files(workdir / "tls") if tls else None
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        auth = f"{self.user or ''}:{self.password}@" if self.password else ""
        if self.tls is None:
            return f"redis://{auth}127.0.0.1:{self.port}/0"
        return (f"rediss://{auth}127.0.0.1:{self.port}/0?ssl_ca_certs={self.tls['ca']}"
                "&ssl_cert_reqs=required")

    def _options(self) -> list[str]:
        if self.tls is None:
            options = ["--port", str(self.port)]
        else:
            options = ["--port", "0", "--tls-port", str(self.port), "--tls-auth-clients", "no",
                       "--tls-cert-file", self.tls["cert"], "--tls-key-file", self.tls["key"],
                       "--tls-ca-cert-file", self.tls["ca"]]
        if self.password and self.user:
            acl = self.workdir / "users.acl"
            acl.write_text(f"user default off\nuser {self.user} on >{self.password} ~* &* +@all\n")
            options += ["--aclfile", str(acl)]
        elif self.password:
            options += ["--requirepass", self.password]
        return options + self.extra

    def start(self) -> None:
        log = self.workdir / "redis.log"
        log.unlink(missing_ok=True)
        self.process = subprocess.Popen(
            [self.binary, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir), "--logfile", str(log), *self._options()],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)

        def up():
            if self.process.poll() is not None:
                output = log.read_text(errors="replace") if log.exists() else ""
                if self.tls is not None and "TLS" in output:
                    pytest.skip(f"this redis-server cannot serve TLS: {output.strip()[-300:]}")
                pytest.fail(f"redis-server ended at start: {output[-2000:]}")
            return redis_servers.answers(self.url)

        wait_for(up, timeout=10, what="redis-server")

    def kill(self) -> None:
        """SIGKILL, as a crash or the OOM killer would: nothing is saved."""
        self.process.kill()
        self.process.wait()

    def restart(self) -> None:
        self.kill()
        self.start()

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.kill()

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(self, *_) -> None:
        self.stop()


class SentinelCluster:
    """A primary, a replica and three sentinels on loopback ports, quick to fail over.

    The sentinels' configuration files (which they rewrite) are in ``workdir``. ``url`` is the
    system's ``REDIS_URL``; ``nodes`` are the two data servers, either of which may be the
    primary: :meth:`primary` asks the sentinels which.
    """

    MASTER = "mymaster"

    def __init__(self, workdir: Path, down_after_ms: int = 1000, failover_timeout_ms: int = 5000):
        first = RedisServer(workdir / "node1")
        second = RedisServer(workdir / "node2",
                             options=("--replicaof", "127.0.0.1", str(first.port)))
        self.nodes = [first, second]
        self.workdir, self.sentinels = workdir, []
        self.ports = [free_port() for _ in range(3)]
        self.settings = (f"sentinel down-after-milliseconds {self.MASTER} {down_after_ms}\n"
                         f"sentinel failover-timeout {self.MASTER} {failover_timeout_ms}\n"
                         f"sentinel parallel-syncs {self.MASTER} 1\n")

    @property
    def url(self) -> str:
        return ";".join(f"sentinel://127.0.0.1:{port}" for port in self.ports) + "/0"

    def start(self) -> None:
        for node in self.nodes:
            node.start()
        for number, port in enumerate(self.ports, start=1):
            folder = self.workdir / f"sentinel{number}"
            folder.mkdir(parents=True, exist_ok=True)
            config = folder / "sentinel.conf"
            config.write_text(f"port {port}\nbind 127.0.0.1\ndir {folder}\n"
                              f"logfile {folder / 'sentinel.log'}\n"
                              f"sentinel monitor {self.MASTER} 127.0.0.1 {self.nodes[0].port} 2\n"
                              + self.settings)
            self.sentinels.append(subprocess.Popen(
                [self.nodes[0].binary, str(config), "--sentinel"], stdout=subprocess.DEVNULL,
                stderr=subprocess.STDOUT, start_new_session=True))
        # A failover needs the sentinels to know each other and the replica: a few hellos.
        wait_for(self._settled, timeout=30, what="the sentinels to see each other and the replica")

    def sentinel(self, number: int = 0) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.ports[number], socket_timeout=2,
                           decode_responses=True)

    def _settled(self) -> bool:
        with contextlib.suppress(redis.RedisError):
            return all(int(self.sentinel(n).sentinel_master(self.MASTER)["num-other-sentinels"])
                       == 2 and self.sentinel(n).sentinel_slaves(self.MASTER)
                       for n in range(3))
        return False

    def primary(self) -> RedisServer | None:
        """The node the sentinels name as primary (None while none answers)."""
        for number in range(3):
            with contextlib.suppress(redis.RedisError, TypeError):
                _, port = self.sentinel(number).sentinel_get_master_addr_by_name(self.MASTER)
                return next(node for node in self.nodes if node.port == int(port))
        return None

    def replica(self) -> RedisServer:
        primary = self.primary()
        return next(node for node in self.nodes if node is not primary)

    def wait_for_promotion(self, old: RedisServer, timeout: float = 60) -> RedisServer:
        """The new primary, once the sentinels name a node other than ``old`` and it
        answers as a primary."""

        def promoted():
            primary = self.primary()
            if primary is None or primary is old:
                return None
            with contextlib.suppress(redis.RedisError):
                return primary if primary.client().info("replication")["role"] == "master" else None
            return None

        return wait_for(promoted, timeout=timeout, interval=0.05, what="a promotion")

    def stop(self) -> None:
        for process in self.sentinels:
            process.kill()
            process.wait()
        for node in self.nodes:
            node.stop()


@pytest.fixture
def sentinel_cluster(tmp_path):
    cluster = SentinelCluster(tmp_path / "sentinel")
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def redis_server(tmp_path):
    with RedisServer(tmp_path / "redis") as server:
        yield server


def procfile(path: Path, extra: dict[str, str] | None = None,
             add: dict[str, str] | None = None) -> Path:
    """The real Procfile at ``path``, with ``extra`` words appended to the named lines and
    ``add`` lines after them."""
    lines = {name: f"{command} {(extra or {}).get(name, '')}".rstrip()
             for name, command in read_procfile(PROCFILE).items()}
    lines.update(add or {})
    path.write_text("".join(f"{name}: {command}\n" for name, command in lines.items()))
    return path


class System:
    """One `make run` (``python -m app.runner``) in its own session, its output in ``log``."""

    def __init__(self, folder: Path, env: dict[str, str], procfile_path: Path):
        self.folder, self.env = folder, env
        self.log = folder / "run.log"
        self.web_url = f"http://127.0.0.1:{env['WEB_PORT']}"
        self.flower_url = f"http://127.0.0.1:{env['FLOWER_PORT']}"
        self.home = Home(env["PIPELINE_HOME"])
        with open(self.log, "wb") as output:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "app.runner", "--procfile", str(procfile_path)],
                cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT,
                start_new_session=True)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def lines(self, name: str) -> list[str]:
        """The lines a child (or ``runner``) printed, without the name column."""
        prefix = re.compile(rf"^{re.escape(name)}\s* \| ")
        return [prefix.sub("", line) for line in self.output().splitlines()
                if prefix.match(line)]

    def wait_for_line(self, pattern: str, name: str = "runner", timeout: float = 60,
                      after: int = 0) -> re.Match:
        """The first line of ``name`` matching ``pattern``, from its ``after``-th line on."""

        def found():
            for line in self.lines(name)[after:]:
                if match := re.search(pattern, line):
                    return match
            assert self.process.poll() is None, f"the run ended:\n{self.output()[-4000:]}"
            return None

        return wait_for(found, timeout=timeout, interval=0.1, what=f"{name}: {pattern}")

    def pid(self, name: str) -> int:
        """The pid of the latest start of the Procfile line ``name``."""
        pids = re.findall(rf"(?:started|restarted) {re.escape(name)} \(pid (\d+)\)",
                          "\n".join(self.lines("runner")))
        assert pids, f"{name} was never started:\n{self.output()[-4000:]}"
        return int(pids[-1])

    def kill(self, name: str, signum: int = signal.SIGKILL) -> int:
        """Signal the process that runs ``name`` (not its group); returns its pid."""
        pid = self.pid(name)
        os.kill(pid, signum)
        return pid

    def ready(self, services=("worker", "beat", "web", "flower"), timeout: float = 90) -> None:
        """Wait until each of ``services`` has said it is up."""
        signs = {"worker": ("worker", r"celery@\S+ ready"), "beat": ("beat", r"beat: Starting"),
                 "web": ("web", r"Booting worker"), "flower": ("flower", r"Visit me at")}
        for service in services:
            self.wait_for_line(signs[service][1], signs[service][0], timeout=timeout)

    def batch(self, number: int) -> dict:
        """The ledger entry of the ``number``-th generated batch ({} until it exists)."""
        return next((batch for batch in self.home.ledger.newest_first()
                     if batch.get("generated_number") == number), {})

    def wait_for_batch(self, number: int, status: str, timeout: float = 120) -> dict:
        """The ``number``-th generated batch, once its status is ``status``."""
        return wait_for(lambda: (entry := self.batch(number)).get("status") == status and entry,
                        timeout=timeout, what=f"batch {number} to be {status}")

    def newest_version(self) -> int:
        return self.home.registry.latest_version() or 0

    def stop(self, timeout: float = 30) -> str:
        """Ctrl-C, as a terminal sends it to the whole foreground group; returns the output."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        return self.output()


def redis_values(client: redis.Redis) -> Iterator[tuple[bytes, bytes]]:
    """Every key in ``client``'s database with each value it holds (task results, queued
    messages, sets, hashes), for a search of everything the system stored."""
    readers = {"string": lambda key: [client.get(key)],
               "list": lambda key: client.lrange(key, 0, -1),
               "hash": lambda key: list(client.hgetall(key).values()),
               "set": lambda key: list(client.smembers(key)),
               "zset": lambda key: client.zrange(key, 0, -1)}
    for key in client.scan_iter("*"):
        for value in readers.get(client.type(key).decode(), lambda _: [])(key):
            yield key, value


def assert_trained_once(home: Home) -> dict[str, int]:
    """No batch was learnt by two versions, the ledger names the version that learnt each
    trained batch, and each version's ``n_samples_seen`` is its parent's plus the rows it
    learnt (a drift refit starts from none). Returns batch id -> version."""
    versions = {meta.version: meta for meta in home.registry.list()}
    learnt: dict[str, int] = {}
    for version, meta in sorted(versions.items()):
        for batch_id in meta.batch_ids:
            assert batch_id not in learnt, (
                f"batch {batch_id} learnt by versions {learnt[batch_id]} and {version}")
            learnt[batch_id] = version
        if meta.batch_ids:
            parent = versions.get(meta.parent_version)
            start = 0 if meta.drift or parent is None else parent.n_samples_seen
            assert meta.n_samples_seen == start + meta.n_batch, meta
    for batch in home.ledger.newest_first():
        if batch["status"] == "trained":
            assert learnt.get(batch["batch_id"]) == batch["version"], batch
    return learnt


@pytest.fixture
def make_system(tmp_path, redis_server):
    """``make_system(extra=..., add=..., **env)`` starts a `make run`; all are stopped after.

    Each gets its own folder (Procfile, log) under the test's; they share the test's
    ``PIPELINE_HOME`` and ``redis_server`` unless ``env`` says otherwise.
    """
    systems: list[System] = []

    def make(extra: dict[str, str] | None = None, add: dict[str, str] | None = None,
             **env: str) -> System:
        folder = tmp_path / f"system{len(systems) + 1}"
        folder.mkdir()
        environment = {key: value for key, value in os.environ.items()
                       if not key.startswith(("PIPELINE_TEST", "SERVICES"))}
        environment.update(
            FAST, REDIS_URL=redis_server.url, PIPELINE_HOME=str(tmp_path / "home"),
            WEB_PORT=str(free_port()), FLOWER_PORT=str(free_port()),
            PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(
                os.pathsep))
        environment.update(env)
        # The children run in the Procfile's folder, where Flower reads its settings file.
        shutil.copy(ROOT / "flowerconfig.py", folder)
        system = System(folder, environment, procfile(folder / "Procfile", extra, add))
        systems.append(system)
        return system

    yield make
    for system in systems:
        system.stop()
