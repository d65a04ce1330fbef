"""Database set-ups users run, each with real servers: the writer stores every span and the admin shows them.

* ``USE_TZ = False``: times are the wall-clock times of ``TIME_ZONE``, as Django stores them;
* a PostgreSQL role without the ``TEMPORARY`` privilege;
* PgBouncer in transaction pooling mode;
* a server that cuts idle sessions (``idle_session_timeout``);
* traces in a second database (``AGENTOPS["DATABASE_ALIAS"]``), with the shipped router or none.

Databases, roles and the PgBouncer process are made per test by the
:class:`Setups` fixture and removed after it. Django reads ``DATABASES`` once
(``django.db.connections.settings`` is that very dict) and
``override_settings(DATABASES=...)`` is refused, so an alias is added to and
removed from that dict; the writer threads close their own connections when
shut down, before the alias goes.

Django's test cases refuse connections to any alias of ``DATABASES`` that is
not in their ``databases``, which is fixed before a test starts; so the tests
that add an alias run outside pytest-django's ``django_db`` harness, with the
database blocker lifted (:func:`setups`), and the one that also needs the
test database (for the admin's user) flushes it afterwards as a
``TransactionTestCase`` does.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import os
import random
import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections, router
from django.test import override_settings
from django.urls import reverse
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

from agentops_django.conf import ROUTER_PATH
from agentops_django.models import Span, Trace, WriterStats
from agentops_django.writer import DatabaseSpanProcessor
from tests.conftest import IN_CI

RESOURCE = Resource.create({"service.name": "shop"})
PG = {"ENGINE": "django.db.backends.postgresql", "HOST": "127.0.0.1", "PORT": "5432", "USER": "postgres"}
AGENTOPS_TABLES = {"agentops_django_trace", "agentops_django_span", "agentops_django_writerstats"}
LIST_URL = "/admin/agentops_django/trace/"


# --- spans -----------------------------------------------------------------------------------------


def unix_ns(when: dt.datetime) -> int:
    return int(when.timestamp()) * 1_000_000_000 + when.microsecond * 1_000


def trace_spans(name: str, start: dt.datetime, *, children: int = 2, exception: bool = False) -> tuple[str, list]:
    """A request's spans as the SDK hands them to processors: the root at ``start``, then ``children`` tools.

    Returns:
        The trace id (32 hex digits) and the spans, root first.
    """
    trace_id = random.getrandbits(128) | 1
    t0 = unix_ns(start)
    ms = 1_000_000

    def span(span_id: int, parent: int | None, span_name: str, kind: str, begin: int, end: int, **extra: Any):
        return ReadableSpan(
            name=span_name,
            context=SpanContext(trace_id, span_id, is_remote=False, trace_flags=TraceFlags(1)),
            parent=SpanContext(trace_id, parent, is_remote=False, trace_flags=TraceFlags(1)) if parent else None,
            resource=RESOURCE,
            attributes={"agentops.span.kind": kind},
            kind=SpanKind.SERVER if kind == "request" else SpanKind.INTERNAL,
            status=Status(StatusCode.OK),
            start_time=t0 + begin * ms,
            end_time=t0 + end * ms,
            **extra,
        )

    spans = [span(1, None, name, "request", 0, 500)]
    for i in range(children):
        events = ()
        if exception and i == children - 1:
            events = (
                Event(
                    "exception",
                    {"exception.type": "TimeoutError", "exception.message": "search timed out"},
                    timestamp=t0 + (15 + 10 * i) * ms,
                ),
            )
        spans.append(span(i + 2, 1, f"step{i}.tool", "tool", 10 + 10 * i, 20 + 10 * i, events=events))
    return format(trace_id, "032x"), spans


def feed(writer: DatabaseSpanProcessor, spans: list) -> None:
    """Hand ``spans`` to the writer as the SDK would and wait until they are written."""
    for span in spans:
        writer.on_end(span)
    assert writer.force_flush(30_000)


def agentops_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name.startswith("agentops") and r.levelno >= logging.WARNING]


# --- databases, roles, PgBouncer -------------------------------------------------------------------


def pg_admin() -> psycopg.Connection:
    return psycopg.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres", autocommit=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def pgbouncer_binary() -> str:
    """Debian's pgbouncer, installed with apt-get if missing; skip (fail under CI=true) if it cannot be had."""
    found = shutil.which("pgbouncer") or ("/usr/sbin/pgbouncer" if os.path.exists("/usr/sbin/pgbouncer") else None)
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = ["apt-get", "install", "-y", "-qq", "pgbouncer"]
        if subprocess.run(install, env=env, capture_output=True, timeout=600).returncode != 0:
            subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, timeout=600)
            subprocess.run(install, env=env, capture_output=True, timeout=600)
        found = shutil.which("pgbouncer") or ("/usr/sbin/pgbouncer" if os.path.exists("/usr/sbin/pgbouncer") else None)
    if found is None:
        message = "pgbouncer is not installed (Debian's pgbouncer package) and could not be installed"
        if IN_CI:
            pytest.fail(f"{message} (CI=true: a missing server is a failure)")
        pytest.skip(message)
    return found


