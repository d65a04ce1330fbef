"""``init()`` and ``configure()``: resolve the configuration, install the provider, start the session.

Both take the options :func:`agentops._config.init_options` lists, with their
types: AgentOps 0.4.21's names, then ours. Type checkers see that signature;
at run time an unknown option is a warning (pointing at the caller's line),
never an error, and AgentOps' options that mean nothing here are accepted and
ignored (the list is in ``init_options``' docstring).
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
import warnings
from collections.abc import Callable, Mapping
from typing import Any, ParamSpec, TypeVar, cast

from agentops import _hooks, _instances, integrations
from agentops._config import IGNORED_OPTIONS, Config, init_options, known_options, resolve
from agentops._guard import capture_internal_exceptions
from agentops._lifecycle import EXIT_END_TRACES, EXIT_FLUSH, install_exit_hook, on_exit
from agentops._state import configure as configure_state
from agentops._state import flush, state
from agentops._traces import TraceContext, end_trace, start_trace
from agentops.exceptions import DidNotEnable
from agentops.semconv import SpanKind, TraceState

logger = logging.getLogger(__name__)

_P = ParamSpec("_P")
_R = TypeVar("_R")
#: The exporter made for ``api_key``/``exporter_endpoint``, by what it was made for (the current one only).
_endpoint_exporters: dict[tuple[str | None, ...], Any] = {}
_ignored_reported: set[str] = set()


def _options_typed_as(options: Callable[_P, None]) -> Callable[[Callable[..., _R]], Callable[_P, _R]]:
    """Give the decorated function the parameters of ``options``, for type checkers, ``help()`` and ``inspect``.

    The options are listed and typed once (in :func:`init_options`); the
    function itself keeps ``**options`` so that it can warn about unknown ones.
    """
    signature = inspect.signature(options)

    def apply(func: Callable[..., _R]) -> Callable[_P, _R]:
        returns = inspect.signature(func).return_annotation
        func.__signature__ = signature.replace(return_annotation=returns)  # type: ignore[attr-defined]
        return cast("Callable[_P, _R]", func)

    return apply


def _known(options: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The options given (``None`` is "not given"), minus unknown ones, which are warned about."""
    given: dict[str, Any] = {}
    known = known_options()
    for key, value in options.items():
        if key not in known:
            # stacklevel 3: the line that called init()/configure().
            warnings.warn(f"agentops: unknown {where}() option {key!r} ignored", UserWarning, stacklevel=3)
        elif value is not None:
            given[key] = value
    for key in sorted(set(given) & IGNORED_OPTIONS - _ignored_reported):
        _ignored_reported.add(key)
        logger.info("agentops: %s=%r has no effect in agentops-django (see agentops.init)", key, given[key])
    return given


def _endpoint_exporter(config: Config) -> Any:
    """The exporter ``api_key`` and ``exporter_endpoint`` ask for, or ``None``.

    With an API key: AgentOps' service (:mod:`agentops._service`); with an
    endpoint only: a plain OTLP/HTTP exporter. The one made before is kept
    while it is in use.
    """
    if not config.api_key and not config.exporter_endpoint:
        return None  # nothing is sent anywhere
    key = (config.api_key, config.api_endpoint if config.api_key else None, config.exporter_endpoint)
    exporter = _endpoint_exporters.get(key)
    if exporter is not None and any(wanted is exporter for wanted, _ in state.exporters):
        return exporter
    try:
        if config.api_key:
            from agentops._service import AgentOpsServiceExporter

            exporter = AgentOpsServiceExporter(
                config.api_key, endpoint=config.api_endpoint, exporter_endpoint=config.exporter_endpoint
            )
        else:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporter = OTLPSpanExporter(endpoint=config.exporter_endpoint)
    except (ImportError, DidNotEnable):
        logger.warning(
            "agentops: %s needs the otlp extra (pip install 'agentops-django[otlp]'); not enabled",
            "api_key (sending spans to AgentOps' service)" if config.api_key else "exporter_endpoint",
        )
        return None
    _endpoint_exporters.clear()
    _endpoint_exporters[key] = exporter
    return exporter


