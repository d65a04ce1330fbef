"""Traces: ``start_trace``/``end_trace``, scopes, and per-context bookkeeping.

A trace is a root span plus a :class:`TraceContext` that remembers it. Which
trace is "the caller's" travels in the OpenTelemetry context (a contextvar),
so threads and asyncio tasks never see each other's traces.

Scopes. An automatic trace (a Django request, a Celery task) opens a *scope*.
Inside a scope, ``start_trace`` makes a child of the current span, so one
request shows as one picture, and ``end_trace()`` without an argument ends
only the traces started in that scope. Outside any scope (a plain script),
``start_trace`` always makes a new root and ``end_trace()`` ends every trace
started outside a scope.
"""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Iterable, Mapping
from typing import Any, cast

from opentelemetry import context as context_api
from opentelemetry import trace as trace_api
from opentelemetry.context import Context
from opentelemetry.trace import Span, Status, StatusCode

from agentops import semconv
from agentops._guard import capture_internal_exceptions
from agentops._serialize import is_secret_key, to_json
from agentops._state import state
from agentops.semconv import TraceState

logger = logging.getLogger(__name__)

_TRACE_KEY = context_api.create_key("agentops-trace")
_SCOPE_KEY = context_api.create_key("agentops-scope")
_ids = itertools.count(1)
_ROOT = Context()

_STATUS = {
    TraceState.SUCCESS.value: StatusCode.OK,
    TraceState.ERROR.value: StatusCode.ERROR,
    TraceState.INDETERMINATE.value: StatusCode.UNSET,
}
_FROM_STATUS = {code: state_ for state_, code in _STATUS.items()}


class Scope:
    """An automatic trace's scope (one request, one task run)."""

    __slots__ = ("name", "span")

    def __init__(self, span: Span, name: str) -> None:
        self.span = span
        self.name = name


class TraceContext:
    """A running trace, as returned by :func:`start_trace`.

    Attributes:
        span: The trace's root span (an OpenTelemetry span).
        token: The context token from making the trace current.
        is_init_trace: True for the trace ``init()`` starts by itself.
        context: The OpenTelemetry context in which the trace is current.
    """

    __slots__ = ("context", "ended", "is_init_trace", "key", "parent_context", "pid", "scope", "span", "token")

    def __init__(
        self,
        span: Span,
        token: object | None,
        is_init_trace: bool,
        context: Context,
        parent_context: Context,
        scope: Scope | None,
    ) -> None:
        self.span = span
        self.token = token
        self.is_init_trace = is_init_trace
        self.context = context
        self.parent_context = parent_context
        self.scope = scope
        self.key = next(_ids)
        self.ended = False
        #: The process that started it: a forked child stays inside its parent's
        #: traces (their spans are its spans' parents) but never ends them.
        self.pid = os.getpid()

    @property
    def trace_id(self) -> str:
        """The trace id as 32 lowercase hex characters."""
        return format(self.span.get_span_context().trace_id, "032x")

    @property
    def span_id(self) -> str:
        return format(self.span.get_span_context().span_id, "016x")

    @property
    def name(self) -> str:
        return getattr(self.span, "name", "")

    def __enter__(self) -> TraceContext:
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is not None and not self.ended:
            with capture_internal_exceptions("trace context exit"):
                self.span.record_exception(exc)
        end_trace(self, TraceState.ERROR if exc is not None else TraceState.SUCCESS)

    def __repr__(self) -> str:
        return f"<TraceContext {self.name!r} trace_id={self.trace_id} ended={self.ended}>"


def current_scope(ctx: Context | None = None) -> Scope | None:
    """The automatic scope (request/task) the caller runs in, if any."""
    return cast("Scope | None", context_api.get_value(_SCOPE_KEY, ctx))


def current_trace(ctx: Context | None = None) -> TraceContext | None:
    """The trace started by ``start_trace`` that the caller runs in, if any."""
    return cast("TraceContext | None", context_api.get_value(_TRACE_KEY, ctx))


def context_with_scope(span: Span, name: str, ctx: Context | None = None) -> Context:
    """A context in which ``span`` is current and opens an automatic scope.

    Used by framework integrations (the Django middleware, the Celery worker
    signals) for their root spans. Traces started inside are children of the
    current span; ``end_trace()`` inside ends only what was started inside.
    """
    ctx = trace_api.set_span_in_context(span, ctx)
    ctx = context_api.set_value(_SCOPE_KEY, Scope(span, name), ctx)
    return context_api.set_value(_TRACE_KEY, None, ctx)


