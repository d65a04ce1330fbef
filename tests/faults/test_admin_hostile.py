"""Values from traced code are shown as text in the admin, secrets never stored, and trace data only for viewers.

The hostile traces are made the way users' code makes them (agentops
decorators, ``start_trace``, a request through the middleware) and stored by
the real database writer; then:

* a real browser (headless Chromium) opens every admin page of them: no
  dialog may open, no ``javascript:`` link may exist, the markup shows as text;
* secrets under keys like ``password``/``api_key``/``token`` and the
  ``Authorization``/``Cookie`` headers are masked in the rows and in the OTLP
  export; the list of keys is a setting (``REDACT_KEYS``);
* anonymous users, non-staff users and staff without the view permission get
  no trace data from any page or from the OTLP export.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from opentelemetry.trace import Status, StatusCode

import agentops
from agentops_django import _wiring as setup
from agentops_django.models import Span, Trace
from tests.conftest import IN_CI

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]

HOSTILE = [
    '<script>alert("name")</script>',
    "<img src=x onerror=alert(2)>",
    '"><svg onload=alert(3)>',
    "javascript:alert(4)",
    "</textarea><script>alert(5)</script>",
    "{{ 7*7 }}{% debug %}",
]
H = " ".join(HOSTILE)
SECRETS = {
    "password": "pw-hunter2",
    "api_key": "sk-secret-api-key",
    "Authorization": "Bearer tok-auth-header",
    "token": "tok-plain",
    "client_secret": "cs-shhh",
    "db_password": "pw-database",
    "ssn": "ssn-123-45-6789",
}


@pytest.fixture
def site(settings: Any) -> Iterator[Callable[..., None]]:
    """``site(**AGENTOPS)``: agentops_django set up with the database writer on the test database."""

    def configure(**overrides: Any) -> None:
        settings.AGENTOPS = {"BATCH_INTERVAL": 0.05, "INSTRUMENT_LLM_CALLS": False, **overrides}
        setup.reset()
        setup.setup()

    yield configure
    setup.reset()


def make_hostile_trace() -> str:
    """A trace whose names, tags, attributes, payloads, events and statuses are all hostile."""

    @agentops.tool(name=H)
    def tool(query: str, url: str, **secrets: Any) -> dict[str, Any]:
        return {"html": H, "link": "javascript:alert(6)", **secrets}

    with agentops.start_trace(H, tags=HOSTILE) as trace:
        tool(H, "javascript:alert(7)", **SECRETS)
        tracer = agentops.get_tracer()
        with tracer.start_as_current_span(
            H,
            attributes={
                "agentops.span.kind": "llm",
                "gen_ai.request.model": H,
                "gen_ai.input.messages": f'[{{"role": "user", "content": {H!r}}}]'.replace("'", '"'),
                "url.full": "javascript:alert(8)",
                H: H,
            },
        ) as span:
            span.add_event(H, {"exception.stacktrace": H, "exception.message": H})
            span.set_status(Status(StatusCode.ERROR, H))
    return format(trace.span.get_span_context().trace_id, "032x")


def stored_text(trace_id: str) -> str:
    parts = []
    for span in Span.objects.filter(trace_id=trace_id):
        parts += [span.name, span.status_message, repr(span.attributes), repr(span.events), repr(span.links)]
    trace = Trace.objects.get(trace_id=trace_id)
    parts += [trace.name, repr(trace.tags), trace.tags_text]
    return "\n".join(parts)


def test_secrets_are_masked_in_rows_and_in_the_otlp_export(site: Callable[..., None], admin_client: Client) -> None:
    """Values under secret keys, and the Authorization/Cookie headers, never reach the database or the export."""
    site(RECORD_HEADERS=True, REDACT_KEYS=["ssn"])
    trace_id = make_hostile_trace()
    response = Client().get(
        "/ping/?password=pw-in-query&q=1",
        headers={"Authorization": "Bearer tok-auth-header", "Cookie": "sessionid=cookie-secret", "X-Api-Key": "xk-1"},
    )
    assert response.status_code == 200
    assert agentops.flush(30_000)
    requests = [s for s in Span.objects.filter(kind="request") if s.attributes.get("url.path") == "/ping/"]
    assert len(requests) == 1
    request_trace = requests[0].trace_id
    texts = {trace_id: stored_text(trace_id), request_trace: stored_text(request_trace)}
    for trace in (trace_id, request_trace):
        export = admin_client.get(f"/admin/agentops_django/trace/{trace}/otlp.json")
        assert export.status_code == 200
        texts[f"otlp:{trace}"] = export.content.decode()
    leaked = {
        where: [value for value in [*SECRETS.values(), "pw-in-query", "cookie-secret", "xk-1"] if value in text]
        for where, text in texts.items()
    }
    assert not any(leaked.values()), f"secrets stored or exported: {leaked}"
    assert "[REDACTED]" in texts[trace_id] and "[REDACTED]" in texts[request_trace]


def test_non_viewers_get_no_trace_data_from_any_page_or_the_export(site: Callable[..., None]) -> None:
    site()
    trace_id = make_hostile_trace()
    assert agentops.flush(30_000)
    trace = Trace.objects.get(trace_id=trace_id)
    span_id = Span.objects.filter(trace_id=trace_id).first().span_id
    pages = [
        "/admin/agentops_django/trace/",
        f"/admin/agentops_django/trace/{trace.pk}/change/",
        f"/admin/agentops_django/trace/{trace_id}/change/",
        f"/admin/agentops_django/trace/{trace.pk}/span/{span_id}/",
        f"/admin/agentops_django/trace/{trace.pk}/otlp.json",
        f"/admin/agentops_django/trace/{trace_id}/otlp.json",
        "/admin/agentops_django/span/",
        "/admin/agentops_django/writerstats/",
        f"/admin/agentops_django/trace/?q={trace_id}",
    ]
    plain = User.objects.create_user("plain", password="pw")
    staff = User.objects.create_user("staff", password="pw", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_writerstats"))
    viewer = User.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_trace"))
    markers = [trace_id, span_id, "alert(", "onerror"]
    shown: dict[str, list[str]] = {}
    for who in (None, plain, staff):
        client = Client()
        if who is not None:
            client.force_login(who)
        for page in pages:
            if who is staff and page.endswith("/writerstats/"):
                continue  # its own permission: counters, no trace data
            response = client.get(page)
            body = response.content.decode(errors="replace")
            found = [m for m in markers if m in body]
            if response.status_code == 200 or found:
                shown.setdefault(who.username if who else "anonymous", []).append(f"{page} {response.status_code}")
    assert not shown, f"trace data reached users without the view permission: {shown}"
    # The one who may view sees it (so the pages above were real).
    client = Client()
    client.force_login(viewer)
    assert trace_id in client.get(f"/admin/agentops_django/trace/{trace.pk}/otlp.json").content.decode()


# --- the browser ---------------------------------------------------------------------------
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


@pytest.mark.browser
def test_hostile_values_show_as_text_on_every_admin_page_in_a_real_browser(
    site: Callable[..., None], live_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not CHROMIUM.exists():
        if IN_CI:
            pytest.fail("Chromium is missing: apt-get install -y chromium")
        pytest.skip("Chromium is missing")
    sync_api = pytest.importorskip("playwright.sync_api")
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    site()
    trace_id = make_hostile_trace()
    assert agentops.flush(30_000)
    trace = Trace.objects.get(trace_id=trace_id)
    span_ids = list(Span.objects.filter(trace_id=trace_id).values_list("span_id", flat=True))
    User.objects.create_superuser("root", "root@example.invalid", "pw")
    base = live_server.url
    dialogs: list[str] = []
    script_errors: list[str] = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page()

            def on_dialog(dialog: Any) -> None:
                dialogs.append(dialog.message)
                dialog.dismiss()

            page.on("dialog", on_dialog)
            page.on("pageerror", lambda error: script_errors.append(str(error)))
            page.goto(f"{base}/admin/login/?next=/admin/")
            page.fill("#id_username", "root")
            page.fill("#id_password", "pw")
            page.click("input[type=submit]")
            page.wait_for_url(f"{base}/admin/")
            urls = [
                f"{base}/admin/agentops_django/trace/",
                f"{base}/admin/agentops_django/trace/?q=script",
                f"{base}/admin/agentops_django/trace/{trace.pk}/change/",
                *[f"{base}/admin/agentops_django/trace/{trace.pk}/change/?span={sid}" for sid in span_ids],
                *[f"{base}/admin/agentops_django/trace/{trace.pk}/span/{sid}/" for sid in span_ids],
                f"{base}/admin/agentops_django/span/",
            ]
            problems = []
            for url in urls:
                page.goto(url)
                page.wait_for_load_state("load")
                # Open every collapsible and click every span row, as a reader would.
                for handle in page.query_selector_all("details:not([open]) > summary")[:50]:
                    handle.click()
                for handle in page.query_selector_all("[data-span-id], tr.span-row, .waterfall-row")[:20]:
                    try:
                        handle.click(timeout=2000)
                    except Exception:  # a row that is not clickable is fine
                        pass
                page.wait_for_timeout(200)
                javascript_links = page.eval_on_selector_all(
                    "a[href], [src], [action]",
                    "els => els.map(e => e.getAttribute('href') || e.getAttribute('src') || e.getAttribute('action'))"
                    ".filter(v => /^\\s*javascript:/i.test(v))",
                )
                injected = page.evaluate(
                    "() => [...document.querySelectorAll('script, svg, img[onerror], [onload], [onerror]')]"
                    ".filter(e => (e.outerHTML || '').includes('alert(')).map(e => e.outerHTML.slice(0, 120))"
                )
                if javascript_links or injected:
                    problems.append((url, javascript_links, injected))
            page.goto(f"{base}/admin/agentops_django/trace/{trace.pk}/change/")
            text = page.inner_text("body")
        finally:
            browser.close()
    assert not dialogs, f"a dialog opened: {dialogs}"
    assert not problems, problems
    assert '<script>alert("name")</script>' in text, "the hostile name is not shown as text"
    assert not script_errors, script_errors
