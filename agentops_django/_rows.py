"""Turning finished spans into database rows, and the SQL that stores them.

Used only by the writer thread (:mod:`agentops_django.exporter`). One batch is
written in one transaction:

1. every span with ``INSERT ... ON CONFLICT (trace_id, span_id) DO NOTHING
   RETURNING``, so a span delivered twice is stored once and only the spans
   that were really inserted are counted;
2. one summary row per touched trace with ``INSERT ... ON CONFLICT (trace_id)
   DO UPDATE`` that *adds* this batch's counts to what other batches (of this
   or any other process) already stored, in ``trace_id`` order so that two
   processes never wait on each other's rows in opposite orders.

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
from collections.abc import Iterable, Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode

from agentops import semconv

UTC = dt.UTC
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_NAIVE = dt.datetime(1970, 1, 1)
_US = dt.timedelta(microseconds=1)

SPAN_TABLE = "agentops_django_span"
TRACE_TABLE = "agentops_django_trace"
STATS_TABLE = "agentops_django_writerstats"

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
    "tags",
    "tags_text",
    "service_name",
    "updated_at",
)
_JSON_SPAN_COLUMNS = frozenset({"attributes", "events", "links"})
#: Rows per INSERT statement: 14 or 19 parameters each stays far below the
#: parameter limits of PostgreSQL (65,535) and SQLite (32,766).
CHUNK = 1000

_KIND_ATTR = semconv.AGENTOPS_SPAN_KIND
_ROOT_KINDS = frozenset({semconv.SpanKind.REQUEST, semconv.SpanKind.CELERY_TASK})
_TRACE_KIND = {semconv.SpanKind.REQUEST: "request", semconv.SpanKind.CELERY_TASK: "task"}
_ERROR = StatusCode.ERROR
_OK = StatusCode.OK
_dumps = json.JSONEncoder(default=str, separators=(",", ":")).encode


def _json(value: Any) -> str:
    text = _dumps(value)
    if "\\u0000" in text:  # PostgreSQL's jsonb refuses NUL characters
        text = text.replace("\\u0000", "\\ufffd")
    return text


def _text(value: str, limit: int) -> str:
    """A column-safe string: cut to the column's size, without NUL (PostgreSQL refuses it in text)."""
    value = value[:limit]
    return value.replace("\x00", "\ufffd") if "\x00" in value else value


def _attributes(span: ReadableSpan) -> dict[str, Any]:
    """The span's attributes as a plain dict, without copying them one by one when possible."""
    raw = getattr(span, "_attributes", None)
    raw = getattr(raw, "_dict", raw)  # the SDK's BoundedAttributes keeps a plain dict
    if isinstance(raw, dict):
        return raw
    return dict(span.attributes or ())


def _service(resource: Any) -> str:
    """The ``service.name`` of a resource, cached by identity (a process has one or two)."""
    if resource is None:
        return ""
    cached = _services.get(id(resource))
    if cached is not None and cached[0] is resource:
        return cached[1]
    name = str(resource.attributes.get("service.name", ""))[:255]
    if len(_services) < 64:
        _services[id(resource)] = (resource, name)  # holding it keeps its id from being reused
    return name


_services: dict[int, tuple[Any, str]] = {}


def _number(value: Any) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    return 0


class SpanRow:
    """One span converted for storage, plus what the trace summary needs of it."""

    __slots__ = (
        "cost",
        "end_ns",
        "error",
        "input_tokens",
        "key",
        "output_tokens",
        "rank",
        "span",
        "start_ns",
        "values",
    )

    def __init__(self, span: ReadableSpan, sqlite: bool) -> None:
        context = span.context
        trace_id = format(context.trace_id, "032x")
        span_id = format(context.span_id, "016x")
        self.key = (trace_id, span_id)
        self.span = span
        attributes = _attributes(span)
        kind = attributes.get(_KIND_ATTR)
        if not isinstance(kind, str) or not kind:
            kind = span.kind.name.lower()
        parent = span.parent
        if parent is None:
            self.rank = 2
        elif parent.is_remote and kind in _ROOT_KINDS:
            self.rank = 1
        else:
            self.rank = 0
        status = span.status
        self.error = status.status_code is _ERROR
        start_ns = span.start_time or 0
        end_ns = span.end_time or start_ns
        self.start_ns = start_ns
        self.end_ns = end_ns
        self.input_tokens = self.output_tokens = 0
        self.cost = 0.0
        if kind == semconv.SpanKind.LLM:
            # The tokens rule: only LLM spans carry usage that counts, so a
            # call is never counted twice by the agent/tool spans around it.
            self.input_tokens = int(_number(attributes.get(semconv.GEN_AI_USAGE_INPUT_TOKENS)))
            self.output_tokens = int(_number(attributes.get(semconv.GEN_AI_USAGE_OUTPUT_TOKENS)))
            self.cost = float(_number(attributes.get(semconv.GEN_AI_USAGE_COST)))
        elif kind == semconv.SpanKind.TOOL:
            self.cost = float(_number(attributes.get(semconv.AGENTOPS_TOOL_COST)))
        events = span.events
        links = span.links
        resource = span.resource
        self.values = (
            trace_id,
            span_id,
            format(parent.span_id, "016x") if parent is not None else "",
            _text(span.name, 255),
            kind[:32],
            status.status_code.name,
            _text(status.description or "", 100_000),
            timestamp(start_ns, sqlite),
            timestamp(end_ns, sqlite),
            (end_ns - start_ns) / 1e6,
            _json(attributes),
            _json([_event(e) for e in events]) if events else "[]",
            _json([_link(link) for link in links]) if links else "[]",
            _service(resource),
        )

    @property
    def name(self) -> str:
        return self.values[3]

    @property
    def kind(self) -> str:
        return self.values[4]


