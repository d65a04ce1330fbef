"""What travels in a task message: the trace context, the publish time, the fan-out switch; reading it back."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from celery.app.task import Context as _CeleryContext
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

logger = logging.getLogger(__name__)

# --- message headers ------------------------------------------------------------
#: Header (per call) asking for a new trace linked to the caller.
HEADER_NEW_TRACE = "agentops_new_trace"
#: Header with the publish time, in seconds since the epoch.
HEADER_PUBLISHED_AT = "agentops_published_at"
#: Task attribute (per task, ``@app.task(agentops_new_trace=True)``) asking for a new trace.
TASK_OPTION_NEW_TRACE = "agentops_new_trace"

_propagator = TraceContextTextMapPropagator()
# The keys Celery keeps for itself; the others are the custom headers that
# ``task.request.headers`` holds (see ``celery.app.task.Context``).
_CELERY_KEYS = frozenset({*_CeleryContext.__dict__, "lang", "task", "argsrepr", "kwargsrepr", "compression", "headers"})


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