class Setups:
    """Throwaway database aliases, PostgreSQL databases and roles, writers and PgBouncer, removed by :meth:`close`."""

    def __init__(self) -> None:
        self.aliases: list[str] = []
        self.databases: list[str] = []
        self.roles: list[str] = []
        self.writers: list[DatabaseSpanProcessor] = []
        self.bouncer: subprocess.Popen | None = None
        self.bouncer_dir: str | None = None

    # aliases

    def alias(self, alias: str, config: dict[str, Any]) -> str:
        """Make ``alias`` usable through ``django.db.connections`` (and in ``settings.DATABASES``) for this test."""
        assert alias not in connections.settings
        configured = connections.configure_settings({DEFAULT_DB_ALIAS: {}, alias: dict(config)})[alias]
        connections.settings[alias] = configured
        settings.DATABASES[alias] = configured  # the same dict, unless a test replaced the setting
        self.aliases.append(alias)
        return alias

    def second_database(self, alias: str, directory: Path) -> str:
        """A database of the same kind as the test database: a SQLite file, or a new PostgreSQL database."""
        if connections[DEFAULT_DB_ALIAS].vendor == "sqlite":
            config = {"ENGINE": "django.db.backends.sqlite3", "NAME": str(directory / f"{alias}.sqlite3")}
            return self.alias(alias, {**config, "OPTIONS": {"timeout": 30}})
        return self.alias(alias, {**PG, "NAME": self.pg_database()})

    # PostgreSQL

    def pg_role(self) -> str:
        name = f"agentops_role_{secrets.token_hex(4)}"
        with pg_admin() as admin:
            admin.execute(f'CREATE ROLE "{name}" LOGIN')
        self.roles.append(name)
        return name

    def pg_database(self, owner: str = "postgres") -> str:
        name = f"agentops_setup_{secrets.token_hex(4)}"
        with pg_admin() as admin:
            admin.execute(f'CREATE DATABASE "{name}" OWNER "{owner}"')
        self.databases.append(name)
        return name

    # the writer

    def writer(self, alias: str, **options: Any) -> DatabaseSpanProcessor:
        options = {"queue_size": 10_000, "batch_size": 50, "batch_interval": 0.01, **options}
        writer = DatabaseSpanProcessor(alias, **options)
        self.writers.append(writer)
        return writer

    # PgBouncer

    def pgbouncer(self, *, pool_size: int) -> int:
        """Start PgBouncer in transaction pooling mode in front of 127.0.0.1:5432; returns its port.

        Consecutive transactions of one client go to the server connections
        in turn (``server_round_robin``), as they do on a busy pooler.
        """
        binary = pgbouncer_binary()
        port = free_port()
        # pgbouncer refuses to run as root: it runs as postgres, which must read its files.
        self.bouncer_dir = directory = tempfile.mkdtemp(prefix="agentops-pgbouncer-")
        Path(directory, "userlist.txt").write_text('"postgres" ""\n')
        Path(directory, "pgbouncer.ini").write_text(
            "[databases]\n"
            "* = host=127.0.0.1 port=5432\n"
            "[pgbouncer]\n"
            "listen_addr = 127.0.0.1\n"
            f"listen_port = {port}\n"
            "unix_socket_dir =\n"
            "auth_type = trust\n"
            f"auth_file = {directory}/userlist.txt\n"
            "pool_mode = transaction\n"
            f"default_pool_size = {pool_size}\n"
            "server_round_robin = 1\n"
            "ignore_startup_parameters = extra_float_digits,options\n"
            f"logfile = {directory}/pgbouncer.log\n"
        )
        command = [binary, f"{directory}/pgbouncer.ini"]
        if os.geteuid() == 0:
            shutil.chown(directory, "postgres", "postgres")
            for name in ("userlist.txt", "pgbouncer.ini"):
                shutil.chown(Path(directory, name), "postgres", "postgres")
            command[1:1] = ["-u", "postgres"]
        self.bouncer = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.bouncer.poll() is not None:
                output = self.bouncer.stdout.read().decode(errors="replace") if self.bouncer.stdout else ""
                pytest.fail(f"pgbouncer exited with {self.bouncer.returncode}: {output}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return port
            except OSError:
                time.sleep(0.1)
        pytest.fail("pgbouncer did not start listening within 15 s")

    def close(self) -> None:
        for writer in self.writers:
            writer.shutdown()
        for alias in reversed(self.aliases):
            if hasattr(connections._connections, alias):
                connections[alias].close()
                del connections[alias]
            connections.settings.pop(alias, None)
            settings.DATABASES.pop(alias, None)
        if self.bouncer is not None:
            self.bouncer.terminate()
            try:
                self.bouncer.wait(10)
            except subprocess.TimeoutExpired:
                self.bouncer.kill()
                self.bouncer.wait()
            if self.bouncer.stdout:
                self.bouncer.stdout.close()
        if self.bouncer_dir:
            shutil.rmtree(self.bouncer_dir, ignore_errors=True)
        if self.databases or self.roles:
            with pg_admin() as admin:
                for name in self.databases:
                    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                for name in self.roles:
                    admin.execute(f'DROP ROLE IF EXISTS "{name}"')


@pytest.fixture
def setups(django_db_blocker: Any) -> Iterator[Setups]:
    """Factory of throwaway databases and aliases for one test, all removed after it."""
    with django_db_blocker.unblock():
        made = Setups()
        try:
            yield made
        finally:
            made.close()


@pytest.fixture
def flushed_default(setups: Setups) -> Iterator[None]:
    """The test database, usable outside the harness and flushed afterwards (as a TransactionTestCase does)."""
    try:
        yield
    finally:
        call_command("flush", database=DEFAULT_DB_ALIAS, interactive=False, verbosity=0)


def migrate_app(alias: str) -> None:
    call_command("migrate", "agentops_django", database=alias, verbosity=0)


def superuser() -> User:
    return User.objects.create_superuser("admin", "admin@example.com", "pw")


def change_url(trace: Trace) -> str:
    return reverse("admin:agentops_django_trace_change", args=[trace.pk])


# --- USE_TZ = False ------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("zone", ["America/New_York", "Asia/Kolkata"])
def test_without_use_tz_stored_times_are_wall_clock_times_of_time_zone_and_the_admin_shows_them(
    zone: str, setups: Setups, client: Any
) -> None:
    """USE_TZ = False: no shift by the UTC offset, and the list, the trace page and the export all work."""
    start = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)).replace(microsecond=123456)
    expected = start.astimezone(ZoneInfo(zone)).replace(tzinfo=None)
    client.force_login(superuser())
    with override_settings(USE_TZ=False, TIME_ZONE=zone):
        trace_id, spans = trace_spans("GET /naive/", start, exception=True)
        writer = setups.writer(DEFAULT_DB_ALIAS)
        feed(writer, spans)

        trace = Trace.objects.get(trace_id=trace_id)
        assert trace.started_at == expected
        assert Span.objects.get(trace_id=trace_id, span_id=format(1, "016x")).started_at == expected
        assert trace.duration_ms == pytest.approx(500.0)

        response = client.get(LIST_URL)
        assert response.status_code == 200
        html = response.content.decode()
        assert expected.strftime("%Y-%m-%d %H:%M:%S") in html
        assert f"{len(spans)} spans written" in html  # the writer's counters, stored in local time too
        # "Last hour" compares with naive local now (east of UTC, a time stored as UTC would fall outside it).
        assert [t.trace_id for t in client.get(LIST_URL, {"recent": "1h"}).context["cl"].result_list] == [trace_id]

        page = client.get(change_url(trace))
        assert page.status_code == 200
        assert expected.strftime("%Y-%m-%d %H:%M:%S") in page.content.decode()
        assert "step1.tool" in page.content.decode()

        failed = format(3, "016x")
        detail = client.get(reverse("admin:agentops_django_trace_span", args=[trace.pk, failed]))
        assert detail.status_code == 200
        assert "search timed out" in detail.content.decode()

        export = client.get(reverse("admin:agentops_django_trace_otlp", args=[trace.pk])).json()
        exported = export["resourceSpans"][0]["scopeSpans"][0]["spans"]
        root = next(span for span in exported if span["spanId"] == format(1, "016x"))
        assert root["startTimeUnixNano"] == str(unix_ns(start))
        writer.shutdown()


