"""All of agentops' process-wide state, in one place, with :func:`reset` for tests.

OpenTelemetry lets a process set its global ``TracerProvider`` only once.
agentops therefore never replaces one: if the application already installed
an SDK provider, agentops adds a single span processor of its own (the
:class:`Dispatcher`) to it; otherwise agentops creates a provider, installs it
as the global one, and adds the dispatcher to that. Everything agentops adds
later (exporters, the Django database writer) hangs off the dispatcher, which
:func:`reset` can empty while the provider itself stays.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from opentelemetry import trace as trace_api
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanLimits, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter

from agentops import semconv
from agentops._batch import BoundedBatchProcessor
from agentops._genai import mark_inside_llm_call
from agentops._guard import capture_internal_exceptions
from agentops._lifecycle import FORK_SDK, on_fork_child

if TYPE_CHECKING:
    from agentops._config import Config
    from agentops._traces import TraceContext

logger = logging.getLogger(__name__)

TRACER_NAME = "agentops"
_DISPATCHER_ATTR = "_agentops_dispatcher"


class Dispatcher(SpanProcessor):
    """The one span processor agentops adds to the provider.

    It forwards to a tuple of processors that is swapped whole (copy on
    write), so the hot path reads it without a lock. Each child runs inside the
    guard: one failing processor costs nothing to the others or to the host.
    """

    def __init__(self) -> None:
        self._processors: tuple[SpanProcessor, ...] = ()
        # Only processors that override on_start: most (exporters, the database
        # writer) do nothing there, and every span pays for each call.
        self._starters: tuple[SpanProcessor, ...] = ()
        self._lock = threading.Lock()
        #: The SDK's own span hooks (agentops._hooks): not exporters, so neither
        #: listed by ``processors`` nor removed by ``clear()``; they run after them.
        self.hooks: tuple[SpanProcessor, ...] = ()

    def _set(self, processors: tuple[SpanProcessor, ...]) -> None:
        self._processors = processors
        self._starters = tuple(
            p for p in processors if getattr(type(p), "on_start", None) is not SpanProcessor.on_start
        )

    @property
    def processors(self) -> tuple[SpanProcessor, ...]:
        return self._processors

    def add(self, processor: SpanProcessor) -> None:
        with self._lock:
            if processor not in self._processors:
                self._set((*self._processors, processor))

    def remove(self, processor: SpanProcessor) -> None:
        with self._lock:
            self._set(tuple(p for p in self._processors if p is not processor))

    def clear(self) -> tuple[SpanProcessor, ...]:
        with self._lock:
            old = self._processors
            self._set(())
        return old

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        # A span inside an LLM call's span is marked, so a call two instrumentations wrap counts once.
        # Plain try/except on this per-span path (entering the guard costs more); errors go to it after.
        try:
            mark_inside_llm_call(span, parent_context)
        except Exception as exc:
            with capture_internal_exceptions("marking spans inside LLM calls"):
                raise exc
        for processor in self._starters:
            with capture_internal_exceptions("span processor on_start"):
                processor.on_start(span, parent_context=parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        for processor in self._processors:
            with capture_internal_exceptions("span processor on_end"):
                processor.on_end(span)
        for hook in self.hooks:
            hook.on_end(span)  # guards itself

    def shutdown(self) -> None:
        for processor in self.clear():
            with capture_internal_exceptions("span processor shutdown"):
                processor.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Flush every processor within one deadline shared by all of them."""
        deadline = time.monotonic() + timeout_millis / 1000
        ok = True
        for processor in self._processors:
            remaining = int((deadline - time.monotonic()) * 1000)
            if remaining <= 0:
                return False
            with capture_internal_exceptions("span processor force_flush"):
                ok = processor.force_flush(remaining) and ok
        return ok


