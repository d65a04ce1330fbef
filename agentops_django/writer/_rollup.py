"""The overview's rollup, added by the writer in each batch's transaction.

A batch's new spans of kind ``request``, ``celery.task`` and ``llm`` are
first added up in Python per ``(period, minute, kind, name)`` (a few rows per
batch), then upserted with ``INSERT ... ON CONFLICT DO UPDATE`` that adds to
what other batches and processes stored: the same additive rule as the trace
summaries, so the rollup is exact however the spans were split.

Only spans the batch really inserted are counted (a redelivered span is not
counted twice). The tokens and cost of an LLM span are :mod:`agentops_django._usage`'s,
the same numbers the trace totals add. Each span counts in its start minute,
hour and day (``period`` 1, 60, 1440), under its key and under its kind's
all-keys row (name ``""``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from django.db import DatabaseError

from agentops import semconv
from agentops_django import _histogram
from agentops_django._usage import number
from agentops_django.writer._params import json_rows, json_rows_source
from agentops_django.writer._rows import SpanRow

logger = logging.getLogger(__name__)

ROLLUP_TABLE = "agentops_django_rollup"
BUCKET_TABLE = "agentops_django_rollupbucket"
KEY_COLUMNS = ("period", "minute", "kind", "name")
#: What a rollup row adds up (the overview reads the same columns).
SUM_COLUMNS = (
    "count",
    "errors",
    "duration_ms",
    "input_tokens",
    "output_tokens",
    "cost",
    "unpriced_calls",
    "db_queries",
    "db_time_ms",
    "repeated_queries",
)
ROLLUP_COLUMNS = (*KEY_COLUMNS, *SUM_COLUMNS)
BUCKET_COLUMNS = (*KEY_COLUMNS, "series", "bucket", "count")
#: Rollup kind of each span kind counted.
KINDS = {semconv.SpanKind.REQUEST: "request", semconv.SpanKind.CELERY_TASK: "task", semconv.SpanKind.LLM: "llm"}
#: The periods kept, in minutes: a minute, an hour, a day (UTC).
PERIODS = (1, 60, 1440)
#: The name of the rows that add up every key of a kind (the charts read these).
ALL = ""
_NS_PER_MINUTE = 60_000_000_000
#: A batch's rollup rows and histogram bucket rows (see :func:`aggregate`).
Aggregate = tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]


def rollup_name(kind: str, row_name: str, attributes: Any) -> str:
    """The key a span is counted under: method and route, task name, or model."""
    if kind == "request":
        if attributes.get(semconv.HTTP_ROUTE) is not None:
            return row_name
        # No route matched: one key per method, so unmatched paths cannot flood the rollup.
        return f"{attributes.get(semconv.HTTP_REQUEST_METHOD) or 'HTTP'} (no route)"[:255]
    if kind == "task":
        return str(attributes.get(semconv.CELERY_TASK_NAME) or row_name)[:255]
    model = attributes.get(semconv.GEN_AI_REQUEST_MODEL) or attributes.get(semconv.GEN_AI_RESPONSE_MODEL)
    return str(model)[:255] if model else "(unknown model)"


def aggregate(rows: Sequence[SpanRow]) -> Aggregate:
    """The rollup rows and histogram bucket rows of a batch, sorted by key (so writers lock in one order).

    One pass over the spans adds them up per minute and key; the hours, days
    and the kind-wide rows (name ``""``, :data:`ALL`) are then added up from
    those few minute entries, so their cost does not grow with the spans.

    Args:
        rows: The spans the batch really inserted.

    Returns:
        ``(rollups, buckets)`` in :data:`ROLLUP_COLUMNS` and :data:`BUCKET_COLUMNS` order.
    """
    minutes: dict[tuple[int, str, str], list[Any]] = {}
    minute_buckets: dict[tuple[int, str, str, str, int], int] = {}
    for row in rows:
        kind = KINDS.get(row.kind)  # type: ignore[call-overload]
        if kind is None:
            continue
        attributes = row.attributes
        key = (row.start_ns // _NS_PER_MINUTE, kind, rollup_name(kind, row.name, attributes))
        duration = (row.end_ns - row.start_ns) / 1e6
        entry = minutes.get(key)
        if entry is None:
            entry = minutes[key] = [0, 0, 0.0, 0, 0, 0.0, 0, 0, 0.0, 0]
        entry[0] += 1
        if row.error:
            entry[1] += 1
        entry[2] += duration
        if kind == "llm":
            entry[3] += row.input_tokens
            entry[4] += row.output_tokens
            entry[5] += float(row.cost)
            entry[6] += row.unpriced
        else:
            queries = number(attributes.get(semconv.AGENTOPS_DB_QUERY_COUNT))
            if queries:
                entry[7] += int(queries)
                entry[8] += number(attributes.get(semconv.AGENTOPS_DB_QUERY_TIME_MS)) or 0.0
            if (number(attributes.get(semconv.AGENTOPS_DB_REPEATED_QUERIES)) or 0) > 0:
                entry[9] += 1
            if kind == "task":
                wait = number(attributes.get(semconv.CELERY_QUEUE_WAIT_MS))
                if wait is not None:
                    bucket_key = (*key, "q", _histogram.bucket(wait))
                    minute_buckets[bucket_key] = minute_buckets.get(bucket_key, 0) + 1
        bucket_key = (*key, "d", _histogram.bucket(duration))
        minute_buckets[bucket_key] = minute_buckets.get(bucket_key, 0) + 1

    sums: dict[tuple[int, int, str, str], list[Any]] = {}
    for (minute, kind, name), entry in minutes.items():
        for period in PERIODS:
            for key_name in (name, ALL):
                rollup_key = (period, minute - minute % period, kind, key_name)
                total = sums.get(rollup_key)
                if total is None:
                    sums[rollup_key] = list(entry)
                else:
                    for i, value in enumerate(entry):
                        total[i] += value
    buckets: dict[tuple[int, int, str, str, str, int], int] = {}
    for (minute, kind, name, series, index), count in minute_buckets.items():
        for period in PERIODS:
            for key_name in (name, ALL):
                row_key = (period, minute - minute % period, kind, key_name, series, index)
                buckets[row_key] = buckets.get(row_key, 0) + count
    return (
        [(*key, *sums[key]) for key in sorted(sums)],
        [(*key, buckets[key]) for key in sorted(buckets)],
    )


def upsert_sql(table: str, columns: Sequence[str], key: Sequence[str], count: int, types: Sequence[str] | None) -> str:
    """``INSERT ... ON CONFLICT (key) DO UPDATE`` adding every other column to the stored row.

    Args:
        table: The table.
        columns: Its columns, key first.
        key: The unique key's columns.
        count: Rows given as ``VALUES`` parameters (SQLite, psycopg2).
        types: PostgreSQL: the column types, the rows coming as one JSON parameter
            (:func:`~agentops_django.writer._params.json_rows`).
    """
    added = ", ".join(f"{c} = {table}.{c} + excluded.{c}" for c in columns if c not in key)
    if types is not None:
        source = json_rows_source(types)
    else:
        marks = ", ".join(["%s"] * len(columns))
        source = "VALUES " + ", ".join([f"({marks})"] * count)
    return f"INSERT INTO {table} ({', '.join(columns)}) {source} ON CONFLICT ({', '.join(key)}) DO UPDATE SET {added}"


def column_types(connection: Any) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The PostgreSQL types of the rollup's and the buckets' columns, from the models (once per process)."""
    global _types
    if _types is None:
        from agentops_django.models import Rollup, RollupBucket

        _types = (
            tuple(str(Rollup._meta.get_field(c).db_type(connection)) for c in ROLLUP_COLUMNS),
            tuple(str(RollupBucket._meta.get_field(c).db_type(connection)) for c in BUCKET_COLUMNS),
        )
    return _types


