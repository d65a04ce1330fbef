"""AgentOps' legacy event API: ``record(ActionEvent(...))``, ``@track_agent``, ``@track_tool``.

AgentOps 0.4.21 still exports these and records nothing with them. Here an
event becomes a span of the caller's current trace (in a plain script, of the
session ``init()`` started), timed by the event's ``init_timestamp`` and
``end_timestamp``:

=============  =========================  ==========================================
event          span                       what is recorded
=============  =========================  ==========================================
ActionEvent    ``{action_type}.operation``  params, returns, logs, screenshot
ToolEvent      ``{name}.tool``              params, returns, logs
LLMEvent       ``chat {model}`` (``llm``)   model, prompt/completion tokens, cost, messages
ErrorEvent     ``{error_type}.error``       status ERROR, ``error.type``, the exception
=============  =========================  ==========================================

An ``ErrorEvent`` whose ``trigger_event`` was recorded becomes a child of
that event's span. Payloads follow the content-capture, redaction and size
settings, as decorated calls' do. ``@track_agent`` and ``@track_tool`` are
``@agent`` and ``@tool``.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import traceback
import uuid
from collections.abc import Callable
from typing import Any

from opentelemetry import trace as trace_api
from opentelemetry.trace import Span, SpanContext, Status, StatusCode

from agentops import semconv
from agentops._decorators import agent, tool
from agentops._guard import capture_internal_exceptions
from agentops._serialize import to_json, truncate
from agentops._state import state
from agentops._traces import current_scope
from agentops.semconv import SpanKind

logger = logging.getLogger(__name__)


def _now_iso() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat()


@dataclasses.dataclass
class Event:
    """An event of AgentOps' legacy API (the base of the four event types).

    Attributes:
        event_type: ``actions``, ``tools``, ``llms`` or ``errors``.
        params: The arguments of the work the event stands for.
        returns: Its result.
        init_timestamp: When it started (ISO 8601; now by default).
        end_timestamp: When it ended (set by :func:`record` if not given).
        agent_id: The agent it belongs to.
        id: The event's id.
        session_id: Kept as given.
    """

    event_type: str
    params: Any = None
    returns: Any = None
    init_timestamp: str = dataclasses.field(default_factory=_now_iso)
    end_timestamp: str | None = None
    agent_id: Any = None
    id: uuid.UUID = dataclasses.field(default_factory=uuid.uuid4)
    session_id: Any = None


@dataclasses.dataclass
class ActionEvent(Event):
    """A generic action of an agent (``action_type`` names it)."""

    event_type: str = "actions"
    action_type: str | None = None
    logs: Any = None
    screenshot: str | None = None


@dataclasses.dataclass
class LLMEvent(Event):
    """An LLM call recorded by hand (the OpenAI and Anthropic clients are recorded by themselves)."""

    event_type: str = "llms"
    thread_id: Any = None
    prompt: Any = None
    prompt_tokens: int | None = None
    completion: Any = None
    completion_tokens: int | None = None
    cost: float | None = None
    model: str | None = None


@dataclasses.dataclass
class ToolEvent(Event):
    """A tool call (``name`` names the tool)."""

    event_type: str = "tools"
    name: str | None = None
    logs: Any = None


@dataclasses.dataclass
class ErrorEvent(Event):
    """An error; ``exception`` fills ``error_type``, ``details`` and the traceback."""

    event_type: str = "errors"
    trigger_event: Event | None = None
    exception: BaseException | None = None
    error_type: str | None = None
    code: str | None = None
    details: Any = None
    logs: str | None = None

    def __post_init__(self) -> None:
        if self.exception is not None:
            self.error_type = self.error_type or type(self.exception).__name__
            self.details = self.details or str(self.exception)
            if self.logs is None and self.exception.__traceback__ is not None:
                self.logs = "".join(traceback.format_exception(self.exception))
            self.exception = None  # as AgentOps: not kept (nor serialised)
        if not self.end_timestamp:
            self.end_timestamp = _now_iso()

    @property
    def timestamp(self) -> str:
        """The old name of ``init_timestamp``."""
        return self.init_timestamp


def _lenient(cls: type[Event]) -> None:
    """Let the event accept keywords it does not know (AgentOps 0.4.21's stand-ins accepted anything)."""
    known = {field.name for field in dataclasses.fields(cls)}
    original = cls.__init__

    def __init__(self: Event, *args: Any, **kwargs: Any) -> None:
        extra = {key: kwargs.pop(key) for key in list(kwargs) if key not in known}
        original(self, *args, **kwargs)
        if extra:
            logger.debug("agentops: %s ignores %s", cls.__name__, ", ".join(sorted(extra)))

    __init__.__doc__ = original.__doc__
    cls.__init__ = __init__  # type: ignore[method-assign]


for _cls in (ActionEvent, LLMEvent, ToolEvent, ErrorEvent):
    _lenient(_cls)

_SPAN_CONTEXT = "_agentops_span_context"


def _ns(timestamp: Any) -> int | None:
    if not timestamp:
        return None
    try:
        moment = datetime.datetime.fromisoformat(str(timestamp))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return int(moment.timestamp() * 1_000_000_000)


def _parent(event: Any, explicit: Span | None) -> Span | SpanContext | None:
    trigger = getattr(event, "trigger_event", None)
    trigger_context = getattr(trigger, _SPAN_CONTEXT, None)
    if isinstance(trigger_context, SpanContext):
        return trigger_context
    if explicit is not None:
        return explicit if explicit.is_recording() else None
    current = trace_api.get_current_span()
    if current.is_recording():
        return current
    init_trace = state.init_trace
    if current_scope() is None and init_trace is not None and not init_trace.ended:
        return init_trace.span
    return None


def _describe(event: Any) -> tuple[str, str, dict[str, Any], dict[str, Any]]:
    """The span name, kind, attributes, and payloads (recorded with content capture only)."""
    payloads: dict[str, Any] = {}
    if isinstance(event, LLMEvent):
        attributes: dict[str, Any] = {semconv.GEN_AI_OPERATION_NAME: "chat"}
        if event.model:
            attributes[semconv.GEN_AI_REQUEST_MODEL] = str(event.model)
        for key, value in (
            (semconv.GEN_AI_USAGE_INPUT_TOKENS, event.prompt_tokens),
            (semconv.GEN_AI_USAGE_OUTPUT_TOKENS, event.completion_tokens),
        ):
            if isinstance(value, int) and not isinstance(value, bool):
                attributes[key] = value
        if isinstance(event.cost, int | float) and not isinstance(event.cost, bool):
            attributes[semconv.GEN_AI_USAGE_COST] = attributes[semconv.GEN_AI_USAGE_TOTAL_COST] = float(event.cost)
        payloads = {semconv.GEN_AI_INPUT_MESSAGES: event.prompt, semconv.GEN_AI_OUTPUT_MESSAGES: event.completion}
        name = f"chat {event.model}" if event.model else "chat"
        return name, SpanKind.LLM, attributes, payloads
    if isinstance(event, ErrorEvent):
        attributes = {semconv.ERROR_TYPE: event.error_type or "error"}
        if event.details is not None:
            attributes[semconv.ERROR_MESSAGE] = str(event.details)
        if event.code is not None:
            attributes[semconv.AGENTOPS_ERROR_CODE] = str(event.code)
        return f"{event.error_type or 'error'}.error", semconv.SPAN_KIND_ERROR, attributes, {}
    if isinstance(event, ToolEvent):
        entity, kind = event.name or "tool", SpanKind.TOOL
    elif isinstance(event, ActionEvent):
        entity, kind = event.action_type or "action", SpanKind.OPERATION
    else:
        entity, kind = str(getattr(event, "event_type", None) or "event"), SpanKind.OPERATION
    attributes = {semconv.AGENTOPS_ENTITY_NAME: entity, semconv.OPERATION_NAME: entity}
    if isinstance(event, ActionEvent) and event.screenshot:
        attributes[semconv.AGENTOPS_EVENT_SCREENSHOT] = str(event.screenshot)
    payloads = {
        semconv.AGENTOPS_DECORATOR_INPUT.format(entity_kind=kind): getattr(event, "params", None),
        semconv.AGENTOPS_DECORATOR_OUTPUT.format(entity_kind=kind): getattr(event, "returns", None),
        semconv.AGENTOPS_EVENT_LOGS: getattr(event, "logs", None),
    }
    return f"{entity}.{kind}", kind, attributes, payloads


def record_event(event: Any, parent: Span | None = None) -> None:
    """Record ``event`` as a span (see the module docstring); nothing before ``init()`` or outside a trace.

    Args:
        event: One of the event types (anything else is logged and ignored).
        parent: The span to record it under (a legacy session's); the
            caller's current trace by default.
    """
    config = state.config
    if config is None:
        return
    if not isinstance(event, Event):
        logger.warning("agentops: record() takes an ActionEvent, ToolEvent, LLMEvent or ErrorEvent, not %r", event)
        return
    where = _parent(event, parent)
    if where is None:
        logger.debug("agentops: record(%s) outside any trace; not recorded", type(event).__name__)
        return
    name, kind, attributes, payloads = _describe(event)
    attributes[semconv.AGENTOPS_SPAN_KIND] = kind
    attributes[semconv.AGENTOPS_EVENT_TYPE] = str(event.event_type)
    attributes[semconv.AGENTOPS_EVENT_ID] = str(event.id)
    if event.agent_id is not None:
        attributes[semconv.AGENT_ID] = str(event.agent_id)
    if config.capture_content:
        for key, value in payloads.items():
            if isinstance(value, str):
                attributes[key] = truncate(value, config.max_payload_size)
            elif value is not None:
                attributes[key] = to_json(value, redact_keys=config.redact_keys, max_size=config.max_payload_size)
    parent_span = trace_api.NonRecordingSpan(where) if isinstance(where, SpanContext) else where
    start = _ns(event.init_timestamp)
    span = state.tracer.start_span(
        name, context=trace_api.set_span_in_context(parent_span), attributes=attributes, start_time=start
    )
    if isinstance(event, ErrorEvent):
        exception_attributes = {"exception.type": event.error_type or "error"}
        if event.details is not None:
            exception_attributes["exception.message"] = str(event.details)
        if event.logs:
            exception_attributes[semconv.EXCEPTION_STACKTRACE] = str(event.logs)
        span.add_event("exception", exception_attributes, timestamp=start)
        span.set_status(Status(StatusCode.ERROR, str(event.details or event.error_type or "error")[:1024]))
    end = _ns(event.end_timestamp)
    span.end(end_time=max(end, start) if end is not None and start is not None else end)
    setattr(event, _SPAN_CONTEXT, span.get_span_context())


def record(event: Any) -> Any:
    """Record a legacy event as a span of the caller's trace (AgentOps 0.4.21 only timestamps it).

    Args:
        event: An ``ActionEvent``, ``ToolEvent``, ``LLMEvent`` or ``ErrorEvent``.

    Returns:
        The event, its ``end_timestamp`` set if it had none.
    """
    if event is not None and getattr(event, "end_timestamp", "") is None:
        event.end_timestamp = _now_iso()
    with capture_internal_exceptions("record"):
        record_event(event)
    return event


def _legacy_decorator(decorate: Callable[..., Any], public_name: str) -> Callable[..., Any]:
    def decorator(*args: Any, **kwargs: Any) -> Any:
        if args and callable(args[0]) and not isinstance(args[0], str):  # bare: @track_agent
            return decorate(args[0])
        name = kwargs.pop("name", None) or kwargs.pop("tool_name", None) or (args[0] if args else None)
        if kwargs:
            logger.debug("agentops: @%s ignores %s", public_name, ", ".join(sorted(kwargs)))
        return decorate(name=None if name is None else str(name))

    decorator.__name__ = decorator.__qualname__ = public_name
    return decorator


track_agent = _legacy_decorator(agent, "track_agent")
track_agent.__doc__ = "AgentOps' old ``@track_agent(name=...)``: the same as ``@agent(name=...)``."
track_tool = _legacy_decorator(tool, "track_tool")
track_tool.__doc__ = "AgentOps' old ``@track_tool(name=...)``: the same as ``@tool(name=...)``."