# --- a role without TEMPORARY ----------------------------------------------------------------------


@pytest.mark.postgres
def test_a_role_without_the_temporary_privilege_stores_every_span(
    setups: Setups, caplog: pytest.LogCaptureFixture
) -> None:
    """Least-privilege PostgreSQL roles: no temporary table is ever needed, so nothing is lost."""
    role = setups.pg_role()
    name = setups.pg_database(owner=role)
    with pg_admin() as admin:
        admin.execute(f'REVOKE TEMPORARY ON DATABASE "{name}" FROM PUBLIC')
        admin.execute(f'REVOKE TEMPORARY ON DATABASE "{name}" FROM "{role}"')
    alias = setups.alias(name, {**PG, "NAME": name, "USER": role})
    with connections[alias].cursor() as cursor, pytest.raises(DatabaseError, match="permission denied"):
        cursor.execute("CREATE TEMPORARY TABLE agentops_probe (x integer)")
    migrate_app(alias)
    caplog.set_level(logging.INFO, logger="agentops_django")

    writer = setups.writer(alias, batch_size=10)
    traces = [trace_spans(f"GET /least-privilege/{i}", dt.datetime.now(dt.UTC), children=4) for i in range(6)]
    feed(writer, [span for _, spans in traces[:3] for span in spans])
    # A redelivery mixed with new spans: the copy fails on the duplicate and the batch is inserted instead.
    feed(writer, traces[0][1][:2] + [span for _, spans in traces[3:] for span in spans])
    writer.shutdown()

    assert Span.objects.using(alias).count() == 30
    assert sorted(Trace.objects.using(alias).values_list("span_count", flat=True)) == [5] * 6
    assert (writer.dropped, writer.errors, writer.written) == (0, 0, 30)
    assert WriterStats.objects.using(alias).get().spans_written == 30
    assert agentops_warnings(caplog) == []


