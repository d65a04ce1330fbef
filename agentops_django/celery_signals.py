"""Celery tracing: every task runs in a span that continues its caller's trace.

Across the broker the trace travels once, in the message headers:

* Publishing (``before_task_publish``/``after_task_publish``): a producer span
  ``"publish {task}"`` (OpenTelemetry kind PRODUCER, ``agentops.span.kind`` =
  ``publish``) is opened as a child of the caller's current span, and its W3C
  ``traceparent``/``tracestate`` are written into the message headers, both at
  the top level and in the nested ``headers`` dict (Celery versions differ in
  where custom headers surface on ``task.request``). The publish time goes in
  the ``agentops_published_at`` header so the worker can tell how long the
  message waited. A publish with no caller (beat, a shell without a trace, a
  cron job) makes no producer span: its task starts a trace of its own. A
  producer span whose publish raised (no ``after_task_publish``) is ended as
  an error by the thread's next publish, by any publish once it is
  ``PENDING_PUBLISH_TIMEOUT`` old, or when a worker child exits.
* Running (``task_prerun``/``task_postrun``/``task_failure``/``task_retry``):
  the task runs in a consumer span (kind CONSUMER, ``agentops.span.kind`` =
  ``celery.task``, named after the task) that continues the trace found in the
  headers, opened as an automatic scope (``start_trace`` inside a task makes a
  child, not a new root). A retry is one span per attempt, all in one trace.
  With ``task_always_eager`` (no message, no publish signals) the task span is
  a child of the caller's current span. The ``CELERY_*`` constants below name
  its attributes (ids, attempt, state, queue wait, and, with content capture,
  arguments and result as redacted, size-capped JSON).

Huge fan-out. A task published thousands of times from one request makes a
trace nobody can read. Two ways out start a *new trace* for the task, linked
to its caller (an OpenTelemetry span link) instead of being its child:

* per call: ``my_task.apply_async(args, headers={"agentops_new_trace": True})``;
* per task: ``@app.task(agentops_new_trace=True)`` (any task attribute of
  that name that is true).

Retries of such a task stay in the trace their first attempt started.

The handlers never raise into Celery (each runs inside agentops' guard), never
rely on the signals coming in pairs (a task's span is found by task id and
attempt; a leftover from a task whose ``task_postrun`` never came is ended when
the same thread starts its next task) and do no I/O: spans go to the span
processors, which batch. Prefork children re-run the process set-up in
``worker_process_init`` and flush in ``worker_process_shutdown``.

Call :func:`connect` once per process (``agentops_django`` does it at
``ready()`` when Celery is installed).
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from celery import signals
from celery.app.task import Context as _CeleryContext
from opentelemetry import context as context_api
from opentelemetry import trace as trace_api
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace import Link, Span, Status, StatusCode
from opentelemetry.trace import SpanKind as OTelSpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from agentops import semconv
from agentops.integrations import lifecycle
from agentops.integrations import scope as integration
from agentops.integrations.scope import Scope, capture_internal_exceptions
from agentops.semconv import AGENTOPS_LINK_TYPE as LINK_TYPE
from agentops.semconv import (
    CELERY_NEW_TRACE,
    CELERY_QUEUE_WAIT_MS,
    CELERY_RETRY_EVENT,
    CELERY_RETRY_REASON,
    CELERY_TASK_ARGS,
    CELERY_TASK_EAGER,
    CELERY_TASK_GROUP,
    CELERY_TASK_ID,
    CELERY_TASK_KWARGS,
    CELERY_TASK_NAME,
    CELERY_TASK_PARENT_ID,
    CELERY_TASK_RESULT,
    CELERY_TASK_RETRIES,
    CELERY_TASK_ROOT_ID,
    CELERY_TASK_STATE,
    SpanKind,
    TraceState,
)
from agentops_django.conf import get_config

logger = logging.getLogger(__name__)

# --- message headers ------------------------------------------------------------
#: Header (per call) asking for a new trace linked to the caller.
HEADER_NEW_TRACE = "agentops_new_trace"
#: Header with the publish time, in seconds since the epoch.
HEADER_PUBLISHED_AT = "agentops_published_at"
#: Task attribute (per task, ``@app.task(agentops_new_trace=True)``) asking for a new trace.
TASK_OPTION_NEW_TRACE = "agentops_new_trace"

#: A producer span whose ``after_task_publish`` never came (the publish raised)
#: is ended after this many seconds.
PENDING_PUBLISH_TIMEOUT = 60.0
#: At most this many producer spans wait for ``after_task_publish``.
MAX_PENDING_PUBLISHES = 10_000
#: Seconds a prefork child may spend flushing spans before it exits.
SHUTDOWN_FLUSH_TIMEOUT = 5.0

_propagator = TraceContextTextMapPropagator()
# The keys Celery keeps for itself; the others are the custom headers that
# ``task.request.headers`` holds (see ``celery.app.task.Context``).
_CELERY_KEYS = frozenset({*_CeleryContext.__dict__, "lang", "task", "argsrepr", "kwargsrepr", "compression", "headers"})


def _enabled() -> bool:
    """``AGENTOPS["ENABLED"]`` now (a test may turn it off after start-up)."""
    return get_config().enabled


class _Run:
    """A task span in progress: one attempt of one task in one thread."""

    __slots__ = ("context", "eager", "end_state", "failed", "key", "scope", "span", "state", "thread", "token")

    def __init__(self, key: tuple[str, int], scope: Scope, token: object, eager: bool) -> None:
        self.key = key
        self.scope = scope
        self.span = scope.span
        self.context = scope.context
        self.token = token
        self.end_state: TraceState | None = None
        self.eager = eager
        self.thread = threading.get_ident()
        self.failed = False
        self.state: str | None = None


class _Registry:
    """Open task spans and producer spans, shared by the threads of a process."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        #: Every open run of the process, by ``id(run)`` (a redelivered message
        #: may run twice at once with the same task id and attempt).
        self.runs: dict[int, _Run] = {}
        self.pending: dict[tuple[str, int], tuple[Span, float]] = {}
        self.next_sweep = 0.0
        self.local = threading.local()

    def stack(self) -> list[_Run]:
        """The runs of the calling thread, innermost last (eager runs nest)."""
        try:
            return self.local.stack  # type: ignore[no-any-return]
        except AttributeError:
            self.local.stack = []
            return self.local.stack  # type: ignore[no-any-return]


