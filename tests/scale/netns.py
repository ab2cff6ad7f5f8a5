"""Hosts for the multi-host test: Linux network namespaces joined by a bridge.

Each :class:`Host` is a namespace with its own loopback and one address on a private /24;
the test process, in the root namespace, reaches them through the bridge's own address. A
process started on a host sees only that host's network, as on a separate machine (the
filesystem and the clock are shared, which the test does not rely on).

Needs root and ``ip`` (iproute2); :func:`unavailable` says why not when it cannot run.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field


def unavailable() -> str | None:
    """Why namespaces cannot be made here, or None when they can."""
    if os.geteuid() != 0:
        return "network namespaces need root (CI runs as root)"
    if shutil.which("ip") is None:
        return "`ip` is missing (Debian package iproute2; `make system` installs it)"
    probe = f"plprobe{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode:
        return f"`ip netns add` is refused here: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "delete", probe], capture_output=True)
    return None


def _ip(*args: str, netns: str | None = None) -> None:
    argv = ["ip", *(["-n", netns] if netns else []), *args]
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{' '.join(argv)}: {done.stderr.strip()}")


@dataclass
class Host:
    name: str  # the namespace
    address: str
    processes: list[subprocess.Popen] = field(default_factory=list)

    def start(self, argv: list[str], env: dict[str, str], log) -> subprocess.Popen:
        """``argv`` on this host, in a session of its own, writing to ``log``."""
        process = subprocess.Popen(["ip", "netns", "exec", self.name, *argv], env=env,
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.processes.append(process)
        return process

    def pids(self) -> list[int]:
        """Every process running on this host (in its namespace)."""
        listed = subprocess.run(["ip", "netns", "pids", self.name], capture_output=True, text=True)
        return [int(pid) for pid in listed.stdout.split()]

    def kill_everything(self) -> None:
        """SIGKILL every process of the host at once, as a power cut would stop them."""
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for process in self.processes:
            process.wait(10)

    def stop(self, timeout: float = 20.0) -> None:
        """SIGINT to what was started here (Ctrl-C), then SIGKILL whatever is left."""
        for process in self.processes:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGINT)
        deadline = time.monotonic() + timeout
        for process in self.processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(max(0.1, deadline - time.monotonic()))
        self.kill_everything()


@contextlib.contextmanager
def network(names: list[str], subnet: str = "10.231.7") -> Iterator[list[Host]]:
    """Namespaces ``names`` on one bridge, at ``subnet``.1, .2, ...; removed on the way out."""
    tag = f"{os.getpid() % 100000}"
    bridge = f"plbr{tag}"
    hosts: list[Host] = []
    try:
        _ip("link", "add", bridge, "type", "bridge")
        _ip("addr", "add", f"{subnet}.254/24", "dev", bridge)
        _ip("link", "set", bridge, "up")
        for number, name in enumerate(names, start=1):
            namespace = f"pl{name}{tag}"
            inside, outside = f"pli{number}{tag}", f"plo{number}{tag}"
            _ip("netns", "add", namespace)
            hosts.append(Host(namespace, f"{subnet}.{number}"))
            _ip("link", "add", inside, "type", "veth", "peer", "name", outside)
            _ip("link", "set", inside, "netns", namespace)
            _ip("link", "set", outside, "master", bridge)
            _ip("link", "set", outside, "up")
            _ip("addr", "add", f"{subnet}.{number}/24", "dev", inside, netns=namespace)
            _ip("link", "set", inside, "up", netns=namespace)
            _ip("link", "set", "lo", "up", netns=namespace)
        yield hosts
    finally:
        for host in hosts:
            host.stop()
            subprocess.run(["ip", "netns", "delete", host.name], capture_output=True)
        subprocess.run(["ip", "link", "delete", bridge], capture_output=True)