# --- PgBouncer, transaction pooling ----------------------------------------------------------------


@pytest.mark.postgres
def test_pgbouncer_in_transaction_pooling_mode_stores_every_span(
    setups: Setups, caplog: pytest.LogCaptureFixture
) -> None:
    """Each batch is one transaction and needs no session state, so any server connection may serve it."""
    name = setups.pg_database()
    port = setups.pgbouncer(pool_size=3)
    direct = setups.alias(f"{name}_direct", {**PG, "NAME": name})
    pooled = setups.alias(name, {**PG, "NAME": name, "PORT": str(port), "DISABLE_SERVER_SIDE_CURSORS": True})
    migrate_app(direct)

    # Open three server connections at once, then check that one client's
    # transactions really go to different ones (what broke session state).
    def hold() -> None:
        with psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname=name, autocommit=True) as c:
            c.execute("SELECT pg_sleep(0.3)")

    holders = [threading.Thread(target=hold) for _ in range(3)]
    for thread in holders:
        thread.start()
    for thread in holders:
        thread.join()
    # (prepare_threshold=None: a prepared statement would stay on the server connection that prepared it.)
    with psycopg.connect(
        host="127.0.0.1", port=port, user="postgres", dbname=name, autocommit=True, prepare_threshold=None
    ) as c:
        backends = {c.execute("SELECT pg_backend_pid()").fetchone()[0] for _ in range(9)}
    assert len(backends) > 1

    caplog.set_level(logging.INFO, logger="agentops_django")
    writer = setups.writer(pooled, batch_size=7)
    traces = [trace_spans(f"GET /pooled/{i}", dt.datetime.now(dt.UTC), children=5) for i in range(12)]
    for group in (traces[:4], traces[4:8], traces[8:]):
        feed(writer, [span for _, spans in group for span in spans])
    feed(writer, traces[0][1] + traces[11][1][:3])  # redelivered spans: stored and counted once
    writer.shutdown()

    assert Span.objects.using(direct).count() == 72
    assert sorted(Trace.objects.using(direct).values_list("span_count", flat=True)) == [6] * 12
    assert (writer.dropped, writer.errors, writer.written) == (0, 0, 72)
    assert WriterStats.objects.using(direct).get().spans_written == 72
    assert agentops_warnings(caplog) == []


