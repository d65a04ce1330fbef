"""The trace admin in a real browser: headless Chromium (Debian's package) driven by Playwright.

Logs in, opens the list, filters it, opens a trace of a request that ran a
Celery chain with LLM calls, checks the waterfall's rows and bars and expands a
span. Screenshots go to ``test-artifacts/``; the README's come from the demo's
own traces (``scripts/screenshots.py``).
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth.models import User
from django.http import JsonResponse
from django.urls import path

import agentops
from tests.agentops_django.celery_fixtures import wait_for
from tests.agentops_django.test_admin import XSS, make_chain_trace, make_trace

__all__ = ["wait_for"]  # the fixture, used by the real-path test

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def browser_page(monkeypatch) -> Iterator:
    """A Chromium page; skips (fails under CI=true) when Chromium or Playwright is missing."""
    from tests.conftest import IN_CI

    if not CHROMIUM.exists():
        if IN_CI:
            pytest.fail("Chromium is missing: apt-get install -y chromium")
        pytest.skip("Chromium is missing: apt-get install -y chromium")
    sync_api = pytest.importorskip("playwright.sync_api")
    # Playwright runs an event loop in this thread; the ORM calls of the test itself are safe.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(viewport={"width": 1440, "height": 900}, device_scale_factor=1)
        page = context.new_page()
        page.on("dialog", lambda dialog: pytest.fail(f"a dialog opened: {dialog.message}"))
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        yield page
        context.close()
        browser.close()
        assert not errors, f"JavaScript errors on the page: {errors}"


def screenshot(page, name: str, full_page: bool = False) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=full_page)


def populate() -> dict:
    """A handful of traces for the list, and the chain trace to open."""
    from datetime import timedelta

    from django.utils import timezone

    now = timezone.now()
    rows = [
        ("GET /api/orders/", "request", "Success", 1, 48.0, 3, 0, 0, 0.0),
        ("research.tasks.digest", "task", "Success", 4, 5320.0, 41, 0, 18250, 0.0274),
        ("POST /api/chat/", "request", "Error", 7, 932.0, 9, 1, 2211, 0.0033),
        ("nightly-cleanup", "manual", "Indeterminate", 12, None, 2, 0, 0, 0.0),
        ("GET /healthz", "request", "Success", 15, 2.1, 1, 0, 0, 0.0),
        ("research.tasks.answer", "task", "Success", 21, 2874.0, 17, 0, 6402, 0.0096),
    ]
    for name, kind, status, minutes, duration, spans, errors, tokens, cost in rows:
        make_trace(
            name,
            kind=kind,
            status=status,
            started_at=now - timedelta(minutes=minutes),
            duration_ms=duration,
            span_count=spans,
            error_count=errors,
            total_tokens=tokens,
            input_tokens=tokens * 4 // 5,
            output_tokens=tokens - tokens * 4 // 5,
            cost=cost,
        )
    from agentops_django.models import WriterStats

    for host, pid, written in [("web-1", 811, 20_418), ("worker-1", 902, 27_792)]:
        WriterStats.objects.create(
            host=host, pid=pid, process_started_at=now - timedelta(hours=2), spans_written=written
        )
    linked = make_trace("research.tasks.notify", kind="task", started_at=now - timedelta(minutes=30), span_count=1)
    return make_chain_trace(linked=linked)


def log_in(page, live_server) -> None:
    if not User.objects.filter(username="admin").exists():
        User.objects.create_superuser("admin", "admin@example.com", "correct horse")
    page.goto(f"{live_server.url}/admin/login/?next=/admin/agentops_django/trace/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", "correct horse")
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/agentops_django/trace/")
    # Fold the app list away (the admin's own toggle) so the screenshots show the whole table.
    page.evaluate("localStorage.setItem('django.admin.navSidebarIsOpen', 'false')")
    page.reload()


def test_a_developer_finds_and_reads_a_trace_in_the_browser(live_server, browser_page):
    page = browser_page
    chain = populate()
    trace = chain["trace"]
    log_in(page, live_server)

    # The list: newest first, with status colours and the writer's counter.
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 8
    assert rows.nth(0).locator("th").first.inner_text().strip() == "GET /api/orders/"
    assert page.locator(".ao-status--error").count() == 2
    writer = page.locator(".ao-writer").inner_text()
    assert "48,210 spans written" in writer and "0 dropped" in writer
    screenshot(page, "admin-list.png")

    # Filter by status, then search the chain's trace id.
    page.click("#changelist-filter a:text-is('Error')")
    page.wait_for_url("**status__exact=Error**")
    assert page.locator("#result_list tbody tr").count() == 2
    page.fill("#searchbar", trace.trace_id[:10])
    page.press("#searchbar", "Enter")
    page.wait_for_url("**q=**")
    assert page.locator("#result_list tbody tr").count() == 1

    # Open the trace: one row per span, indented under its parent, bars on one axis.
    page.click(f"#result_list a:text-is('{trace.name}')")
    page.wait_for_selector(".ao-rows")
    waterfall = page.locator(".ao-rows li.ao-row")
    assert waterfall.count() == 13
    assert page.locator(".ao-row.ao-k-task").count() == 4
    assert page.locator(".ao-row.ao-k-llm").count() == 2
    assert page.locator(".ao-row .ao-wait").count() == 4
    track = page.locator(f"[data-span-id='{chain['request'].span_id}'] .ao-track").bounding_box()
    request_bar = page.locator(f"[data-span-id='{chain['request'].span_id}'] .ao-bar").bounding_box()
    retry_bar = page.locator(f"[data-span-id='{chain['retry'].span_id}'] .ao-bar").bounding_box()
    retry_wait = page.locator(f"[data-span-id='{chain['retry'].span_id}'] .ao-wait").bounding_box()
    llm_label = page.locator(f"[data-span-id='{chain['llm1'].span_id}'] .ao-badge").bounding_box()
    request_label = page.locator(f"[data-span-id='{chain['request'].span_id}'] .ao-badge").bounding_box()
    assert abs(request_bar["x"] - track["x"]) < 2  # the request starts the axis
    assert retry_bar["x"] + retry_bar["width"] == pytest.approx(track["x"] + track["width"], abs=2)  # and ends it
    assert retry_wait["x"] + retry_wait["width"] == pytest.approx(retry_bar["x"], abs=1.5)
    assert llm_label["x"] > request_label["x"] + 5 * 8  # indented six levels deeper (8 to 14 px a level)
    failed = page.locator(f"[data-span-id='{chain['notify'].span_id}']")
    assert "ao-error" in failed.get_attribute("class")
    assert "ao-contains-error" in page.locator(f"[data-span-id='{chain['request'].span_id}']").get_attribute("class")

    # Select the first LLM call: model, tokens and messages appear without a page load.
    page.evaluate("window.__same_page = true")
    page.click(f"[data-span-id='{chain['llm1'].span_id}'] a.ao-label")
    detail = page.locator("#ao-detail .ao-span")
    detail.wait_for()
    assert page.evaluate("window.__same_page") is True
    assert "gpt-4o-mini" in detail.inner_text()
    assert "955" in detail.inner_text()
    # The long prompt is collapsed; opening it shows the <script> as text, never run.
    prompt = detail.locator(".ao-msg details").first
    assert not prompt.evaluate("el => el.open")
    prompt.locator("summary").click()
    assert XSS in prompt.locator("pre").inner_text()
    assert page.locator("#ao-detail script").count() == 0
    screenshot(page, "admin-trace.png")

    # The failed task shows its traceback; its link opens the trace it linked to.
    page.click(f"[data-span-id='{chain['notify'].span_id}'] a.ao-label")
    page.wait_for_selector("#ao-detail .ao-exception")
    assert "ConnectionRefusedError" in page.locator("#ao-detail .ao-exception pre").inner_text()
    screenshot(page, "admin-trace-error.png")
    page.emulate_media(color_scheme="dark")
    page.wait_for_timeout(400)  # let the admin's colour transitions finish before the picture
    screenshot(page, "admin-trace-dark.png")
    page.emulate_media(color_scheme="light")
    page.click(f"[data-span-id='{chain['notify'].span_id}'] a.ao-linked")
    page.wait_for_selector(".ao-title")
    assert page.locator(".ao-title").inner_text() == "research.tasks.notify"


# --- the real path: a request, a Celery chain on a worker, an LLM call, the database writer -------

#: The stand-in LLM server's base URL, set by the test for the view and the task.
LLM: dict[str, str] = {}


def _celery_tasks() -> dict[str, Any]:
    """The chain's three tasks, registered once (Celery's shared_task, as a user writes them)."""
    from celery import shared_task

    @agentops.tool(name="search_notes")
    def search_notes(query: str) -> list[str]:
        return [f"{query} was first described in 1998", f"{query} is used by many teams"]

    @agentops.agent(name="researcher")
    def research(question: str, notes: list[str], base_url: str) -> str:
        import openai

        client = openai.OpenAI(base_url=base_url, api_key="test", max_retries=0)
        reply = client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[
                {"role": "system", "content": "Answer in one sentence using the notes."},
                {"role": "user", "content": f"{question}\nNotes: {'; '.join(notes)}"},
            ],
        )
        return reply.choices[0].message.content or ""

    @shared_task(name="tests.admin_browser.plan")
    def plan(question: str) -> dict[str, str]:
        return {"question": question, "query": question.split()[-1].strip("?")}

    @shared_task(name="tests.admin_browser.answer")
    def answer(planned: dict[str, str], base_url: str) -> str:
        return research(planned["question"], search_notes(planned["query"]), base_url)

    @shared_task(name="tests.admin_browser.store")
    def store(text: str) -> int:
        return len(text)

    return {"plan": plan, "answer": answer, "store": store}


TASKS = _celery_tasks()


def ask(request):
    """The view: enqueue plan → answer (tool + agent + LLM call) → store, answer with the trace id."""
    from celery import chain
    from opentelemetry import trace as trace_api

    question = request.GET.get("q", "What is Celery?")
    chain(TASKS["plan"].s(question), TASKS["answer"].s(LLM["base_url"]), TASKS["store"].s()).delay()
    context = trace_api.get_current_span().get_span_context()
    return JsonResponse({"trace_id": format(context.trace_id, "032x")})


urlpatterns = [path("admin/", admin.site.urls), path("ask/", ask)]


@pytest.mark.redis
@pytest.mark.slow
@pytest.mark.urls(__name__)
def test_a_real_request_celery_chain_and_llm_call_show_as_one_trace(
    configure_agentops, browser_page, wait_for, django_db_blocker, request
):
    """No factories: the middleware, the Celery signals, the OpenAI instrumentation and the writer make the rows."""
    from agentops.testing.llm_server import LLMServer
    from agentops_django.models import Trace
    from tests.agentops_django.celery_fixtures import make_app, restore_default_app, running_worker

    configure_agentops(INSTRUMENT_LLM_CALLS=True, CAPTURE_CONTENT=True, SERVICE_NAME="shop")
    live_server = request.getfixturevalue("live_server")  # started after the middleware is installed
    app = make_app("redis")
    try:
        with LLMServer() as llm, running_worker(app, "solo"):
            LLM["base_url"] = llm.base_url
            url = f"{live_server.url}/ask/?q=What+is+Celery%3F"
            with urllib.request.urlopen(url, timeout=30) as response:
                trace_id = json.loads(response.read())["trace_id"]

            def complete() -> Trace | None:
                trace = Trace.objects.filter(trace_id=trace_id, span_count__gte=10).first()
                return trace if trace and trace.spans.filter(kind="llm").exists() else None

            try:
                trace = wait_for(complete, "the request's trace with the chain and its LLM call", deadline=90)
            except AssertionError as exc:
                from agentops_django.models import Span

                stored = list(Span.objects.values_list("trace_id", "kind", "name"))
                raise AssertionError(f"{exc}; trace {trace_id}; stored spans: {stored}") from None
    finally:
        restore_default_app()
    spans = list(trace.spans.all())
    kinds = sorted(span.kind for span in spans)
    assert kinds.count("celery.task") == 3 and kinds.count("publish") == 3
    assert {"request", "agent", "tool", "llm"} <= set(kinds)

    page = browser_page
    log_in(page, live_server)
    page.click(f"#result_list a:text-is('{trace.name}')")
    page.wait_for_selector(".ao-rows")
    assert page.locator(".ao-rows li.ao-row").count() == len(spans)
    assert page.locator(".ao-row.ao-k-request").count() == 1
    assert page.locator(".ao-row.ao-k-task").count() == 3
    assert page.locator(".ao-row .ao-wait").count() >= 1
    # Every span hangs under the request: one top-level row.
    depths = page.locator(".ao-rows li.ao-row").evaluate_all("rows => rows.map(r => r.style.getPropertyValue('--d'))")
    assert depths.count("0") == 1
    (llm_span,) = [span for span in spans if span.kind == "llm"]
    page.click(f"[data-span-id='{llm_span.span_id}'] a.ao-label")
    detail = page.locator("#ao-detail .ao-span")
    detail.wait_for()
    text = detail.inner_text()
    assert "gpt-4o-mini" in text and "Answer in one sentence using the notes." in text
    assert trace.total_tokens > 0
    screenshot(page, "admin-trace-real.png")
