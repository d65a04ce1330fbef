"""What framework integrations build on: automatic scopes and the SDK's shared rules.

The Django middleware and the Celery signal handlers of ``agentops_django``
use this module and :mod:`agentops.semconv`, nothing private, and so can any
other framework integration::

    from agentops.integrations import scope

    def handle(request):
        if not scope.is_active():
            return process(request)
        current = scope.open_scope("GET /orders/", kind=SpanKind.SERVER, parent=Context())
        token = context.attach(current.context)
        try:
            response = process(request)
        except Exception as exc:
            current.fail(exc)
            current.close(TraceState.ERROR)
            raise
        finally:
            context.detach(token)
        current.close(TraceState.SUCCESS, {"http.response.status_code": response.status})
        return response

Everything here runs behind the SDK's guard rules: wrap your own hook code in
:func:`capture_internal_exceptions` so an error of the integration is logged
and counted, never raised into the host.
"""

from __future__ import annotations

from typing import Any

from opentelemetry import trace as trace_api

from agentops._guard import capture_internal_exceptions
from agentops._guard import count as count_internal
from agentops._scopes import MAX_STATUS_MESSAGE, Scope, mark_failed, non_recording_scope, open_scope
from agentops._serialize import REDACTED, is_secret_key, to_json
from agentops._state import state


def is_active() -> bool:
    """Whether ``agentops.init()`` has run (and no reset since): integrations record nothing before."""
    return state.config is not None


def tracer() -> trace_api.Tracer:
    """The tracer agentops' spans come from."""
    return state.tracer


def capture_content() -> bool:
    """Whether payloads (arguments, results, prompts) may be recorded."""
    config = state.config
    return config is not None and config.capture_content


def redact_keys() -> frozenset[str]:
    """The keys whose values are masked in recorded payloads, headers and query strings."""
    config = state.config
    return config.redact_keys if config is not None else frozenset()


def serialize(value: Any) -> str:
    """``value`` as JSON for a span attribute, with the SDK's redaction and size cap."""
    config = state.config
    if config is None:
        return to_json(value, redact_keys=frozenset(), max_size=16_384)
    return to_json(value, redact_keys=config.redact_keys, max_size=config.max_payload_size)


__all__ = [
    "MAX_STATUS_MESSAGE",
    "REDACTED",
    "Scope",
    "capture_content",
    "capture_internal_exceptions",
    "count_internal",
    "is_active",
    "is_secret_key",
    "mark_failed",
    "non_recording_scope",
    "open_scope",
    "redact_keys",
    "serialize",
    "tracer",
]