_registry = _Registry()


def _after_fork_in_child() -> None:
    # A lock held by another thread at fork time stays held in the child forever.
    _registry.lock = threading.Lock()
    _registry.local = threading.local()


lifecycle.on_fork_child(_after_fork_in_child, lifecycle.FORK_INTEGRATIONS)


# --- reading headers --------------------------------------------------------------
def _coerce(value: Any) -> list[str] | None:
    """A header value as the list of strings the propagator expects."""
    if value is None:
        return None
    if isinstance(value, bytes | bytearray):
        return [bytes(value).decode("utf-8", "replace")]
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple):
        out = [s for s in (_coerce(item) for item in value) if s]
        return [item for sub in out for item in sub] or None
    return [str(value)]


def _header(request: Any, key: str) -> Any:
    """A custom header of ``task.request``: nested ``headers`` first, then top level."""
    nested = getattr(request, "headers", None)
    if isinstance(nested, Mapping):
        value = nested.get(key)
        if value is not None:
            return value
    return getattr(request, key, None)


class _RequestGetter(Getter[Any]):
    def get(self, carrier: Any, key: str) -> list[str] | None:
        return _coerce(_header(carrier, key))

    def keys(self, carrier: Any) -> list[str]:
        return []


_getter = _RequestGetter()


def _publishes_new_trace(name: str, headers: Mapping[str, Any], nested: Any) -> bool:
    """Whether the published task will start a new trace (per-call header or per-task option)."""
    if _truthy(headers.get(HEADER_NEW_TRACE)):
        return True
    if isinstance(nested, Mapping) and _truthy(nested.get(HEADER_NEW_TRACE)):
        return True
    from celery import current_app

    # The registry as it is (reading app.tasks would finalize the app from inside a publish).
    task = getattr(current_app, "_tasks", {}).get(name)
    return bool(getattr(task, TASK_OPTION_NEW_TRACE, False))