# --- idle-session timeout --------------------------------------------------------------------------


@pytest.mark.postgres
def test_a_server_that_cuts_idle_sessions_causes_no_warning_and_loses_no_span(
    setups: Setups, caplog: pytest.LogCaptureFixture
) -> None:
    """idle_session_timeout (or a firewall) closing the writer's quiet connection is routine, not a warning."""
    name = setups.pg_database()
    direct = setups.alias(f"{name}_direct", {**PG, "NAME": name})
    cut = setups.alias(name, {**PG, "NAME": name, "OPTIONS": {"options": "-c idle_session_timeout=500"}})
    migrate_app(direct)
    with connections[cut].cursor() as cursor:  # the server really cuts a connection idle for 0.5 s
        cursor.execute("SELECT 1")
        time.sleep(0.8)
        with pytest.raises(DatabaseError):
            cursor.execute("SELECT 1")
    connections[cut].close()

    caplog.set_level(logging.INFO, logger="agentops_django")
    writer = setups.writer(cut)
    first_id, first = trace_spans("GET /before-the-quiet/", dt.datetime.now(dt.UTC))
    feed(writer, first)
    time.sleep(1.2)
    second_id, second = trace_spans("GET /after-the-quiet/", dt.datetime.now(dt.UTC))
    feed(writer, second)
    writer.shutdown()

    assert agentops_warnings(caplog) == []
    assert Span.objects.using(direct).filter(trace_id__in=[first_id, second_id]).count() == 6
    assert writer.dropped == 0
    assert WriterStats.objects.using(direct).get().spans_written == 6


# --- a second database ---------------------------------------------------------------------------