def normalize_end_state(end_state: Any) -> str:
    """Return the end state as its stored string (``Success``/``Error``/``Indeterminate``)."""
    if isinstance(end_state, TraceState):
        return end_state.value
    if isinstance(end_state, StatusCode):  # AgentOps' TraceState values are StatusCodes
        return _FROM_STATUS[end_state]
    text = str(end_state or TraceState.SUCCESS.value)
    if text.lower() == "unset":  # AgentOps' TraceState.UNSET by name
        return TraceState.INDETERMINATE.value
    for state_ in TraceState:
        if text.lower() == state_.value.lower():
            return state_.value
    logger.warning("agentops: unknown end state %r; recorded as Indeterminate", end_state)
    return TraceState.INDETERMINATE.value


def _tags(tags: Any) -> list[str]:
    config = state.config
    result = list(config.default_tags) if config else []
    if isinstance(tags, Mapping):
        result.extend(f"{k}:{v}" for k, v in tags.items())
    elif isinstance(tags, str):
        result.append(tags)
    elif isinstance(tags, Iterable):
        result.extend(str(t) for t in tags)
    return result


def new_trace(
    trace_name: str,
    tags: Any = None,
    *,
    is_init_trace: bool = False,
    kind: str = semconv.SpanKind.SESSION,
) -> TraceContext:
    """Create and register a trace without making it current (see :func:`start_trace`)."""
    trace_name = str(trace_name) if trace_name else "session"
    parent_context = context_api.get_current()
    # The init session belongs to the process, never to the request or task
    # that happened to call init().
    scope = None if is_init_trace else current_scope(parent_context)
    # Inside a request/task: a child of the current span, so the request is one
    # picture. Anywhere else a new root, whatever is current (the init session,
    # another trace, a foreign span): nothing nests by accident.
    # Attributes at start: samplers and on_start processors see the kind.
    attributes: dict[str, Any] = {
        semconv.AGENTOPS_SPAN_KIND: kind,
        semconv.AGENTOPS_TRACE_NAME: trace_name,
    }
    all_tags = _tags(tags)
    if all_tags:
        attributes[semconv.AGENTOPS_TAGS] = all_tags
    span = state.tracer.start_span(
        trace_name, context=parent_context if scope is not None else _ROOT, attributes=attributes
    )
    trace_context = TraceContext(span, None, is_init_trace, parent_context, parent_context, scope)
    ctx = trace_api.set_span_in_context(span, parent_context)
    trace_context.context = context_api.set_value(_TRACE_KEY, trace_context, ctx)
    with state.lock:
        state.active_traces[trace_context.key] = trace_context
    return trace_context


def start_trace(
    trace_name: str = "session",
    tags: Any = None,
    *,
    is_init_trace: bool = False,
    kind: str = semconv.SpanKind.SESSION,
) -> TraceContext:
    """Start a trace and make it the caller's current one.

    Inside a request or task (an automatic scope) the trace is a child of the
    current span; anywhere else it is a new root, whatever is current.

    Args:
        trace_name: The trace's name (the root span's name).
        tags: A list of strings or a dict (stored as ``key:value`` strings).
        is_init_trace: Used by ``init()`` for its automatic session.
        kind: The ``agentops.span.kind`` of the root span (``session``, as AgentOps).

    Returns:
        A :class:`TraceContext`; also a context manager that ends the trace.
        Before ``init()``, a trace whose span records nothing.
    """
    trace_context = new_trace(trace_name, tags, is_init_trace=is_init_trace, kind=kind)
    trace_context.token = context_api.attach(trace_context.context)
    return trace_context


def _restore_context(trace_context: TraceContext) -> None:
    """If ``trace_context`` is the caller's current trace, make its parent current.

    A parent that is itself an ended trace's own context is skipped, so ending
    traces out of order never leaves an ended trace current. (A parent in which
    a span inside that trace is still running is kept: that span's code is
    still on the stack.)

    The parent is attached rather than the start token detached: the trace
    may end in a copy of the context it started in (an asyncio task started
    inside it), where the token is not valid.
    """
    if current_trace() is not trace_context:
        return
    ctx = trace_context.parent_context
    while True:
        previous = current_trace(ctx)
        if previous is None or not previous.ended or trace_api.get_current_span(ctx) is not previous.span:
            break
        ctx = previous.parent_context
    context_api.attach(ctx)


def step_out_of_ended_trace() -> None:
    """If the caller is left in the context of a trace that has ended, go to its parent.

    Wrappers call this after detaching their own context: a trace ended
    inside a decorated call must not stay current once the call returns.
    """
    current = current_trace()
    if current is None or not current.ended or current.pid != os.getpid():
        return  # running, or a parent process's trace this forked child works inside
    if trace_api.get_current_span() is current.span:
        with capture_internal_exceptions("leaving an ended trace"):
            _restore_context(current)


