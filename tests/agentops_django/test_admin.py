"""The trace admin: the list (columns, filters, search, counting), the trace page, export, permissions, escaping.

Rows are created directly with the factories below (``make_trace``,
``make_span``, ``make_chain_trace``), the way the database writer stores them.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from agentops_django import admin as trace_admin
from agentops_django.admin._paginator import EstimatedCountPaginator
from agentops_django.models import Span, Trace, WriterStats

pytestmark = pytest.mark.django_db

XSS = '<script>alert("owned")</script>'


# --- factories -----------------------------------------------------------------------------------


def new_id(hex_digits: int = 32) -> str:
    return secrets.token_hex(hex_digits // 2)


def make_trace(name: str = "checkout", *, started_at: dt.datetime | None = None, **fields: Any) -> Trace:
    """A trace summary row as the writer upserts it."""
    started_at = started_at or timezone.now() - dt.timedelta(minutes=5)
    duration = fields.pop("duration_ms", 1234.0)
    tags = fields.pop("tags", [])
    values = {
        "trace_id": new_id(),
        "name": name,
        "status": "Success",
        "kind": "request",
        "root_span_id": "",
        "started_at": started_at,
        "ended_at": started_at + dt.timedelta(milliseconds=duration) if duration is not None else None,
        "duration_ms": duration,
        "tags": tags,
        "tags_text": "|" + "|".join(tags) + "|" if tags else "",
        "service_name": "shop",
        **fields,
    }
    return Trace.objects.create(**values)


def make_span(
    trace: Trace,
    name: str,
    kind: str,
    *,
    parent: Span | str | None = None,
    start_ms: float = 0.0,
    duration_ms: float = 10.0,
    status: str = "UNSET",
    attributes: dict[str, Any] | None = None,
    events: list[dict[str, Any]] | None = None,
    links: list[dict[str, Any]] | None = None,
    span_id: str | None = None,
    status_message: str = "",
) -> Span:
    """A span row as the writer stores it; times are offsets from the trace's start."""
    started = trace.started_at + dt.timedelta(milliseconds=start_ms)
    parent_id = parent.span_id if isinstance(parent, Span) else (parent or "")
    return Span.objects.create(
        trace_id=trace.trace_id,
        span_id=span_id or new_id(16),
        parent_span_id=parent_id,
        name=name,
        kind=kind,
        status=status,
        status_message=status_message,
        started_at=started,
        ended_at=started + dt.timedelta(milliseconds=duration_ms),
        duration_ms=duration_ms,
        attributes=attributes or {},
        events=events or [],
        links=links or [],
        service_name=trace.service_name,
    )


TRACEBACK = (
    "Traceback (most recent call last):\n"
    '  File "shop/tasks.py", line 41, in notify\n'
    "    smtp.send(message)\n"
    "ConnectionRefusedError: [Errno 111] Connection refused\n"
)


