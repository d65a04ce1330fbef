"""Automatic scopes: the one lifecycle framework integrations build on.

A request (the Django middleware) or a task run (the Celery worker signals)
opens a :class:`Scope`: a span, and a context in which that span is current
and which owns the traces the user's code starts inside. Failing and closing
it follow one rule everywhere:

* :func:`mark_failed` (also used by the decorators and the LLM integrations):
  status ERROR with ``"Type: message"`` capped at :data:`MAX_STATUS_MESSAGE`
  characters, ``error.type``, and the exception as a span event;
* :meth:`Scope.close`: traces started inside and not ended are ended as
  Indeterminate (so a long-lived process never keeps them), the end state is
  recorded (``agentops.end_state`` and the matching status), the span ends.

The public face is :mod:`agentops.integrations.scope`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry import trace as trace_api
from opentelemetry.context import Context
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode

from agentops import semconv
from agentops._guard import capture_internal_exceptions
from agentops._state import state
from agentops._traces import close_scope_leftovers, context_with_scope, normalize_end_state
from agentops.semconv import TraceState

#: Characters kept of a span's status description.
MAX_STATUS_MESSAGE = 1024
_OK = Status(StatusCode.OK)
_SUCCESS = TraceState.SUCCESS.value
_ERROR = TraceState.ERROR.value


def mark_failed(
    span: Span,
    exc: BaseException | None = None,
    *,
    error_type: str | None = None,
    traceback: str | None = None,
) -> None:
    """Mark ``span`` failed: ERROR status, ``error.type`` and the exception event.

    Args:
        span: The span (nothing happens if it is not recording).
        exc: The exception, if there is one (an HTTP 500 without one has none).
        error_type: ``error.type`` when there is no exception (e.g. ``"500"``);
            by default the exception's qualified class name.
        traceback: A formatted traceback to keep instead of the one OpenTelemetry
            formats from ``exc`` (Celery hands over its own).
    """
    if not span.is_recording():
        return
    description = None
    if exc is not None:
        attributes = {semconv.EXCEPTION_STACKTRACE: traceback} if traceback else None
        try:
            span.record_exception(exc, attributes=attributes, escaped=True)
            description = f"{type(exc).__name__}: {exc}"[:MAX_STATUS_MESSAGE]
        except Exception:  # a user's exception whose str() fails
            span.add_event("exception", {"exception.type": type(exc).__qualname__, **(attributes or {})})
            description = type(exc).__name__
    span.set_attribute(semconv.ERROR_TYPE, error_type or (type(exc).__qualname__ if exc is not None else "error"))
    span.set_status(Status(StatusCode.ERROR, description))


class Scope:
    """A request's or task run's span, and the context in which it is current.

    Attributes:
        span: The scope's span.
        context: Attach it while the request or task runs (the caller owns
            attaching and detaching: its thread or task does the work).
        failed: Whether :meth:`fail` was called.
    """

    __slots__ = ("closed", "context", "failed", "span")

    def __init__(self, span: Span, context: Context) -> None:
        self.span = span
        self.context = context
        self.failed = False
        self.closed = False

    def fail(
        self, exc: BaseException | None = None, *, error_type: str | None = None, traceback: str | None = None
    ) -> None:
        """Mark the scope's span failed (see :func:`mark_failed`); it stays open."""
        self.failed = True
        mark_failed(self.span, exc, error_type=error_type, traceback=traceback)

    def close(self, end_state: Any = None, attributes: Mapping[str, Any] | None = None) -> bool:
        """End what was left open inside, record the end state and the last attributes, end the span.

        Args:
            end_state: A :class:`~agentops.semconv.TraceState` (or its name),
                or ``None`` to record none. Success sets status OK unless the
                scope failed; Error sets status ERROR if :meth:`fail` did not.
            attributes: Attributes set in the same call (cheaper than one by one).

        Returns:
            False if it was closed already (closing twice is a no-op).
        """
        if self.closed:
            return False
        self.closed = True
        span = self.span
        # Once per request or task: plain try/except (cheaper than entering the
        # guard), the error handed to the guard after the fact.
        try:
            if state.active_traces:
                close_scope_leftovers(self.context)
            if span.is_recording():
                final = dict(attributes) if attributes else {}
                if end_state is not None:
                    stored = end_state.value if isinstance(end_state, TraceState) else normalize_end_state(end_state)
                    final[semconv.AGENTOPS_END_STATE] = stored
                    final[semconv.AGENTOPS_SESSION_END_STATE] = stored  # AgentOps' name
                    if stored == _SUCCESS and not self.failed:
                        span.set_status(_OK)
                    elif stored == _ERROR and not self.failed:
                        span.set_status(Status(StatusCode.ERROR))
                if final:
                    span.set_attributes(final)
        except Exception as exc:
            with capture_internal_exceptions("closing a scope"):
                raise exc
        finally:
            span.end()
        return True


def open_scope(
    name: str,
    *,
    parent: Context | None = None,
    base: Context | None = None,
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: Mapping[str, Any] | None = None,
    links: Sequence[Link] | None = None,
) -> Scope:
    """Start a span and the automatic scope it opens.

    Args:
        name: The span's name (also the scope's).
        parent: The context whose current span is the parent (an empty
            ``Context()`` makes a root; ``None``, the caller's current context).
        base: The context the scope's context is built on (other values the
            caller keeps); the parent's by default.
        kind: The OpenTelemetry span kind (SERVER for a request, CONSUMER for a task).
        attributes: Attributes given at start (samplers and ``on_start`` see them).
        links: Links to other spans (e.g. the caller of a task that starts a new trace).

    Returns:
        The :class:`Scope`; attach ``scope.context`` for the work inside.
    """
    span = state.tracer.start_span(name, context=parent, kind=kind, attributes=attributes, links=links)
    return Scope(span, context_with_scope(span, name, parent if base is None else base))


def non_recording_scope(span_context: trace_api.SpanContext, base: Context | None = None) -> Scope:
    """A scope around a span that records nothing (a request not sampled): everything inside is dropped too."""
    span = trace_api.NonRecordingSpan(span_context)
    return Scope(span, context_with_scope(span, "", base))
