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
  a child of the caller's current span. The ``CELERY_*`` constants of
  :mod:`agentops.semconv` name
  its attributes (ids, attempt, state, queue wait, and, with content capture,
  arguments and result as redacted, size-capped JSON).

Huge fan-out. A task published thousands of times from one request makes a
trace nobody can read. Two ways out start a *new trace* for the task, linked
to its caller (an OpenTelemetry span link) instead of being its child:

* per call: ``my_task.apply_async(args, headers={"agentops_new_trace": True})``;
* per task: ``@app.task(agentops_new_trace=True)`` (any task attribute of
  that name that is true).

Retries of such a task stay in the trace their first attempt started.

The package follows a message's way: :mod:`._headers` (what travels in the
message), :mod:`._publish` (the producer side), :mod:`._run` (the worker
side), :mod:`._state` (open runs and producer spans per process), and here
the worker process's lifecycle and :func:`connect`. Attribute names are in
:mod:`agentops.semconv` (``CELERY_*``).

Signals rather than wrapping Celery's tracer (as Sentry does: see
``sentry_sdk/integrations/celery/__init__.py``, "the reason we don't use
signals"): signals are Celery's public extension point and what
OpenTelemetry's own Celery instrumentation uses; the price is that a span is
found again by task id and attempt, and leftovers of a task whose
``task_postrun`` never came are ended by the thread's next task.

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
import time
from typing import Any

from celery import signals

from agentops.integrations import lifecycle
from agentops.integrations.scope import capture_internal_exceptions
from agentops_django.celery._headers import HEADER_NEW_TRACE, HEADER_PUBLISHED_AT, TASK_OPTION_NEW_TRACE
from agentops_django.celery._publish import _on_after_task_publish, _on_before_task_publish, _sweep_pending
from agentops_django.celery._run import _finish, _on_task_failure, _on_task_postrun, _on_task_prerun, _on_task_retry
from agentops_django.celery._state import _registry

logger = logging.getLogger(__name__)

#: Seconds a prefork child may spend flushing spans before it exits.
SHUTDOWN_FLUSH_TIMEOUT = 5.0


# --- worker processes -------------------------------------------------------------
# (Setting a prefork child up is the app's wiring's job: agentops_django._wiring
# connects its own worker_process_init handler, so this package never imports it.)
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
    (signals.worker_process_shutdown, _on_worker_process_shutdown),
)


def _uid(handler: Any) -> str:
    return f"agentops_django.celery.{handler.__name__}"


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


__all__ = [
    "HEADER_NEW_TRACE",
    "HEADER_PUBLISHED_AT",
    "SHUTDOWN_FLUSH_TIMEOUT",
    "TASK_OPTION_NEW_TRACE",
    "close_open_spans",
    "connect",
    "disconnect",
    "is_connected",
]