def _truthy(value: Any) -> bool:
    if isinstance(value, bytes | bytearray):
        value = bytes(value).decode("utf-8", "replace")
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes", "on"}
    return bool(value)


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _epoch(value: Any) -> float | None:
    """Seconds since the epoch of a header that may be a float, a string or a datetime."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, bytes | bytearray):
        value = bytes(value).decode("utf-8", "replace")
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return datetime.fromisoformat(value).timestamp()
    return float(value)


def _queue_wait_ms(request: Any, started: float) -> float | None:
    published = _epoch(_header(request, HEADER_PUBLISHED_AT))
    if published is None:
        return None
    try:
        eta = _epoch(getattr(request, "eta", None))
    except (TypeError, ValueError, OverflowError):
        eta = None
    due = max(published, eta) if eta is not None else published
    return max(0.0, (started - due) * 1000.0)


# --- publishing -------------------------------------------------------------------
def _on_before_task_publish(
    sender: Any = None,
    body: Any = None,
    exchange: Any = None,
    routing_key: Any = None,
    headers: dict[str, Any] | None = None,
    **_: Any,
) -> None:
    with capture_internal_exceptions("celery before_task_publish"):
        if headers is None or not _enabled():
            return
        _sweep_pending(time.monotonic())
        task_id = headers.get("id")
        if task_id is None and isinstance(body, Mapping):  # message protocol 1
            task_id = body.get("id")
        nested = headers.get("headers")
        carrier: dict[str, Any] = {}
        parent = context_api.get_current()
        if trace_api.get_current_span(parent).get_span_context().is_valid:
            name = str(sender or headers.get("task") or "")
            span = integration.tracer().start_span(f"publish {name}", context=parent, kind=OTelSpanKind.PRODUCER)
            if span.is_recording():
                attributes: dict[str, Any] = {
                    semconv.AGENTOPS_SPAN_KIND: SpanKind.PUBLISH,
                    semconv.MESSAGING_SYSTEM: "celery",
                    semconv.MESSAGING_OPERATION_TYPE: "send",
                    CELERY_TASK_NAME: name,
                }
                destination = routing_key or getattr(exchange, "name", exchange)
                if destination:
                    attributes[semconv.MESSAGING_DESTINATION_NAME] = str(destination)
                if task_id:
                    attributes[semconv.MESSAGING_MESSAGE_ID] = str(task_id)
                    attributes[CELERY_TASK_ID] = str(task_id)
                if _publishes_new_trace(name, headers, nested):
                    # Its task runs in another trace: the admin must not wait for it here.
                    attributes[CELERY_NEW_TRACE] = True
                span.set_attributes(attributes)
            _propagator.inject(carrier, context=trace_api.set_span_in_context(span, parent))
            key = (str(task_id), _int(headers.get("retries")))
            # A publish runs from before_ to after_task_publish in one thread: a
            # span this thread still has pending is one whose publish raised.
            failed = getattr(_registry.local, "publishing", None)
            with _registry.lock:
                previous = [_registry.pending.pop(k, None) for k in {key, failed} if k is not None]
                _registry.pending[key] = (span, time.monotonic())
            _registry.local.publishing = key
            _end_unpublished(entry[0] for entry in previous if entry is not None)
        else:
            # No caller: make sure no stale context from a copied message survives.
            for name in ("traceparent", "tracestate"):
                headers.pop(name, None)
                if isinstance(nested, dict):
                    nested.pop(name, None)
        carrier[HEADER_PUBLISHED_AT] = time.time()
        headers.update(carrier)
        if isinstance(nested, dict):
            nested.update(carrier)
        elif nested is None:
            # What Celery itself would compute as ``task.request.headers``
            # (the custom headers), so that a retry keeps them all.
            headers["headers"] = {k: v for k, v in headers.items() if k not in _CELERY_KEYS}


def _on_after_task_publish(headers: dict[str, Any] | None = None, body: Any = None, **_: Any) -> None:
    with capture_internal_exceptions("celery after_task_publish"):
        if not headers:
            return
        task_id = headers.get("id")
        if task_id is None and isinstance(body, Mapping):
            task_id = body.get("id")
        key = (str(task_id), _int(headers.get("retries")))
        with _registry.lock:
            entry = _registry.pending.pop(key, None)
        if getattr(_registry.local, "publishing", None) == key:
            _registry.local.publishing = None
        if entry is not None:
            entry[0].end()


def _sweep_pending(now: float, *, everything: bool = False) -> None:
    """End producer spans whose ``after_task_publish`` never came (the publish raised)."""
    if not everything and now < _registry.next_sweep and len(_registry.pending) < MAX_PENDING_PUBLISHES:
        return
    with _registry.lock:
        _registry.next_sweep = now + 10.0
        stale = [
            key
            for key, (_span, started) in _registry.pending.items()
            if everything or now - started > PENDING_PUBLISH_TIMEOUT
        ]
        if not stale and len(_registry.pending) >= MAX_PENDING_PUBLISHES:
            stale = list(_registry.pending)[: len(_registry.pending) // 2]
        spans = [_registry.pending.pop(key)[0] for key in stale]
    _end_unpublished(spans)


def _end_unpublished(spans: Iterable[Span]) -> None:
    for span in spans:
        with capture_internal_exceptions("celery unpublished span"):
            if span.is_recording():
                span.set_status(Status(StatusCode.ERROR, "the message was not confirmed as published"))
            span.end()


# --- running --------------------------------------------------------------------
def _on_task_prerun(task_id: Any = None, task: Any = None, args: Any = None, kwargs: Any = None, **_: Any) -> None:
    with capture_internal_exceptions("celery task_prerun"):
        if task is None:
            return
        _start_run(task, task_id, args, kwargs)


def _start_run(task: Any, task_id: Any, args: Any, kwargs: Any) -> None:
    if not _enabled():
        return
    started = time.time()
    request = task.request
    eager = bool(getattr(request, "is_eager", False))
    retries = _int(getattr(request, "retries", 0))
    key = (str(task_id or getattr(request, "id", "")), retries)
    stack = _registry.stack()
    if not eager:
        # A worker thread runs one task at a time: anything still open here is
        # a leftover whose task_postrun never came. It must not become the
        # parent of this task, nor stay open.
        while stack:
            _finish(stack[-1], leftover=True)
    name = str(getattr(task, "name", None) or getattr(request, "task", None) or "celery.task")
    if eager:
        base = context_api.get_current()
        caller = trace_api.get_current_span(base).get_span_context()
        parent = base
    else:
        base = Context()
        parent = _propagator.extract(request, context=Context(), getter=_getter)
        caller = trace_api.get_current_span(parent).get_span_context()
    links: list[Link] = []
    wants_new_trace = _truthy(_header(request, HEADER_NEW_TRACE)) or bool(getattr(task, TASK_OPTION_NEW_TRACE, False))
    # A retry's message keeps the caller's custom headers (the fan-out one
    # included): only the first attempt starts the new trace, the others join it.
    if wants_new_trace and retries == 0:
        if caller.is_valid:
            links.append(Link(caller, {LINK_TYPE: "caller"}))
        parent = Context()
    elif not eager and not caller.is_valid:
        parent = Context()  # no caller (or a malformed header): a trace of its own

    attributes = None
    if integration.is_active():  # before init() the tracer records nothing
        with capture_internal_exceptions("celery task attributes"):
            attributes = _run_attributes(task, request, name, key, eager, started, args, kwargs)
    # Attributes given at the start are validated in one pass: cheaper than set later.
    opened = integration.open_scope(
        name, parent=parent, base=base, kind=OTelSpanKind.CONSUMER, attributes=attributes, links=links
    )
    run = _Run(key, opened, context_api.attach(opened.context), eager)
    stack.append(run)
    _registry.runs[id(run)] = run  # one dict operation: atomic, no lock needed


def _run_attributes(
    task: Any,
    request: Any,
    name: str,
    key: tuple[str, int],
    eager: bool,
    started: float,
    args: Any,
    kwargs: Any,
) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        semconv.AGENTOPS_SPAN_KIND: SpanKind.CELERY_TASK,
        semconv.MESSAGING_SYSTEM: "celery",
        CELERY_TASK_ID: key[0],
        CELERY_TASK_NAME: name,
        CELERY_TASK_RETRIES: key[1],
    }
    for attribute, field in (
        (CELERY_TASK_ROOT_ID, "root_id"),
        (CELERY_TASK_PARENT_ID, "parent_id"),
        (CELERY_TASK_GROUP, "group"),
    ):
        value = getattr(request, field, None)
        if value:
            attributes[attribute] = str(value)
    if eager:
        attributes[CELERY_TASK_EAGER] = True
    else:
        delivery = getattr(request, "delivery_info", None) or {}
        queue = delivery.get("routing_key") or delivery.get("exchange")
        if queue:
            attributes[semconv.MESSAGING_DESTINATION_NAME] = str(queue)
        try:
            wait = _queue_wait_ms(request, started)
        except (TypeError, ValueError, OverflowError):
            wait = None
        if wait is not None:
            attributes[CELERY_QUEUE_WAIT_MS] = wait
    if integration.capture_content():
        attributes[CELERY_TASK_ARGS] = integration.serialize(list(args or ()))
        if kwargs:
            attributes[CELERY_TASK_KWARGS] = integration.serialize(dict(kwargs))
    return attributes


def _find_run(task: Any, task_id: Any) -> _Run | None:
    """The open run of this task's current attempt (or, failing that, of the task id).

    Celery sends a task's signals from the thread that runs it, so the
    thread's own runs are searched first; the process-wide ones only after.
    """
    request = getattr(task, "request", None)
    key = (str(task_id if task_id is not None else getattr(request, "id", "")), _int(getattr(request, "retries", 0)))
    stack = _registry.stack()
    for candidate in reversed(stack):
        if candidate.key == key:
            return candidate
    others = [run for run in list(_registry.runs.values()) if run.key == key]
    if others:
        return others[-1]
    for candidate in reversed(stack):
        if candidate.key[0] == key[0]:
            return candidate
    return None


def _on_task_failure(
    sender: Any = None, task_id: Any = None, exception: BaseException | None = None, einfo: Any = None, **_: Any
) -> None:
    with capture_internal_exceptions("celery task_failure"):
        run = _find_run(sender, task_id)
        if run is None or exception is None:
            return
        run.failed = True
        run.state = "FAILURE"
        _record_error(run, exception, getattr(einfo, "traceback", None))


def _record_error(run: _Run, exception: BaseException, traceback_text: str | None) -> None:
    run.scope.fail(exception, traceback=traceback_text)
    run.end_state = TraceState.ERROR


def _on_task_retry(sender: Any = None, request: Any = None, reason: Any = None, **_: Any) -> None:
    with capture_internal_exceptions("celery task_retry"):
        run = _find_run(sender, getattr(request, "id", None))
        if run is None:
            return
        run.state = "RETRY"
        if run.span.is_recording():
            attributes: dict[str, Any] = {CELERY_RETRY_REASON: str(reason)}
            cause = getattr(reason, "exc", None)
            if isinstance(cause, BaseException):
                attributes["exception.type"] = type(cause).__qualname__
                attributes["exception.message"] = str(cause)
            when = getattr(reason, "when", None)
            if when is not None:
                attributes["celery.retry.when"] = str(when)
            run.span.add_event(CELERY_RETRY_EVENT, attributes)


def _on_task_postrun(task_id: Any = None, task: Any = None, retval: Any = None, state: Any = None, **_: Any) -> None:
    with capture_internal_exceptions("celery task_postrun"):
        run = _find_run(task, task_id)
        if run is None:
            return
        with capture_internal_exceptions("celery task_postrun outcome"):
            _record_outcome(run, retval, state)
        _finish(run)


def _record_outcome(run: _Run, retval: Any, task_state: Any) -> None:
    span = run.span
    if not span.is_recording():
        return
    if task_state is None and not run.failed:
        # No state: an exception escapes the task (an eager task that
        # propagates, or a BaseException); task_failure was not sent.
        exception = sys.exc_info()[1]
        if exception is not None:
            run.failed = True
            run.state = "FAILURE"
            _record_error(run, exception, None)
    outcome = str(task_state) if task_state is not None else run.state
    if outcome:
        span.set_attribute(CELERY_TASK_STATE, outcome)
    if run.failed:
        return
    if outcome == "SUCCESS":
        run.end_state = TraceState.SUCCESS
        if integration.capture_content():
            span.set_attribute(CELERY_TASK_RESULT, integration.serialize(retval))
    elif outcome == "FAILURE" and isinstance(retval, BaseException):
        run.failed = True
        _record_error(run, retval, None)


def _finish(run: _Run, *, leftover: bool = False) -> None:
    """End a run's span and take its context off the thread, whatever else fails."""
    try:
        _end_span(run, leftover)
    finally:
        ended = [run]
        if run.thread == threading.get_ident():
            stack = _registry.stack()
            if run in stack:
                # Inner runs left open by a missing postrun go with it.
                while stack:
                    inner = stack.pop()
                    if inner is run:
                        break
                    ended.append(inner)
                    _end_span(inner, leftover=True)
            current = context_api.get_current()
            if any(current is r.context for r in ended):
                # Resetting the outer token restores what was current before
                # the run, whatever the inner runs attached since.
                context_api.detach(run.token)  # type: ignore[arg-type]
        for r in ended:
            _registry.runs.pop(id(r), None)


