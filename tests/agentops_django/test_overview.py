"""The overview page: per route, task and model over a window, against the window before, from the rollup.

Spans are stored by the writer (``write_batch``), so the rollup is the one the
writer keeps; the expected numbers are computed from the spans themselves.
"""

from __future__ import annotations

import random
import time
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from agentops_django import _histogram
from agentops_django.admin import _overview
from agentops_django.models import Rollup, Trace
from agentops_django.writer import write_batch
from tests.agentops_django.test_exporter import T0, make_span, new_trace_id

pytestmark = pytest.mark.django_db

URL = "/admin/agentops_django/trace/overview/"


def ago(minutes: float) -> float:
    """An offset for ``make_span`` (ms after T0) that many minutes before now."""
    return (time.time_ns() - T0) / 1e6 - minutes * 60_000


def request(route: str, minutes_ago: float, duration: float, *, error: bool = False, **attributes: Any) -> list:
    trace_id = new_trace_id()
    start = ago(minutes_ago)
    method, path = route.split(" ", 1)
    attrs = {"http.route": path, "http.request.method": method, **attributes}
    return [make_span(trace_id, 1, name=route, kind="request", start=start, end=start + duration, error=error,
                      attributes=attrs)]  # fmt: skip


def store(spans: list) -> None:
    write_batch("default", spans, own_transaction=False)


@pytest.fixture
def staff(client) -> Any:
    User.objects.create_superuser("admin", "a@example.com", "pw")
    client.login(username="admin", password="pw")
    return client


def rows_by_name(response, kind: str) -> dict[str, dict]:
    (table,) = [t for t in response.context["tables"] if t["kind"] == kind]
    return {row["name"]: row for row in table["rows"]}


def test_counts_error_rates_and_percentiles_per_route_with_the_change_against_the_window_before(staff) -> None:
    rng = random.Random(1)
    durations = [rng.lognormvariate(4, 1) for _ in range(40)]
    spans = []
    for i, duration in enumerate(durations):
        spans += request("GET /orders/<int:pk>/", rng.uniform(1, 50), duration, error=i % 8 == 0)
    for _ in range(10):  # the hour before: a quarter of the traffic, no errors
        spans += request("GET /orders/<int:pk>/", rng.uniform(70, 110), 5.0)
    spans += request("POST /chat/", 3, 250.0, **{"agentops.db.query_count": 40, "agentops.db.repeated_queries": 2})
    store(spans)

    response = staff.get(URL, {"window": "1h"})
    assert response.status_code == 200
    rows = rows_by_name(response, "request")
    orders = rows["GET /orders/<int:pk>/"]
    assert orders["count"] == "40"
    assert orders["count_change"]["text"] == "+300%"
    assert orders["error_rate"] == "12.5%"
    assert orders["error_change"]["text"] == "+12.5 pt"
    stats = _overview.key_stats(_overview.window_from({"window": "1h"}))[("request", "GET /orders/<int:pk>/")]
    for fraction in (0.5, 0.95, 0.99):
        exact = _histogram.exact_percentile(durations, fraction)
        assert stats.p(fraction) == pytest.approx(exact, rel=_histogram.RELATIVE_ERROR)
    assert list(rows) == ["GET /orders/<int:pk>/", "POST /chat/"]  # busiest first
    # The N+1 table: the route that repeated a statement, with its queries per run.
    (suspect,) = response.context["query_rows"]
    assert (suspect["name"], suspect["per_run_text"], suspect["repeated"]) == ("POST /chat/", "40.0", 1)
    html = response.content.decode()
    assert "within 9.1% of the exact values" in html and "<svg" in html


