"""Which trace is the one I want: the list's substring, user and process search, its sorts and host/worker filter.

Runs on SQLite and on PostgreSQL (``AGENTOPS_TEST_DATABASE=postgres``); on
PostgreSQL the plans are checked too: each sort and search is served by an
index (trigram GIN indexes for the substring searches, when ``pg_trgm`` is there).
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.db import connection
from django.utils import timezone

from agentops_django.admin._search import search_filter
from agentops_django.models import Trace, WriterStats
from tests.agentops_django.test_admin import LIST_URL, listed_names, make_span, make_trace

pytestmark = pytest.mark.django_db


@pytest.fixture
def traces() -> dict[str, Trace]:
    """Traces as a demo site leaves them: route-template names, a chord, users, hosts and workers."""
    now = timezone.now()
    made = {
        "inquiry": make_trace(
            "POST /inquiries/",
            started_at=now - dt.timedelta(minutes=1),
            duration_ms=250.0,
            span_count=4,
            error_count=0,
            total_tokens=900,
            cost=0.004,
            username="alice",
            user_id="7",
            processes_text="|web-1|",
        ),
        "chord": make_trace(
            "summarise_chord",
            kind="task",
            started_at=now - dt.timedelta(minutes=2),
            duration_ms=9000.0,
            span_count=40,
            error_count=3,
            total_tokens=12_000,
            cost=0.25,
            processes_text="|web-1|worker-2|celery@worker-2|",
            tags=["nightly", "eu"],
        ),
        "home": make_trace(
            "GET /",
            started_at=now - dt.timedelta(minutes=3),
            duration_ms=12.0,
            span_count=1,
            error_count=0,
            total_tokens=0,
            cost=0.0,
            username="bob",
            user_id="8",
            processes_text="|web-2|",
        ),
    }
    make_span(made["home"], "render landing", "tool")
    make_span(made["inquiry"], "send_confirmation.publish", "publish")
    return made


@pytest.mark.parametrize(
    ("term", "expected"),
    [
        ("chord", ["summarise_chord"]),  # a substring, not only a prefix
        ("/inquiries", ["POST /inquiries/"]),
        ("INQUIRIES", ["POST /inquiries/"]),  # any case
        ("user:alice", ["POST /inquiries/"]),
        ("bob", ["GET /"]),  # a plain term finds the user of that name too
        ("user:ali", []),  # a username is matched whole
        ("host:web-1", ["POST /inquiries/", "summarise_chord"]),
        ("host:web", []),  # a host is matched whole
        ("worker:celery@worker-2", ["summarise_chord"]),
        ("tag:eu", ["summarise_chord"]),
        ("span:CONFIRMATION", ["POST /inquiries/"]),  # traces by a part of one of their spans' names
        ("span:landing", ["GET /"]),
        ("nothing-like-it", []),
    ],
)
def test_search_finds_substrings_of_names_users_hosts_workers_tags_and_span_names(admin_client, traces, term, expected):
    assert sorted(listed_names(admin_client.get(LIST_URL, {"q": term}))) == sorted(expected)


def test_percent_and_underscore_in_a_search_are_plain_characters(admin_client, traces):
    make_trace("100% done")
    assert listed_names(admin_client.get(LIST_URL, {"q": "0%"})) == ["100% done"]
    assert listed_names(admin_client.get(LIST_URL, {"q": "_chord"})) == ["summarise_chord"]


@pytest.mark.parametrize(
    ("column", "descending"),
    [
        ("duration", ["summarise_chord", "POST /inquiries/", "GET /"]),
        ("span_total", ["summarise_chord", "POST /inquiries/", "GET /"]),
        # No errors in two: a tie, broken by the id (the later stored first), the way of the sort.
        ("errors", ["summarise_chord", "GET /", "POST /inquiries/"]),
        ("tokens", ["summarise_chord", "POST /inquiries/", "GET /"]),
        ("cost_display", ["summarise_chord", "POST /inquiries/", "GET /"]),
    ],
)
def test_the_list_sorts_by_duration_spans_errors_tokens_and_cost_both_ways(admin_client, traces, column, descending):
    response = admin_client.get(LIST_URL)
    headers = list(response.context["cl"].list_display)
    index = headers.index(column)
    assert listed_names(admin_client.get(LIST_URL, {"o": f"-{index}"})) == descending
    assert listed_names(admin_client.get(LIST_URL, {"o": f"{index}"})) == descending[::-1]


def test_the_list_shows_the_user_and_the_hosts_and_workers_with_links_to_their_traces(admin_client, traces):
    html = admin_client.get(LIST_URL).content.decode()
    assert re.search(r'<a class="ao-user" href="\?q=user%3Aalice"[^>]*>alice</a>', html)
    assert '<a class="ao-proc" href="?process=celery%40worker-2" title="celery@worker-2">celery@worker-2</a>' in html
    assert ">worker-2</a>" not in html  # the worker names its host
    linked = admin_client.get(LIST_URL, {"process": "celery@worker-2"})
    assert listed_names(linked) == ["summarise_chord"]


def test_the_host_or_worker_filter_offers_the_processes_that_reported_recently(admin_client, traces):
    now = timezone.now()
    WriterStats.objects.create(host="web-1", pid=1, process_started_at=now, role="web")
    WriterStats.objects.create(
        host="worker-2", pid=2, process_started_at=now, role="worker", worker_node="celery@worker-2", pool_index=1
    )
    old = WriterStats.objects.create(host="gone-host", pid=3, process_started_at=now)
    WriterStats.objects.filter(pk=old.pk).update(updated_at=now - dt.timedelta(days=3))
    response = admin_client.get(LIST_URL)
    specs = response.context["cl"].filter_specs
    process_filter = next(f for f in specs if getattr(f, "parameter_name", "") == "process")
    assert process_filter.lookup_choices == [
        ("web-1", "host web-1"),
        ("worker-2", "host worker-2"),
        ("celery@worker-2", "worker celery@worker-2"),
    ]
    assert sorted(listed_names(admin_client.get(LIST_URL, {"process": "web-1"}))) == [
        "POST /inquiries/",
        "summarise_chord",
    ]


def test_the_span_panel_names_the_process_that_ended_the_span(admin_client, traces):
    process = WriterStats.objects.create(
        host="worker-2",
        pid=4242,
        process_started_at=timezone.now(),
        role="worker",
        worker_node="celery@worker-2",
        pool_index=1,
    )
    span = make_span(traces["chord"], "summarise", "celery.task")
    span.process_id = process.pk
    span.save()
    url = f"/admin/agentops_django/trace/{traces['chord'].pk}/span/{span.span_id}/"
    html = admin_client.get(url).content.decode()
    assert '<dd class="ao-process">worker · worker-2 pid 4242 · celery@worker-2 #1</dd>' in html


# --- PostgreSQL: each of them is served by an index ----------------------------------------------


def _plan(queryset, *, bitmap: bool = False) -> str:
    """The plan of ``queryset`` on a tiny table, with the scans that are no answer turned off.

    Args:
        bitmap: Turn plain index scans off too (else the started-at index, read
            in order with a filter, is the cheapest plan for three rows).
    """
    switches = ["enable_seqscan", "enable_indexscan"] if bitmap else ["enable_seqscan"]
    with connection.cursor() as cursor:
        for switch in switches:
            cursor.execute(f"SET {switch} = off")
        try:
            sql, params = queryset.query.sql_with_params()
            cursor.execute("EXPLAIN " + sql, params)
            return "\n".join(row[0] for row in cursor.fetchall())
        finally:
            for switch in switches:
                cursor.execute(f"RESET {switch}")


def _trigram_installed() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_indexes WHERE indexname = 'agentops_trace_name_trgm'")
        return cursor.fetchone() is not None


@pytest.fixture
def postgres():
    if connection.vendor != "postgresql":
        pytest.skip("query plans are checked on PostgreSQL (AGENTOPS_TEST_DATABASE=postgres)")


@pytest.mark.parametrize(
    ("ordering", "index"),
    [
        (["-duration_ms", "-pk"], "agentops_trace_by_duration"),
        (["duration_ms", "pk"], "agentops_trace_by_duration"),
        (["-span_count", "-pk"], "agentops_trace_by_spans"),
        (["-error_count", "-pk"], "agentops_trace_by_errors"),
        (["-total_tokens", "-pk"], "agentops_trace_by_tokens"),
        (["cost", "pk"], "agentops_trace_by_cost"),
    ],
)
def test_on_postgresql_each_sort_reads_its_index(postgres, traces, ordering, index):
    plan = _plan(Trace.objects.order_by(*ordering)[:50])
    assert f"Index Scan Backward using {index}" in plan or f"Index Scan using {index}" in plan, plan
    assert "Sort" not in plan.replace("Incremental Sort", ""), plan


def test_on_postgresql_the_user_search_reads_the_user_index(postgres, traces):
    plan = _plan(Trace.objects.filter(search_filter("user:alice")).order_by("-started_at")[:50])
    assert "agentops_trace_user" in plan, plan


@pytest.mark.parametrize(
    ("term", "index"),
    [
        ("chord", "agentops_trace_name_trgm"),
        ("tag:nightly", "agentops_trace_tags_trgm"),
        ("host:web-1", "agentops_trace_procs_trgm"),
        ("span:confirmation", "agentops_span_name_trgm"),
    ],
)
def test_on_postgresql_substring_searches_read_trigram_indexes(postgres, traces, term, index):
    if not _trigram_installed():
        pytest.skip("pg_trgm could not be installed in the test database")
    plan = _plan(Trace.objects.filter(search_filter(term)).order_by("-started_at")[:50], bitmap=True)
    assert f"Bitmap Index Scan on {index}" in plan, plan


def test_a_search_counts_its_matches_up_to_its_own_smaller_cap(admin_client, traces, monkeypatch):
    """Twenty pages of matches are plenty: a search stops counting at 1,000 ("more than 1,000 traces")."""
    from agentops_django.admin._paginator import EstimatedCountPaginator
    from agentops_django.admin._search import SearchPaginator

    assert SearchPaginator.cap == 1_000 < EstimatedCountPaginator.cap
    monkeypatch.setattr(SearchPaginator, "cap", 1)
    html = admin_client.get(LIST_URL, {"q": "host:web-1"}).content.decode()
    assert "more than 1 trace" in html
    assert "more than" not in admin_client.get(LIST_URL).content.decode()
    assert "more than" in admin_client.get(LIST_URL, {"process": "web-1"}).content.decode()
