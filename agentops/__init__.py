"""agentops: task-level tracing of AI agents on OpenTelemetry, with AgentOps' API.

Start with :func:`init`, group work with :func:`start_trace`/:func:`end_trace`
or the decorators, and LLM calls through the OpenAI and Anthropic clients are
recorded by themselves. Code written for AgentOps 0.4.21 (``import agentops``,
``from agentops.sdk.decorators import agent``) runs unchanged; nothing is sent
to AgentOps' service.
"""

from __future__ import annotations

# First, before any other module of ours: with the official AgentOps SDK
# installed over this package, importing the rest fails cryptically.
from agentops._conflict import check_at_import

check_at_import()

__version__ = "0.1.0"
#: Which distribution this ``agentops`` package is (the official AgentOps SDK uses the same import name).
__distribution__ = "agentops-django"

from agentops._client import Client, get_client  # noqa: E402
from agentops._config import Config  # noqa: E402
from agentops._decorators import (  # noqa: E402
    agent,
    guardrail,
    operation,
    session,
    task,
    tool,
    trace,
    track_endpoint,
    workflow,
)
from agentops._events import ActionEvent, ErrorEvent, LLMEvent, ToolEvent, record, track_agent, track_tool  # noqa: E402
from agentops._guard import counters  # noqa: E402
from agentops._init import configure, init, shutdown  # noqa: E402
from agentops._legacy import Session, end_all_sessions, end_session, start_session  # noqa: E402
from agentops._state import (  # noqa: E402
    add_span_processor,
    flush,
    get_tracer,
    is_initialized,
    remove_span_processor,
    span_processors,
)
from agentops._traces import TraceContext, active_traces, end_trace, start_trace, update_trace_metadata  # noqa: E402
from agentops._validation import (  # noqa: E402
    ValidationError,
    add_trace_source,
    print_validation_summary,
    remove_trace_source,
    validate_trace_spans,
)
from agentops.semconv import ERROR, SUCCESS, UNSET, SpanKind, TraceState  # noqa: E402

__all__ = [
    "ERROR",
    "SUCCESS",
    "UNSET",
    "ActionEvent",
    "Client",
    "Config",
    "ErrorEvent",
    "LLMEvent",
    "Session",
    "SpanKind",
    "ToolEvent",
    "TraceContext",
    "TraceState",
    "ValidationError",
    "__version__",
    "active_traces",
    "add_span_processor",
    "add_trace_source",
    "agent",
    "configure",
    "counters",
    "end_all_sessions",
    "end_session",
    "end_trace",
    "flush",
    "get_client",
    "get_tracer",
    "guardrail",
    "init",
    "is_initialized",
    "operation",
    "print_validation_summary",
    "record",
    "remove_span_processor",
    "remove_trace_source",
    "session",
    "shutdown",
    "span_processors",
    "start_session",
    "start_trace",
    "task",
    "tool",
    "trace",
    "track_agent",
    "track_endpoint",
    "track_tool",
    "update_trace_metadata",
    "validate_trace_spans",
    "workflow",
]