def make_chain_trace(*, name: str = "POST /api/summaries/", linked: Trace | None = None) -> dict[str, Any]:
    """The rows a request that starts a Celery chain with LLM calls leaves behind.

    request → publish → task ``fetch`` (queue wait) → publish → task
    ``summarise`` → agent → two LLM calls and a tool → publish → task
    ``notify`` that fails (exception event) and its retry, which succeeds.
    Returns the trace and its spans by a short name.
    """
    trace = make_trace(
        name,
        kind="request",
        status="Error",
        duration_ms=2200.0,
        span_count=13,
        error_count=1,
        input_tokens=1030,
        output_tokens=180,
        total_tokens=1210,
        cost=0.0021,
        tags=["beta", "eu"],
    )
    s: dict[str, Any] = {"trace": trace}
    s["request"] = make_span(
        trace,
        "POST /api/summaries/",
        "request",
        start_ms=0,
        duration_ms=140,
        attributes={
            "http.request.method": "POST",
            "url.path": "/api/summaries/",
            "http.route": "api/summaries/",
            "http.response.status_code": 202,
        },
    )
    trace.root_span_id = s["request"].span_id
    trace.save(update_fields=["root_span_id"])
    s["publish_fetch"] = make_span(
        trace,
        "publish shop.tasks.fetch",
        "publish",
        parent=s["request"],
        start_ms=30,
        duration_ms=4,
        attributes={"messaging.system": "celery", "messaging.destination.name": "default"},
    )
    s["fetch"] = make_span(
        trace,
        "run shop.tasks.fetch",
        "celery.task",
        parent=s["publish_fetch"],
        start_ms=95,
        duration_ms=260,
        attributes={"celery.task.id": "6f0c1d9e-fetch", "celery.queue_wait_ms": 61.0, "celery.task.name": "fetch"},
    )
    s["fetch_tool"] = make_span(trace, "fetch_document.tool", "tool", parent=s["fetch"], start_ms=100, duration_ms=180)
    s["publish_summarise"] = make_span(
        trace, "publish shop.tasks.summarise", "publish", parent=s["fetch"], start_ms=340, duration_ms=3
    )
    s["summarise"] = make_span(
        trace,
        "run shop.tasks.summarise",
        "celery.task",
        parent=s["publish_summarise"],
        start_ms=362,
        duration_ms=1200,
        attributes={"celery.task.id": "6f0c1d9e-summarise", "celery.queue_wait_ms": 19.0},
    )
    s["agent"] = make_span(trace, "summariser.agent", "agent", parent=s["summarise"], start_ms=370, duration_ms=1180)
    messages = [
        {"role": "system", "content": "You summarise documents in three sentences."},
        {"role": "user", "content": f"Summarise this page: {XSS} " + "lorem ipsum " * 80},
    ]
    s["llm1"] = make_span(
        trace,
        "openai.chat.completions",
        "llm",
        parent=s["agent"],
        start_ms=380,
        duration_ms=620,
        attributes={
            "gen_ai.system": "openai",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
            "gen_ai.usage.input_tokens": 812,
            "gen_ai.usage.output_tokens": 143,
            "gen_ai.usage.cost": 0.0015,
            "gen_ai.input.messages": json.dumps(messages),
            "gen_ai.output.messages": json.dumps([{"role": "assistant", "content": "A short summary."}]),
        },
    )
    s["lookup_tool"] = make_span(trace, "lookup.tool", "tool", parent=s["agent"], start_ms=1010, duration_ms=40)
    s["llm2"] = make_span(
        trace,
        "openai.chat.completions",
        "llm",
        parent=s["agent"],
        start_ms=1060,
        duration_ms=480,
        attributes={
            "gen_ai.system": "openai",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.usage.input_tokens": 218,
            "gen_ai.usage.output_tokens": 37,
            "gen_ai.usage.cost": 0.0006,
        },
    )
    s["publish_notify"] = make_span(
        trace, "publish shop.tasks.notify", "publish", parent=s["summarise"], start_ms=1555, duration_ms=3
    )
    s["notify"] = make_span(
        trace,
        "run shop.tasks.notify",
        "celery.task",
        parent=s["publish_notify"],
        start_ms=1570,
        duration_ms=40,
        status="ERROR",
        status_message="ConnectionRefusedError: [Errno 111] Connection refused",
        attributes={"celery.task.id": "6f0c1d9e-notify", "celery.queue_wait_ms": 12.0, "celery.retries": 0},
        events=[
            {
                "name": "exception",
                "timestamp": (trace.started_at + dt.timedelta(milliseconds=1605)).isoformat(),
                "attributes": {
                    "exception.type": "ConnectionRefusedError",
                    "exception.message": "[Errno 111] Connection refused",
                    "exception.stacktrace": TRACEBACK,
                },
            }
        ],
        links=[{"trace_id": linked.trace_id, "span_id": new_id(16)}] if linked else [],
    )
    s["retry"] = make_span(
        trace,
        "run shop.tasks.notify",
        "celery.task",
        parent=s["publish_notify"],
        start_ms=2150,
        duration_ms=50,
        attributes={"celery.task.id": "6f0c1d9e-notify", "celery.queue_wait_ms": 530.0, "celery.retries": 1},
    )
    return s


@pytest.fixture
def superuser(db) -> User:
    return User.objects.create_superuser("admin", "admin@example.com", "pw")


