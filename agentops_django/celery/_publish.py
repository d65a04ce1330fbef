"""The publish side: a producer span per published task, its context written into the message headers."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any

from opentelemetry import context as context_api
from opentelemetry import trace as trace_api
from opentelemetry.trace import Span, Status, StatusCode
from opentelemetry.trace import SpanKind as OTelSpanKind

from agentops import semconv
from agentops.integrations import scope as integration
from agentops.integrations.scope import capture_internal_exceptions
from agentops.semconv import (
    CELERY_NEW_TRACE,
    CELERY_TASK_ID,
    CELERY_TASK_NAME,
    SpanKind,
)
from agentops_django.celery._headers import (
    _CELERY_KEYS,
    HEADER_PUBLISHED_AT,
    _int,
    _propagator,
    _publishes_new_trace,
)
from agentops_django.celery._state import _enabled, _registry

logger = logging.getLogger(__name__)

#: A producer span whose ``after_task_publish`` never came (the publish raised)
#: is ended after this many seconds.
PENDING_PUBLISH_TIMEOUT = 60.0
#: At most this many producer spans wait for ``after_task_publish``.
MAX_PENDING_PUBLISHES = 10_000


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
