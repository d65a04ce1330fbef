"""The run side: a consumer span per task attempt, continuing the trace found in its headers."""

from __future__ import annotations

import logging
import sys
import threading
import time
from typing import Any

from opentelemetry import context as context_api
from opentelemetry import trace as trace_api
from opentelemetry.context import Context
from opentelemetry.trace import Link
from opentelemetry.trace import SpanKind as OTelSpanKind

from agentops import semconv
from agentops.integrations import scope as integration
from agentops.integrations.scope import capture_internal_exceptions
from agentops.semconv import AGENTOPS_LINK_TYPE as LINK_TYPE
from agentops.semconv import (
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
from agentops_django.celery._headers import (
    HEADER_NEW_TRACE,
    TASK_OPTION_NEW_TRACE,
    _getter,
    _header,
    _int,
    _propagator,
    _queue_wait_ms,
    _truthy,
)
from agentops_django.celery._state import _enabled, _registry, _Run
from agentops_django.queries import finish as finish_queries
from agentops_django.queries import start as start_queries

logger = logging.getLogger(__name__)


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
    start_queries(opened)  # in the context before it is attached: the task's queries are counted
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
            run.span.set_attribute(semconv.CELERY_TASK_RETRIED, True)
            if isinstance(cause, BaseException):
                # The attempt failed (and will run again): an error span with its
                # exception, so the trace's error count and the waterfall show it.
                run.failed = True
                _record_error(run, cause, None)


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
            last = {CELERY_TASK_STATE: run.state or "LOST"}
            run.scope.close(TraceState.INDETERMINATE, finish_queries(run.context, last))
        else:
            run.scope.close(run.end_state, finish_queries(run.context))