@pytest.fixture
def staff(db) -> User:
    """Staff with the view permission on traces only."""
    user = User.objects.create_user("viewer", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_trace"))
    return user


@pytest.fixture
def admin_client(client, superuser):
    client.force_login(superuser)
    return client


LIST_URL = "/admin/agentops_django/trace/"


def change_url(trace: Trace, **query: str) -> str:
    url = reverse("admin:agentops_django_trace_change", args=[trace.pk])
    if query:
        url += "?" + "&".join(f"{k}={v}" for k, v in query.items())
    return url


def listed_names(response) -> list[str]:
    return [trace.name for trace in response.context["cl"].result_list]


# --- the list ------------------------------------------------------------------------------------


def test_the_list_shows_each_trace_summary_from_its_row(admin_client):
    make_trace(
        "nightly-report",
        kind="task",
        status="Error",
        duration_ms=1500,
        span_count=12,
        error_count=2,
        input_tokens=900,
        output_tokens=334,
        total_tokens=1234,
        cost=0.0123,
    )
    response = admin_client.get(LIST_URL)
    assert response.status_code == 200
    html = response.content.decode()
    assert "nightly-report" in html
    assert 'class="ao-status ao-status--error"' in html
    assert 'class="ao-rootkind ao-rootkind--task"' in html
    assert "1.50 s" in html and "1,234" in html and "$0.0123" in html
    row = re.search(r"<tr>.*?nightly-report.*?</tr>", html, re.S).group(0)
    assert ">12<" in row and ">2<" in row


def test_the_list_is_newest_first(admin_client):
    now = timezone.now()
    for age, name in [(3, "old"), (1, "new"), (2, "middle")]:
        make_trace(name, started_at=now - dt.timedelta(hours=age))
    assert listed_names(admin_client.get(LIST_URL)) == ["new", "middle", "old"]


def test_the_list_shows_the_writers_dropped_span_counter(admin_client):
    started = timezone.now()
    WriterStats.objects.create(host="web-1", pid=10, process_started_at=started, spans_written=500, spans_dropped=7)
    WriterStats.objects.create(host="worker-1", pid=11, process_started_at=started, spans_written=1500, spans_dropped=5)
    html = admin_client.get(LIST_URL).content.decode()
    assert "12 dropped" in html and "2,000 spans written" in html and "ao-writer--warn" in html


def test_the_writer_counters_above_the_list_add_up_only_processes_that_reported_in_the_last_day(admin_client):
    """A process gone for days says nothing about now; the per-process page still lists it until pruned."""
    started = timezone.now() - dt.timedelta(days=3)
    WriterStats.objects.create(host="web-1", pid=10, process_started_at=started, spans_written=500, spans_dropped=0)
    gone = WriterStats.objects.create(host="old-worker", pid=11, process_started_at=started, spans_dropped=70)
    WriterStats.objects.filter(pk=gone.pk).update(updated_at=timezone.now() - dt.timedelta(days=2))
    html = admin_client.get(LIST_URL).content.decode()
    assert "500 spans written" in html and "0 dropped" in html and "(1 process reporting in the last 24 hours)" in html
    assert "ao-writer--warn" not in html
    assert "old-worker" in admin_client.get("/admin/agentops_django/writerstats/").content.decode()


def test_the_list_says_zero_dropped_before_any_writer_reported(admin_client):
    html = admin_client.get(LIST_URL).content.decode()
    assert "0 dropped" in html and "ao-writer--warn" not in html


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("status__exact=Error", ["failed-task"]),
        ("kind__exact=task", ["failed-task", "old-task"]),
        ("recent=1h", ["failed-task", "recent-request"]),
        ("recent=7d", ["failed-task", "recent-request", "old-task"]),
        ("name=old-task", ["old-task"]),
    ],
)
def test_the_list_filters_by_status_kind_recency_and_name(admin_client, query, expected):
    now = timezone.now()
    make_trace("failed-task", kind="task", status="Error", started_at=now - dt.timedelta(minutes=1))
    make_trace("recent-request", started_at=now - dt.timedelta(minutes=2))
    make_trace("old-task", kind="task", started_at=now - dt.timedelta(days=3))
    make_trace("ancient", started_at=now - dt.timedelta(days=30))
    response = admin_client.get(f"{LIST_URL}?{query}")
    assert response.status_code == 200
    assert listed_names(response) == expected


def test_the_name_filter_offers_names_of_recent_traces_without_a_distinct_scan(admin_client):
    for name in ["b-task", "a-task", "a-task"]:
        make_trace(name)
    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(LIST_URL)
    name_filter = next(spec for spec in response.context["cl"].filter_specs if isinstance(spec, trace_admin.NameFilter))
    assert [choice[0] for choice in name_filter.lookup_choices] == ["a-task", "b-task"]
    sql = [query["sql"].upper() for query in queries.captured_queries]
    assert not any("DISTINCT" in statement for statement in sql)