def _end_span(run: _Run, leftover: bool) -> None:
    with capture_internal_exceptions("celery task end"):
        # Closing the scope also ends the traces the task started and did not
        # end (as for a view), or a long-lived worker would keep them.
        if leftover:
            run.scope.close(TraceState.INDETERMINATE, {CELERY_TASK_STATE: run.state or "LOST"})
        else:
            run.scope.close(run.end_state)


# --- worker processes -------------------------------------------------------------
def _on_worker_process_init(**_: Any) -> None:
    with capture_internal_exceptions("celery worker_process_init"):
        from django.conf import settings

        if not settings.configured:
            return  # not a Django worker: nothing of ours to set up
        from agentops_django.setup import setup

        setup()


def _on_worker_process_shutdown(**_: Any) -> None:
    with capture_internal_exceptions("celery worker_process_shutdown"):
        close_open_spans()
        from agentops import flush

        flush(int(SHUTDOWN_FLUSH_TIMEOUT * 1000))


def close_open_spans() -> None:
    """End every producer and task span still open in this process (before it exits)."""
    _sweep_pending(time.monotonic(), everything=True)
    for run in list(_registry.runs.values()):
        _finish(run, leftover=True)


_HANDLERS: tuple[tuple[Any, Any], ...] = (
    (signals.before_task_publish, _on_before_task_publish),
    (signals.after_task_publish, _on_after_task_publish),
    (signals.task_prerun, _on_task_prerun),
    (signals.task_retry, _on_task_retry),
    (signals.task_failure, _on_task_failure),
    (signals.task_postrun, _on_task_postrun),
    (signals.worker_process_init, _on_worker_process_init),
    (signals.worker_process_shutdown, _on_worker_process_shutdown),
)


