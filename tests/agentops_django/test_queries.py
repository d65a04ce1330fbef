"""SQL per request and task: counted through Django's ``execute_wrapper``, N+1 suspects, optional query spans.

Runs on SQLite and, with ``AGENTOPS_TEST_DATABASE=postgres``, on PostgreSQL.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.db import DatabaseError, connection, connections
from django.test import AsyncClient, Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from opentelemetry import context as context_api
from opentelemetry.trace import SpanKind, StatusCode

import agentops
from agentops import semconv
from agentops.integrations import scope as integration
from agentops.testing import CapturedSpans, captured_spans
from agentops_django import queries
from agentops_django.models import Span, Trace
from agentops_django.testing import store_spans
from agentops_django.writer import DatabaseSpanProcessor
from tests.agentops_django.celery_fixtures import DEADLINE, make_app, restore_default_app, running_worker, wait_for
from tests.agentops_django.test_admin_browser import browser_page
from tests.testapp import tasks

__all__ = ["browser_page", "wait_for"]  # fixtures

COUNT = semconv.AGENTOPS_DB_QUERY_COUNT
TIME_MS = semconv.AGENTOPS_DB_QUERY_TIME_MS
REPEATED = semconv.AGENTOPS_DB_REPEATED_QUERIES
TOP = semconv.AGENTOPS_DB_TOP_QUERIES


def attrs(span: Any) -> dict[str, Any]:
    return dict(span.attributes or {})


def one(spans: CapturedSpans, kind: str) -> Any:
    found = [s for s in spans if attrs(s).get("agentops.span.kind") == kind]
    assert len(found) == 1, [s.name for s in spans]
    return found[0]


def top(span_attributes: dict[str, Any]) -> list[dict[str, Any]]:
    return json.loads(span_attributes[TOP])


def make_users(count: int) -> list[User]:
    group = Group.objects.create(name="readers")
    users = [User.objects.create_user(f"user{i}") for i in range(count)]
    for user in users:
        user.groups.add(group)
    return users


@pytest.fixture
def recording(configure_agentops: Callable[..., None]) -> Callable[..., CapturedSpans]:
    """Factory: agentops_django set up without the writer and these ``AGENTOPS`` keys; spans captured."""
    stack: list[Any] = []

    def start(**overrides: Any) -> CapturedSpans:
        configure_agentops(DATABASE_WRITER=False, **overrides)
        capture = captured_spans()
        stack.append(capture)
        return capture.__enter__()

    yield start  # type: ignore[misc]
    for capture in stack:
        capture.__exit__(None, None, None)


# --- normalisation --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ('SELECT "a" FROM "t" WHERE "id" IN (%s, %s)', 'SELECT "a" FROM "t" WHERE "id" IN (%s, %s, %s, %s)'),
        ("SELECT * FROM t WHERE name = 'bob' AND n = 3", "SELECT * FROM t WHERE name = 'it''s me' AND n = 42.5"),
        ('SELECT "a" FROM "t" LIMIT 21', 'SELECT "a" FROM "t" LIMIT 1'),
        ('INSERT INTO "t" ("a") VALUES (%s)', 'INSERT INTO "t" ("a") VALUES (%s), (%s), (%s)'),
        ('INSERT INTO "t" ("a", "b") VALUES (%s, %s)', 'INSERT INTO "t" ("a", "b") VALUES (%s, %s), (%s, %s)'),
        ("SELECT  a\n  FROM t", "SELECT a FROM t"),
    ],
)
def test_statements_that_differ_only_in_values_or_list_lengths_normalise_to_one(first: str, second: str) -> None:
    assert queries.normalize(first) == queries.normalize(second)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ('SELECT "a" FROM "t1"', 'SELECT "a" FROM "t2"'),
        ('SELECT "a" FROM "t" WHERE "id" = %s', 'SELECT "b" FROM "t" WHERE "id" = %s'),
        ('SELECT "a" FROM "t" WHERE "id" IN (%s, %s)', 'SELECT "a" FROM "t" WHERE "pk" IN (%s, %s)'),
    ],
)
def test_different_statements_stay_different(first: str, second: str) -> None:
    assert queries.normalize(first) != queries.normalize(second)


def test_normalised_text_carries_no_literal_and_is_cut() -> None:
    text = queries.normalize("SELECT * FROM t WHERE email = 'alice@example.com' AND code = 12345")
    assert "alice" not in text and "12345" not in text
    assert len(queries.normalize("SELECT " + "x, " * 5000 + "y")) <= queries.MAX_SQL_CHARS


# --- requests -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_n_plus_one_view_records_its_queries_and_the_repeated_statement(recording) -> None:
    spans = recording()
    users = make_users(6)

    with CaptureQueriesContext(connection) as executed:
        response = Client().get("/queries/n-plus-one/")

    assert response.status_code == 200
    a = attrs(one(spans, "request"))
    assert a[COUNT] == len(executed) == 1 + len(users)
    assert a[TIME_MS] > 0
    assert a[REPEATED] == 1
    statements = top(a)
    assert [s["count"] for s in statements] == [len(users), 1]
    loop, first = statements
    assert "auth_user_groups" in loop["sql"] and "auth_user_groups" not in first["sql"]
    assert "= %s" in loop["sql"]  # the statement as Django sent it: no parameter value
    assert sum(s["time_ms"] for s in statements) == pytest.approx(a[TIME_MS], abs=0.01)
    assert not [s for s in spans if s.kind is SpanKind.CLIENT], "no query spans unless QUERY_SPANS"


@pytest.mark.django_db
@pytest.mark.parametrize(("threshold", "repeated"), [(5, 0), (4, 1)])
def test_a_statement_is_repeated_from_the_threshold_on(recording, threshold: int, repeated: int) -> None:
    spans = recording(REPEATED_QUERY_THRESHOLD=threshold)
    make_users(4)

    Client().get("/queries/n-plus-one/")

    assert attrs(one(spans, "request"))[REPEATED] == repeated


@pytest.mark.django_db
@pytest.mark.parametrize("query_spans", [False, True])
def test_a_query_that_raises_is_counted_and_its_exception_reaches_the_view_unchanged(recording, query_spans) -> None:
    spans = recording(QUERY_SPANS=query_spans)

    with pytest.raises(DatabaseError) as raised:
        Client().get("/queries/failing/")

    assert type(raised.value).__module__ == "django.db.utils"  # Django's own wrapping, nothing of ours
    assert "no_such_table_agentops" in str(raised.value)
    a = attrs(one(spans, "request"))
    assert a[COUNT] == 1
    assert top(a)[0]["sql"] == "SELECT * FROM no_such_table_agentops"
    failed = [s for s in spans if s.kind is SpanKind.CLIENT]
    if query_spans:
        assert [s.status.status_code for s in failed] == [StatusCode.ERROR]
        assert attrs(failed[0])["error.type"] == type(raised.value).__qualname__
        assert not failed[0].events and not failed[0].status.description  # the type only, never the message
    else:
        assert failed == []


@pytest.mark.django_db
@pytest.mark.allow_internal_errors
def test_a_failure_of_the_recorder_costs_the_count_never_the_query(recording, monkeypatch) -> None:
    spans = recording()
    users = make_users(6)

    def broken(self: Any, sql: str, seconds: float) -> None:
        raise RuntimeError("recorder bug")

    monkeypatch.setattr(queries.QueryRecorder, "add", broken)
    response = Client().get("/queries/n-plus-one/")

    assert response.status_code == 200
    assert json.loads(response.content) == {user.username: ["readers"] for user in users}
    assert attrs(one(spans, "request"))[COUNT] == 0
    assert agentops.counters().get("internal_errors", 0) >= 1 + len(users)


@pytest.mark.django_db
def test_with_record_queries_off_nothing_is_recorded_and_no_wrapper_is_added(recording) -> None:
    spans = recording(RECORD_QUERIES=False)
    make_users(6)
    if queries.execute_wrapper in connection.execute_wrappers:  # added by an earlier test of this thread
        connection.execute_wrappers.remove(queries.execute_wrapper)

    Client().get("/queries/n-plus-one/")

    assert not [key for key in attrs(one(spans, "request")) if key.startswith("agentops.db.")]
    assert queries.execute_wrapper not in connection.execute_wrappers


@pytest.mark.django_db
def test_query_spans_are_children_of_the_request_without_values_and_capped(recording) -> None:
    spans = recording(QUERY_SPANS=True, MAX_QUERY_SPANS=3)
    users = make_users(6)

    with CaptureQueriesContext(connection) as executed:
        Client().get("/queries/n-plus-one/")

    request = one(spans, "request")
    assert attrs(request)[COUNT] == 1 + len(users)  # all counted, only the first three are spans
    query_spans = sorted((s for s in spans if s.kind is SpanKind.CLIENT), key=lambda s: s.start_time)
    assert len(query_spans) == 3
    for span, sql in zip(query_spans, (q["sql"] for q in executed), strict=False):
        a = attrs(span)
        assert span.name == "SELECT"
        assert span.parent.span_id == request.context.span_id
        assert a[semconv.DB_SYSTEM_NAME] == connection.vendor
        assert a[semconv.DB_OPERATION_NAME] == "SELECT"
        assert a[semconv.DB_NAMESPACE] == str(connection.settings_dict["NAME"])
        # CaptureQueriesContext shows the SQL with values; the span has the placeholders only.
        assert "%s" in a[semconv.DB_QUERY_TEXT] or "auth_user_groups" not in sql
        assert not [key for key in a if key.startswith("db.query.parameter")]


@pytest.mark.django_db(transaction=True)
async def test_an_async_views_queries_run_in_other_threads_are_recorded(recording) -> None:
    spans = recording()
    from asgiref.sync import sync_to_async

    users = await sync_to_async(make_users)(6)
    try:
        response = await AsyncClient().get("/queries/async-n-plus-one/")
    finally:
        # The ORM thread's connection, left open by Django's test client; the test database must go later.
        await sync_to_async(connections.close_all)()

    assert response.status_code == 200
    a = attrs(one(spans, "request"))
    assert a[COUNT] == 1 + len(users)
    assert a[REPEATED] == 1
    assert top(a)[0]["count"] == len(users)


@pytest.mark.django_db
def test_an_eager_task_counts_its_own_queries_and_the_view_only_its_own(recording) -> None:
    spans = recording()
    users = make_users(6)

    Client().get("/queries/eager-task/")

    assert attrs(one(spans, "request"))[COUNT] == 1
    task = attrs(one(spans, "celery.task"))
    assert task[COUNT] == 1 + len(users)
    assert task[REPEATED] == 1


# --- the writer's queries -------------------------------------------------------------------------


@pytest.mark.django_db
def test_spans_stored_in_the_callers_thread_are_not_counted_as_its_queries(recording) -> None:
    """``store_spans`` writes on the caller's connection: even inside a request's recording, not its queries."""
    spans = recording()
    make_users(2)
    Client().get("/queries/n-plus-one/")
    finished = list(spans)

    scope = integration.open_scope("a request", kind=SpanKind.SERVER)
    recorder = queries.start(scope)
    assert recorder is not None
    token = context_api.attach(scope.context)
    try:
        stored = store_spans(finished)
        User.objects.count()  # the one query of this "request"
    finally:
        context_api.detach(token)
    a = queries.finish(scope.context)
    scope.close()

    assert stored == len(finished) and Span.objects.count() == len(finished)
    assert a is not None and a[COUNT] == 1


def test_the_database_writer_stores_the_counts_without_its_own_queries_and_the_span_panel_shows_them(
    writer: DatabaseSpanProcessor,
) -> None:
    users = make_users(6)

    with CaptureQueriesContext(connection) as executed:
        Client().get("/queries/n-plus-one/")
    assert writer.force_flush(10_000)

    row = Span.objects.get(kind="request")
    assert row.attributes[COUNT] == len(executed) == 1 + len(users)  # the writer's inserts are not among them
    admin = User.objects.create_superuser("admin", "admin@example.com", "pw")
    client = Client()
    client.force_login(admin)
    trace = Trace.objects.get(trace_id=row.trace_id)
    url = reverse("admin:agentops_django_trace_span", args=[trace.pk, row.span_id])
    html = client.get(url).content.decode()
    assert f"{1 + len(users)} queries" in html
    assert "1 repeated statement" in html
    assert html.count(">N+1 suspect</span>") == 1  # the loop's statement, not the first query
    assert "auth_user_groups" in html


# --- Celery ---------------------------------------------------------------------------------------


@pytest.fixture
def worker_app() -> Iterator[Any]:
    app = make_app("redis")
    try:
        with running_worker(app, "threads", concurrency=2):
            yield app
    finally:
        restore_default_app()


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_task_run_by_a_worker_records_its_queries(recording, worker_app, wait_for) -> None:
    spans = recording()
    users = make_users(6)

    result = tasks.n_plus_one.delay()
    assert result.get(timeout=DEADLINE) == len(users)

    def task_span() -> Any:
        found = [s for s in spans if attrs(s).get("agentops.span.kind") == "celery.task"]
        return found[0] if found else None

    a = attrs(wait_for(task_span, "the task's span"))
    assert a[COUNT] == 1 + len(users)
    assert a[REPEATED] == 1
    assert top(a)[0]["count"] == len(users)


# --- the span panel in a browser -------------------------------------------------------------------


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_span_panel_shows_the_requests_queries_and_flags_the_n_plus_one(
    configure_agentops, browser_page, wait_for, request
) -> None:
    """A real request through a live server and the writer; the panel read in Chromium."""
    import urllib.request

    from tests.agentops_django.test_admin_browser import log_in, screenshot

    configure_agentops()
    live_server = request.getfixturevalue("live_server")  # started after the middleware is installed
    users = make_users(6)
    with urllib.request.urlopen(f"{live_server.url}/queries/n-plus-one/", timeout=30) as response:
        assert response.status == 200
    row = wait_for(lambda: Span.objects.filter(kind="request").first(), "the request's span row")

    page = browser_page
    log_in(page, live_server)
    page.click("#result_list a:text-is('GET /queries/n-plus-one/')")
    page.wait_for_selector(".ao-rows")
    page.click(f"[data-span-id='{row.span_id}'] a.ao-label")
    detail = page.locator("#ao-detail .ao-span")
    detail.wait_for()
    text = detail.inner_text()
    assert f"{1 + len(users)} queries" in text
    suspects = detail.locator(".ao-query--suspect")
    assert suspects.count() == 1
    assert f"{len(users)}\u00d7" in suspects.inner_text() and "auth_user_groups" in suspects.inner_text()
    screenshot(page, "admin-span-queries.png")
