"""Specification of the guard: agentops' own errors never reach the host.

What the guard swallows is logged and counted; the user's own exceptions
are never swallowed. (Outside these tests, the autouse fixture turns any
swallowed error into a test failure.)
"""

from __future__ import annotations

import logging

import pytest
from opentelemetry.sdk.trace import SpanProcessor

import agentops
from agentops import _decorators, _guard
from agentops._guard import capture_internal_exceptions, count, counters
from agentops.testing import CapturedSpans, SpanCollector

pytestmark = pytest.mark.allow_internal_errors


def test_the_guard_swallows_logs_and_counts_an_internal_error(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="agentops"), capture_internal_exceptions("testing"):
        raise RuntimeError("bug in agentops")
    assert counters()["internal_errors"] == 1
    assert "internal error in testing" in caplog.text
    assert "bug in agentops" in caplog.text


def test_the_guard_lets_keyboard_interrupt_and_system_exit_through() -> None:
    with pytest.raises(KeyboardInterrupt), capture_internal_exceptions("testing"):
        raise KeyboardInterrupt
    with pytest.raises(SystemExit), capture_internal_exceptions("testing"):
        raise SystemExit(1)


def test_the_internal_error_hook_sees_each_swallowed_error() -> None:
    seen: list[BaseException] = []
    _guard.set_internal_error_hook(seen.append)
    error = ValueError("x")
    with capture_internal_exceptions("testing"):
        raise error
    assert seen == [error]


def test_counters_are_a_snapshot_of_named_counts() -> None:
    count("dropped_spans", 3)
    count("dropped_spans")
    snapshot = counters()
    count("dropped_spans")
    assert snapshot["dropped_spans"] == 4
    assert counters()["dropped_spans"] == 5


class Exploding(SpanProcessor):
    def on_start(self, span, parent_context=None) -> None:
        raise RuntimeError("on_start broke")

    def on_end(self, span) -> None:
        raise RuntimeError("on_end broke")


def test_a_failing_span_processor_costs_nothing_to_the_host_or_the_other_processors(spans: CapturedSpans) -> None:
    agentops.add_span_processor(Exploding())
    collector = SpanCollector()
    agentops.add_span_processor(collector)

    @agentops.tool
    def lookup() -> str:
        return "ok"

    assert lookup() == "ok"
    assert [span.name for span in collector.spans] == ["lookup.tool"]
    assert counters()["internal_errors"] == 2


def test_a_decorated_call_still_runs_when_recording_its_arguments_fails(
    spans: CapturedSpans, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> str:
        raise RuntimeError("serialiser broke")

    monkeypatch.setattr(_decorators, "to_json", broken)

    @agentops.tool
    def lookup(x: int) -> int:
        return x

    assert lookup(2) == 2
    assert spans.one("lookup.tool").end_time is not None
    assert counters()["internal_errors"] == 2  # arguments and result


def test_the_users_exception_is_never_counted_as_an_internal_error(spans: CapturedSpans) -> None:
    @agentops.tool
    def lookup() -> None:
        raise LookupError("the user's own")

    with pytest.raises(LookupError):
        lookup()
    assert counters().get("internal_errors", 0) == 0


def test_an_exception_whose_str_fails_still_ends_the_span_and_reaches_the_caller(spans: CapturedSpans) -> None:
    class Unprintable(Exception):
        def __str__(self) -> str:
            raise RuntimeError("cannot print")

    error = Unprintable()

    @agentops.tool
    def lookup() -> None:
        raise error

    with pytest.raises(Unprintable) as raised:
        lookup()
    assert raised.value is error
    assert spans.one("lookup.tool").end_time is not None