def _uid(handler: Any) -> str:
    return f"agentops_django.celery_signals.{handler.__name__}"


def connect() -> None:
    """Connect the handlers to Celery's signals; calling it again does nothing."""
    for signal, handler in _HANDLERS:
        signal.connect(handler, weak=False, dispatch_uid=_uid(handler))
    # Before the SDK's exit flush, so what it ends is still written.
    lifecycle.on_exit(_close_at_exit, lifecycle.EXIT_CLOSE_OPEN_SPANS)


def _close_at_exit() -> None:
    with capture_internal_exceptions("celery exit"):
        close_open_spans()


def disconnect() -> None:
    """Disconnect the handlers (for tests), ending what they left open."""
    for signal, handler in _HANDLERS:
        signal.disconnect(handler, dispatch_uid=_uid(handler))
    close_open_spans()


def is_connected() -> bool:
    """True if :func:`connect` has wired the handlers in this process."""
    return any(key[0] == _uid(_on_task_prerun) for key, *_ in signals.task_prerun.receivers)


__all__: list[str] = [
    "CELERY_NEW_TRACE",
    "CELERY_QUEUE_WAIT_MS",
    "CELERY_TASK_ARGS",
    "CELERY_TASK_EAGER",
    "CELERY_TASK_GROUP",
    "CELERY_TASK_ID",
    "CELERY_TASK_KWARGS",
    "CELERY_TASK_NAME",
    "CELERY_TASK_PARENT_ID",
    "CELERY_TASK_RESULT",
    "CELERY_TASK_RETRIES",
    "CELERY_TASK_ROOT_ID",
    "CELERY_TASK_STATE",
    "HEADER_NEW_TRACE",
    "HEADER_PUBLISHED_AT",
    "TASK_OPTION_NEW_TRACE",
    "close_open_spans",
    "connect",
    "disconnect",
    "is_connected",
]