class _State:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.config: Config | None = None
        #: The options given to ``init()`` so far, merged (see ``init()``).
        self.options: dict[str, Any] = {}
        self.provider: TracerProvider | None = None
        self.owns_provider = False
        self.dispatcher = Dispatcher()
        self.tracer: trace_api.Tracer = trace_api.NoOpTracer()
        self.active_traces: dict[int, TraceContext] = {}
        self.init_trace: TraceContext | None = None
        self.memory_exporter: Any = None
        #: The processors made for ``Config.exporters``, in order, with what they were made for.
        self.exporters: list[tuple[Any, SpanProcessor]] = []
        self.pid = os.getpid()


state = _State()


def _after_fork_in_child() -> None:
    """In a forked child, the traces still open belong to the parent.

    The child forgets them (the parent ends and exports them; a child ending
    them too would export each root span once per child), and gets fresh
    locks, since a lock another thread held at fork time is never released.
    """
    state.pid = os.getpid()
    state.lock = threading.RLock()
    state.dispatcher._lock = threading.Lock()
    for trace_context in state.active_traces.values():
        trace_context.ended = True
    state.active_traces.clear()
    state.init_trace = None


on_fork_child(_after_fork_in_child, FORK_SDK)


def is_initialized() -> bool:
    """Whether ``init()`` has run (and ``reset()`` has not run since)."""
    return state.config is not None


def get_tracer() -> trace_api.Tracer:
    """The tracer agentops spans come from (a no-op one before ``init()``)."""
    return state.tracer


def _ensure_provider(config: Config) -> None:
    if state.provider is not None:
        if isinstance(state.tracer, trace_api.NoOpTracer):  # after reset()
            state.tracer = state.provider.get_tracer(TRACER_NAME, _version())
        return
    current = trace_api.get_tracer_provider()
    if isinstance(current, TracerProvider):
        provider = current
        state.owns_provider = False
    else:
        provider = TracerProvider(
            resource=Resource.create(_resource_attributes(config)),
            # Size caps for attributes set by any instrumentation on this provider.
            span_limits=SpanLimits(max_attribute_length=max(config.max_payload_size * 2, 1024)),
        )
        trace_api.set_tracer_provider(provider)
        if trace_api.get_tracer_provider() is not provider:
            logger.warning(
                "agentops: another global TracerProvider is set and cannot be replaced; "
                "agentops spans go to a private provider"
            )
        state.owns_provider = True
    # Marked on the provider, so that it never gets a second dispatcher.
    existing = getattr(provider, _DISPATCHER_ATTR, None)
    if isinstance(existing, Dispatcher):
        state.dispatcher = existing
    else:
        provider.add_span_processor(state.dispatcher)
        setattr(provider, _DISPATCHER_ATTR, state.dispatcher)
    state.provider = provider
    state.tracer = provider.get_tracer(TRACER_NAME, _version())


def _version() -> str:
    from agentops import __version__

    return __version__


def _exporter_processor(exporter: Any) -> SpanProcessor | None:
    if isinstance(exporter, SpanProcessor):
        return exporter
    if exporter == "memory":
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        state.memory_exporter = state.memory_exporter or InMemorySpanExporter()
        return SimpleSpanProcessor(state.memory_exporter)
    if exporter == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return BoundedBatchProcessor(ConsoleSpanExporter(), name="console exporter")
    if exporter == "otlp":
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        except ImportError:
            logger.warning(
                "agentops: the 'otlp' exporter needs the otlp extra (pip install 'agentops-django[otlp]'); not enabled"
            )
            return None
        # Honours the standard OTEL_EXPORTER_OTLP_* variables.
        return BoundedBatchProcessor(OTLPSpanExporter(), name="OTLP exporter")
    if isinstance(exporter, SpanExporter):
        # Not OpenTelemetry's BatchSpanProcessor: see agentops._batch for why.
        return BoundedBatchProcessor(exporter, name=type(exporter).__name__)
    logger.warning("agentops: %r is neither an exporter nor a span processor; ignored", exporter)
    return None


def _same(a: Any, b: Any) -> bool:
    return a is b or (isinstance(a, str) and a == b)


