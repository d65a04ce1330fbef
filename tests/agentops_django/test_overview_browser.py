"""The overview in a real browser (headless Chromium), and the overview of real traffic.

The first test stores spans through the writer and reads the page at 1440 and
800 px wide, with the live toggle. The second sends real requests through the
middleware to views that run a Celery chain on a real worker with an OpenAI
call to the stand-in LLM server, and compares the overview with what the
stored spans add up to.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections import defaultdict
from typing import Any

import pytest
from django.urls import path

from agentops_django import _histogram
from agentops_django._usage import span_usage
from agentops_django.admin import _overview
from agentops_django.models import Span, Trace
from agentops_django.writer import write_batch
from tests.agentops_django import test_admin_browser as admin_browser
from tests.agentops_django.celery_fixtures import wait_for
from tests.agentops_django.test_admin_browser import browser_page, log_in, screenshot
from tests.agentops_django.test_exporter import make_span, new_trace_id
from tests.agentops_django.test_overview import ago, request

__all__ = ["browser_page", "wait_for"]  # the fixtures

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

OVERVIEW = "/admin/agentops_django/trace/overview/"


def populate() -> None:
    spans = []
    for i in range(30):
        spans += request("GET /api/orders/<int:pk>/", 1 + i, 20.0 + i * 7, error=i % 10 == 0)
    for i in range(12):
        spans += request(
            "POST /api/chat/", 2 + i * 3, 800.0 + i * 40,
            **{"agentops.db.query_count": 31, "agentops.db.query_time_ms": 12.5, "agentops.db.repeated_queries": 1},
        )  # fmt: skip
    for i in range(6):
        spans += request("GET /api/orders/<int:pk>/", 70 + i, 15.0)  # the hour before
    trace_id = new_trace_id()
    start = ago(4)
    spans += [
        make_span(trace_id, 1, name="research.tasks.digest", kind="celery.task", start=start, end=start + 5300,
                  attributes={"celery.task.name": "research.tasks.digest", "celery.queue_wait_ms": 85.0}),
        make_span(trace_id, 2, 1, name="chat", kind="llm", start=start + 10, end=start + 2100,
                  attributes={"gen_ai.request.model": "gpt-4o-mini", "gen_ai.usage.input_tokens": 14_600,
                              "gen_ai.usage.output_tokens": 3_650, "gen_ai.usage.total_cost": 0.0044}),
    ]  # fmt: skip
    write_batch("default", spans)


def no_horizontal_overflow(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


def test_the_overview_reads_at_1440_and_800_pixels_and_refreshes_itself_when_asked(live_server, browser_page):
    page = browser_page
    populate()
    log_in(page, live_server)
    page.click("a:text('Overview: time, errors and cost per route, task and model')")
    page.wait_for_selector(".ao-ov-table")
    page.click(".ao-ov-windows a:text-is('Last hour')")
    page.wait_for_url("**window=1h**")
    orders = page.locator("table[data-kind=request] tr[data-name='GET /api/orders/<int:pk>/']")
    assert orders.locator("[data-field=count]").inner_text() == "30"
    assert "+400%" in orders.inner_text()  # 30 against 6 the hour before
    assert orders.locator("[data-field=error_rate]").inner_text() == "10.0%"
    chat = page.locator("table[data-kind=queries] tr[data-name='POST /api/chat/']")
    assert "31.0" in chat.inner_text() and chat.locator("td").last.inner_text() == "12"
    assert page.locator(".ao-chart svg").count() == 4
    assert page.locator(".ao-chart polyline, .ao-chart circle").count() >= 1
    assert no_horizontal_overflow(page)
    screenshot(page, "admin-overview.png", full_page=True)

    # With the admin's sidebar open, at 800 px: the charts stack, wide tables scroll in their own box.
    page.evaluate("localStorage.setItem('django.admin.navSidebarIsOpen', 'true')")
    page.set_viewport_size({"width": 800, "height": 900})
    page.reload()
    page.wait_for_selector(".ao-ov-table")
    assert no_horizontal_overflow(page)
    boxes = [page.locator(".ao-chart").nth(i).bounding_box() for i in range(2)]
    assert boxes[1]["y"] > boxes[0]["y"] + 50  # one chart per line
    screenshot(page, "admin-overview-800.png", full_page=True)

    # The live toggle: remembered, reloads on its own, but not while a form field is focused.
    page.set_viewport_size({"width": 1440, "height": 900})
    page.check("#ao-live")
    page.evaluate("window.__same_page = true")
    page.wait_for_function("window.__same_page === undefined", timeout=15_000)  # reloaded
    page.wait_for_selector("#ao-live")
    assert page.is_checked("#ao-live")
    page.evaluate("window.__same_page = true")
    page.focus(".ao-ov-custom input[name=from]")
    page.wait_for_timeout(7000)
    assert page.evaluate("window.__same_page") is True
    page.uncheck("#ao-live")


# --- real traffic: middleware, a Celery worker, the OpenAI client against the stand-in ----------


def boom(request, n):
    raise ValueError("the demo view fails on purpose")


urlpatterns = [*admin_browser.urlpatterns, path("boom/<int:n>/", boom)]


@pytest.mark.redis
@pytest.mark.slow
@pytest.mark.urls(__name__)
def test_real_traffic_shows_on_the_overview_as_its_spans_add_up(configure_agentops, browser_page, wait_for, request):
    from agentops.testing.llm_server import LLMServer
    from tests.agentops_django.celery_fixtures import make_app, restore_default_app, running_worker

    configure_agentops(INSTRUMENT_LLM_CALLS=True, SERVICE_NAME="shop")
    live_server = request.getfixturevalue("live_server")
    app = make_app("redis")
    trace_ids = []
    try:
        with LLMServer() as llm, running_worker(app, "solo"):
            admin_browser.LLM["base_url"] = llm.base_url
            for question in ("What is Celery?", "What is Django?", "What is Redis?"):
                url = f"{live_server.url}/ask/?q={question.replace(' ', '+')}"
                with urllib.request.urlopen(url, timeout=30) as response:
                    trace_ids.append(json.loads(response.read())["trace_id"])
            for n in range(2):
                with pytest.raises(urllib.error.HTTPError):
                    urllib.request.urlopen(f"{live_server.url}/boom/{n}/", timeout=30)

            def complete() -> bool:
                done = Trace.objects.filter(trace_id__in=trace_ids, span_count__gte=10).count() == 3
                llm_calls = Span.objects.filter(trace_id__in=trace_ids, kind="llm").count() == 3
                return done and llm_calls and Span.objects.filter(name="GET /boom/<int:n>/").count() == 2

            wait_for(complete, "three chains with their LLM calls, and the two failed requests", deadline=90)
    finally:
        restore_default_app()

    # What the stored spans add up to, per key, by the rules the page states.
    kinds = {"request": "request", "celery.task": "task", "llm": "llm"}
    expected: dict[tuple[str, str], dict[str, Any]] = defaultdict(
        lambda: {"durations": [], "errors": 0, "in": 0, "out": 0, "cost": 0.0}
    )
    for span in Span.objects.filter(kind__in=list(kinds)):
        a = span.attributes
        kind = kinds[span.kind]
        name = {"request": span.name, "task": a.get("celery.task.name"), "llm": a.get("gen_ai.request.model")}[kind]
        entry = expected[(kind, name)]
        entry["durations"].append(span.duration_ms)
        entry["errors"] += span.status == "ERROR"
        usage = span_usage(span.kind, a)
        entry["in"] += usage.input_tokens
        entry["out"] += usage.output_tokens
        entry["cost"] += usage.cost
    assert ("request", "GET /ask/") in expected and ("request", "GET /boom/<int:n>/") in expected
    assert ("llm", "gpt-4o-mini") in expected and len([k for k in expected if k[0] == "task"]) == 3

    stats = _overview.key_stats(_overview.window_from({"window": "1h"}))
    assert set(stats) == set(expected)
    for key, want in expected.items():
        got = stats[key]
        assert got.count == len(want["durations"]), key
        assert got.sums["errors"] == want["errors"], key
        assert (got.sums["input_tokens"], got.sums["output_tokens"]) == (want["in"], want["out"]), key
        assert got.sums["cost"] == pytest.approx(want["cost"]), key
        for fraction in (0.5, 0.95, 0.99):
            exact = _histogram.exact_percentile(want["durations"], fraction)
            assert got.p(fraction) == pytest.approx(exact, rel=_histogram.RELATIVE_ERROR), (key, fraction)
    assert stats[("request", "GET /boom/<int:n>/")].sums["errors"] == 2
    # The money agrees with the trace totals of the list.
    assert sum(t.cost for t in Trace.objects.filter(trace_id__in=trace_ids)) == pytest.approx(
        stats[("llm", "gpt-4o-mini")].sums["cost"]
    )
    assert stats[("llm", "gpt-4o-mini")].sums["cost"] > 0

    page = browser_page
    log_in(page, live_server)
    page.goto(f"{live_server.url}{OVERVIEW}?window=1h")
    ask = page.locator("table[data-kind=request] tr[data-name='GET /ask/']")
    assert ask.locator("[data-field=count]").inner_text() == "3"
    failed = page.locator("table[data-kind=request] tr[data-name='GET /boom/<int:n>/']")
    assert failed.locator("[data-field=error_rate]").inner_text() == "100.0%"
    model = page.locator("table[data-kind=llm] tr[data-name='gpt-4o-mini']")
    assert model.locator("[data-field=tokens]").inner_text() == (
        f"{expected[('llm', 'gpt-4o-mini')]['in']:,} / {expected[('llm', 'gpt-4o-mini')]['out']:,}"
    )
    screenshot(page, "admin-overview-real.png", full_page=True)
    # The route's link lists exactly its traces of the window.
    ask.locator("th a").click()
    page.wait_for_selector("#result_list")
    assert page.locator("#result_list tbody tr").count() == 3
