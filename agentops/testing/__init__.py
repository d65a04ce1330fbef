"""Helpers for testing code traced with agentops.

:func:`captured_spans` collects the spans finished inside a ``with`` block
(:func:`memory_exporter` gives those of ``init(exporters=["memory"])``)::

    with agentops.testing.captured_spans() as spans:
        my_agent.run()
    assert [s.name for s in spans] == ["plan.tool", "run.agent"]

:mod:`agentops.testing.llm_server` is a deterministic stand-in for the OpenAI
and Anthropic HTTP APIs, for tests and demos that must not reach the network.
:mod:`agentops.testing.service_server` stands in for AgentOps' service (the
API key's token exchange and the OTLP/HTTP endpoint), on loopback too.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from agentops._guard import reset_counters
from agentops._state import add_span_processor, remove_span_processor, state
from agentops._state import reset as _reset_state


class SpanCollector(SpanProcessor):
    """A span processor that keeps every finished span, in the order they end."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.spans: list[ReadableSpan] = []

    def on_end(self, span: ReadableSpan) -> None:
        with self._lock:
            self.spans.append(span)

    def clear(self) -> None:
        with self._lock:
            self.spans.clear()


class CapturedSpans(list[ReadableSpan]):
    """The spans captured so far (a live list), with lookups for assertions."""

    def named(self, name: str) -> list[ReadableSpan]:
        return [s for s in self if s.name == name]

    def one(self, name: str) -> ReadableSpan:
        found = self.named(name)
        if len(found) != 1:
            raise AssertionError(f"expected one span named {name!r}, found {len(found)}: {[s.name for s in self]}")
        return found[0]

    def of_trace(self, trace_id: int | str) -> list[ReadableSpan]:
        if isinstance(trace_id, str):
            trace_id = int(trace_id, 16)
        return [s for s in self if s.context.trace_id == trace_id]

    def children_of(self, span: ReadableSpan) -> list[ReadableSpan]:
        return [s for s in self if s.parent is not None and s.parent.span_id == span.context.span_id]


class _LiveCollector(SpanCollector):
    def __init__(self, target: CapturedSpans) -> None:
        super().__init__()
        self.spans = target


@contextlib.contextmanager
def captured_spans() -> Iterator[CapturedSpans]:
    """Collect the spans that end inside the block (agentops must be initialised).

    Yields:
        A list that fills as spans end, with ``named``/``one``/``of_trace``/
        ``children_of`` helpers.
    """
    spans = CapturedSpans()
    collector = _LiveCollector(spans)
    add_span_processor(collector)
    try:
        yield spans
    finally:
        remove_span_processor(collector)


def memory_exporter() -> InMemorySpanExporter | None:
    """The exporter behind ``init(exporters=["memory"])``, or ``None`` if not configured.

    Its ``get_finished_spans()`` returns every span exported since ``init()``.
    """
    exporter: InMemorySpanExporter | None = state.memory_exporter
    return exporter


def reset() -> None:
    """Forget agentops' configuration, traces, processors and counters (between tests).

    The global OpenTelemetry provider stays (it can be set once per process);
    agentops' processors are shut down and removed from it, the LLM clients
    uninstrumented, open traces ended; the next ``init()`` starts afresh.
    """
    _reset_state()
    reset_counters()


__all__ = ["CapturedSpans", "SpanCollector", "captured_spans", "memory_exporter", "reset"]
