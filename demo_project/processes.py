"""The demo's child processes: start each in its own process group, stop them all for sure.

Every child gets a new session (so Ctrl-C in the terminal reaches only the
runner, which then stops the children in order) and, on Linux, asks the
kernel to send it SIGTERM should the runner die without cleaning up. Stopping
sends SIGTERM to each whole process group (a Celery worker's pool and beat
included), waits up to a deadline, then sends SIGKILL to whatever is left.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

logger = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


class ChildExited(RuntimeError):
    """A child process the demo needs has exited."""


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    libc_name = ctypes.util.find_library("c")
    if libc_name:
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(libc_name, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class Child:
    """One started process (and its process group), its output going to a log file.

    Attributes:
        name: A short name for messages ("web", "worker", ...).
        argv: The command line.
        log_path: Where its stdout and stderr go.
        popen: The running process.
    """

    def __init__(self, name: str, argv: Sequence[str], env: Mapping[str, str], cwd: Path, log_path: Path) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as log:
            self.popen = subprocess.Popen(
                self.argv,
                cwd=cwd,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
            )
        self.pgid = self.popen.pid  # a new session leader's group id is its pid
        logger.debug("started %s (pid %s): %s", name, self.popen.pid, " ".join(self.argv))

    @property
    def running(self) -> bool:
        return self.popen.poll() is None

    def group_alive(self) -> bool:
        """Whether any process of this child's group is still there."""
        try:
            os.killpg(self.pgid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def signal_group(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pgid, signum)

    def tail(self, lines: int = 30) -> str:
        """The last lines of the child's output."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def check(self) -> None:
        """Raise :class:`ChildExited` if the process has exited."""
        code = self.popen.poll()
        if code is not None:
            raise ChildExited(f"the {self.name} process exited with code {code}; its log ends:\n{self.tail()}")


def stop_all(children: Sequence[Child], deadline: float = 20.0) -> list[str]:
    """Stop every child and its process group, leaving nothing running.

    First SIGTERM to each child's leader only (a Celery worker then shuts down
    its pool and beat itself, as Celery documents), up to ``deadline`` seconds;
    then SIGTERM to whatever is left of each group, and after a few seconds
    more SIGKILL.

    Args:
        children: What to stop, in order (the first is signalled first).
        deadline: Seconds to wait for the graceful exit of them all.

    Returns:
        Names of the children whose groups had to be signalled beyond their leader.
    """
    for child in children:
        if child.running:
            with contextlib.suppress(ProcessLookupError):
                child.popen.send_signal(signal.SIGTERM)
    forced: list[str] = []
    end = time.monotonic() + deadline
    for child in children:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.popen.wait(timeout=max(0.1, end - time.monotonic()))
        # The leader may be gone while its pool children still exit; give them the same deadline.
        while child.group_alive() and time.monotonic() < end:
            time.sleep(0.1)
        if child.running or child.group_alive():
            forced.append(child.name)
    for signum, grace in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 5.0)):
        left = [child for child in children if child.running or child.group_alive()]
        for child in left:
            child.signal_group(signum)
        stop = time.monotonic() + grace
        for child in left:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.popen.wait(timeout=max(0.1, stop - time.monotonic()))
            while child.group_alive() and time.monotonic() < stop:
                time.sleep(0.05)
    return forced


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, child: Child, timeout: float) -> None:
    """Wait until ``child`` accepts connections on 127.0.0.1:``port``.

    Raises:
        ChildExited: The child exited first.
        TimeoutError: It did not listen within ``timeout`` seconds.
    """
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        child.check()
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        except OSError:
            time.sleep(0.1)
        else:
            return
    raise TimeoutError(
        f"the {child.name} process did not listen on port {port} within {timeout:.0f} s:\n{child.tail()}"
    )
