"""The demo's process handling, on real processes: stopping in stages, and an exit explained by its cause.

Stand-ins for the demo's children (small Python programs that note when they
are told to stop and when they have stopped) make the order observable
without a Celery worker or a web server.
"""

from __future__ import annotations

import os
import socket
import sys
import textwrap
import time
from pathlib import Path

import pytest

from demo_project.processes import Child, ChildExited, PortInUse, check_port_free, stop_all
from demo_project.runner import _stop_stages

#: A child that writes "<name> stopping" on SIGTERM, takes a moment to finish, then writes "<name> stopped".
STAND_IN = textwrap.dedent(
    """
    import signal, sys, time

    name, events, linger = sys.argv[1], sys.argv[2], float(sys.argv[3])

    def note(what):
        with open(events, "a") as file:
            file.write(f"{name} {what}\\n")

    def stop(signum, frame):
        note("stopping")
        time.sleep(linger)
        note("stopped")
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    print("ready", flush=True)
    while True:
        time.sleep(0.05)
    """
)


def _stand_in(tmp_path: Path, name: str, linger: float = 0.3) -> Child:
    events = tmp_path / "events.txt"
    child = Child(
        name,
        [sys.executable, "-c", STAND_IN, name, str(events), str(linger)],
        dict(os.environ),
        tmp_path,
        tmp_path / f"{name}.log",
    )
    deadline = time.monotonic() + 10
    while "ready" not in child.tail() and time.monotonic() < deadline:
        time.sleep(0.02)
    return child


def test_the_demo_stops_beat_first_then_worker_and_web_then_the_llm_server(tmp_path: Path) -> None:
    """Nothing is stopped while a process still running may need it.

    Beat has stopped before the worker is told to stop (so it sends no task
    that the worker would start during shutdown), and the worker and the web
    server have stopped before the LLM server they call is told to stop (so a
    task finishing during shutdown still gets its answer).
    """
    children = [_stand_in(tmp_path, name) for name in ("llm", "web", "worker", "beat")]
    stages = _stop_stages(children)
    assert [[child.name for child in stage] for stage in stages] == [["beat"], ["web", "worker"], ["llm"]]

    forced = stop_all(stages, deadline=10)

    assert forced == []
    events = (tmp_path / "events.txt").read_text().splitlines()
    position = {event: index for index, event in enumerate(events)}
    assert position["beat stopped"] < position["worker stopping"], events
    assert position["beat stopped"] < position["web stopping"], events
    assert max(position["worker stopped"], position["web stopped"]) < position["llm stopping"], events
    assert not any(child.group_alive() for child in children)


def test_a_child_that_ignores_sigterm_is_killed_and_named(tmp_path: Path) -> None:
    """A stage that does not stop by its deadline is forced, and the next stage is still stopped after it."""
    stubborn = Child(
        "worker",
        [sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"],
        dict(os.environ),
        tmp_path,
        tmp_path / "worker.log",
    )
    llm = _stand_in(tmp_path, "llm", linger=0)
    time.sleep(0.3)  # let the stubborn child install its handler

    forced = stop_all([[stubborn], [llm]], deadline=0.5)

    assert forced == ["worker"]
    assert not stubborn.group_alive()
    assert not llm.group_alive()
    assert (tmp_path / "events.txt").read_text().splitlines() == ["llm stopping", "llm stopped"]


def test_a_child_that_exits_is_reported_with_the_cause_first(tmp_path: Path) -> None:
    """The error names the process, its exit code and the last line of its log, which says why."""
    log = tmp_path / "web.log"
    log.write_text("a line from an earlier run\n")
    child = Child(
        "web",
        [sys.executable, "-c", "print('Performing system checks...'); raise SystemExit('Error: That port is in use.')"],
        dict(os.environ),
        tmp_path,
        log,
    )
    child.popen.wait(timeout=30)

    with pytest.raises(ChildExited) as raised:
        child.check()

    assert str(raised.value) == "the web process exited with code 1: Error: That port is in use."
    assert "earlier run" not in log.read_text()  # each run starts its logs afresh


def test_a_port_in_use_is_found_before_anything_starts() -> None:
    """``check_port_free`` refuses a port another program listens on, and accepts it once that program is gone."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(PortInUse, match=f"port {port} on 127.0.0.1 is already in use"):
            check_port_free(port)
    check_port_free(port)