def timestamp(ns: int, sqlite: bool) -> Any:
    """A datetime for the database: aware UTC for PostgreSQL, Django's text form for SQLite."""
    if sqlite:
        # Django stores SQLite datetimes as str() of the naive UTC datetime.
        return str(_EPOCH_NAIVE + (ns // 1000) * _US)
    return _EPOCH + (ns // 1000) * _US


def _event(event: Any) -> dict[str, Any]:
    return {
        "name": event.name,
        "timestamp": (_EPOCH + (event.timestamp // 1000) * _US).isoformat(),
        "attributes": dict(event.attributes or ()),
    }


def _link(link: Any) -> dict[str, Any]:
    context = link.context
    return {
        "trace_id": format(context.trace_id, "032x"),
        "span_id": format(context.span_id, "016x"),
        "attributes": dict(link.attributes or ()),
    }


def convert(spans: Iterable[ReadableSpan], sqlite: bool) -> list[SpanRow]:
    """Rows for ``spans``, one per (trace_id, span_id), sorted by that key."""
    rows: dict[tuple[str, str], SpanRow] = {}
    for span in spans:
        row = SpanRow(span, sqlite)
        rows.setdefault(row.key, row)
    return [rows[key] for key in sorted(rows)]


def _root_status(row: SpanRow) -> str:
    state = (row.span.attributes or {}).get(semconv.AGENTOPS_END_STATE)
    if state in ("Success", "Error", "Indeterminate"):
        return state
    return "Error" if row.error else "Success"


def summaries(rows: Sequence[SpanRow], now: Any) -> list[tuple[Any, ...]]:
    """One trace-summary tuple (in :data:`TRACE_COLUMNS` order) per trace, sorted by trace id.

    Args:
        rows: The spans this batch really inserted.
        now: The ``updated_at`` value, already adapted for the database.
    """
    groups: dict[str, list[SpanRow]] = {}
    for row in rows:
        groups.setdefault(row.key[0], []).append(row)
    sqlite = isinstance(now, str)
    result = []
    for trace_id in sorted(groups):
        members = groups[trace_id]
        first = min(members, key=lambda r: r.start_ns)
        start_ns = first.start_ns
        end_ns = max(r.end_ns for r in members)
        root = max(members, key=lambda r: (r.rank, -r.start_ns))
        input_tokens = sum(r.input_tokens for r in members)
        output_tokens = sum(r.output_tokens for r in members)
        if root.rank:
            attributes = root.span.attributes or {}
            tags = [str(t) for t in attributes.get(semconv.AGENTOPS_TAGS, ()) or ()]
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
                timestamp(start_ns, sqlite),
                timestamp(end_ns, sqlite),
                (end_ns - start_ns) / 1e6,
                len(members),
                sum(1 for r in members if r.error),
                input_tokens,
                output_tokens,
                input_tokens + output_tokens,
                sum(r.cost for r in members),
                _json(tags),
                ("|" + "|".join(tags) + "|")[:1024] if tags else "",
                service,
                now,
            )
        )
    return result


def _values_sql(columns: Sequence[str], count: int, postgres: bool, json_columns: frozenset[str]) -> str:
    marks = ", ".join("%s::jsonb" if postgres and c in json_columns else "%s" for c in columns)
    return ", ".join([f"({marks})"] * count)


def _source(columns: Sequence[str], count: int, postgres: bool, json_columns: frozenset[str], stage: str | None) -> str:
    if stage is not None:
        return f"SELECT {', '.join(columns)} FROM {stage} ORDER BY {', '.join(columns[:2])}"
    return f"VALUES {_values_sql(columns, count, postgres, json_columns)}"


def insert_spans_sql(count: int, postgres: bool, stage: str | None = None) -> str:
    """``INSERT`` of ``count`` spans (or those in the ``stage`` table) returning the keys really inserted."""
    return (
        f"INSERT INTO {SPAN_TABLE} ({', '.join(SPAN_COLUMNS)}) "
        f"{_source(SPAN_COLUMNS, count, postgres, _JSON_SPAN_COLUMNS, stage)} "
        "ON CONFLICT (trace_id, span_id) DO NOTHING RETURNING trace_id, span_id"
    )


#: PostgreSQL: per-connection staging tables filled with COPY, the fastest way in.
SPAN_STAGE = "agentops_span_stage"
TRACE_STAGE = "agentops_trace_stage"
CREATE_STAGES_SQL = (
    f"CREATE TEMPORARY TABLE IF NOT EXISTS {SPAN_STAGE} ("
    "trace_id varchar(32), span_id varchar(16), parent_span_id varchar(16), name varchar(255), kind varchar(32), "
    "status varchar(8), status_message text, started_at timestamptz, ended_at timestamptz, "
    "duration_ms double precision, attributes jsonb, events jsonb, links jsonb, service_name varchar(255)"
    ") ON COMMIT DELETE ROWS; "
    f"CREATE TEMPORARY TABLE IF NOT EXISTS {TRACE_STAGE} ("
    "trace_id varchar(32), name varchar(255), status varchar(16), kind varchar(16), root_span_id varchar(16), "
    "root_rank smallint, started_at timestamptz, ended_at timestamptz, duration_ms double precision, "
    "span_count integer, error_count integer, input_tokens bigint, output_tokens bigint, total_tokens bigint, "
    "cost double precision, tags jsonb, tags_text varchar(1024), service_name varchar(255), updated_at timestamptz"
    ") ON COMMIT DELETE ROWS"
)


def copy_sql(stage: str) -> str:
    """``COPY ... FROM STDIN`` into a staging table (or straight into the span table)."""
    columns = TRACE_COLUMNS if stage == TRACE_STAGE else SPAN_COLUMNS
    return f"COPY {stage} ({', '.join(columns)}) FROM STDIN"


def upsert_traces_sql(count: int, postgres: bool, stage: str | None = None) -> str:
    """``INSERT ... ON CONFLICT DO UPDATE`` adding ``count`` trace summaries (or ``stage``'s) to the stored ones."""
    t = TRACE_TABLE
    least, greatest = ("LEAST", "GREATEST") if postgres else ("MIN", "MAX")
    start = f"{least}({t}.started_at, excluded.started_at)"
    end = f"{greatest}({t}.ended_at, excluded.ended_at)"
    if postgres:
        duration = f"EXTRACT(EPOCH FROM ({end} - {start})) * 1000.0"
    else:
        # Exact to the microsecond (julianday() is not): whole seconds plus
        # the ".ffffff" part of Django's "YYYY-MM-DD HH:MM:SS[.ffffff]".
        duration = (
            # ("%%" because Django's SQLite cursor turns "%s" into a placeholder.)
            f"((strftime('%%s', {end}) - strftime('%%s', {start})) * 1000000"
            f" + CAST(substr({end}, 21, 6) AS INTEGER) - CAST(substr({start}, 21, 6) AS INTEGER)) / 1000.0"
        )
    from_root = "CASE WHEN excluded.root_rank > {t}.root_rank THEN excluded.{c} ELSE {t}.{c} END"
    assignments = [f"{c} = {t}.{c} + excluded.{c}" for c in TRACE_COLUMNS[9:15]]
    assignments += [
        f"{c} = {from_root.format(t=t, c=c)}"
        for c in ("name", "status", "kind", "root_span_id", "tags", "tags_text", "service_name")
    ]
    assignments += [
        f"root_rank = {greatest}({t}.root_rank, excluded.root_rank)",
        f"started_at = {start}",
        f"ended_at = {end}",
        f"duration_ms = {duration}",
        "updated_at = excluded.updated_at",
    ]
    return (
        f"INSERT INTO {t} ({', '.join(TRACE_COLUMNS)}) "
        f"{_source(TRACE_COLUMNS, count, postgres, frozenset({'tags'}), stage)} "
        f"ON CONFLICT (trace_id) DO UPDATE SET {', '.join(assignments)}"
    )


def upsert_stats_sql() -> str:
    """Upsert of one process's writer counters (absolute values)."""
    columns = ("host", "pid", "process_started_at", "spans_written", "spans_dropped", "write_errors", "updated_at")
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns[3:])
    return (
        f"INSERT INTO {STATS_TABLE} ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))}) "
        f"ON CONFLICT (host, pid, process_started_at) DO UPDATE SET {updates}"
    )


def flatten(rows: Iterable[Sequence[Any]]) -> list[Any]:
    """The parameters of a multi-row ``VALUES``."""
    params: list[Any] = []
    extend = params.extend
    for row in rows:
        extend(row)
    return params
