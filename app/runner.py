"""Run the whole system in the foreground: ``python -m app.runner`` (what ``make run`` does).

Checks ``PIPELINE_HOME`` and finds Redis or starts a private one (a home or a Redis that
refuses us ends the run at once, with one line saying why), then starts the processes of the
Procfile that ``SERVICES`` names. Each child runs in its own process group, so that stopping
the group also stops what the child spawned (prefork pool processes, gunicorn workers), and
each line it prints is shown after its name, secrets masked. A child that dies is restarted, after a back-off, with a line
naming it, how it ended and the restart count; one that dies ``MAX_QUICK_DEATHS`` times in a
row within ``MIN_UPTIME`` seconds of its start, or cannot be started, ends the run with an
error. SIGINT/SIGTERM end it too. Either way every group gets SIGTERM, then SIGKILL after
``STOP_TIMEOUT`` seconds, and a private Redis is stopped last.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from app import claims, redis_client, settings, storage
from app.observe.multiproc import (MULTIPROC_VARIABLE, WEB_METRICS_VARIABLE,
                                   multiproc_directory)
from app.redis_server import DEFAULT_URL, ensure_redis, free_port
from app.refusals import CHECK_TIMEOUT

PROCFILE = Path(__file__).resolve().parent.parent / "Procfile"
STOP_TIMEOUT = 5.0
PROCFILE_LINE = re.compile(r"([A-Za-z0-9_-]+):\s*(.+)")
VARIABLE = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}|\$(\w+)")


def read_procfile(path: Path) -> dict[str, str]:
    """The ``name: command`` lines of a Procfile, in order; blank and ``#`` lines are skipped."""
    processes = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = PROCFILE_LINE.fullmatch(line)
        if match is None:
            raise ValueError(f"{path}:{number}: expected 'name: command', got {line!r}")
        processes[match[1]] = match[2]
    if not processes:
        raise ValueError(f"{path} names no process")
    return processes


def expand(word: str, env: Mapping[str, str]) -> str:
    """Substitute ``$VAR``, ``${VAR}`` and ``${VAR:-default}`` in ``word`` as a shell would.

    >>> expand("${HOST:-127.0.0.1}:${PORT:-5000}", {"PORT": "8000"})
    '127.0.0.1:8000'
    """

    def value(match: re.Match[str]) -> str:
        name, default = match[1] or match[3], match[2]
        return env.get(name) or (default or "")

    return VARIABLE.sub(value, word)


def command_argv(command: str, env: Mapping[str, str]) -> list[str]:
    """Split a Procfile command into words, then expand each: a value with spaces stays one word.

    Quotes group words but, unlike a shell's single quotes, do not stop expansion.
    """
    return [expand(word, env) for word in shlex.split(command)]


def child_env(redis_url: str, home: str | Path) -> dict[str, str]:
    """Our environment, plus the Redis in use, PIPELINE_HOME and this venv's ``bin`` on PATH."""
    env = dict(os.environ, REDIS_URL=redis_url, PIPELINE_HOME=str(home), PYTHONUNBUFFERED="1")
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


WEB_APP = "app.web:create_app()"


def web_argv(port: int, app_spec: str = WEB_APP) -> list[str]:
    """The Procfile's ``web`` command on 127.0.0.1:``port``, serving ``app_spec``."""
    argv = command_argv(read_procfile(PROCFILE)["web"],
                        {"WEB_HOST": "127.0.0.1", "WEB_PORT": str(port)})
    if WEB_APP not in argv:
        raise ValueError(f"the Procfile's web command does not serve {WEB_APP}: {argv}")
    return [app_spec if word == WEB_APP else word for word in argv]


@contextlib.contextmanager
def web_server(home: str | Path, log: Path, app_spec: str = WEB_APP) -> Iterator[str]:
    """The web server as ``make run`` starts it, over ``home`` on a free port; yields its URL.

    For the tests and the benchmark: it returns once a worker answers ``/health``, and
    stops the server's whole process group on the way out.
    """
    port = free_port()
    env = child_env(os.environ.get("REDIS_URL") or DEFAULT_URL, home)
    with open(log, "wb") as output:
        process = subprocess.Popen(web_argv(port, app_spec), cwd=PROCFILE.parent, env=env,
                                   stdout=output, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    try:
        # gunicorn's master accepts before its workers have imported the app, which takes
        # seconds on a busy machine: ready means a worker answered.
        deadline = time.monotonic() + 120
        while True:
            with contextlib.suppress(OSError):
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5).close()
                break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the web server did not start:\n{log.read_text(errors='replace')}")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        signal_groups([process], signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            signal_groups([process], signal.SIGKILL)
            process.wait()