def _apply(given: Mapping[str, Any], *, start_session: bool) -> None:
    """Merge ``given`` over the options so far and make them the configuration."""
    with state.lock:
        merged = {**state.options, **given}
        config = resolve(merged)
        state.options = merged
        exporter = _endpoint_exporter(config)
        if exporter is not None:
            config = dataclasses.replace(config, exporters=(*config.exporters, exporter))
        configure_state(config)
        _hooks.install(state.dispatcher)
        if config.log_level is not None:
            logging.getLogger("agentops").setLevel(config.log_level)
        if config.instrument_llm_calls:
            integrations.instrument()
        else:
            integrations.uninstrument()
        if start_session and config.auto_start_session and state.init_trace is None:
            state.init_trace = start_trace(config.trace_name, tags=None, is_init_trace=True, kind=SpanKind.SESSION)
        # After configure(): the provider's own exit hook exists, and runs after this one.
        install_exit_hook()


@_options_typed_as(init_options)
def init(api_key: str | None = None, **options: Any) -> TraceContext | None:
    """Start agentops. Safe to call more than once; never raises for configuration.

    Takes AgentOps' options and ours, keyword-only but for ``api_key`` (see
    :func:`agentops._config.init_options` for each, and for those AgentOps
    has and that have no effect here); each falls back to its ``AGENTOPS_*``
    environment variable, then to its default (see :class:`agentops.Config`).
    ``tags`` is AgentOps' old name of ``default_tags``; ``exporter`` (a
    ``SpanExporter``), ``processor`` (a ``SpanProcessor``) and
    ``exporter_endpoint`` (a URL for an OTLP/HTTP exporter) add to
    ``exporters``. An unknown option is warned about (``UserWarning``) and
    ignored.

    OpenTelemetry allows one global ``TracerProvider`` per process. If the
    application already installed an SDK provider, agentops adds its span
    processor to it (so other instrumentations' spans and agentops' share
    traces); otherwise agentops installs its own provider as the global one.
    Either way, a processor the user adds to the global provider sees every
    agentops span.

    A later ``init()`` (or ``configure()``) keeps the provider and applies
    the options it is given over those given before (an option given as
    ``None`` counts as not given): ``init()`` twice is the same as once, and
    ``init(exporters=[])`` removes the exporters an earlier call added.
    ``service_name`` applies only to a provider agentops creates, so only the
    first call's counts.

    Args:
        api_key: Kept for compatibility with AgentOps; not needed.
        **options: See above.

    Returns:
        The trace started automatically (``auto_start_session``), else
        ``None``. (AgentOps returns a legacy ``Session`` wrapping it; both
        ``end_trace`` and ``end_session`` take this one.)
    """
    given = _known({"api_key": api_key, **options}, "init")
    with capture_internal_exceptions("init"):
        _apply(given, start_session=True)
        return state.init_trace
    return None


@_options_typed_as(init_options)
def configure(api_key: str | None = None, **options: Any) -> None:
    """Change options, as AgentOps' ``configure()``: the same options as :func:`init`.

    Before ``init()`` the options are kept for it; afterwards they apply at
    once, as a later ``init()`` would, except that no session is started.
    Never raises for configuration.

    Args:
        **options: See :func:`init`.
    """
    given = _known({"api_key": api_key, **options}, "configure")
    with capture_internal_exceptions("configure"):
        if state.config is None:
            with state.lock:
                state.options = {**state.options, **given}
            return
        _apply(given, start_session=False)


def current_config() -> Config:
    """The configuration in force, or the one ``init()`` would resolve now."""
    return state.config if state.config is not None else resolve(state.options)


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
        _instances.end_all()
        for trace_context in list(state.active_traces.values()):
            if trace_context.scope is None:
                end_trace(trace_context, TraceState.INDETERMINATE)
        ok = flush(timeout_millis)
        state.dispatcher.shutdown()
    return ok
