"""One batch of spans into the database, in one transaction.

1. The spans go in so that a span delivered twice is stored once and only
   spans really inserted are counted: on PostgreSQL (psycopg 3) by ``COPY``
   straight into the span table, or, when one of them is stored already,
   through a staging table and ``INSERT ... ON CONFLICT (trace_id, span_id)
   DO NOTHING RETURNING``; on SQLite (and psycopg2) by multi-row ``INSERT ...
   VALUES ... ON CONFLICT DO NOTHING RETURNING``.
2. One summary row per touched trace is upserted with ``INSERT ... ON
   CONFLICT (trace_id) DO UPDATE`` that *adds* this batch's counts to what
   other batches (of this or any other process) already stored, in
   ``trace_id`` order so that two processes never wait on each other's rows in
   opposite orders.

SQLite takes its write lock at ``BEGIN IMMEDIATE`` with a long busy timeout,
so writers of several processes queue up instead of failing with "database is
locked".
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from django.db import DatabaseError, IntegrityError, connections
from django.db.backends.utils import CursorWrapper
from opentelemetry.sdk.trace import ReadableSpan

from agentops_django import _rows
from agentops_django._rows import SPAN_COLUMNS, TRACE_COLUMNS

SPAN_TABLE = "agentops_django_span"
TRACE_TABLE = "agentops_django_trace"
STATS_TABLE = "agentops_django_writerstats"
_JSON_SPAN_COLUMNS = frozenset({"attributes", "events", "links"})
#: Rows per INSERT statement: 14 or 19 parameters each stays far below the
#: parameter limits of PostgreSQL (65,535) and SQLite (32,766).
CHUNK = 1000


def _adapt(value: dt.datetime, sqlite: bool) -> Any:
    return str(value.astimezone(dt.UTC).replace(tzinfo=None)) if sqlite else value


def _cursor(connection: Any) -> CursorWrapper:
    """A cursor that never records queries in ``connection.queries`` (even with DEBUG)."""
    connection.ensure_connection()
    return CursorWrapper(connection.create_cursor(), connection)


def _reset_connection(alias: str) -> None:
    connection = connections[alias]
    try:
        connection.close()
    except Exception:
        # A broken connection may fail to close; forget it so the next try reconnects.
        connection.connection = None


def write_batch(alias: str, spans: Sequence[ReadableSpan]) -> int:
    """Store ``spans`` and update their traces' summaries in one transaction.

    Args:
        alias: The Django database alias.
        spans: Finished spans, in any order, possibly already stored.

    Returns:
        How many spans were newly stored (a span stored before is not counted).

    Raises:
        DatabaseError: If the database fails; nothing of the batch is kept then.
    """
    connection = connections[alias]
    vendor = connection.vendor
    if vendor not in ("postgresql", "sqlite"):
        raise DatabaseError(f"the agentops database writer supports PostgreSQL and SQLite, not {vendor}")
    sqlite = vendor == "sqlite"
    # psycopg 3 has COPY from Python rows; with psycopg2, multi-row VALUES.
    copy = not sqlite and _has_copy(connection)
    rows = _rows.convert(spans, sqlite)
    by_key = {row.key: row for row in rows}
    inserted: list[_rows.SpanRow] = []
    # wrap_database_errors: COPY goes past Django's cursor wrapper, and its
    # driver errors must arrive as Django's (DataError, OperationalError, ...).
    with connection.wrap_database_errors, _cursor(connection) as cursor:
        if sqlite:
            # Take the write lock first: a deferred transaction that upgrades
            # later can fail at once with "database is locked".
            cursor.execute("PRAGMA busy_timeout = 30000")
            cursor.execute("BEGIN IMMEDIATE")
        elif copy:
            _ensure_stages(connection, cursor)
            cursor.execute("BEGIN")
        else:
            cursor.execute("BEGIN")
        try:
            if copy:
                inserted = _insert_spans_copy(connection, cursor, rows, by_key)
            else:
                inserted = _insert_spans_values(cursor, rows, by_key, postgres=not sqlite)
            summaries = _rows.summaries(inserted, _adapt(dt.datetime.now(dt.UTC), sqlite))
            if copy:
                if summaries:
                    with cursor.copy(copy_sql(TRACE_STAGE)) as stream:
                        for summary in summaries:
                            stream.write_row(summary)
                    cursor.execute(upsert_traces_sql(0, postgres=True, stage=TRACE_STAGE))
            else:
                for start in range(0, len(summaries), CHUNK):
                    chunk = summaries[start : start + CHUNK]
                    cursor.execute(upsert_traces_sql(len(chunk), postgres=not sqlite), flatten(chunk))
            cursor.execute("COMMIT")
        except BaseException:
            try:
                cursor.execute("ROLLBACK")
            except Exception:  # the original error is what matters
                pass
            raise
    return len(inserted)


def _has_copy(connection: Any) -> bool:
    return getattr(connection.Database, "__name__", "") == "psycopg"


def _insert_spans_values(
    cursor: Any, rows: list[_rows.SpanRow], by_key: dict[Any, _rows.SpanRow], postgres: bool
) -> list[Any]:
    """SQLite (and psycopg2): multi-row ``INSERT ... VALUES ... RETURNING`` in chunks."""
    inserted = []
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start : start + CHUNK]
        cursor.execute(insert_spans_sql(len(chunk), postgres), flatten(row.values for row in chunk))
        inserted.extend(by_key[(trace_id, span_id)] for trace_id, span_id in cursor.fetchall())
    return inserted


def _insert_spans_copy(
    connection: Any, cursor: Any, rows: list[_rows.SpanRow], by_key: dict[Any, _rows.SpanRow]
) -> list[Any]:
    """PostgreSQL: ``COPY`` the spans straight into their table; if one is stored already, go through staging.

    A span is almost always new, so the batch is first copied straight in
    (all of it then counts as inserted). If any span of the batch is stored
    already (a redelivery, or another process wrote it meanwhile), the copy
    fails as a whole on the unique constraint, is rolled back to the
    savepoint, and the batch goes through the staging table and
    ``INSERT ... ON CONFLICT DO NOTHING RETURNING``, which says which spans
    are new.
    """
    cursor.execute("SAVEPOINT agentops_copy")
    try:
        with cursor.copy(copy_sql(SPAN_TABLE)) as copy:
            for row in rows:
                copy.write_row(row.values)
    except (IntegrityError, connection.Database.IntegrityError):
        cursor.execute("ROLLBACK TO SAVEPOINT agentops_copy")
    else:
        cursor.execute("RELEASE SAVEPOINT agentops_copy")
        return list(rows)
    with cursor.copy(copy_sql(SPAN_STAGE)) as copy:
        for row in rows:
            copy.write_row(row.values)
    cursor.execute(insert_spans_sql(0, postgres=True, stage=SPAN_STAGE))
    return [by_key[(trace_id, span_id)] for trace_id, span_id in cursor.fetchall()]


def _ensure_stages(connection: Any, cursor: Any) -> None:
    """Create this session's staging tables once, outside any batch transaction."""
    raw = connection.connection
    if getattr(raw, "_agentops_stages", False):
        return
    cursor.execute(CREATE_STAGES_SQL)
    try:
        raw._agentops_stages = True
    except AttributeError:  # a driver object without a __dict__: check again each time
        pass


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