def write(name: str, width: int, line: bytes) -> None:
    """Print one line after ``name`` padded to ``width``, as honcho and foreman do.

    Masked on the way: the last net under what a child prints outside our logging (a
    traceback at import, Flower's and gunicorn's own lines).
    """
    text = settings.redact(line.rstrip(b"\n").decode(errors="surrogateescape"))
    sys.stdout.buffer.write(f"{name:<{width}} | {text}\n".encode(errors="surrogateescape"))
    sys.stdout.buffer.flush()


def say(width: int, message: str) -> None:
    """The runner's own messages, on the same stream as its children's, in order with them."""
    write("runner", width, message.encode())


def relay(name: str, width: int, stream: IO[bytes]) -> None:
    for line in stream:
        write(name, width, line)


def describe(returncode: int) -> str:
    if returncode < 0:
        return f"was killed by {signal.Signals(-returncode).name}"
    return f"exited with code {returncode}"


def signal_groups(children: Iterable[subprocess.Popen], signum: int) -> None:
    for child in children:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signum)


def stop(children: dict[str, subprocess.Popen], width: int) -> None:
    """SIGTERM every child's group; SIGKILL the groups after ``STOP_TIMEOUT`` seconds at most."""
    signal_groups(children.values(), signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    for name, child in children.items():
        try:
            child.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            say(width, f"{name} did not stop within {STOP_TIMEOUT:g} s: killing it")
    # A child's exit does not end the rest of its group: kill whatever it left behind.
    signal_groups(children.values(), signal.SIGKILL)
    for child in children.values():
        child.wait()


# A process that dies sooner than this after it started did not really start: dying so
# MAX_QUICK_DEATHS times in a row stops the run (a broken command, a port in use, a bad
# setting) instead of restarting it forever. One that ran longer is restarted after
# BACKOFF seconds, doubled after each quick death, so a crash loop never spins.
MIN_UPTIME = 10.0
MAX_QUICK_DEATHS = 3
BACKOFF = 0.5
# Everything but the web server runs at a lower CPU priority: on a machine they share, an
# answer to a user comes before a train step, and at start the web server imports its app
# first instead of a fifth of the CPU beside four other processes importing theirs.
NICENESS = {"worker": 5, "beat": 5, "flower": 5}


def lower_priority(leader: int, niceness: int) -> None:
    """Run the session ``leader`` leads at ``niceness``: its process group (what it forks
    later, the worker's pool, inherits it) and, where the kernel groups each session for the
    scheduler (autogroups: CPU is shared between sessions whatever their processes' nice
    values), the session's group too. A child that already died is left to died()."""
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PGRP, leader, niceness)
    with contextlib.suppress(OSError):
        Path(f"/proc/{leader}/autogroup").write_text(str(niceness))


@dataclass
class Process:
    """One Procfile line under supervision: its current child and its history of deaths."""

    name: str
    argv: list[str]
    child: subprocess.Popen | None = None
    started_at: float = 0.0
    restarts: int = 0
    quick_deaths: int = 0
    due_at: float | None = None  # when a dead one starts again


class Supervisor:
    """Start ``processes``, restart the ones that die, stop all when asked or when one cannot run."""

    def __init__(self, processes: dict[str, str], env: dict[str, str], cwd: Path, width: int,
                 min_uptime: float = MIN_UPTIME):
        self.processes = [Process(name, command_argv(command, env))
                          for name, command in processes.items()]
        self.env, self.cwd, self.width, self.min_uptime = env, cwd, width, min_uptime
        self.relays: list[threading.Thread] = []

    def say(self, message: str) -> None:
        say(self.width, message)

    def start(self, process: Process) -> None:
        """Start ``process``; OSError (no such command, say) when it cannot be started at all."""
        process.child = subprocess.Popen(
            process.argv, cwd=self.cwd, env=self.env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
        )
        if process.name in NICENESS:
            lower_priority(process.child.pid, NICENESS[process.name])
        process.started_at, process.due_at = time.monotonic(), None
        thread = threading.Thread(target=relay, args=(process.name, self.width,
                                                      process.child.stdout), daemon=True)
        thread.start()
        self.relays.append(thread)
        if process.restarts:
            self.say(f"restarted {process.name} (pid {process.child.pid}), restart {process.restarts}")
        else:
            self.say(f"started {process.name} (pid {process.child.pid}): {shlex.join(process.argv)}")

    def died(self, process: Process) -> str | None:
        """Log a death and schedule the restart; what went wrong when it is not worth one."""
        child = process.child
        # Its group may outlive it (prefork pool children, gunicorn workers holding the port):
        # a restart must not run beside them.
        signal_groups([child], signal.SIGKILL)
        uptime = time.monotonic() - process.started_at
        death = f"{process.name} {describe(child.returncode)} after {uptime:.1f} s"
        process.quick_deaths = process.quick_deaths + 1 if uptime < self.min_uptime else 0
        if process.quick_deaths >= MAX_QUICK_DEATHS:
            return (f"{death}, {MAX_QUICK_DEATHS} times in a row within "
                    f"{self.min_uptime:g} s of its start: it cannot run")
        delay = BACKOFF * 2 ** process.quick_deaths
        process.restarts += 1
        process.due_at = time.monotonic() + delay
        self.say(f"{death}; restarting it in {delay:g} s (restart {process.restarts})")
        return None

    def run(self, signals: list[int]) -> str | None:
        """Watch until a signal arrives or a process cannot run; then stop all.

        Returns what went wrong, or None when the run was stopped by a signal.
        """
        try:
            for process in self.processes:
                if signals:
                    break
                try:
                    self.start(process)
                except OSError as error:
                    return self.fail(f"{process.name} could not start: {error}")
            while not signals:
                for process in self.processes:
                    if process.due_at is not None and time.monotonic() >= process.due_at:
                        try:
                            self.start(process)
                        except OSError as error:
                            return self.fail(f"{process.name} could not restart: {error}")
                    elif process.due_at is None and process.child.poll() is not None:
                        failure = self.died(process)
                        if failure:
                            return self.fail(failure)
                time.sleep(0.1)
            self.say(f"{signal.Signals(signals[0]).name} received; stopping everything")
            return None
        finally:
            # A process waiting for its restart was already stopped, group and all.
            stop({process.name: process.child for process in self.processes
                  if process.child is not None and process.due_at is None}, self.width)
            for thread in self.relays:
                thread.join(timeout=1)
            self.say("all processes stopped")

    def fail(self, failure: str) -> str:
        self.say(f"{failure}; stopping everything")
        return failure


