"""Turning finished spans into database rows and trace-summary rows.

Used only by the writer thread (:mod:`agentops_django.writer`, through
:mod:`agentops_django.writer._store`). Conversion is kept cheap: ids as hex, times
as datetimes (Django's text form on SQLite), attributes, events and links as
JSON text, and what the trace summary needs (tokens, cost, errors, root rank).

Name, kind, status, tags and root span of a trace come from its root span
whenever the root is in the batch. ``root_rank`` says how sure we are that a
span is the root: 2 for a span without parent, 1 for a request or Celery task
whose parent is in another process (a trusted ``traceparent``, a task
published elsewhere), 0 for other spans. A trace's summary takes the
name/status of the highest rank seen so far; before any root arrives it keeps
the first span's name and status ``Indeterminate``.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Iterable, Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan

from agentops import semconv
from agentops.integrations.genai import foreign_llm_attributes, is_llm_call
from agentops.integrations.scope import capture_internal_exceptions
from agentops_django._usage import span_usage
from agentops_django.writer._record import SpanRecord, record

UTC = dt.UTC
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_NAIVE = dt.datetime(1970, 1, 1)
_US = dt.timedelta(microseconds=1)

SPAN_COLUMNS = (
    "trace_id",
    "span_id",
    "parent_span_id",
    "name",
    "kind",
    "status",
    "status_message",
    "started_at",
    "ended_at",
    "duration_ms",
    "attributes",
    "events",
    "links",
    "service_name",
    "otel_kind",
    "process_id",
)
TRACE_COLUMNS = (
    "trace_id",
    "name",
    "status",
    "kind",
    "root_span_id",
    "root_rank",
    "started_at",
    "ended_at",
    "duration_ms",
    "span_count",
    "error_count",
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "cost",
    "unpriced_calls",
    "tags",
    "tags_text",
    "service_name",
    "processes_text",
    "user_id",
    "username",
    "updated_at",
)

_KIND_ATTR = semconv.AGENTOPS_SPAN_KIND
_LLM = semconv.SpanKind.LLM
_USER_ID = semconv.USER_ID
_USER_NAME = semconv.USER_NAME
_TAGS = semconv.AGENTOPS_TAGS
_END_STATES = frozenset(state.value for state in semconv.TraceState)
_ROOT_KINDS = frozenset({semconv.SpanKind.REQUEST, semconv.SpanKind.CELERY_TASK})
_TRACE_KIND = {semconv.SpanKind.REQUEST: "request", semconv.SpanKind.CELERY_TASK: "task"}
_dumps = json.JSONEncoder(default=str, separators=(",", ":"), allow_nan=False).encode

try:  # about ten times faster than the standard library on span attributes (the writer's largest cost)
    import orjson
except ImportError:  # pragma: no cover - a dependency of the django extra; the standard library will do
    orjson = None  # type: ignore[assignment]


#: A ``\\uXXXX`` escape of a surrogate that is not half of a pair (what ``json.dumps`` writes for a lone one).
_LONE_SURROGATE = re.compile(
    r"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})"
    r"|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2}"
)


_SURROGATE = re.compile("[\ud800-\udfff]")


def _finite(value: Any) -> Any:
    """``value`` with NaN and infinities replaced by ``None`` (JSON has no such numbers)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _json(value: Any) -> str:
    """Strict JSON text that PostgreSQL's ``jsonb`` and SQLite accept.

    NaN and infinities become ``null``, NUL characters and lone surrogates
    U+FFFD; anything else JSON cannot hold, its ``str()``.
    """
    if orjson is not None:
        try:
            text = orjson.dumps(value, default=str).decode()
        except (TypeError, ValueError):  # lone surrogates, non-string keys, integers past 64 bits, deep nesting
            pass
        else:
            if "\\u0000" in text:  # PostgreSQL's jsonb refuses NUL characters
                text = text.replace("\\u0000", "\\ufffd")
            return text
    try:
        text = _dumps(value)
    except ValueError:  # NaN or an infinity, which JSON (and so the database) has no number for
        text = _dumps(_finite(value))
    if "\\u0000" in text:  # PostgreSQL's jsonb refuses NUL characters
        text = text.replace("\\u0000", "\\ufffd")
    if "\\ud" in text or "\\uD" in text:  # ... and escapes of lone surrogates
        text = _LONE_SURROGATE.sub("\\\\ufffd", text)
    return text


def _text(value: str, limit: int) -> str:
    """A column-safe string: cut to the column's size, without NUL (PostgreSQL refuses it in text)."""
    value = value[:limit]
    if "\x00" in value:
        value = value.replace("\x00", "\ufffd")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates: no driver can encode them as UTF-8
            value = _SURROGATE.sub("\ufffd", value)
    return value


