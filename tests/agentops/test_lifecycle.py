"""Process lifecycle: one fork hook and one exit hook, callbacks run in their declared order."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from typing import Any

from agentops._lifecycle import _exit, _fork
from agentops.integrations import lifecycle


def test_exit_callbacks_run_by_declared_order_not_registration_order(monkeypatch: Any) -> None:
    monkeypatch.setattr("agentops._lifecycle._exit", [])
    ran: list[str] = []
    lifecycle.on_exit(lambda: ran.append("shutdown"), lifecycle.EXIT_SHUTDOWN)
    lifecycle.on_exit(lambda: ran.append("flush"), lifecycle.EXIT_FLUSH)
    lifecycle.on_exit(lambda: ran.append("close spans"), lifecycle.EXIT_CLOSE_OPEN_SPANS)
    lifecycle.run_exit_callbacks()
    assert ran == ["close spans", "flush", "shutdown"]


def test_a_failing_callback_does_not_stop_the_others(monkeypatch: Any, caplog: Any) -> None:
    monkeypatch.setattr("agentops._lifecycle._exit", [])
    ran: list[str] = []

    def broken() -> None:
        raise RuntimeError("boom")

    lifecycle.on_exit(broken, lifecycle.EXIT_FLUSH)
    lifecycle.on_exit(lambda: ran.append("after"), lifecycle.EXIT_SHUTDOWN)
    lifecycle.run_exit_callbacks()
    assert ran == ["after"]
    assert "boom" in caplog.text


def test_registering_a_callback_twice_runs_it_once(monkeypatch: Any) -> None:
    monkeypatch.setattr("agentops._lifecycle._exit", [])
    ran: list[int] = []

    def callback() -> None:
        ran.append(1)

    lifecycle.on_exit(callback, lifecycle.EXIT_FLUSH)
    lifecycle.on_exit(callback, lifecycle.EXIT_FLUSH)
    lifecycle.run_exit_callbacks()
    assert ran == [1]


def test_the_sdk_registers_its_own_steps_in_place() -> None:
    orders = {callback.__name__: order for order, _, callback in _exit}
    assert orders["_end_traces_at_exit"] == lifecycle.EXIT_END_TRACES
    assert orders["_flush_at_exit"] == lifecycle.EXIT_FLUSH
    assert min(order for order, _, _ in _fork) == lifecycle.FORK_SDK


def test_fork_callbacks_run_in_the_child() -> None:
    read, write = os.pipe()
    marker: list[int] = []

    def in_child() -> None:
        marker.append(os.getpid())

    lifecycle.on_fork_child(in_child)
    pid = os.fork()
    if pid == 0:  # the child: report what ran, and leave without pytest's exit handling
        os.write(write, b"ran" if marker == [os.getpid()] else b"no")
        os._exit(0)
    os.close(write)
    assert os.read(read, 3) == b"ran"
    os.waitpid(pid, 0)
    assert marker == []


def test_at_exit_an_open_trace_ends_before_the_flush_and_processors_stop_last() -> None:
    """A processor registered to stop at EXIT_SHUTDOWN still receives the trace ended at exit."""
    script = textwrap.dedent(
        """
        import agentops
        from agentops.integrations import lifecycle
        from opentelemetry.sdk.trace import SpanProcessor

        class Recorder(SpanProcessor):
            def __init__(self):
                self.names = []
                self.stopped = False
            def on_end(self, span):
                if not self.stopped:
                    self.names.append(span.name)
            def shutdown(self):
                self.stopped = True
                print("stopped with", self.names, flush=True)

        recorder = Recorder()
        agentops.init(auto_start_session=False, instrument_llm_calls=False)
        lifecycle.on_exit(recorder.shutdown, lifecycle.EXIT_SHUTDOWN)
        agentops.add_span_processor(recorder)
        agentops.start_trace("left-open")
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "stopped with ['left-open']" in result.stdout
