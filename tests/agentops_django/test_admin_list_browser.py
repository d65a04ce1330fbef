"""The trace list's user and host/worker columns in real Chromium: 1440 px with the app list open, and 800 px.

Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from tests.agentops_django.test_admin import make_trace
from tests.agentops_django.test_admin_browser import browser_page, screenshot

__all__ = ["browser_page"]  # the fixture

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def populate() -> None:
    now = timezone.now()
    make_trace(
        "POST /inquiries/",
        started_at=now - dt.timedelta(minutes=1),
        span_count=6,
        total_tokens=2211,
        cost=0.0033,
        username="alice.johnson",
        user_id="1042",
        processes_text="|web-1.prod.internal|",
    )
    make_trace(
        "summarise_chord",
        kind="task",
        started_at=now - dt.timedelta(minutes=2),
        duration_ms=9000.0,
        span_count=41,
        processes_text="|web-1.prod.internal|worker-2.prod.internal|celery@worker-2.prod.internal|",
    )
    make_trace("GET /healthz", started_at=now - dt.timedelta(minutes=3), span_count=1)


def log_in(page, live_server, *, sidebar_open: bool) -> None:
    User.objects.filter(username="admin").exists() or User.objects.create_superuser("admin", "a@example.com", "pw")
    page.goto(f"{live_server.url}/admin/login/?next=/admin/agentops_django/trace/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", "pw")
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/agentops_django/trace/")
    page.evaluate(f"localStorage.setItem('django.admin.navSidebarIsOpen', '{str(sidebar_open).lower()}')")
    page.reload()


def _column_is_readable(page, header: str, text: str, width: int, *, scroll: bool) -> None:
    """The column's header and a cell's text are on screen (after scrolling the table, if ``scroll``)."""
    heading = page.locator(f"#result_list thead th:has-text('{header}')")
    assert heading.count() == 1
    cell = page.locator(f"#result_list tbody a:text-is('{text}')").first
    if scroll:
        cell.scroll_into_view_if_needed()
    box = cell.bounding_box()
    shown = page.locator("#changelist .results").bounding_box()
    assert box is not None and box["width"] > 20 and box["height"] > 5
    # Inside the table's visible box and the window, not cut off by either.
    assert shown["x"] <= box["x"] and box["x"] + box["width"] <= shown["x"] + shown["width"] + 1, (box, shown)
    assert 0 <= box["x"] and box["x"] + box["width"] <= width + 1, box
    # The page itself never scrolls sideways: a wide table scrolls inside its own box.
    assert page.evaluate("document.documentElement.scrollWidth") <= width + 1


@pytest.mark.parametrize(("width", "sidebar_open"), [(1440, True), (800, True), (800, False)])
def test_the_list_shows_user_and_hosts_at_1440_px_with_the_app_list_and_at_800_px(
    live_server, browser_page, width, sidebar_open
):
    page = browser_page
    page.set_viewport_size({"width": width, "height": 900})
    populate()
    log_in(page, live_server, sidebar_open=sidebar_open)
    wide = width == 1440
    if wide:
        assert page.locator("#nav-sidebar").is_visible()
    # At 1440 px with the app list and the filters open, no scrolling is needed to see them.
    _column_is_readable(page, "User", "alice.johnson", width, scroll=not wide)
    _column_is_readable(page, "Hosts / workers", "celery@worker-2.prod.internal", width, scroll=not wide)
    # A worker's host is not repeated beside it.
    assert page.locator("#result_list a.ao-proc:text-is('worker-2.prod.internal')").count() == 0
    screenshot(page, f"admin-list-user-hosts-{width}{'-sidebar' if sidebar_open else ''}.png")

    # The user's name is a search for their traces; a worker's name a filter.
    page.click("#result_list a:text-is('alice.johnson')")
    page.wait_for_url("**q=user%3Aalice.johnson**")
    assert page.locator("#result_list tbody tr").count() == 1
    page.goto(f"{live_server.url}/admin/agentops_django/trace/")
    page.locator("#result_list a:text-is('celery@worker-2.prod.internal')").first.click()
    page.wait_for_url("**process=celery%40worker-2.prod.internal**")
    assert [t.strip() for t in page.locator("#result_list tbody th").all_inner_texts()] == ["summarise_chord"]
