"""Run the whole system in the foreground: ``python -m app.runner`` (what ``make run`` does).

Finds Redis or starts a private one, then starts every process named in the Procfile. Each
child runs in its own process group, so that stopping the group also stops what the child
spawned (prefork pool processes, gunicorn workers), and each line it prints is shown after its
name. The run ends when a child exits (the system is incomplete without it: an error) or on
SIGINT/SIGTERM. Either way every group gets SIGTERM, then SIGKILL after ``STOP_TIMEOUT``
seconds, and a private Redis is stopped last.
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
from pathlib import Path
from typing import IO

from app import settings
from app.observe.multiproc import MULTIPROC_VARIABLE, multiproc_directory
from app.redis_server import DEFAULT_URL, ensure_redis, free_port

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
    """Print one line after ``name`` padded to ``width``, as honcho and foreman do."""
    sys.stdout.buffer.write(f"{name:<{width}} | ".encode() + line.rstrip(b"\n") + b"\n")
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


def supervise(
    processes: dict[str, str], env: dict[str, str], cwd: Path, width: int, signals: list[int]
) -> str | None:
    """Start ``processes`` and watch them until one exits or a signal arrives; then stop all.

    Returns what went wrong, or None when the run was stopped by a signal.
    """
    children: dict[str, subprocess.Popen] = {}
    relays = []
    try:
        for name, command in processes.items():
            if signals:
                break
            argv = command_argv(command, env)
            try:
                child = subprocess.Popen(
                    argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT, start_new_session=True,
                )
            except OSError as error:
                failure = f"{name} could not start: {error}"
                say(width, f"{failure}; stopping everything")
                return failure
            children[name] = child
            thread = threading.Thread(target=relay, args=(name, width, child.stdout), daemon=True)
            thread.start()
            relays.append(thread)
            say(width, f"started {name} (pid {child.pid}): {shlex.join(argv)}")
        while not signals:
            for name, child in children.items():
                if child.poll() is not None:
                    failure = f"{name} {describe(child.returncode)}"
                    say(width, f"{failure}; stopping everything")
                    return failure
            time.sleep(0.1)
        say(width, f"{signal.Signals(signals[0]).name} received; stopping everything")
        return None
    finally:
        stop(children, width)
        for thread in relays:
            thread.join(timeout=1)
        say(width, "all processes stopped")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser("python -m app.runner", description=__doc__.split("\n")[0])
    parser.add_argument("--procfile", type=Path, default=PROCFILE, help="default: %(default)s")
    procfile = parser.parse_args(argv).procfile.resolve()

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
            redis_url = stack.enter_context(ensure_redis(os.environ.get("REDIS_URL")))
        except (ValueError, RuntimeError) as error:
            say(width, f"cannot start: {error}")
            return 1
        home = environment.pipeline_home
        if environment.local_home is not None:
            environment.local_home.mkdir(parents=True, exist_ok=True)
        say(width, f"Redis at {redis_url}; PIPELINE_HOME={home}")
        # The web processes' metric files: emptied now, so no figure of a past run is counted.
        env = child_env(redis_url, home)
        env[MULTIPROC_VARIABLE] = stack.enter_context(
            multiproc_directory(os.environ.get(MULTIPROC_VARIABLE)))
        failure = supervise(processes, env, procfile.parent, width, signals)
    if failure:
        say(width, f"failed: {failure}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
