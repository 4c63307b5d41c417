"""Managed local processes: start with a log file, wait until ready, stop by PID.

Every service runs in its own session (process group) so that stopping it stops
its children too; `stop()` sends SIGTERM to the group, waits, then SIGKILL. A
JSON state file per service (pid, ports, work dir) lets `ccpulse services
status/down` find processes started by another command.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


class ServiceError(RuntimeError):
    """A service could not be started or stopped; the message says why and what it logged."""


# Services listen below Linux's ephemeral range (32768-60999 by default), so a client
# connection's source port cannot take a port between the check here and the service's bind;
# under pytest-xdist each test worker draws from a slice of its own (PYTEST_XDIST_WORKER).
PORT_RANGE = (10_000, 32_000)


def port_slice(environ: Mapping[str, str] = os.environ) -> tuple[int, int]:
    """[low, high) of the ports this process draws from: the whole range, or its xdist worker's slice."""
    low, high = PORT_RANGE
    worker, count = environ.get("PYTEST_XDIST_WORKER", ""), environ.get("PYTEST_XDIST_WORKER_COUNT", "")
    if not (worker.startswith("gw") and worker[2:].isdigit() and count.isdigit() and int(count) > 0):
        return low, high
    size = (high - low) // int(count)
    index = int(worker[2:]) % int(count)
    return low + index * size, low + (index + 1) * size


_cursor: list[int] = []  # this process's next candidate: sequential, so it hands out no port twice


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on, from this process's slice: from a random start, then in turn,
    so that two calls of one process never return the same port (until the slice wraps)."""
    low, high = port_slice()
    if not _cursor or not low <= _cursor[0] < high:
        _cursor[:] = [random.randrange(low, high)]  # noqa: S311 - a port number, not a secret
    for _ in range(high - low):
        port = _cursor[0]
        _cursor[0] = low + (port + 1 - low) % (high - low)
        if port_is_free(port, host):
            return port
    msg = f"no free port in [{low}, {high})"
    raise ServiceError(msg)


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0): treat it as gone.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] != "Z"
    except OSError:
        return False


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@dataclass
class ServiceInfo:
    """What the state file records about one running service."""

    name: str
    pid: int
    endpoint: str
    ports: dict[str, int]
    work_dir: str
    log: str
    started_at: float
    ready_seconds: float
    version: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def as_row(self) -> dict[str, Any]:
        return {
            "service": self.name,
            "pid": self.pid,
            "endpoint": self.endpoint,
            "ready_s": round(self.ready_seconds, 2),
            "version": self.version,
            "work_dir": self.work_dir,
        }

    def save(self, state_dir: Path) -> Path:
        state_dir.mkdir(parents=True, exist_ok=True)
        path = state_dir / f"{self.name}.json"
        path.write_text(json.dumps(asdict(self), indent=1))
        return path

    @classmethod
    def load(cls, path: Path) -> ServiceInfo:
        return cls(**json.loads(path.read_text()))


class ManagedProcess:
    """One OS process with a log file, a readiness check and a clean stop."""

    def __init__(self, name: str, argv: Sequence[str], work_dir: Path, env: dict[str, str] | None = None):
        self.name = name
        self.argv = list(argv)
        self.work_dir = work_dir
        self.env = env
        self.log_path = work_dir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0
        self.ready_seconds = 0.0

    @property
    def pid(self) -> int:
        if self.process is None:
            msg = f"{self.name} is not started"
            raise ServiceError(msg)
        return self.process.pid

    def start(self) -> None:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.started_at = time.time()
        with open(self.log_path, "ab") as log:
            try:
                self.process = subprocess.Popen(
                    self.argv,
                    cwd=self.work_dir,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env=self.env,
                    start_new_session=True,
                )
            except FileNotFoundError as exc:
                msg = f"{self.name}: cannot run {self.argv[0]!r}: {exc.strerror}"
                raise ServiceError(msg) from exc

    def wait_ready(self, check: Callable[[], bool], timeout_s: float, what: str) -> float:
        """Poll ``check`` until it returns True; fail with the log tail on timeout or exit."""
        begin = time.monotonic()
        deadline = begin + timeout_s
        last_error = ""
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                msg = (
                    f"{self.name} exited with code {self.process.returncode} after "
                    f"{time.monotonic() - begin:.1f} s before {what}; log {self.log_path}:\n"
                    f"{tail(self.log_path)}"
                )
                raise ServiceError(msg)
            try:
                if check():
                    self.ready_seconds = time.time() - self.started_at
                    return self.ready_seconds
            except Exception as exc:  # readiness probes fail in many ways until ready
                last_error = f"{type(exc).__name__}: {exc}"
            time.sleep(0.2)
        self.stop()
        msg = (
            f"{self.name} not ready ({what}) within {timeout_s:.0f} s; last probe error: {last_error}; "
            f"log {self.log_path}:\n{tail(self.log_path)}"
        )
        raise ServiceError(msg)

    def stop(self, timeout_s: float = 15.0) -> None:
        if self.process is None:
            return
        stop_pid(self.process.pid, timeout_s)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=1)

    def kill(self) -> None:
        """SIGKILL the process group at once (fault injection)."""
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


def stop_pid(pid: int, timeout_s: float = 15.0) -> bool:
    """SIGTERM the process group of ``pid``, wait, then SIGKILL. True when it was running."""
    if not pid_alive(pid):
        return False
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        if not pid_alive(pid):
            return True
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while pid_alive(pid) and time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.1)
    return True


def signal_group(pid: int, sig: signal.Signals) -> None:
    """Send ``sig`` to the process group led by ``pid``, if it still exists."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)


def require_binary(name: str, debian_package: str, candidates: Sequence[str] = ()) -> str:
    """Path of an executable (explicit candidates first, then PATH) or a clear install hint."""
    for candidate in candidates:
        if Path(candidate).is_file():
            return candidate
    found = shutil.which(name)
    if found is None:
        msg = f"{name} is not installed: `apt-get install {debian_package}` (make test does it)"
        raise ServiceError(msg)
    return found


def process_start_ticks(pid: int) -> int | None:
    """Start time of ``pid`` (clock ticks since boot, /proc/<pid>/stat field 22), or None.

    Recorded with a PID so that a later `down` never signals a different process that
    reused the PID after a reboot or a crash.
    """
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[19])  # field 22 overall; fields[0] is field 3 (state)
