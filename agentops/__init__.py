"""agentops: task-level tracing of AI agents on OpenTelemetry.

Start with :func:`init`, group work with :func:`start_trace`/:func:`end_trace`
or the decorators, and LLM calls through the OpenAI and Anthropic clients are
recorded by themselves.
"""

from __future__ import annotations

__version__ = "0.1.0"

from agentops._config import Config
from agentops._decorators import agent, guardrail, operation, session, task, tool, trace, workflow
from agentops._guard import counters
from agentops._init import init, shutdown
from agentops._legacy import Session, end_all_sessions, end_session, start_session
from agentops._state import (
    add_span_processor,
    flush,
    get_tracer,
    is_initialized,
    remove_span_processor,
    span_processors,
)
from agentops._traces import TraceContext, active_traces, end_trace, start_trace, update_trace_metadata
from agentops.semconv import SpanKind, TraceState

__all__ = [
    "Config",
    "Session",
    "SpanKind",
    "TraceContext",
    "TraceState",
    "__version__",
    "active_traces",
    "add_span_processor",
    "agent",
    "counters",
    "end_all_sessions",
    "end_session",
    "end_trace",
    "flush",
    "get_tracer",
    "guardrail",
    "init",
    "is_initialized",
    "operation",
    "remove_span_processor",
    "session",
    "shutdown",
    "span_processors",
    "start_session",
    "start_trace",
    "task",
    "tool",
    "trace",
    "update_trace_metadata",
    "workflow",
]
