"""``init()``: resolve the configuration, install the provider, start the session."""

from __future__ import annotations

import logging
from typing import Any

from agentops import integrations
from agentops._config import resolve
from agentops._guard import capture_internal_exceptions
from agentops._lifecycle import EXIT_END_TRACES, EXIT_FLUSH, install_exit_hook, on_exit
from agentops._state import configure, flush, state
from agentops._traces import TraceContext, end_trace, start_trace
from agentops.semconv import SpanKind, TraceState

logger = logging.getLogger(__name__)


def init(api_key: str | None = None, **options: Any) -> TraceContext | None:
    """Start agentops. Safe to call more than once; never raises for configuration.

    Options are keyword-only; each falls back to its ``AGENTOPS_*`` environment
    variable, then to its default (see :class:`agentops.Config`):
    ``auto_start_session``, ``instrument_llm_calls``, ``default_tags``,
    ``trace_name``, ``service_name``, ``exporters`` (``"console"``,
    ``"memory"``, ``"otlp"`` or exporter/processor objects),
    ``capture_content``, ``max_payload_size``, ``redact_keys``.

    OpenTelemetry allows one global ``TracerProvider`` per process. If the
    application already installed an SDK provider, agentops adds its span
    processor to it (so other instrumentations' spans and agentops' share
    traces); otherwise agentops installs its own provider as the global one.
    Either way, a processor the user adds to the global provider sees every
    agentops span.

    A later ``init()`` keeps the provider and applies the options it is given
    over those given before (an option given as ``None`` counts as not
    given): ``init()`` twice is the same as once, and ``init(exporters=[])``
    removes the exporters an earlier call added. ``service_name`` applies only
    to a provider agentops creates, so only the first call's counts.

    Args:
        api_key: Accepted for compatibility with AgentOps; not needed.
        **options: See above.

    Returns:
        The trace started automatically (``auto_start_session``), else ``None``.
    """
    with capture_internal_exceptions("init"):
        given = {key: value for key, value in {"api_key": api_key, **options}.items() if value is not None}
        with state.lock:
            merged = {**state.options, **given}
            config = resolve(merged)
            state.options = merged
            configure(config)
            if config.instrument_llm_calls:
                integrations.instrument()
            else:
                integrations.uninstrument()
            if config.auto_start_session and state.init_trace is None:
                state.init_trace = start_trace(config.trace_name, tags=None, is_init_trace=True, kind=SpanKind.SESSION)
            # After configure(): the provider's own exit hook exists, and runs after this one.
            install_exit_hook()
        return state.init_trace
    return None


def _end_traces_at_exit() -> None:
    """End the traces still open as Indeterminate (their spans are then flushed)."""
    with capture_internal_exceptions("exit"):
        if state.config is None:
            return
        for trace_context in list(state.active_traces.values()):
            if trace_context.scope is None:
                end_trace(trace_context, TraceState.INDETERMINATE)


def _flush_at_exit() -> None:
    with capture_internal_exceptions("exit flush"):
        if state.config is not None:
            flush(5_000)


on_exit(_end_traces_at_exit, EXIT_END_TRACES)
on_exit(_flush_at_exit, EXIT_FLUSH)


def shutdown(timeout_millis: int = 5_000) -> bool:
    """End the traces still open (as Indeterminate), write what is queued, stop agentops' processors.

    What runs at interpreter exit by itself; call it where a process ends
    without ``atexit`` (``os._exit``), or to stop tracing for good. Spans
    ending afterwards go nowhere until ``init()`` is called again.

    Args:
        timeout_millis: How long flushing may take, in all.

    Returns:
        True if everything queued was written within the deadline.
    """
    ok = False
    with capture_internal_exceptions("shutdown"):
        if state.config is None:
            return True
        for trace_context in list(state.active_traces.values()):
            if trace_context.scope is None:
                end_trace(trace_context, TraceState.INDETERMINATE)
        ok = flush(timeout_millis)
        state.dispatcher.shutdown()
    return ok