def end_trace(trace_context: TraceContext | None = None, end_state: Any = TraceState.SUCCESS) -> None:
    """End one trace, or every active trace of the caller's scope.

    Args:
        trace_context: The trace to end. ``None`` ends every active trace
            started in the caller's scope: in a plain script all of them; in a
            request or task only those started there.
        end_state: ``Success``, ``Error`` or ``Indeterminate`` (a string or
            :class:`TraceState`); it also sets the span's status.

    A legacy ``Session`` is accepted for ``trace_context``, and
    ``end_trace("Error")`` is read as ``end_trace(None, "Error")``; anything
    else that is not a trace is logged and ignored.
    """
    if not isinstance(trace_context, TraceContext) and trace_context is not None:
        if isinstance(trace_context, str):  # end_trace("Error"), as end_session("Error")
            trace_context, end_state = None, trace_context
        elif isinstance(getattr(trace_context, "trace_context", None), TraceContext):  # a legacy Session
            trace_context = trace_context.trace_context
        else:
            logger.warning("agentops: end_trace() needs a TraceContext, not %r; ignored", trace_context)
            return
    if trace_context is None:
        scope = current_scope()
        with state.lock:
            targets = [t for t in state.active_traces.values() if t.scope is scope]
        for target in sorted(targets, key=lambda t: t.key, reverse=True):
            end_trace(target, end_state)
        return
    if close_trace(trace_context, end_state):
        with capture_internal_exceptions("end_trace context"):
            _restore_context(trace_context)


def close_trace(trace_context: TraceContext, end_state: Any = TraceState.SUCCESS) -> bool:
    """End a trace's span and forget it, leaving the current context alone.

    Returns:
        False if the trace had already ended (ending twice is a no-op).
    """
    with state.lock:
        if trace_context.ended:
            return False
        trace_context.ended = True
        state.active_traces.pop(trace_context.key, None)
        if state.init_trace is trace_context:
            state.init_trace = None
    stored = normalize_end_state(end_state)
    with capture_internal_exceptions("end_trace"):
        span = trace_context.span
        if span.is_recording():
            # Ours (agentops_django reads it) and AgentOps' name, same value.
            span.set_attributes({semconv.AGENTOPS_END_STATE: stored, semconv.AGENTOPS_SESSION_END_STATE: stored})
            code = _STATUS[stored]
            if code is StatusCode.ERROR:
                span.set_status(Status(code, "end state Error"))
            elif code is StatusCode.OK:
                span.set_status(Status(code))
        span.end()
    return True


def close_scope_leftovers(ctx: Context) -> int:
    """End, as Indeterminate, the traces started in ``ctx``'s automatic scope and not ended.

    An integration calls it when its request or task run ends, so a trace
    the user's code started there and forgot is exported and does not stay
    in the registry for the life of the process.

    Returns:
        How many traces were ended.
    """
    scope = current_scope(ctx)
    if scope is None or not state.active_traces:
        return 0
    with state.lock:
        leftovers = [t for t in state.active_traces.values() if t.scope is scope]
    for trace_context in sorted(leftovers, key=lambda t: t.key, reverse=True):
        close_trace(trace_context, TraceState.INDETERMINATE)
    return len(leftovers)


def active_traces() -> list[TraceContext]:
    """Every trace started and not yet ended, oldest first."""
    with state.lock:
        return sorted(state.active_traces.values(), key=lambda t: t.key)


def update_trace_metadata(metadata: Mapping[str, Any], prefix: str = semconv.TRACE_METADATA_PREFIX) -> bool:
    """Set metadata on the caller's own trace, as ``{prefix}.{key}`` attributes.

    Args:
        metadata: Keys and values; values that are not strings, numbers or
            booleans (or lists of them) are stored as JSON.
        prefix: The attributes' prefix (AgentOps' default, ``trace.metadata``).

    Returns:
        True if a trace of the caller's was found and updated.
    """
    target = current_trace()
    span: Span | None = None
    if target is not None and not target.ended:
        span = target.span
    else:
        scope = current_scope()
        if scope is not None:
            span = scope.span
    if span is None or not span.is_recording():
        logger.warning("agentops: update_trace_metadata() outside any trace; ignored")
        return False
    config = state.config
    with capture_internal_exceptions("update_trace_metadata"):
        for key, value in dict(metadata).items():
            if not _is_attribute_value(value):
                value = to_json(
                    value,
                    redact_keys=config.redact_keys if config else frozenset(),
                    max_size=config.max_payload_size if config else 16_384,
                )
            if config and is_secret_key(str(key), config.redact_keys):
                value = "[REDACTED]"
            span.set_attribute(f"{prefix}.{key}", value)
    return True


def _is_attribute_value(value: Any) -> bool:
    if isinstance(value, str | bool | int | float):
        return True
    if isinstance(value, list | tuple) and value:
        first = type(value[0])
        return first in (str, bool, int, float) and all(type(v) is first for v in value)
    return False