def test_tasks_show_queue_wait_and_models_show_tokens_and_cost(staff) -> None:
    trace_id = new_trace_id()
    start = ago(5)
    store(
        [
            make_span(trace_id, 1, name="shop.tasks.digest", kind="celery.task", start=start, end=start + 900,
                      attributes={"celery.task.name": "shop.tasks.digest", "celery.queue_wait_ms": 120.0}),
            make_span(trace_id, 2, 1, name="chat", kind="llm", start=start + 1, end=start + 800,
                      attributes={"gen_ai.request.model": "gpt-4o-mini", "gen_ai.usage.input_tokens": 1200,
                                  "gen_ai.usage.output_tokens": 300, "gen_ai.usage.total_cost": 0.00036}),
            make_span(trace_id, 3, 1, name="chat", kind="llm", start=start + 1, end=start + 50,
                      attributes={"gen_ai.request.model": "mystery-1", "gen_ai.usage.input_tokens": 10,
                                  "gen_ai.usage.output_tokens": 5, "agentops.cost.unpriced": True}),
        ]
    )  # fmt: skip
    response = staff.get(URL, {"window": "24h"})
    task = rows_by_name(response, "task")["shop.tasks.digest"]
    assert task["wait_p95"] == _overview.format_duration(_histogram.value(_histogram.bucket(120.0)))
    models = rows_by_name(response, "llm")
    assert list(models) == ["gpt-4o-mini", "mystery-1"]  # most expensive first
    assert models["gpt-4o-mini"]["tokens"] == "1,200 / 300"
    assert models["gpt-4o-mini"]["cost"] == "$0.00036"
    assert models["mystery-1"]["cost"] == "unknown"  # never $0


def test_row_links_open_the_matching_traces_and_the_slowest_and_most_expensive(staff) -> None:
    store(request("GET /a/", 2, 10.0) + request("GET /a/", 3, 900.0) + request("GET /b/", 2, 50.0))
    store(request("GET /a/", 60 * 30, 5000.0))  # a day and more ago: outside the window
    response = staff.get(URL, {"window": "24h"})
    row = rows_by_name(response, "request")["GET /a/"]
    listing = staff.get(row["list_url"])
    assert listing.status_code == 200
    assert sorted(t.duration_ms for t in listing.context["cl"].result_list) == pytest.approx([10.0, 900.0], abs=0.01)
    slowest = staff.get(row["slowest_url"])
    assert slowest.status_code == 302
    assert Trace.objects.get(pk=slowest.url.rstrip("/").split("/")[-2]).duration_ms == pytest.approx(900.0)


def test_whole_days_and_hours_are_read_from_their_rows_and_add_up_to_the_minutes() -> None:
    rng = random.Random(4)
    spans = []
    for _ in range(150):
        spans += request(rng.choice(["GET /a/", "GET /b/"]), rng.uniform(0, 4000), rng.uniform(1, 100))
    store(spans)
    now = int(time.time() // 60) + 1
    for _ in range(30):
        start = now - rng.randrange(0, 4000)
        end = rng.randrange(start + 1, now + 2)
        mixed = Rollup.objects.filter(_overview.rows_q(start, end)).values_list("count", flat=True)
        minutes = Rollup.objects.filter(period=1, minute__gte=start, minute__lt=end).values_list("count", flat=True)
        assert sum(mixed) == sum(minutes)


def test_a_bad_custom_window_falls_back_to_the_last_day_and_the_page_needs_view_permission(staff, client) -> None:
    window = _overview.window_from({"from": "yesterday", "to": "nope"})
    assert (window.key, window.length) == ("24h", 1440)
    custom = _overview.window_from({"from": "2026-01-01T10:00", "to": "2026-01-01T12:30"})
    assert (custom.key, custom.length) == ("custom", 150)
    assert staff.get(URL, {"from": "2026-01-01T10:00", "to": "2026-01-01T12:30"}).status_code == 200
    staff.logout()
    assert staff.get(URL).status_code == 302  # to the login page


def test_the_trace_list_links_to_the_overview_and_offers_the_live_toggle(staff) -> None:
    html = staff.get(reverse("admin:agentops_django_trace_changelist")).content.decode()
    assert URL in html and 'id="ao-live"' in html


def test_under_use_tz_false_the_links_use_wall_clock_times(staff, settings) -> None:
    settings.USE_TZ = False
    settings.TIME_ZONE = "Europe/Paris"
    store(request("GET /a/", 2, 10.0) + request("GET /a/", 3, 700.0))
    row = rows_by_name(staff.get(URL, {"window": "1h"}), "request")["GET /a/"]
    assert staff.get(row["list_url"]).context["cl"].result_count == 2
    slowest = staff.get(row["slowest_url"])
    assert Trace.objects.get(pk=slowest.url.rstrip("/").split("/")[-2]).duration_ms == pytest.approx(700.0)