def configure(config: Config) -> None:
    """Install the provider (once) and make the exporters those of ``config``.

    Calling it again with the same exporters changes nothing (no duplicate
    exports); exporters no longer asked for are flushed and removed.
    """
    with state.lock:
        _ensure_provider(config)
        if (
            state.provider is not None
            and config.service_name != semconv.DEFAULT_SERVICE_NAME
            and config.service_name != _service_name(state.provider)
        ):
            logger.info(
                "agentops: service_name %r not applied: the tracer provider already exists", config.service_name
            )
        state.config = config
        kept: list[tuple[Any, SpanProcessor]] = []
        for wanted, processor in state.exporters:
            if any(_same(wanted, exporter) for exporter in config.exporters):
                kept.append((wanted, processor))
            else:
                _drop(wanted, processor)
        for exporter in config.exporters:
            if any(_same(wanted, exporter) for wanted, _ in kept):
                continue
            new = _exporter_processor(exporter)
            if new is not None:
                kept.append((exporter, new))
                state.dispatcher.add(new)
        state.exporters = kept


def _resource_attributes(config: Config) -> dict[str, Any]:
    """The process identity known at start-up: service, host and pid, and what the integration adds.

    (A forked child keeps its parent's provider, so its resource keeps the
    parent's pid; the Django writer stores each span's real process.)
    """
    return {
        semconv.HOST_NAME: socket.gethostname(),
        semconv.PROCESS_PID: os.getpid(),
        **config.resource_attributes,
        semconv.SERVICE_NAME: config.service_name,
    }


def _service_name(provider: TracerProvider) -> Any:
    return provider.resource.attributes.get("service.name")


def _drop(wanted: Any, processor: SpanProcessor) -> None:
    state.dispatcher.remove(processor)
    with capture_internal_exceptions("removing an exporter"):
        if wanted is processor:  # the user's own processor: theirs to shut down
            processor.force_flush(5_000)
        else:
            processor.shutdown()
    if wanted == "memory":
        state.memory_exporter = None


def add_span_processor(processor: SpanProcessor) -> None:
    """Add a span processor that sees every span agentops' provider ends.

    Args:
        processor: Any OpenTelemetry span processor; it runs behind agentops'
            guard, so its errors are logged and counted, never raised.
    """
    state.dispatcher.add(processor)


def remove_span_processor(processor: SpanProcessor) -> None:
    """Stop sending spans to a processor added with :func:`add_span_processor` (it is not shut down)."""
    state.dispatcher.remove(processor)


def span_processors() -> Sequence[SpanProcessor]:
    """The processors agentops' dispatcher forwards to, in order."""
    return state.dispatcher.processors


def flush(timeout_millis: int = 30_000) -> bool:
    """Flush every processor agentops added (exporters, database writer)."""
    return state.dispatcher.force_flush(timeout_millis)


def reset() -> None:
    """Forget configuration, traces and processors (for tests).

    The global provider stays (OpenTelemetry allows setting it once), but
    agentops' processors are shut down and removed from it, integrations are
    uninstrumented, trace sources forgotten, open traces are ended, and the
    caller's OpenTelemetry context is emptied.
    """
    from opentelemetry import context as context_api

    from agentops import integrations

    with state.lock:
        integrations.uninstrument_all()
        for trace_context in list(state.active_traces.values()):
            trace_context.ended = True
            with capture_internal_exceptions("reset"):
                trace_context.span.end()
        state.active_traces.clear()
        state.init_trace = None
        state.dispatcher.shutdown()
        state.exporters = []
        state.memory_exporter = None
        state.config = None
        state.options = {}
        state.tracer = trace_api.NoOpTracer()
    from agentops import _validation

    _validation.forget_sources()  # what integrations registered, they register again at their set-up
    # start_trace() leaves its trace current in the caller's context; a trace
    # left open by one test must not become the parent of the next test's spans.
    context_api.attach(Context())