def hold_claim(stack: contextlib.ExitStack, redis_url: str, home: str) -> None:
    """Claim Redis's database for ``home`` while the run lasts (see :mod:`app.claims`);
    RuntimeError naming both homes when another system's home holds it."""
    client = redis_client.client(redis_url, socket_connect_timeout=CHECK_TIMEOUT,
                                 socket_timeout=CHECK_TIMEOUT)
    claims.claim(client, home, f"Redis at {settings.redact(redis_url)}")
    holder = claims.Holder(client, home)
    holder.start()
    stack.callback(holder.stop)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser("python -m app.runner", description=__doc__.split("\n")[0])
    parser.add_argument("--procfile", type=Path, default=PROCFILE, help="default: %(default)s")
    parser.add_argument("--min-uptime", type=float, default=MIN_UPTIME, metavar="SECONDS",
                        help="a process dying sooner after its start counts as failing to "
                             "start (default: %(default)g)")
    options = parser.parse_args(argv)
    procfile = options.procfile.resolve()

    try:
        processes = read_procfile(procfile)
    except (OSError, ValueError) as error:
        parser.error(str(error))
    width = max(map(len, [*processes, "runner"]))

    signals: list[int] = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda received, _frame: signals.append(received))

    with contextlib.ExitStack() as stack:
        try:
            environment = settings.load()
            # A declaration that cannot be used stops the run before anything starts.
            dataset = environment.dataset()
            # The inbox too: its folder is made, so a newcomer can drop a file in it at once.
            for setting, url in (("PIPELINE_HOME", environment.pipeline_home),
                                 ("INBOX", environment.inbox_url)):
                if trouble := storage.refusal(url, setting):
                    raise RuntimeError(trouble)
            redis_url = stack.enter_context(ensure_redis(
                os.environ.get("REDIS_URL"), private="redis" in environment.services))
            hold_claim(stack, redis_url, environment.pipeline_home)
        except (ValueError, RuntimeError) as error:
            say(width, f"cannot start: {error}")
            return 1
        # SERVICES picks among the system's roles; a Procfile line of another name runs always.
        processes = {name: command for name, command in processes.items()
                     if name in environment.services or name not in settings.SERVICES}
        home = environment.pipeline_home
        say(width, f"Redis at {settings.redact(redis_url)}; PIPELINE_HOME={settings.redact(home)}; "
                   f"SERVICES={','.join(environment.services)}; DATASET={dataset.name} "
                   f"({dataset.source})")
        # The web processes' metric files: emptied now, so no figure of a past run is counted.
        env = child_env(redis_url, home)
        env[WEB_METRICS_VARIABLE] = stack.enter_context(
            multiproc_directory(env.pop(MULTIPROC_VARIABLE, None)))
        if environment.system_log is not None:
            # Every process appends to the system's log, which `python -m app logs` reads.
            env["LOG_FILE"] = str(environment.system_log)
        supervisor = Supervisor(processes, env, procfile.parent, width, options.min_uptime)
        failure = supervisor.run(signals)
    if failure:
        say(width, f"failed: {failure}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