def test_the_list_never_counts_the_whole_table(admin_client):
    """Every COUNT the page runs is capped with a LIMIT (the paginator counts at most cap+1 rows)."""
    for i in range(3):
        make_trace(f"t{i}")
    with CaptureQueriesContext(connection) as queries:
        admin_client.get(LIST_URL + "?status__exact=Success")
    counts = [
        q["sql"].upper()
        for q in queries.captured_queries
        if "COUNT(" in q["sql"].upper() and "agentops_django_trace" in q["sql"]
    ]
    assert counts, "the paginator should have counted the filtered result"
    assert all("LIMIT" in statement for statement in counts), counts


def test_the_list_says_more_than_when_the_count_hits_the_cap(admin_client, monkeypatch):
    monkeypatch.setattr(EstimatedCountPaginator, "cap", 3)
    monkeypatch.setattr(trace_admin.TraceAdmin, "list_per_page", 2)
    for i in range(5):
        make_trace(f"t{i}")
    html = admin_client.get(LIST_URL).content.decode()
    assert "more than 3 traces" in html


def test_the_list_gives_an_exact_count_below_the_cap(admin_client):
    for i in range(3):
        make_trace(f"t{i}")
    html = admin_client.get(LIST_URL).content.decode()
    assert re.search(r'<span class="ao-count">\s*3 traces', html)