_types: tuple[tuple[str, ...], tuple[str, ...]] | None = None


def write(
    cursor: Any,
    connection: Any,
    rows: Sequence[SpanRow],
    *,
    postgres: bool,
    chunk: int,
    aggregated: Aggregate | None = None,
) -> bool:
    """Add the rollup of ``rows`` to the stored one, inside the caller's transaction.

    The upserts run under a savepoint: if they fail (the rollup's migration
    not applied yet, say), they are rolled back alone and logged, and the
    batch's spans and summaries are stored all the same.

    Args:
        cursor: The batch's cursor.
        connection: Its Django connection.
        rows: The spans the batch really inserted.
        postgres: PostgreSQL (one JSON parameter) or SQLite (rows of ``VALUES``).
        chunk: SQLite: rows per statement.
        aggregated: :func:`aggregate` of ``rows`` if the caller has it already.

    Returns:
        False if the rollup could not be stored (the rest of the batch is unaffected).
    """
    rollups, buckets = aggregate(rows) if aggregated is None else aggregated
    if not rollups:
        return True
    types = column_types(connection) if postgres else (None, None)
    tables = (
        (ROLLUP_TABLE, ROLLUP_COLUMNS, KEY_COLUMNS, rollups, types[0]),
        (BUCKET_TABLE, BUCKET_COLUMNS, BUCKET_COLUMNS[:-1], buckets, types[1]),
    )
    cursor.execute("SAVEPOINT agentops_rollup")
    try:
        for table, columns, key, values, kinds in tables:
            if kinds is not None:
                cursor.execute(upsert_sql(table, columns, key, 0, kinds), [json_rows(values)])
                continue
            for start in range(0, len(values), chunk):
                part = values[start : start + chunk]
                params: list[Any] = []
                for value in part:
                    params.extend(value)
                cursor.execute(upsert_sql(table, columns, key, len(part), None), params)
    except DatabaseError as exc:
        cursor.execute("ROLLBACK TO SAVEPOINT agentops_rollup")
        cursor.execute("RELEASE SAVEPOINT agentops_rollup")
        global _failures
        _failures += 1
        if _failures == 1 or _failures % 1000 == 0:  # once, then now and then: not a line per batch
            logger.warning(
                "agentops_django: the overview's rollup was not stored for %d batches (spans are); "
                "did 'manage.py migrate' run? %s",
                _failures,
                exc,
            )
        return False
    cursor.execute("RELEASE SAVEPOINT agentops_rollup")
    return True


#: Batches whose rollup could not be stored, in this process.
_failures = 0
