"""Migration 0004's trigram indexes on PostgreSQL: made where ``pg_trgm`` can be had, skipped (never failed) elsewhere.

A database owner may install the trusted ``pg_trgm`` extension (PostgreSQL
13+); a role that owns neither the database nor the extension may not. Its
``migrate`` must still succeed, with the searches working by scanning.
"""

from __future__ import annotations

import datetime as dt
import logging

import pytest
from django.db import DatabaseError, connections

from agentops_django.admin._search import search_filter
from agentops_django.models import Trace
from tests.agentops_django.test_database_setups import PG, Setups, migrate_app, pg_admin, setups

__all__ = ["setups"]  # the fixture

pytestmark = pytest.mark.postgres

TRIGRAM = {
    "agentops_trace_name_trgm",
    "agentops_trace_tags_trgm",
    "agentops_trace_procs_trgm",
    "agentops_span_name_trgm",
}


def _indexes(alias: str) -> set[str]:
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE indexname LIKE 'agentops_%%_trgm'")
        return {row[0] for row in cursor.fetchall()}


def _search_works(alias: str) -> None:
    now = dt.datetime.now(dt.UTC)
    for name in ("POST /inquiries/", "summarise_chord", "GET /"):
        Trace.objects.using(alias).create(trace_id=name.encode().hex()[:32].ljust(32, "0"), name=name, started_at=now)
    found = Trace.objects.using(alias).filter(search_filter("chord")).values_list("name", flat=True)
    assert list(found) == ["summarise_chord"]


def test_a_database_owner_gets_the_extension_and_the_trigram_indexes(setups: Setups) -> None:
    role = setups.pg_role()
    name = setups.pg_database(owner=role)
    alias = setups.alias(name, {**PG, "NAME": name, "USER": role})
    migrate_app(alias)
    assert _indexes(alias) == TRIGRAM
    _search_works(alias)


def test_a_role_that_may_not_install_pg_trgm_migrates_without_it(
    setups: Setups, caplog: pytest.LogCaptureFixture
) -> None:
    role = setups.pg_role()
    name = setups.pg_database()  # owned by postgres
    with pg_admin() as admin:
        admin.execute(f'REVOKE CREATE ON DATABASE "{name}" FROM PUBLIC')
    import psycopg

    with psycopg.connect(host="127.0.0.1", port=5432, user="postgres", dbname=name, autocommit=True) as owner:
        owner.execute(f'GRANT CREATE, USAGE ON SCHEMA public TO "{role}"')
    alias = setups.alias(name, {**PG, "NAME": name, "USER": role})
    with connections[alias].cursor() as cursor, pytest.raises(DatabaseError, match="permission denied"):
        cursor.execute("CREATE EXTENSION pg_trgm")
    caplog.set_level(logging.WARNING, logger="agentops_django")

    migrate_app(alias)

    assert _indexes(alias) == set()
    assert any("pg_trgm not installed" in record.getMessage() for record in caplog.records)
    _search_works(alias)