def _foreign_llm(attributes: dict[str, Any], start_ns: int | None, failed: bool) -> dict[str, Any] | None:
    """What another instrumentation's LLM-call span needs to read as ours; None for other spans.

    A failure (genai-prices refusing something unexpected) costs the span its
    recognition, never the span: it is stored as it came, and counted.
    """
    if not is_llm_call(attributes):  # most spans: a few dictionary lookups, outside the guard
        return None
    with capture_internal_exceptions("reading another instrumentation's LLM span"):
        return foreign_llm_attributes(attributes, start_ns, failed)
    return None


def _same_call(trace_id: str, span_id: str, attributes: dict[str, Any]) -> dict[str, Any]:
    """``attributes``, marked ``agentops.llm.same_call_as`` if an earlier LLM span of the trace had its response id.

    Two instrumentations whose spans do not nest (a client's own span beside
    another library's) record one call twice; the response id tells. The
    first span written counts; the spans of one call end within moments of
    each other in one process, so a bounded memory of recent calls suffices.
    """
    if attributes.get(_INSIDE_CALL) is True:  # already counted by its enclosing span
        return attributes
    key = (trace_id, str(attributes[_RESPONSE_ID]))
    first = _recent_calls.setdefault(key, span_id)
    if first != span_id:
        return {**attributes, semconv.AGENTOPS_LLM_SAME_CALL_AS: first}
    if len(_recent_calls) > _RECENT_CALLS:
        for old in list(_recent_calls)[: _RECENT_CALLS // 2]:
            _recent_calls.pop(old, None)
    return attributes


_RESPONSE_ID = semconv.GEN_AI_RESPONSE_ID
_INSIDE_CALL = semconv.AGENTOPS_LLM_INSIDE_CALL
_RECENT_CALLS = 4096
#: (trace id, response id) -> the first LLM span written with them (insertion-ordered: oldest first).
_recent_calls: dict[tuple[str, str], str] = {}


class SpanRow:
    """One span converted for storage, plus what the trace summary needs of it."""

    __slots__ = (
        "attributes",
        "cost",
        "end_ns",
        "error",
        "input_tokens",
        "key",
        "output_tokens",
        "rank",
        "start_ns",
        "unpriced",
        "values",
    )

    def __init__(self, span: SpanRecord, sqlite: Any, process_id: int | None = None) -> None:
        trace_id = format(span.trace_id, "032x")
        span_id = format(span.span_id, "016x")
        self.key = (trace_id, span_id)
        attributes = span.attributes
        self.error = error = span.status == "ERROR"
        start_ns = span.start_ns
        end_ns = span.end_ns
        kind = attributes.get(_KIND_ATTR)
        if not isinstance(kind, str) or not kind:
            kind = span.otel_kind.lower()
            # Another instrumentation's LLM call: stored with the canonical names and a cost added.
            added = _foreign_llm(attributes, start_ns or None, error)
            if added is not None:
                attributes = {**attributes, **added}
                kind = _LLM
        if not span.parent_span_id:
            self.rank = 2
        elif span.parent_remote and kind in _ROOT_KINDS:
            self.rank = 1
        else:
            self.rank = 0
        self.start_ns = start_ns
        self.end_ns = end_ns
        if kind == _LLM and _RESPONSE_ID in attributes:
            attributes = _same_call(trace_id, span_id, attributes)
        #: What is stored (another instrumentation's LLM call with the canonical names added).
        self.attributes = attributes
        # The totals rule (agentops_django._usage), the same as the trace page's.
        self.input_tokens, self.output_tokens, self.cost, self.unpriced = span_usage(kind, attributes)
        events = span.events
        links = span.links
        self.values = (
            trace_id,
            span_id,
            format(span.parent_span_id, "016x") if span.parent_span_id else "",
            _text(span.name, 255),
            _text(kind, 32),
            span.status,
            _text(span.description, 100_000),
            timestamp(start_ns, sqlite),
            timestamp(end_ns, sqlite),
            (end_ns - start_ns) / 1e6,
            _json(attributes),
            _json([_event(e) for e in events]) if events else "[]",
            _json([_link(link) for link in links]) if links else "[]",
            span.service,
            span.otel_kind,
            process_id,
        )

    @property
    def name(self) -> str:
        return self.values[3]

    @property
    def kind(self) -> str:
        return self.values[4]


def timestamp(ns: int, sqlite: Any) -> Any:
    """A datetime for the database: aware UTC for PostgreSQL, Django's text form for SQLite.

    Args:
        ns: Nanoseconds since the epoch.
        sqlite: False for PostgreSQL; True for SQLite with ``USE_TZ``; with
            ``USE_TZ = False``, the ``tzinfo`` of ``TIME_ZONE`` (see :func:`time_format`).
    """
    if sqlite is True:
        # Django stores SQLite datetimes as str() of the naive UTC datetime.
        return str(_EPOCH_NAIVE + (ns // 1000) * _US)
    if sqlite is False:
        return _EPOCH + (ns // 1000) * _US
    # USE_TZ = False: Django stores naive wall-clock time of TIME_ZONE.
    return str((_EPOCH + (ns // 1000) * _US).astimezone(sqlite).replace(tzinfo=None))


def time_format(vendor: str) -> Any:
    """How :func:`timestamp` writes times for a database of ``vendor`` under the current settings."""
    if vendor != "sqlite":
        return False  # PostgreSQL: aware datetimes into timestamptz, right with or without USE_TZ
    from django.conf import settings

    if getattr(settings, "USE_TZ", True):
        return True
    from django.utils import timezone

    return timezone.get_default_timezone()


def _event(event: tuple[str, int, dict[str, Any]]) -> dict[str, Any]:
    name, ns, attributes = event
    return {"name": name, "timestamp": (_EPOCH + (ns // 1000) * _US).isoformat(), "attributes": attributes}


def _link(link: tuple[int, int, dict[str, Any]]) -> dict[str, Any]:
    trace_id, span_id, attributes = link
    return {"trace_id": format(trace_id, "032x"), "span_id": format(span_id, "016x"), "attributes": attributes}


def unique_spans(spans: Iterable[ReadableSpan | SpanRecord]) -> list[SpanRecord]:
    """``spans`` as records, once per (trace_id, span_id) (the first of a pair delivered twice), sorted by that key.

    The order is the stored key's (fixed-width hex sorts as the numbers do),
    so that writers of several processes take the rows' locks in one order.
    """
    unique: dict[tuple[int, int], SpanRecord] = {}
    for span in spans:
        item = record(span)
        unique.setdefault((item.trace_id, item.span_id), item)
    return [unique[key] for key in sorted(unique)]


def convert(spans: Iterable[ReadableSpan | SpanRecord], sqlite: Any, process_id: int | None = None) -> list[SpanRow]:
    """Rows for ``spans``, one per (trace_id, span_id), sorted by that key.

    Args:
        spans: Finished spans (or their records).
        sqlite: How times are written (see :func:`timestamp`).
        process_id: The :class:`~agentops_django.models.WriterStats` row of the process that ended them.
    """
    return [SpanRow(span, sqlite, process_id) for span in unique_spans(spans)]


def _root_status(row: SpanRow) -> str:
    attributes = row.attributes
    # AgentOps' name first; ours for spans from before it was written too.
    state = attributes.get(semconv.AGENTOPS_SESSION_END_STATE) or attributes.get(semconv.AGENTOPS_END_STATE)
    if state in _END_STATES:
        return str(state)
    return "Error" if row.error else "Success"


def summaries(rows: Sequence[SpanRow], now: Any, processes: str = "") -> list[tuple[Any, ...]]:
    """One trace-summary tuple (in :data:`TRACE_COLUMNS` order) per trace, sorted by trace id.

    Args:
        rows: The spans this batch really inserted.
        now: The ``updated_at`` value, already adapted for the database.
        processes: ``"|host|worker node|"`` of the process that ended them (one per batch).
    """
    groups: dict[str, list[SpanRow]] = {}
    for row in rows:
        groups.setdefault(row.key[0], []).append(row)
    result = []
    for trace_id in sorted(groups):
        members = groups[trace_id]
        if len(members) == 1:  # a request or task without children: the common case
            first = root = members[0]
            start_ns, end_ns = first.start_ns, first.end_ns
            started_at, ended_at = first.values[7], first.values[8]
            input_tokens, output_tokens, cost = first.input_tokens, first.output_tokens, first.cost
            unpriced = first.unpriced
            errors = 1 if first.error else 0
        else:
            first = min(members, key=lambda r: r.start_ns)
            last = max(members, key=lambda r: r.end_ns)
            start_ns, end_ns = first.start_ns, last.end_ns
            root = max(members, key=lambda r: (r.rank, -r.start_ns))
            started_at, ended_at = first.values[7], last.values[8]
            input_tokens = sum(r.input_tokens for r in members)
            output_tokens = sum(r.output_tokens for r in members)
            cost = sum(r.cost for r in members)
            unpriced = sum(r.unpriced for r in members)
            errors = sum(1 for r in members if r.error)
        user_id = username = ""
        if root.rank:
            attributes = root.attributes
            tags = [str(t) for t in attributes.get(_TAGS, ()) or ()]
            if _USER_NAME in attributes or _USER_ID in attributes:
                user_id = _text(str(attributes.get(_USER_ID, "")), 64)
                username = _text(str(attributes.get(_USER_NAME, "")), 150)
            name, status = root.name, _root_status(root)
            kind = _TRACE_KIND.get(root.kind, "manual")
            root_span_id, service = root.key[1], root.values[13]
        else:
            tags, name, status, kind = [], first.name, "Indeterminate", "manual"
            root_span_id, service = "", first.values[13]
        result.append(
            (
                trace_id,
                name,
                status,
                kind,
                root_span_id,
                root.rank,
                started_at,
                ended_at,
                (end_ns - start_ns) / 1e6,
                len(members),
                errors,
                input_tokens,
                output_tokens,
                input_tokens + output_tokens,
                cost,
                unpriced,
                _json(tags) if tags else "[]",
                ("|" + "|".join(tags) + "|")[:1024] if tags else "",
                service,
                processes,
                user_id,
                username,
                now,
            )
        )
    return result
