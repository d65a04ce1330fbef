"""The legacy session API (``start_session``/``end_session``), on top of traces.

The "current session" is the caller's current trace (per thread and asyncio
task), falling back, outside requests and tasks, to the session ``init()``
started; it is never a single process-wide variable.
"""

from __future__ import annotations

import logging
from typing import Any

from agentops import semconv
from agentops._events import record_event
from agentops._guard import capture_internal_exceptions
from agentops._state import flush, state
from agentops._traces import TraceContext, current_scope, current_trace, end_trace, start_trace
from agentops.semconv import SpanKind, TraceState

logger = logging.getLogger(__name__)


class Session:
    """A legacy session: a thin handle on a trace.

    Attributes:
        trace_context: The underlying :class:`~agentops.TraceContext`.
    """

    def __init__(self, trace_context: TraceContext) -> None:
        self.trace_context = trace_context

    @property
    def span(self) -> Any:
        return self.trace_context.span

    @property
    def token(self) -> object | None:
        return self.trace_context.token

    @property
    def trace_id(self) -> str:
        return self.trace_context.trace_id

    @property
    def session_id(self) -> str:
        """The old name of :attr:`trace_id`."""
        return self.trace_context.trace_id

    @property
    def is_running(self) -> bool:
        """False once the session has ended."""
        return not self.trace_context.ended

    def end_session(self, end_state: Any = TraceState.SUCCESS, **kwargs: Any) -> None:
        """End this session; ``end_state_reason`` and other keywords are recorded."""
        _end(self.trace_context, end_state, kwargs)

    def create_agent(self, name: str | None = None, agent_id: str | None = None, **kwargs: Any) -> None:
        """Kept for integrations written against old AgentOps; records nothing."""

    def record(self, event: Any = None) -> None:
        """Record a legacy event (``ActionEvent``...) as a span of this session (see :func:`agentops.record`)."""
        if event is None or self.trace_context.ended:
            return
        with capture_internal_exceptions("Session.record"):
            record_event(event, parent=self.trace_context.span)

    def __repr__(self) -> str:
        return f"<Session trace_id={self.trace_id} running={self.is_running}>"


def _end(trace_context: TraceContext, end_state: Any, extra: dict[str, Any]) -> None:
    with capture_internal_exceptions("end_session"):
        span = trace_context.span
        if span.is_recording():
            for key, value in extra.items():
                # Ours, and AgentOps' name for the same (agentops.legacy.end_state_reason).
                span.set_attribute(f"{semconv.AGENTOPS_STATUS_PREFIX}{key}", str(value))
                span.set_attribute(f"{semconv.AGENTOPS_LEGACY_PREFIX}{key}", str(value))
    end_trace(trace_context, end_state)
    if current_scope() is None:
        # A script may exit right after end_session(); inside a request or
        # task the framework integration flushes, and the caller must not wait.
        flush(5_000)


def start_session(tags: Any = None) -> Session:
    """Start a session (a trace named ``session``). Deprecated: use ``start_trace``.

    Args:
        tags: A list of strings or a dict of tags.

    Returns:
        A :class:`Session`; pass it to :func:`end_session`.
    """
    if state.config is None:
        from agentops import init

        init(auto_start_session=False)
    return Session(start_trace("session", tags=tags, kind=SpanKind.SESSION))


def _current_session() -> TraceContext | None:
    """The caller's trace; in a plain script, else the session ``init()`` started.

    Inside a request or task there is no fallback: the init session belongs
    to the process, not to one request.
    """
    current = current_trace()
    if current is not None and not current.ended:
        return current
    if current_scope() is not None:
        return None
    return state.init_trace


def end_session(session_or_status: Any = None, **kwargs: Any) -> None:
    """End a session. Deprecated: use ``end_trace``.

    Four call shapes are accepted:

    * ``end_session(session)``: end that session;
    * ``end_session("Success")``: end the caller's current session with that state;
    * ``end_session(end_state="Success", end_state_reason="...")``: likewise, with a reason;
    * ``end_session()``: end the caller's current session as ``Success``.
    """
    if state.config is None:
        logger.debug("agentops: end_session() before init(); ignored")
        return
    end_state = kwargs.pop("end_state", TraceState.SUCCESS)
    if isinstance(session_or_status, Session):
        _end(session_or_status.trace_context, end_state, kwargs)
        return
    if isinstance(session_or_status, TraceContext):
        _end(session_or_status, end_state, kwargs)
        return
    if isinstance(session_or_status, str | TraceState):
        end_state = session_or_status
    target = _current_session()
    if target is None:
        logger.debug("agentops: end_session() with no session running; ignored")
        return
    _end(target, end_state, kwargs)


def end_all_sessions(end_state: Any = TraceState.SUCCESS) -> None:
    """End every active session and trace of the caller's scope."""
    end_trace(None, end_state)
    if current_scope() is None:
        flush(5_000)


__all__ = ["Session", "end_all_sessions", "end_session", "start_session"]
