"""app.runner (`make run`) supervising real processes, given small Procfiles of test children."""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.redis_server import private_redis
from app.runner import PROCFILE, STOP_TIMEOUT, command_argv, expand, read_procfile

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(60)

# A child process for the Procfiles below: `python child.py NAME MODE`. It writes its pid to
# $PIDS/NAME once it is ready, then sleeps. MODE "plain" does only that; "stubborn" ignores
# SIGTERM; "parent" first spawns a grandchild that ignores SIGTERM (pid in $PIDS/NAME-grandchild).
CHILD = """
import os, signal, subprocess, sys, time
from pathlib import Path

name, mode = sys.argv[1:3]
pids = Path(os.environ["PIDS"])
if mode == "stubborn":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
if mode == "parent":
    grandchild = subprocess.Popen([sys.executable, "-c",
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"])
    (pids / f"{name}-grandchild").write_text(str(grandchild.pid))
print(f"{name} is up", flush=True)
(pids / name).write_text(str(os.getpid()))
time.sleep(600)
"""


@pytest.fixture(scope="module")
def redis_url():
    with private_redis() as url:
        yield url


@pytest.fixture
def pids(tmp_path):
    """The directory where children write their pids; whatever still runs is killed after."""
    directory = tmp_path / "pids"
    directory.mkdir()
    yield directory
    for path in directory.iterdir():
        if alive(pid := int(path.read_text())):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture
def start(tmp_path, pids, redis_url):
    """Start `python -m app.runner --procfile` on a Procfile of `lines`, in its own session."""
    (tmp_path / "child.py").write_text(CHILD)
    runners = []

    def start(*lines: str, options: tuple[str, ...] = (), **env: str) -> subprocess.Popen:
        procfile = tmp_path / "Procfile"
        procfile.write_text("\n".join(lines) + "\n")
        runner = subprocess.Popen(
            [sys.executable, "-m", "app.runner", "--procfile", str(procfile), *options],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True,
            env=dict(os.environ, REDIS_URL=redis_url, PIPELINE_HOME=str(tmp_path / "home"),
                     PIDS=str(pids), **env),
        )
        runners.append(runner)
        return runner

    yield start
    for runner in runners:
        if runner.poll() is None:
            os.killpg(runner.pid, signal.SIGKILL)
            runner.wait()


