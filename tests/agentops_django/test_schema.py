"""The trace tables' indexes: each one earns its place on the hottest tables of the database."""

from __future__ import annotations

import pytest
from django.db import connection

from agentops_django.models import Span

pytestmark = pytest.mark.django_db


def span_indexes() -> dict[str, dict]:
    """The span table's indexes and unique constraints but its primary key."""
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, Span._meta.db_table)
    return {
        name: info
        for name, info in constraints.items()
        if (info["index"] or info["unique"]) and not info["primary_key"]
    }


def test_span_table_has_no_index_on_trace_id_alone_since_the_composite_indexes_lead_with_it():
    """Every insert updates every index: the span table keeps only those its queries need.

    Lookups by trace (the trace page, prune) use the unique ``(trace_id, span_id)``
    and the ``(trace_id, started_at)`` indexes; an index on ``trace_id`` alone
    (or its ``LIKE`` twin on PostgreSQL) would only add size and write cost.
    """
    on_columns = sorted(info["columns"] for info in span_indexes().values() if info["columns"])
    assert on_columns == [["trace_id", "span_id"], ["trace_id", "started_at"]]
    # (On PostgreSQL the span-name search adds a trigram index on an expression, which has no columns.)


def test_lookups_by_trace_still_use_an_index():
    """The trace page's query for a trace's spans in start order is answered from an index, not a scan."""
    if connection.vendor != "postgresql":
        pytest.skip("the plan is checked on PostgreSQL")
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(
            f"EXPLAIN SELECT * FROM {Span._meta.db_table} WHERE trace_id = %s ORDER BY started_at", ["a" * 32]
        )
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "agentops_span_trace_start" in plan, plan
