"""One batch of spans into the database, in one transaction.

1. The spans go in so that a span delivered twice is stored once and only
   spans really inserted are counted: on PostgreSQL (psycopg 3) by ``COPY``
   straight into the span table, or, when one of them is stored already, by
   ``INSERT ... ON CONFLICT (trace_id, span_id) DO NOTHING RETURNING``; on
   SQLite (and psycopg2) by that multi-row ``INSERT`` alone. Every statement
   runs inside the batch's transaction and none needs a temporary table, so a
   role without the ``TEMPORARY`` privilege and PgBouncer in transaction
   pooling mode work like a plain server.
2. One summary row per touched trace is upserted with ``INSERT ... ON
   CONFLICT (trace_id) DO UPDATE`` that *adds* this batch's counts to what
   other batches (of this or any other process) already stored, in
   ``trace_id`` order so that two processes never wait on each other's rows in
   opposite orders. On PostgreSQL the summaries travel as one JSON parameter
   (:mod:`agentops_django.writer._params`).

3. The overview's rollup (:mod:`agentops_django.writer._rollup`): per minute,
   hour and day and per route, task or model, added up the same way (under a
   savepoint: if it fails, the spans and summaries are stored without it).

SQLite takes its write lock at ``BEGIN IMMEDIATE`` with a long busy timeout,
so writers of several processes queue up instead of failing with "database is
locked".
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from django.db import DatabaseError, IntegrityError, connections
from django.db.backends.utils import CursorWrapper
from opentelemetry.sdk.trace import ReadableSpan

from agentops_django.writer import _rollup, _rows
from agentops_django.writer._params import json_rows, json_rows_source
from agentops_django.writer._record import SpanRecord
from agentops_django.writer._rows import SPAN_COLUMNS, TRACE_COLUMNS

SPAN_TABLE = "agentops_django_span"
TRACE_TABLE = "agentops_django_trace"
STATS_TABLE = "agentops_django_writerstats"
_JSON_SPAN_COLUMNS = frozenset({"attributes", "events", "links"})
#: Rows per INSERT statement: 14 or 19 parameters each stays far below the
#: parameter limits of PostgreSQL (65,535) and SQLite (32,766).
CHUNK = 1000


def _adapt(value: dt.datetime, sqlite: Any) -> Any:
    """A Python datetime for the database (``sqlite`` as :func:`agentops_django.writer._rows.timestamp` takes it)."""
    if sqlite is False:
        return value
    if sqlite is True:
        return str(value.astimezone(dt.UTC).replace(tzinfo=None))
    return str(value.astimezone(sqlite).replace(tzinfo=None))


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


def write_batch(
    alias: str,
    spans: Sequence[ReadableSpan | SpanRecord],
    *,
    own_transaction: bool = True,
    process: tuple[int, str] | None = None,
) -> int:
    """Store ``spans`` and update their traces' summaries in one transaction.

    Args:
        alias: The Django database alias.
        spans: Finished spans (or the writer queue's records of them), in any order, possibly already stored.
        own_transaction: True (the writer thread): the batch is its own
            transaction on a connection nobody else uses. False: run inside
            the caller's ``transaction.atomic()`` (a test's, so that its
            rollback removes the rows too).
        process: The ending process's identity row and ``"|host|worker node|"``
            (see :func:`store_writer_stats`), or ``None`` if unknown.

    Returns:
        How many spans were newly stored (a span stored before is not counted).

    Raises:
        DatabaseError: If the database fails; nothing of the batch is kept then.
    """
    connection = connections[alias]
    vendor = connection.vendor
    if vendor not in ("postgresql", "sqlite"):
        raise DatabaseError(f"the agentops database writer supports PostgreSQL and SQLite, not {vendor}")
    times = _rows.time_format(vendor)
    postgres = vendor == "postgresql"
    # psycopg 3 has COPY from Python rows; with psycopg2, multi-row VALUES.
    copy = postgres and _has_copy(connection)
    process_id, processes = process if process is not None else (None, "")
    ordered = _rows.unique_spans(spans)
    now = _adapt(dt.datetime.now(dt.UTC), times)

    def make_row(span: SpanRecord) -> _rows.SpanRow:
        return _rows.SpanRow(span, times, process_id)

    def sums(rows: Sequence[_rows.SpanRow]) -> _Sums:
        return _rows.summaries(rows, now, processes), _rollup.aggregate(rows)

    # wrap_database_errors: COPY goes past Django's cursor wrapper, and its
    # driver errors must arrive as Django's (DataError, OperationalError, ...).
    # No temporary table and no statement outside the batch's transaction: a
    # role without TEMPORARY and PgBouncer's transaction pooling work as well.
    with connection.wrap_database_errors, _cursor(connection) as cursor:
        if own_transaction:
            if postgres:
                cursor.execute("BEGIN")
                # Spans are not worth a wait for the disk: a server crash may lose the last
                # moments of them (never half a batch), and the host's own commits are not held up.
                cursor.execute("SET LOCAL synchronous_commit TO OFF")
            else:
                # Take the write lock first: a deferred transaction that upgrades
                # later can fail at once with "database is locked".
                cursor.execute("PRAGMA busy_timeout = 30000")
                cursor.execute("BEGIN IMMEDIATE")
        try:
            if copy:
                inserted, (summaries, aggregated) = _insert_spans_copy(connection, cursor, ordered, make_row, sums)
            else:
                inserted = _insert_spans_values(cursor, [make_row(span) for span in ordered], postgres=postgres)
                summaries, aggregated = sums(inserted)
            if postgres:
                if summaries:
                    # All of them as one JSON parameter (see agentops_django.writer._params).
                    cursor.execute(
                        upsert_traces_sql(0, postgres=True, types=_column_types(connection)), [json_rows(summaries)]
                    )
            else:
                for start in range(0, len(summaries), CHUNK):
                    chunk = summaries[start : start + CHUNK]
                    cursor.execute(upsert_traces_sql(len(chunk), postgres=False), flatten(chunk))
            # The overview's rollup, in the same transaction: exact across processes.
            # (Its own failure, under a savepoint, costs only the rollup of this batch.)
            _rollup.write(cursor, connection, inserted, postgres=postgres, chunk=CHUNK, aggregated=aggregated)
            if own_transaction:
                cursor.execute("COMMIT")
        except BaseException:
            if own_transaction:
                try:
                    cursor.execute("ROLLBACK")
                except Exception:  # the original error is what matters
                    pass
            raise
    return len(inserted)


def _has_copy(connection: Any) -> bool:
    return getattr(connection.Database, "__name__", "") == "psycopg"


#: A batch's trace summaries and rollup (:func:`agentops_django.writer._rows.summaries`, :func:`_rollup.aggregate`).
_Sums = tuple[list[tuple[Any, ...]], _rollup.Aggregate]


def _insert_spans_values(cursor: Any, rows: list[_rows.SpanRow], postgres: bool) -> list[_rows.SpanRow]:
    """Multi-row ``INSERT ... VALUES ... ON CONFLICT DO NOTHING RETURNING`` in chunks: the rows really inserted."""
    by_key = {row.key: row for row in rows}
    inserted: list[_rows.SpanRow] = []
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start : start + CHUNK]
        cursor.execute(insert_spans_sql(len(chunk), postgres), flatten(row.values for row in chunk))
        inserted.extend(by_key[(trace_id, span_id)] for trace_id, span_id in cursor.fetchall())
    return inserted


def _insert_spans_copy(
    connection: Any,
    cursor: Any,
    spans: Sequence[SpanRecord],
    make_row: Callable[[SpanRecord], _rows.SpanRow],
    sums: Callable[[Sequence[_rows.SpanRow]], _Sums],
) -> tuple[list[_rows.SpanRow], _Sums]:
    """PostgreSQL: ``COPY`` the spans straight into their table; if one is stored already, insert them one by one.

    A span is almost always new, so the batch is first copied straight in
    (all of it then counts as inserted). Each span is converted as it goes
    out, and the batch's sums are added up while the server stores the last
    rows: the server's work overlaps the writer's instead of following it.

    If any span of the batch is stored already (a redelivery, or another
    process wrote it meanwhile), the copy fails as a whole on the unique
    constraint, is rolled back to the savepoint, and the batch goes in by
    ``INSERT ... ON CONFLICT DO NOTHING RETURNING``, which says which spans
    are new; the sums are then those of the new ones.

    Returns:
        The rows really inserted, and their sums.
    """
    rows: list[_rows.SpanRow] = []
    cursor.execute("SAVEPOINT agentops_copy")
    try:
        with cursor.copy(copy_sql()) as copy:
            for span in spans:
                row = make_row(span)
                rows.append(row)
                copy.write_row(row.values)
            prepared = sums(rows)
    except (IntegrityError, connection.Database.IntegrityError):
        cursor.execute("ROLLBACK TO SAVEPOINT agentops_copy")
    else:
        cursor.execute("RELEASE SAVEPOINT agentops_copy")
        return rows, prepared
    rows.extend(make_row(span) for span in spans[len(rows) :])
    inserted = _insert_spans_values(cursor, rows, postgres=True)
    return inserted, sums(inserted)


def _values_sql(columns: Sequence[str], count: int, postgres: bool, json_columns: frozenset[str]) -> str:
    marks = ", ".join("%s::jsonb" if postgres and c in json_columns else "%s" for c in columns)
    return ", ".join([f"({marks})"] * count)


def _source(columns: Sequence[str], count: int, postgres: bool, json_columns: frozenset[str]) -> str:
    return f"VALUES {_values_sql(columns, count, postgres, json_columns)}"


def insert_spans_sql(count: int, postgres: bool) -> str:
    """``INSERT`` of ``count`` spans returning the keys really inserted."""
    return (
        f"INSERT INTO {SPAN_TABLE} ({', '.join(SPAN_COLUMNS)}) "
        f"{_source(SPAN_COLUMNS, count, postgres, _JSON_SPAN_COLUMNS)} "
        "ON CONFLICT (trace_id, span_id) DO NOTHING RETURNING trace_id, span_id"
    )


def copy_sql() -> str:
    """``COPY ... FROM STDIN`` straight into the span table."""
    return f"COPY {SPAN_TABLE} ({', '.join(SPAN_COLUMNS)}) FROM STDIN"


def _column_types(connection: Any) -> tuple[str, ...]:
    """The PostgreSQL type of each trace-summary column, from the model (so a migration keeps them right).

    Worked out once per process (the same for every PostgreSQL connection), not per batch.
    """
    global _trace_types
    if _trace_types is None:
        from agentops_django.models import Trace

        _trace_types = tuple(str(Trace._meta.get_field(column).db_type(connection)) for column in TRACE_COLUMNS)
    return _trace_types


_trace_types: tuple[str, ...] | None = None


def upsert_traces_sql(count: int, postgres: bool, types: Sequence[str] | None = None) -> str:
    """``INSERT ... ON CONFLICT DO UPDATE`` adding trace summaries to the stored ones.

    Args:
        count: Summaries given as rows of ``VALUES`` parameters.
        postgres: PostgreSQL (else SQLite) syntax.
        types: PostgreSQL only: the column types, when the summaries come as
            one JSON parameter (:func:`~agentops_django.writer._params.json_rows`) instead of rows.
    """
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
    additive = ("span_count", "error_count", "input_tokens", "output_tokens", "total_tokens", "cost", "unpriced_calls")
    assignments = [f"{c} = {t}.{c} + excluded.{c}" for c in additive]
    assignments += [
        f"{c} = {from_root.format(t=t, c=c)}"
        for c in ("name", "status", "kind", "root_span_id", "tags", "tags_text", "service_name", "user_id", "username")
    ]
    # The processes that stored the trace's spans: added unless already listed (one process per batch).
    contains = (
        f"strpos({t}.processes_text, excluded.processes_text)"
        if postgres
        else (f"instr({t}.processes_text, excluded.processes_text)")
    )
    assignments.append(
        f"processes_text = CASE WHEN {t}.processes_text = '' THEN excluded.processes_text"
        f" WHEN excluded.processes_text = '' OR {contains} > 0 THEN {t}.processes_text"
        f" ELSE substr({t}.processes_text || substr(excluded.processes_text, 2), 1, 1024) END"
    )
    assignments += [
        f"root_rank = {greatest}({t}.root_rank, excluded.root_rank)",
        f"started_at = {start}",
        f"ended_at = {end}",
        f"duration_ms = {duration}",
        "updated_at = excluded.updated_at",
    ]
    if types is not None:
        source = json_rows_source(types)
    else:
        source = _source(TRACE_COLUMNS, count, postgres, frozenset({"tags"}))
    return (
        f"INSERT INTO {t} ({', '.join(TRACE_COLUMNS)}) {source} "
        f"ON CONFLICT (trace_id) DO UPDATE SET {', '.join(assignments)}"
    )


def store_writer_stats(
    alias: str,
    host: str,
    pid: int,
    started: dt.datetime,
    counters: Sequence[int],
    identity: Sequence[Any] = ("", "", "", None),
) -> int:
    """Upsert one process's row: its writer counters (absolute values) and its identity.

    Args:
        alias: The Django database alias.
        host: The process's host name.
        pid: Its pid.
        started: When its writer started (with host and pid, the row's key).
        counters: ``written``, ``dropped``, ``errors``.
        identity: ``role``, ``service_name``, ``worker_node``, ``pool_index``.

    Returns:
        The row's id (what its span rows point at).

    Raises:
        DatabaseError: If the database fails.
    """
    connection = connections[alias]
    times = _rows.time_format(connection.vendor)
    params = [host, pid, _adapt(started, times), *counters, *identity, _adapt(dt.datetime.now(dt.UTC), times)]
    returning = connection.features.can_return_columns_from_insert
    with _cursor(connection) as cursor:
        cursor.execute(upsert_stats_sql(returning=returning), params)
        if not returning:  # SQLite before 3.35
            cursor.execute(
                f"SELECT id FROM {STATS_TABLE} WHERE host = %s AND pid = %s AND process_started_at = %s", params[:3]
            )
        return int(cursor.fetchone()[0])


def upsert_stats_sql(returning: bool = True) -> str:
    """Upsert of one process's writer counters (absolute values) and identity, returning the row's id."""
    columns = (
        "host",
        "pid",
        "process_started_at",
        "spans_written",
        "spans_dropped",
        "write_errors",
        "role",
        "service_name",
        "worker_node",
        "pool_index",
        "updated_at",
    )
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns[3:])
    return (
        f"INSERT INTO {STATS_TABLE} ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))}) "
        f"ON CONFLICT (host, pid, process_started_at) DO UPDATE SET {updates}{' RETURNING id' if returning else ''}"
    )


def flatten(rows: Iterable[Sequence[Any]]) -> list[Any]:
    """The parameters of a multi-row ``VALUES``."""
    params: list[Any] = []
    extend = params.extend
    for row in rows:
        extend(row)
    return params