def alive(pid: int) -> bool:
    """Whether `pid` still runs; a zombie (dead, not yet reaped by its parent) does not."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    if not stat.parent.parent.is_dir():  # no /proc: trust kill()
        return True
    try:
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def wait_for(condition, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def ctrl_c(runner: subprocess.Popen) -> None:
    """SIGINT to the runner's process group, as a terminal's Ctrl-C does."""
    os.killpg(runner.pid, signal.SIGINT)


def started_pid(output: str, name: str) -> int:
    return int(re.search(rf"started {name} \(pid (\d+)\)", output)[1])


def test_expand_uses_the_default_when_a_variable_is_unset_or_empty():
    env = {"PORT": "8000", "EMPTY": ""}
    assert expand("${HOST:-127.0.0.1}:${PORT:-5000}", env) == "127.0.0.1:8000"
    assert expand("${EMPTY:-x}/$PORT/${PORT}/$MISSING.", env) == "x/8000/8000/."


def test_a_value_with_spaces_stays_one_argument():
    assert command_argv("echo ${GREETING} 'a b'", {"GREETING": "hello world"}) == [
        "echo", "hello world", "a b"]


def test_the_real_procfile_binds_web_and_flower_to_loopback_by_default():
    processes = read_procfile(PROCFILE)
    assert "127.0.0.1:5000" in command_argv(processes["web"], {})
    flower = command_argv(processes["flower"], {})
    assert {"--address=127.0.0.1", "--port=5555"} <= set(flower)
    # Flower's API can start tasks: it stays off unless FLOWER_BASIC_AUTH is set.
    assert not any("UNAUTHENTICATED" in word for word in flower)


def test_each_output_line_is_prefixed_with_the_child_name(start, pids):
    runner = start("a: python child.py a plain", "longname: python child.py longname plain")
    wait_for(lambda: (pids / "a").exists() and (pids / "longname").exists())
    ctrl_c(runner)
    output = runner.communicate(timeout=15)[0]
    lines = output.splitlines()
    assert "a        | a is up" in lines
    assert "longname | longname is up" in lines
    assert any(line.startswith("runner   | started a ") for line in lines)


def test_children_get_redis_url_pipeline_home_and_the_venv_tools(start, pids, tmp_path, redis_url):
    """Also: $VAR and ${VAR:-default} in the Procfile are expanded from the environment."""
    runner = start(
        "env: sh -c 'echo $REDIS_URL ${PIPELINE_HOME} ${GREETING:-hi}; command -v celery;"
        " echo $$ > $PIDS/env; exec sleep 600'",
        PATH="/usr/bin:/bin",
    )
    wait_for(lambda: (pids / "env").exists())
    ctrl_c(runner)
    output = runner.communicate(timeout=15)[0]
    assert f"env    | {redis_url} {tmp_path / 'home'} hi" in output.splitlines()
    assert f"env    | {Path(sys.executable).parent / 'celery'}" in output.splitlines()
    assert (tmp_path / "home").is_dir()


def test_only_the_web_server_gets_the_emptied_metrics_folder(start, pids, tmp_path):
    """Flower and Celery would write their own prometheus files into it: they never see
    PROMETHEUS_MULTIPROC_DIR; gunicorn.conf.py sets it from PIPELINE_METRICS_DIR."""
    folder = tmp_path / "metrics"
    folder.mkdir()
    (folder / "counter_1.db").write_bytes(b"a past run")
    runner = start("env: sh -c 'echo multiproc=${PROMETHEUS_MULTIPROC_DIR:-unset} "
                   "web=$PIPELINE_METRICS_DIR; echo $$ > $PIDS/env; exec sleep 600'",
                   PROMETHEUS_MULTIPROC_DIR=str(folder))
    wait_for(lambda: (pids / "env").exists())
    assert not list(folder.iterdir()), "a past run's metric files are removed at start"
    ctrl_c(runner)
    output = runner.communicate(timeout=15)[0]
    assert f"env    | multiproc=unset web={folder}" in output.splitlines()


def test_the_web_server_runs_at_a_higher_cpu_priority_than_the_background_roles(start, pids):
    """So that on a shared machine an answer comes before a train step; the worker's pool
    (what the child forks later: here a grandchild) is lowered with it."""
    runner = start(f"worker: {sys.executable} child.py worker parent",
                   f"web: {sys.executable} child.py web plain")
    wait_for(lambda: all((pids / name).exists() for name in ("worker", "worker-grandchild", "web")))
    niceness = {name: os.getpriority(os.PRIO_PROCESS, int((pids / name).read_text()))
                for name in ("worker", "worker-grandchild", "web")}
    # Where the kernel shares CPU between sessions (autogroups), each child's session too.
    autogroups = {name: Path(f"/proc/{(pids / name).read_text()}/autogroup")
                  for name in ("worker", "web")}
    sessions = {name: path.read_text().split()[-1] for name, path in autogroups.items()
                if path.exists()}
    ctrl_c(runner)
    runner.communicate(timeout=15)
    assert niceness == {"worker": os.getpriority(os.PRIO_PROCESS, 0) + 5,
                        "worker-grandchild": os.getpriority(os.PRIO_PROCESS, 0) + 5,
                        "web": os.getpriority(os.PRIO_PROCESS, 0)}
    if sessions:
        assert sessions == {"worker": "5", "web": "0"}


def test_a_child_that_dies_after_starting_is_restarted_with_a_line_naming_it(start, pids):
    """The line says how it ended and the restart count; its leftover group is gone too."""
    runner = start("steady: python child.py steady plain",
                   "parent: python child.py parent parent", options=("--min-uptime", "0.5"))
    wait_for(lambda: (pids / "parent-grandchild").exists() and (pids / "steady").exists())
    first, grandchild = (int((pids / name).read_text()) for name in ("parent", "parent-grandchild"))
    steady = int((pids / "steady").read_text())
    time.sleep(0.6)
    for round in (1, 2):
        (pids / "parent").unlink()
        os.kill(first, signal.SIGKILL)
        wait_for(lambda: (pids / "parent").exists())
        first = int((pids / "parent").read_text())
        assert alive(first) and alive(steady)
        time.sleep(0.6)
    wait_for(lambda: not alive(grandchild), timeout=2)
    ctrl_c(runner)
    output = runner.communicate(timeout=15)[0]
    assert runner.returncode == 0, output
    assert re.search(r"parent was killed by SIGKILL after [\d.]+ s; restarting it in 0.5 s "
                     r"\(restart 1\)", output)
    assert re.search(r"restarted parent \(pid \d+\), restart 2", output)
    wait_for(lambda: not alive(first), timeout=2)


def test_a_child_that_keeps_dying_at_start_stops_the_run_with_an_error_naming_it(start):
    """Restarted with a growing back-off, then given up: the run ends, the others stop."""
    runner = start("steady: python child.py steady plain",
                   "broken: python -c 'import sys; sys.exit(3)'")
    output = runner.communicate(timeout=30)[0]
    assert runner.returncode != 0
    assert re.search(r"broken exited with code 3 after [\d.]+ s; restarting it in 1 s "
                     r"\(restart 1\)", output)
    assert "restarting it in 2 s (restart 2)" in output
    last = output.splitlines()[-1]
    assert last.startswith("runner | failed: broken exited with code 3 after ")
    assert last.endswith("3 times in a row within 10 s of its start: it cannot run")
    wait_for(lambda: not alive(started_pid(output, "steady")), timeout=2)


def test_a_command_that_cannot_start_stops_the_run_with_an_error_naming_it(start):
    runner = start("steady: python child.py steady plain", "ghost: no-such-command-4242")
    output = runner.communicate(timeout=20)[0]
    assert runner.returncode != 0
    assert "ghost could not start" in output
    wait_for(lambda: not alive(started_pid(output, "steady")), timeout=2)


def test_ctrl_c_stops_every_child_and_grandchild_within_a_few_seconds(start, pids):
    """Even a grandchild and a child that ignore SIGTERM: their groups get SIGKILL after it."""
    runner = start("polite: python child.py polite plain",
                   "parent: python child.py parent parent",
                   "stubborn: python child.py stubborn stubborn")
    names = ["polite", "parent", "parent-grandchild", "stubborn"]
    wait_for(lambda: all((pids / name).exists() for name in names))
    started = time.monotonic()
    ctrl_c(runner)
    output = runner.communicate(timeout=STOP_TIMEOUT + 10)[0]
    assert time.monotonic() - started < STOP_TIMEOUT + 3
    assert runner.returncode == 0, output
    assert "SIGINT received; stopping everything" in output
    assert "stubborn did not stop within" in output
    processes = [int((pids / name).read_text()) for name in names]
    wait_for(lambda: not any(alive(pid) for pid in processes), timeout=2)


def test_sigterm_to_the_runner_alone_stops_everything(start, pids):
    runner = start("parent: python child.py parent parent")
    wait_for(lambda: (pids / "parent-grandchild").exists())
    runner.send_signal(signal.SIGTERM)
    output = runner.communicate(timeout=STOP_TIMEOUT + 10)[0]
    assert "SIGTERM received; stopping everything" in output
    processes = [int((pids / name).read_text()) for name in ("parent", "parent-grandchild")]
    wait_for(lambda: not any(alive(pid) for pid in processes), timeout=2)



def test_services_starts_only_the_roles_it_names(start, pids):
    """A Procfile line that is not a role (here "extra") runs whatever SERVICES says."""
    runner = start("worker: python child.py worker plain", "web: python child.py web plain",
                   "extra: python child.py extra plain", SERVICES="web, redis")
    wait_for(lambda: (pids / "web").exists() and (pids / "extra").exists())
    ctrl_c(runner)
    output = runner.communicate(timeout=15)[0]
    assert "SERVICES=redis,web" in output
    assert "started worker" not in output and not (pids / "worker").exists()


def test_an_unknown_service_stops_the_run_before_anything_starts(start, pids):
    runner = start("web: python child.py web plain", SERVICES="web,cron")
    output = runner.communicate(timeout=15)[0]
    assert runner.returncode == 1
    assert "cannot start: SERVICES names unknown roles cron" in output
    assert "started" not in output