@pytest.mark.django_db(transaction=True)
def test_the_unfiltered_count_on_postgresql_is_the_planner_estimate(client, superuser, monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("pg_class.reltuples exists on PostgreSQL only (AGENTOPS_TEST_DATABASE=postgres)")
    from agentops_django.admin import _paginator as paginator

    monkeypatch.setattr(paginator, "EXACT_BELOW", 1)
    for i in range(4):
        make_trace(f"t{i}")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE agentops_django_trace")
    client.force_login(superuser)
    with CaptureQueriesContext(connection) as queries:
        html = client.get(LIST_URL).content.decode()
    assert "about 4 traces" in html
    assert any("reltuples" in q["sql"] for q in queries.captured_queries)
    assert not any(
        "COUNT(" in q["sql"].upper() and "agentops_django_trace" in q["sql"] for q in queries.captured_queries
    )


# --- search --------------------------------------------------------------------------------------


@pytest.fixture
def searchable():
    return {
        "a": make_trace("checkout", trace_id="abcdef0123456789abcdef0123456789", tags=["beta"]),
        "b": make_trace("checkout-v2", trace_id="abcdef99999999999999999999999999"),
        "c": make_trace("nightly", trace_id="0123456789abcdef0123456789abcdef", tags=["eu", "beta-2"]),
    }


@pytest.mark.parametrize(
    ("term", "expected"),
    [
        ("abcdef0123456789abcdef0123456789", ["checkout"]),
        ("ABCDEF0123456789ABCDEF0123456789", ["checkout"]),
        ("abcdef", ["checkout", "checkout-v2"]),
        ("abcdef99", ["checkout-v2"]),
        ("checkout", ["checkout", "checkout-v2"]),
        ("nightly", ["nightly"]),
        ("tag:beta", ["checkout"]),
        ("eu", ["nightly"]),
        ("ghost", []),
    ],
)
def test_search_finds_trace_ids_prefixes_names_and_tags(admin_client, searchable, term, expected):
    response = admin_client.get(LIST_URL, {"q": term})
    assert sorted(listed_names(response)) == sorted(expected)


def test_searching_a_full_trace_id_is_an_equality_lookup_not_a_scan(admin_client, searchable):
    with CaptureQueriesContext(connection) as queries:
        admin_client.get(LIST_URL, {"q": "abcdef0123456789abcdef0123456789"})
    lookups = [q["sql"] for q in queries.captured_queries if "abcdef0123456789abcdef0123456789" in q["sql"]]
    assert lookups and not any("LIKE" in sql.upper() for sql in lookups)


# --- read-only, delete, permissions ----------------------------------------------------------------


def test_there_is_no_add_and_no_change_form(admin_client):
    trace = make_trace()
    assert admin_client.get(LIST_URL + "add/").status_code == 403
    response = admin_client.post(change_url(trace), {"name": "renamed"})
    trace.refresh_from_db()
    assert trace.name == "checkout"
    assert response.status_code in (200, 405)
    assert b"<form" not in admin_client.get(change_url(trace)).content.split(b'id="content"')[1].split(b"ao-detail")[0]


def urls_of(trace: Trace) -> list[str]:
    return [
        LIST_URL,
        change_url(trace),
        reverse("admin:agentops_django_trace_otlp", args=[trace.pk]),
        reverse("admin:agentops_django_trace_span", args=[trace.pk, "0123456789abcdef"]),
        reverse("admin:agentops_django_trace_change", args=[trace.trace_id]),
    ]


def test_anonymous_visitors_get_nothing_but_the_login_page(client):
    trace = make_trace("secret-trace")
    for url in urls_of(trace):
        response = client.get(url)
        assert response.status_code == 302 and "/admin/login/" in response["Location"], url
        assert b"secret-trace" not in response.content


def test_logged_in_non_staff_users_get_nothing(client):
    trace = make_trace("secret-trace")
    client.force_login(User.objects.create_user("bob", password="pw"))
    for url in urls_of(trace):
        response = client.get(url)
        assert response.status_code == 302 and "/admin/login/" in response["Location"], url


def test_staff_without_the_view_permission_get_403_on_pages_and_export(client):
    trace = make_trace("secret-trace")
    client.force_login(User.objects.create_user("clerk", password="pw", is_staff=True))
    for url in urls_of(trace):
        response = client.get(url)
        assert response.status_code == 403, url
        assert b"secret-trace" not in response.content


def test_staff_with_the_view_permission_see_the_list_trace_and_export(client, staff):
    chain = make_chain_trace()
    client.force_login(staff)
    assert client.get(LIST_URL).status_code == 200
    page = client.get(change_url(chain["trace"]))
    assert page.status_code == 200 and b"Delete</a>" not in page.content
    span_url = reverse("admin:agentops_django_trace_span", args=[chain["trace"].pk, chain["llm1"].span_id])
    assert client.get(span_url).status_code == 200
    assert client.get(reverse("admin:agentops_django_trace_otlp", args=[chain["trace"].pk])).status_code == 200


def test_staff_without_the_delete_permission_cannot_delete(client, staff):
    trace = make_trace()
    client.force_login(staff)
    delete_url = reverse("admin:agentops_django_trace_delete", args=[trace.pk])
    assert client.post(delete_url, {"post": "yes"}).status_code == 403
    response = client.post(LIST_URL, {"action": "delete_selected", "_selected_action": [trace.pk], "post": "yes"})
    assert Trace.objects.filter(pk=trace.pk).exists()
    assert response.status_code in (200, 302)


def test_deleting_a_trace_with_the_permission_removes_its_spans(admin_client):
    chain = make_chain_trace()
    other = make_chain_trace(name="keep me")
    trace = chain["trace"]
    confirm = admin_client.get(reverse("admin:agentops_django_trace_delete", args=[trace.pk]))
    assert confirm.status_code == 200 and b"spans (about): 13" in confirm.content.lower()
    response = admin_client.post(reverse("admin:agentops_django_trace_delete", args=[trace.pk]), {"post": "yes"})
    assert response.status_code == 302
    assert not Trace.objects.filter(pk=trace.pk).exists()
    assert not Span.objects.filter(trace_id=trace.trace_id).exists()
    assert Span.objects.filter(trace_id=other["trace"].trace_id).count() == 13


def test_the_delete_selected_action_removes_traces_and_spans(admin_client):
    first, second = make_chain_trace()["trace"], make_chain_trace()["trace"]
    response = admin_client.post(
        LIST_URL, {"action": "delete_selected", "_selected_action": [first.pk, second.pk], "post": "yes"}
    )
    assert response.status_code == 302
    assert Trace.objects.count() == 0 and Span.objects.count() == 0


# --- the trace page --------------------------------------------------------------------------------


def rows_of(html: str) -> list[tuple[str, str]]:
    """(span id, class attribute) of each waterfall row, in page order."""
    return [
        (m.group(2), m.group(1)) for m in re.finditer(r'<li class="([^"]*ao-row[^"]*)" data-span-id="([^"]*)"', html)
    ]


def test_the_trace_page_draws_request_tasks_and_llm_calls_as_one_tree(admin_client):
    chain = make_chain_trace()
    response = admin_client.get(change_url(chain["trace"]))
    assert response.status_code == 200
    html = response.content.decode()
    order = [span_id for span_id, _ in rows_of(html)]
    expected = [
        "request",
        "publish_fetch",
        "fetch",
        "fetch_tool",
        "publish_summarise",
        "summarise",
        "agent",
        "llm1",
        "lookup_tool",
        "llm2",
        "publish_notify",
        "notify",
        "retry",
    ]
    assert order == [chain[key].span_id for key in expected]
    depth = {row.span_id: row.depth for row in response.context["waterfall"].rows}
    assert depth[chain["llm1"].span_id] == 6 and depth[chain["retry"].span_id] == 6
    classes = dict(rows_of(html))
    assert "ao-k-request" in classes[chain["request"].span_id]
    assert "ao-k-publish" in classes[chain["publish_fetch"].span_id]
    assert "ao-k-task" in classes[chain["fetch"].span_id]
    assert "ao-k-agent" in classes[chain["agent"].span_id]
    assert "ao-k-tool" in classes[chain["lookup_tool"].span_id]
    assert "ao-k-llm" in classes[chain["llm1"].span_id]


def test_the_trace_page_marks_the_failed_span_and_its_ancestors(admin_client):
    chain = make_chain_trace()
    classes = dict(rows_of(admin_client.get(change_url(chain["trace"])).content.decode()))
    assert "ao-error" in classes[chain["notify"].span_id].split()
    for ancestor in ("publish_notify", "summarise", "publish_summarise", "fetch", "publish_fetch", "request"):
        assert "ao-contains-error" in classes[chain[ancestor].span_id].split(), ancestor
    for clean in ("retry", "agent", "llm1", "fetch_tool"):
        assert "ao-contains-error" not in classes[chain[clean].span_id].split(), clean
        assert "ao-error" not in classes[chain[clean].span_id].split(), clean


def test_each_task_bar_has_its_queue_wait_drawn_before_it(admin_client):
    chain = make_chain_trace()
    html = admin_client.get(change_url(chain["trace"])).content.decode()
    row = re.search(rf'data-span-id="{chain["retry"].span_id}".*?</li>', html, re.S).group(0)
    wait = re.search(r'class="ao-wait" style="left:([\d.]+)%;width:([\d.]+)%" title="queued 530 ms"', row)
    bar = re.search(r'class="ao-bar" style="left:([\d.]+)%;width:([\d.]+)%"', row)
    assert wait and bar
    assert abs(float(wait.group(1)) + float(wait.group(2)) - float(bar.group(1))) < 0.01
    request_row = re.search(rf'data-span-id="{chain["request"].span_id}".*?</li>', html, re.S).group(0)
    assert "ao-wait" not in request_row


def test_the_trace_page_totals_tokens_and_cost_of_llm_spans_by_the_stated_rule(admin_client):
    chain = make_chain_trace()
    response = admin_client.get(change_url(chain["trace"]))
    totals = response.context["totals"]
    assert (totals.llm_calls, totals.input_tokens, totals.output_tokens) == (2, 1030, 180)
    html = response.content.decode()
    assert "1,210" in html and "$0.0021" in html
    assert "only" in html and "counted twice" in html


def test_selecting_an_llm_span_shows_model_messages_and_token_usage(admin_client):
    chain = make_chain_trace()
    html = admin_client.get(change_url(chain["trace"], span=chain["llm1"].span_id)).content.decode()
    detail = html.split('id="ao-detail"')[1]
    assert "gpt-4o-mini" in detail and "gpt-4o-mini-2024-07-18" in detail
    assert "812 in" in detail and "143 out" in detail and "955" in detail
    assert "You summarise documents in three sentences." in detail
    assert "A short summary." in detail
    assert "<details>" in detail  # the long user message is collapsed, shown whole inside


def test_selecting_a_failed_task_shows_its_exception_with_the_traceback(admin_client):
    chain = make_chain_trace()
    html = admin_client.get(change_url(chain["trace"], span=chain["notify"].span_id)).content.decode()
    detail = html.split('id="ao-detail"')[1]
    assert "ConnectionRefusedError" in detail
    assert "File &quot;shop/tasks.py&quot;, line 41, in notify" in detail
    assert "6f0c1d9e-notify" in detail and "12.00 ms" not in detail and "12 ms" in detail


def test_the_span_fragment_is_the_detail_panel_alone(admin_client):
    chain = make_chain_trace()
    url = reverse("admin:agentops_django_trace_span", args=[chain["trace"].pk, chain["fetch"].span_id])
    html = admin_client.get(url).content.decode()
    assert html.lstrip().startswith('<div class="ao-span')
    assert "celery.queue_wait_ms" in html and "<html" not in html
    missing = reverse("admin:agentops_django_trace_span", args=[chain["trace"].pk, "ffffffffffffffff"])
    assert admin_client.get(missing).status_code == 404


def test_a_task_span_links_to_the_trace_it_linked_to(admin_client):
    target = make_trace("scheduled-cleanup", kind="task")
    chain = make_chain_trace(linked=target)
    html = admin_client.get(change_url(chain["trace"])).content.decode()
    target_url = reverse("admin:agentops_django_trace_change", args=[target.trace_id])
    assert f'class="ao-linked" href="{target_url}"' in html
    linked_page = admin_client.get(target_url)
    assert linked_page.status_code == 200 and linked_page.context["trace"] == target


def test_a_trace_opens_by_its_trace_id_as_well_as_its_key(admin_client):
    trace = make_trace("by-id")
    assert (
        admin_client.get(reverse("admin:agentops_django_trace_change", args=[trace.trace_id.upper()])).context["trace"]
        == trace
    )
    response = admin_client.get(reverse("admin:agentops_django_trace_change", args=["f" * 32]))
    assert response.status_code == 404


def test_the_trace_page_loads_all_its_spans_with_one_query(admin_client):
    chain = make_chain_trace()
    with CaptureQueriesContext(connection) as queries:
        admin_client.get(change_url(chain["trace"]))
    span_queries = [q["sql"] for q in queries.captured_queries if "agentops_django_span" in q["sql"]]
    assert len(span_queries) == 1
    # Only a few keys of the attributes are selected, never the whole (possibly huge) JSON.
    sql = span_queries[0]
    assert "celery.queue_wait_ms" in sql
    assert not re.search(r'"agentops_django_span"\."attributes"\s*(AS\b|FROM\b|,\s*"agentops)', sql)


def test_a_big_trace_renders_the_first_rows_and_pages_through_the_rest(admin_client, monkeypatch):
    monkeypatch.setattr(trace_admin, "ROWS_PER_PAGE", 50)
    trace = make_trace("big")
    root = make_span(trace, "root", "request", duration_ms=1000)
    Span.objects.bulk_create(
        Span(
            trace_id=trace.trace_id,
            span_id=f"{i:016x}",
            parent_span_id=root.span_id,
            name=f"step {i}",
            kind="tool",
            started_at=trace.started_at + dt.timedelta(milliseconds=i),
            ended_at=trace.started_at + dt.timedelta(milliseconds=i + 1),
            duration_ms=1,
        )
        for i in range(1, 120)
    )
    html = admin_client.get(change_url(trace)).content.decode()
    assert len(rows_of(html)) == 50
    assert "70 more spans not shown" in html
    last = admin_client.get(change_url(trace, offset="100")).content.decode()
    assert len(rows_of(last)) == 20 and "more span" not in last and "Previous spans" in last


def test_orphans_are_shown_and_marked_on_the_trace_page(admin_client):
    trace = make_trace("late")
    root = make_span(trace, "root", "request", duration_ms=100)
    trace.root_span_id = root.span_id
    trace.save()
    orphan = make_span(trace, "late task", "celery.task", parent="00000000deadbeef", start_ms=50)
    classes = dict(rows_of(admin_client.get(change_url(trace)).content.decode()))
    assert "ao-orphan" in classes[orphan.span_id]


# --- escaping ------------------------------------------------------------------------------------


def test_everything_a_traced_app_wrote_is_escaped_and_never_a_link(admin_client):
    trace = make_trace(XSS, tags=[XSS])
    span = make_span(
        trace,
        XSS,
        "llm",
        attributes={
            "url.full": "javascript:alert(1)",
            XSS: XSS,
            "gen_ai.input.messages": json.dumps([{"role": XSS, "content": XSS}]),
            "gen_ai.request.model": XSS,
        },
        events=[{"name": XSS, "attributes": {"exception.stacktrace": XSS}}],
        links=[{"trace_id": "javascript:alert(1)", "span_id": XSS}, {"trace_id": "../../../../logout", "span_id": "x"}],
        status_message=XSS,
        status="ERROR",
    )
    pages = [
        admin_client.get(LIST_URL).content.decode(),
        admin_client.get(change_url(trace, span=span.span_id)).content.decode(),
        admin_client.get(reverse("admin:agentops_django_trace_span", args=[trace.pk, span.span_id])).content.decode(),
    ]
    for html in pages:
        assert XSS not in html
        assert "&lt;script&gt;alert(&quot;owned&quot;)&lt;/script&gt;" in html
        assert 'href="javascript:' not in html.lower()
        assert "logout" not in html.split("ao-detail")[-1] or 'href="../../../../logout' not in html
        assert "<script>alert" not in html


def test_an_unreadable_payload_is_still_shown_escaped(admin_client):
    trace = make_trace("garbage")
    span = make_span(
        trace,
        "llm",
        "llm",
        attributes={"gen_ai.input.messages": "{not json <b>", "gen_ai.usage.input_tokens": "lots"},
        events=["not an event", {"name": 3}],
        links=["nope"],
    )
    html = admin_client.get(change_url(trace, span=span.span_id)).content.decode()
    assert "{not json &lt;b&gt;" in html


# --- writer stats ----------------------------------------------------------------------------------


def test_writer_stats_are_listed_per_process_read_only(admin_client):
    started = timezone.now()
    stats = WriterStats.objects.create(host="worker-7", pid=4242, process_started_at=started, spans_dropped=3)
    html = admin_client.get("/admin/agentops_django/writerstats/").content.decode()
    assert "worker-7" in html and "4242" in html
    assert admin_client.get("/admin/agentops_django/writerstats/add/").status_code == 403
    admin_client.post(f"/admin/agentops_django/writerstats/{stats.pk}/change/", {"spans_dropped": 0})
    stats.refresh_from_db()
    assert stats.spans_dropped == 3


def unfinished_trace(*, age_minutes: float, new_trace: bool = False) -> dict[str, Any]:
    """A request that published two tasks: one ran, the other never reported back."""
    trace = make_trace("POST /jobs/", started_at=timezone.now() - dt.timedelta(minutes=age_minutes))
    request = make_span(trace, "POST /jobs/", "request", duration_ms=50)
    ran_publish = make_span(trace, "publish jobs.ran", "publish", parent=request, start_ms=5, duration_ms=1)
    ran = make_span(trace, "jobs.ran", "celery.task", parent=ran_publish, start_ms=10, duration_ms=5)
    attributes = {"celery.new_trace": True} if new_trace else {}
    lost = make_span(
        trace, "publish jobs.killed", "publish", parent=request, start_ms=6, duration_ms=1, attributes=attributes
    )
    return {"trace": trace, "ran_publish": ran_publish, "ran": ran, "lost": lost}


def test_a_task_that_never_reported_back_makes_the_trace_unfinished_after_the_timeout(admin_client):
    """A killed worker leaves a publish span with no task under it: the page says so instead of Success."""
    made = unfinished_trace(age_minutes=10)
    response = admin_client.get(change_url(made["trace"]))
    html = response.content.decode()
    assert response.context["status"] == "Indeterminate"
    assert "1 task published in this trace never reported back" in html
    classes = dict(rows_of(html))
    lost_row = html[html.index(f'data-span-id="{made["lost"].span_id}"') :]
    assert "never ran" in lost_row[: lost_row.index("</li>")]
    ran_row = html[html.index(f'data-span-id="{made["ran_publish"].span_id}"') :]
    assert "never ran" not in ran_row[: ran_row.index("</li>")]
    assert made["ran"].span_id in classes


def test_a_task_still_within_the_timeout_is_not_called_unfinished(admin_client):
    made = unfinished_trace(age_minutes=0)
    response = admin_client.get(change_url(made["trace"]))
    assert response.context["status"] == "Success"
    assert "never reported back" not in response.content.decode()


def test_a_task_sent_to_a_new_trace_is_not_waited_for_in_its_callers_trace(admin_client):
    made = unfinished_trace(age_minutes=10, new_trace=True)
    response = admin_client.get(change_url(made["trace"]))
    assert response.context["status"] == "Success"
    assert "never ran" not in response.content.decode()


@pytest.mark.django_db
def test_the_list_finds_traces_with_a_failed_span_whatever_the_roots_status(admin_client: Any) -> None:
    """A request whose Celery task failed is a Success at its root: the failed-spans filter still finds it."""
    from agentops_django.testing import store_spans
    from tests.agentops_django.test_exporter import make_span, new_trace_id

    failed_below, clean = new_trace_id(), new_trace_id()
    store_spans([make_span(failed_below, 1, name="POST /ask/", kind="request",
                           attributes={"agentops.end_state": "Success"}),
                 make_span(failed_below, 2, 1, name="shop.tasks.charge", kind="celery.task", error=True),
                 make_span(clean, 1, name="GET /clean/", kind="request")])  # fmt: skip
    assert listed_names(admin_client.get("/admin/agentops_django/trace/?failed_spans=yes")) == ["POST /ask/"]
    assert listed_names(admin_client.get("/admin/agentops_django/trace/?failed_spans=no")) == ["GET /clean/"]
