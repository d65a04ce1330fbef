"""Export of a stored trace as OTLP JSON, the format any OpenTelemetry backend imports.

The document follows the OTLP/HTTP JSON encoding of ``ExportTraceServiceRequest``
(``resourceSpans`` → ``scopeSpans`` → ``spans``): ids as lowercase hex, times as
decimal strings of nanoseconds since the epoch, attribute values wrapped in
``AnyValue`` (``stringValue``, ``intValue`` as a string, ``doubleValue``,
``boolValue``, ``arrayValue``, ``kvlistValue``). One resource per service name.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Mapping
from typing import Any

logger = logging.getLogger(__name__)

SCOPE_NAME = "agentops_django"

#: OTLP ``Span.SpanKind`` numbers; for spans stored without their OpenTelemetry kind, guessed from the agentops kind.
SPAN_KIND_INTERNAL = 1
SPAN_KIND_SERVER = 2
SPAN_KIND_CLIENT = 3
SPAN_KIND_PRODUCER = 4
SPAN_KIND_CONSUMER = 5
_KIND_BY_AGENTOPS_KIND = {
    "request": SPAN_KIND_SERVER,
    "server": SPAN_KIND_SERVER,
    "publish": SPAN_KIND_PRODUCER,
    "producer": SPAN_KIND_PRODUCER,
    "celery.task": SPAN_KIND_CONSUMER,
    "consumer": SPAN_KIND_CONSUMER,
    "llm": SPAN_KIND_CLIENT,
    "client": SPAN_KIND_CLIENT,
}
#: OTLP numbers of the OpenTelemetry span kinds, as the writer stores them (``Span.otel_kind``).
_KIND_BY_OTEL_KIND = {
    "INTERNAL": SPAN_KIND_INTERNAL,
    "SERVER": SPAN_KIND_SERVER,
    "CLIENT": SPAN_KIND_CLIENT,
    "PRODUCER": SPAN_KIND_PRODUCER,
    "CONSUMER": SPAN_KIND_CONSUMER,
}
#: OTLP ``Status.StatusCode`` numbers.
_STATUS_CODES = {"UNSET": 0, "OK": 1, "ERROR": 2}

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def unix_nano(value: Any) -> str:
    """Nanoseconds since the epoch as a decimal string, from a datetime, ISO string or number."""
    if isinstance(value, bool) or value is None:
        return "0"
    if isinstance(value, int | float):
        return str(int(value))
    if isinstance(value, str):
        if value.isdigit():
            return value
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            return "0"
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        delta = value - _EPOCH
        return str((delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000)
    return "0"


def any_value(value: Any) -> dict[str, Any]:
    """An OTLP ``AnyValue`` for a JSON-decoded attribute value."""
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, list | tuple):
        return {"arrayValue": {"values": [any_value(item) for item in value]}}
    if isinstance(value, Mapping):
        return {"kvlistValue": {"values": key_values(value)}}
    if value is None:
        return {}
    return {"stringValue": str(value)}


def key_values(attributes: Any) -> list[dict[str, Any]]:
    """OTLP ``KeyValue`` list of an attributes mapping (anything else gives an empty list)."""
    if not isinstance(attributes, Mapping):
        return []
    return [{"key": str(key), "value": any_value(value)} for key, value in attributes.items()]


def _event(event: Any) -> dict[str, Any] | None:
    if not isinstance(event, Mapping):
        return None
    time = event.get("time_unix_nano", event.get("timestamp", event.get("time")))
    return {
        "timeUnixNano": unix_nano(time),
        "name": str(event.get("name", "")),
        "attributes": key_values(event.get("attributes")),
    }


def _link(link: Any) -> dict[str, Any] | None:
    if not isinstance(link, Mapping) or not link.get("trace_id") or not link.get("span_id"):
        return None
    return {
        "traceId": str(link["trace_id"]),
        "spanId": str(link["span_id"]),
        "attributes": key_values(link.get("attributes")),
    }


def _otlp_kind(span: Mapping[str, Any]) -> int:
    """The span's stored OpenTelemetry kind; for spans stored before it was, a guess from the agentops kind."""
    stored = _KIND_BY_OTEL_KIND.get(str(span.get("otel_kind") or ""))
    if stored is not None:
        return stored
    return _KIND_BY_AGENTOPS_KIND.get(str(span.get("kind", "")).lower(), SPAN_KIND_INTERNAL)


def otlp_span(span: Mapping[str, Any], trace_id: str) -> dict[str, Any]:
    """One stored span row (a dict of :class:`~agentops_django.models.Span` fields) as an OTLP span."""
    status: dict[str, Any] = {"code": _STATUS_CODES.get(str(span.get("status", "UNSET")).upper(), 0)}
    if span.get("status_message"):
        status["message"] = span["status_message"]
    document: dict[str, Any] = {
        "traceId": trace_id,
        "spanId": str(span.get("span_id", "")),
        "name": str(span.get("name", "")),
        "kind": _otlp_kind(span),
        "startTimeUnixNano": unix_nano(span.get("started_at")),
        "endTimeUnixNano": unix_nano(span.get("ended_at")),
        "attributes": key_values(span.get("attributes")),
        "events": [e for e in map(_event, span.get("events") or []) if e is not None],
        "links": [link for link in map(_link, span.get("links") or []) if link is not None],
        "status": status,
    }
    if span.get("parent_span_id"):
        document["parentSpanId"] = str(span["parent_span_id"])
    return document


def trace_document(trace_id: str, spans: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The OTLP JSON ``ExportTraceServiceRequest`` of one trace.

    Args:
        trace_id: The trace's 32-hex id.
        spans: Its span rows as dicts (``Span.objects.values()``).

    Returns:
        A JSON-serialisable dict with one ``resourceSpans`` entry per service name.
    """
    by_service: dict[str, list[dict[str, Any]]] = {}
    for span in spans:
        by_service.setdefault(str(span.get("service_name") or ""), []).append(otlp_span(span, trace_id))
    resource_spans = []
    for service, otlp_spans in by_service.items():
        resource_attributes = [{"key": "service.name", "value": {"stringValue": service}}] if service else []
        resource_spans.append(
            {
                "resource": {"attributes": resource_attributes},
                "scopeSpans": [{"scope": {"name": SCOPE_NAME}, "spans": otlp_spans}],
            }
        )
    return {"resourceSpans": resource_spans}