@pytest.mark.parametrize("with_router", [True, False], ids=["router", "no-router"])
def test_traces_in_a_second_database_are_written_shown_and_pruned_there(
    with_router: bool, setups: Setups, flushed_default: None, tmp_path: Path, client: Any
) -> None:
    """AGENTOPS["DATABASE_ALIAS"]: writer, admin and agentops_prune all use it; nothing lands in default."""
    alias = setups.second_database("traces", tmp_path)
    now = dt.datetime.now(dt.UTC)
    client.force_login(superuser())
    agentops = {**settings.AGENTOPS, "DATABASE_ALIAS": alias}
    with override_settings(AGENTOPS=agentops, DATABASE_ROUTERS=[ROUTER_PATH] if with_router else []):
        if with_router:
            assert router.db_for_read(Trace) == alias and router.db_for_write(Span) == alias
            assert router.db_for_read(User) == DEFAULT_DB_ALIAS
            assert router.allow_migrate_model(alias, Trace)
            assert not router.allow_migrate_model(DEFAULT_DB_ALIAS, Trace)
            call_command("migrate", database=alias, verbosity=0)  # what the system check's hint says
        else:
            migrate_app(alias)
        assert AGENTOPS_TABLES <= set(connections[alias].introspection.table_names())

        writer = setups.writer(alias)
        old_id, old = trace_spans("GET /old/", now - dt.timedelta(days=40))
        recent_id, recent = trace_spans("GET /recent/", now - dt.timedelta(minutes=10), exception=True)
        doomed_id, doomed = trace_spans("GET /doomed/", now - dt.timedelta(minutes=5))
        feed(writer, old + recent + doomed)
        stale = WriterStats.objects.using(alias).create(
            host="gone", pid=1, process_started_at=now, spans_written=1000, spans_dropped=5
        )
        WriterStats.objects.using(alias).filter(pk=stale.pk).update(updated_at=now - dt.timedelta(days=60))

        response = client.get(LIST_URL)
        assert response.status_code == 200
        assert [t.trace_id for t in response.context["cl"].result_list] == [doomed_id, recent_id, old_id]
        html = response.content.decode()
        # The counters above the list: this writer's only (the other process has been silent for 60 days).
        assert "9 spans written" in html and "0 dropped" in html
        assert "(1 process reporting in the last 24 hours)" in html
        assert "GET /recent/" in html and "?name=GET" in html  # the name filter reads the second database too

        trace = Trace.objects.using(alias).get(trace_id=recent_id)
        page = client.get(change_url(trace))
        assert page.status_code == 200 and page.context["row_count"] == 3
        detail = client.get(reverse("admin:agentops_django_trace_span", args=[trace.pk, format(3, "016x")]))
        assert "search timed out" in detail.content.decode()
        export = client.get(reverse("admin:agentops_django_trace_otlp", args=[trace.pk])).json()
        assert len(export["resourceSpans"][0]["scopeSpans"][0]["spans"]) == 3
        stats_page = client.get("/admin/agentops_django/writerstats/").content.decode()
        assert "gone" in stats_page

        doomed_pk = Trace.objects.using(alias).get(trace_id=doomed_id).pk
        deleted = client.post(reverse("admin:agentops_django_trace_delete", args=[doomed_pk]), {"post": "yes"})
        assert deleted.status_code == 302
        assert not Span.objects.using(alias).filter(trace_id=doomed_id).exists()

        out = io.StringIO()
        call_command("agentops_prune", "--days", "7", stdout=out)
        assert "Deleted 1 traces and 3 spans" in out.getvalue()
        assert list(Trace.objects.using(alias).values_list("trace_id", flat=True)) == [recent_id]
        assert Span.objects.using(alias).count() == 3
        assert list(WriterStats.objects.using(alias).values_list("host", flat=True)) == [socket.gethostname()[:255]]
        writer.shutdown()

    for model in (Trace, Span, WriterStats):
        assert not model.objects.using(DEFAULT_DB_ALIAS).exists(), model


@pytest.mark.django_db
def test_an_alias_missing_from_databases_leaves_the_admin_and_prune_working_on_default(client: Any) -> None:
    """A typo in DATABASE_ALIAS is reported by a system check; the admin and prune never turn it into an error page."""
    client.force_login(superuser())
    with override_settings(AGENTOPS={**settings.AGENTOPS, "DATABASE_ALIAS": "no-such-database"}):
        assert client.get(LIST_URL).status_code == 200
        assert client.get("/admin/agentops_django/writerstats/").status_code == 200
        out = io.StringIO()
        call_command("agentops_prune", "--days", "7", stdout=out)
        assert "Deleted 0 traces" in out.getvalue()
