"""The demo's child processes: start each in its own process group, stop them all for sure.

Every child gets a new session (so Ctrl-C in the terminal reaches only the
runner, which then stops the children in order) and, on Linux, asks the
kernel to send it SIGTERM should the runner die without cleaning up. Each
child writes a fresh log per run. Stopping goes in stages, so that nothing is
stopped while something still running needs it (beat, then the worker and the
web server, then the LLM server they call): each stage gets SIGTERM, up to a
deadline to exit, then its whole process groups get SIGTERM and SIGKILL.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import logging
import os
import re
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
    """A child process the demo needs has exited.

    Attributes:
        child: The child that exited.
        code: Its exit code.
        cause: The last line of its log, which usually says why.
    """

    def __init__(self, child: Child, code: int) -> None:
        self.child = child
        self.code = code
        self.cause = child.last_line()
        reason = f": {self.cause}" if self.cause else ""
        super().__init__(f"the {child.name} process exited with code {code}{reason}")


class PortInUse(RuntimeError):
    """A port the demo was told to use is taken by another program (or not ours to take)."""


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    libc_name = ctypes.util.find_library("c")
    if libc_name:
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(libc_name, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class Child:
    """One started process (and its process group), its output going to a log file of this run.

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
        # A fresh log per run: what an earlier run wrote would only mislead.
        with open(log_path, "wb") as log:
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

    def last_line(self) -> str:
        """The last non-blank line of the child's output ("" if none)."""
        return next((line.strip() for line in reversed(self.tail(20).splitlines()) if line.strip()), "")

    def check(self) -> None:
        """Raise :class:`ChildExited` if the process has exited."""
        code = self.popen.poll()
        if code is not None:
            raise ChildExited(self, code)


def stop_all(stages: Sequence[Sequence[Child]], deadline: float = 20.0) -> list[str]:
    """Stop every child and its process group, stage after stage, leaving nothing running.

    Each stage is stopped before the next is signalled: first SIGTERM to each
    child's leader only (a Celery worker then finishes its running tasks and
    shuts down its pool itself, as Celery documents), up to ``deadline``
    seconds; then SIGTERM to whatever is left of each group, and after a few
    seconds more SIGKILL.

    Args:
        stages: What to stop, in order; the children of one stage are stopped together.
        deadline: Seconds each stage has to exit gracefully.

    Returns:
        Names of the children whose groups had to be signalled beyond their leader.
    """
    forced: list[str] = []
    for stage in stages:
        forced += _stop_stage(stage, deadline)
    return forced


def _stop_stage(children: Sequence[Child], deadline: float) -> list[str]:
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
            time.sleep(0.05)
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


def check_port_free(port: int) -> None:
    """Make sure a server can listen on 127.0.0.1:``port``, as the web server will try to.

    Raises:
        PortInUse: Another program listens there (or it is not ours to take).
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As Django's runserver does, so a port left in TIME_WAIT by an earlier run counts as free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as error:
            taken = "is already in use" if error.errno == errno.EADDRINUSE else "cannot be used"
            raise PortInUse(f"port {port} on 127.0.0.1 {taken} ({error.strerror})") from None


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


def wait_for_log(child: Child, pattern: re.Pattern[str], timeout: float) -> None:
    """Wait until ``child``'s log (of this run) matches ``pattern``.

    Raises:
        ChildExited: The child exited first.
        TimeoutError: The log did not match within ``timeout`` seconds.
    """
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        child.check()
        with contextlib.suppress(OSError):
            if pattern.search(child.log_path.read_text(errors="replace")):
                return
        time.sleep(0.1)
    raise TimeoutError(f"the {child.name} process did not get ready within {timeout:.0f} s:\n{child.tail()}")
