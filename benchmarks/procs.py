"""Processes and services of a benchmark run: every process started is stopped.

:class:`Processes` starts children in their own process groups and, on
``close()`` (also at exit and on SIGTERM/SIGINT), stops each group: SIGTERM,
a bounded wait, then SIGKILL. Should the suite itself be killed outright,
its children get SIGKILL from the kernel (``PR_SET_PDEATHSIG``), and their
own children follow within seconds (gunicorn's workers check their parent
every half ``--timeout``; Celery's pool children watch theirs). Servers bind 127.0.0.1 only.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens (connections are refused)."""
    return free_port()


def server_up(port: int, host: str = "127.0.0.1") -> bool:
    try:
        socket.create_connection((host, port), timeout=1).close()
    except OSError:
        return False
    return True


def read_status_kib(field: str, pid: int | str = "self") -> int:
    """A ``VmRSS``/``VmHWM`` value of ``/proc/<pid>/status``, in KiB (0 if unknown)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def children_of(pid: int) -> list[int]:
    """The ids of the live processes whose parent is ``pid``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry))
    return found


def _die_with_parent() -> None:
    """In the child before exec: be killed if the suite dies without cleaning up (Linux only)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class Processes:
    """The children of a run; ``close()`` stops every one still running."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.children: list[subprocess.Popen[Any]] = []
        atexit.register(self.close)
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.close()
        raise SystemExit(128 + signum)

    def env(self, **extra: str) -> dict[str, str]:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1", **extra}
        env.pop("DJANGO_SETTINGS_MODULE", None)
        return env

    def start(
        self, name: str, args: list[str], env: Mapping[str, str], *, stdin: Any = subprocess.DEVNULL, pipe: bool = False
    ) -> subprocess.Popen[Any]:
        """Start a child in its own process group; stderr (and stdout unless piped) go to a log file."""
        log = open(self.log_dir / f"{name}.log", "ab")
        proc = subprocess.Popen(
            args,
            cwd=ROOT,
            env=dict(env),
            stdin=stdin,
            stdout=subprocess.PIPE if pipe else log,
            stderr=log,
            start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            text=pipe or None,
            bufsize=1 if pipe else -1,
        )
        proc._bench_log = log  # type: ignore[attr-defined]
        proc._bench_name = name  # type: ignore[attr-defined]
        self.children.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[Any], timeout: float = 15.0) -> int | None:
        """Stop a child's whole process group: SIGTERM, wait up to ``timeout``, then SIGKILL."""
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        # Leftovers of the group (prefork children whose parent died first).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        proc._bench_log.close()  # type: ignore[attr-defined]
        if proc in self.children:
            self.children.remove(proc)
        return proc.returncode

    def close(self) -> None:
        for proc in list(self.children):
            with contextlib.suppress(Exception):
                self.stop(proc, timeout=10.0)


class Driver:
    """A long-lived ``benchmarks/driver.py`` process of one variant, spoken to in JSON lines."""

    def __init__(self, procs: Processes, name: str, env: Mapping[str, str], timeout: float = 120.0) -> None:
        self.name = name
        self.procs = procs
        self.proc = procs.start(name, [PYTHON, "-m", "benchmarks.driver"], env, stdin=subprocess.PIPE, pipe=True)
        ready = self._read(timeout)
        self.pid = ready["pid"]

    def _read(self, timeout: float) -> dict[str, Any]:
        import selectors

        assert self.proc.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self.proc.stdout, selectors.EVENT_READ)
            if not selector.select(timeout):
                raise RuntimeError(f"driver {self.name}: no answer in {timeout:.0f}s (see its log)")
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"driver {self.name} exited (code {self.proc.poll()}); see its log")
        return json.loads(line)

    def ask(self, op: str, timeout: float = 600.0, **args: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"op": op, **args}) + "\n")
        self.proc.stdin.flush()
        answer = self._read(timeout)
        if "error" in answer:
            raise RuntimeError(f"driver {self.name}: {op} failed: {answer['error']}")
        return answer

    def close(self) -> None:
        if self.proc.poll() is None and self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.write('{"op": "quit"}\n')
                self.proc.stdin.flush()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(40)
        self.procs.stop(self.proc)


def wait_http(url: str, timeout: float = 60.0, proc: subprocess.Popen[Any] | None = None) -> None:
    """Wait until ``url`` answers 200, or raise (also if ``proc`` exits first)."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{url}: the server exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except Exception as exc:
            last = exc
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer in {timeout:.0f}s: {last!r}")


@contextlib.contextmanager
def drivers(procs: Processes, envs: Mapping[str, Mapping[str, str]]) -> Iterator[dict[str, Driver]]:
    """One :class:`Driver` per name, all closed on exit."""
    started: dict[str, Driver] = {}
    try:
        for name, env in envs.items():
            started[name] = Driver(procs, f"driver-{name}", env)
        yield started
    finally:
        for driver in started.values():
            with contextlib.suppress(Exception):
                driver.close()
