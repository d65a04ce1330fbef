"""The trace page and the list at 800, 1280 and 1440 px wide, the admin's navigation sidebar open, in Chromium.

What a developer asks of a trace ("where did the time go?", "what failed and
was retried?") answered on the page: zoom to a time range, collapse a
subtree, the critical path, state badges; and a layout where nothing is cut
or hidden at any of those widths, with a clicked span's details in view.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User

from tests.agentops_django.test_admin import make_chain_trace, make_span, make_trace
from tests.agentops_django.test_admin_browser import browser_page, screenshot

__all__ = ["browser_page"]  # the fixture

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WIDTHS = [800, 1280, 1440]


def open_admin(page, live_server, width: int) -> None:
    """Log in at ``width`` by 900, leaving the navigation sidebar as the admin opens it (open)."""
    page.set_viewport_size({"width": width, "height": 900})
    if not User.objects.filter(username="admin").exists():
        User.objects.create_superuser("admin", "admin@example.com", "correct horse")
    page.goto(f"{live_server.url}/admin/login/?next=/admin/agentops_django/trace/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", "correct horse")
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/agentops_django/trace/")
    assert page.locator("#nav-sidebar").is_visible()


def chain_with_retry() -> dict[str, Any]:
    """The chain trace, its failed ``notify`` attempt marked as Celery marks a retried one."""
    chain = make_chain_trace()
    chain["notify"].attributes.update({"celery.task.retried": True, "celery.task.state": "RETRY"})
    chain["notify"].save(update_fields=["attributes"])
    chain["retry"].attributes["celery.task.state"] = "SUCCESS"
    chain["retry"].save(update_fields=["attributes"])
    return chain


def open_trace(page, live_server, chain: dict[str, Any]) -> None:
    page.goto(f"{live_server.url}/admin/agentops_django/trace/{chain['trace'].trace_id}/change/")
    page.wait_for_selector(".ao-rows .ao-row")


def row(page, span) -> Any:
    return page.locator(f".ao-row[data-span-id='{span.span_id}']")


def box(locator) -> dict[str, float]:
    found = locator.bounding_box()
    assert found is not None, f"{locator} is not displayed"
    return found


def cut_off(page, selector: str) -> list[str]:
    """The texts of the elements matching ``selector`` whose content does not fit their box."""
    return page.locator(selector).evaluate_all(
        "els => els.filter(e => e.offsetParent !== null && "
        "(e.scrollWidth > e.clientWidth + 1 || e.scrollHeight > e.clientHeight + 1)).map(e => e.textContent)"
    )


@pytest.mark.parametrize("width", WIDTHS)
def test_the_trace_list_shows_every_column_beside_the_sidebar_and_filters(live_server, browser_page, width):
    page = browser_page
    for n in range(3):
        make_trace(f"research.tasks.digest_{n}", kind="task", total_tokens=18250, cost=12.5, span_count=1041)
    open_admin(page, live_server, width)
    viewport = page.viewport_size["width"]
    cells = page.locator("#result_list tbody tr").first.locator("td, th")
    assert cells.count() == 12  # the action checkbox and eleven columns
    assert cells.last.inner_text().strip().endswith("$12.50")  # Cost, the last column
    filters = box(page.locator("#changelist-filter"))
    for n in range(cells.count()):
        cell = box(cells.nth(n))
        # Every value is displayed, inside the window, and nothing hides under the filter panel.
        assert cell["width"] > 10
        assert cell["x"] >= 0 and cell["x"] + cell["width"] <= viewport
        beside = filters["y"] < cell["y"] + cell["height"] and filters["y"] + filters["height"] > cell["y"]
        if beside:
            assert cell["x"] + cell["width"] <= filters["x"] + 1 or cell["x"] >= filters["x"] + filters["width"]
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport
    assert cut_off(page, "#result_list tbody td") == []
    screenshot(page, f"trace-list-{width}.png")


@pytest.mark.parametrize("width", WIDTHS)
def test_the_trace_page_fits_and_a_clicked_span_shows_its_details_in_view(live_server, browser_page, width):
    page = browser_page
    chain = chain_with_retry()
    open_admin(page, live_server, width)
    open_trace(page, live_server, chain)
    viewport = page.viewport_size
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
    track = box(row(page, chain["request"]).locator(".ao-track"))
    assert track["x"] + track["width"] <= viewport["width"]
    assert track["width"] >= 100
    # Labels are whole: no kind badge, name or flag is cut, at any depth.
    assert cut_off(page, ".ao-row .ao-badge, .ao-row .ao-name, .ao-row .ao-flag, .ao-row .ao-extra") == []
    assert row(page, chain["llm1"]).locator(".ao-name").inner_text() == "openai.chat.completions"
    # What failed and was retried, at a glance.
    assert row(page, chain["notify"]).locator(".ao-flag").first.inner_text().lower() == "retry"

    # The last LLM call, far down on a narrow page: its details come into view.
    page.evaluate("window.__same_page = true")
    row(page, chain["llm2"]).locator("a.ao-label").click()
    page.wait_for_selector("#ao-detail .ao-span:not([data-span-id='']) h2")
    page.wait_for_function(
        "id => document.querySelector('#ao-detail .ao-span').dataset.spanId === id", arg=chain["llm2"].span_id
    )
    assert page.evaluate("window.__same_page") is True
    page.wait_for_timeout(100)
    panel = box(page.locator("#ao-detail"))
    assert panel["y"] >= 0 and panel["x"] >= 0
    assert panel["y"] + min(panel["height"], 200) <= viewport["height"]
    assert panel["x"] + panel["width"] <= viewport["width"]
    title = box(page.locator("#ao-detail .ao-span-title"))
    assert 0 <= title["y"] <= viewport["height"] - title["height"]
    detail = page.locator("#ao-detail").inner_text()
    assert "gpt-4o-mini" in detail and "OK" in detail and "Unset" not in detail
    screenshot(page, f"trace-page-{width}.png")


def bar_box(page, span) -> dict[str, float]:
    return box(row(page, span).locator(".ao-bar"))


@pytest.mark.parametrize("width", WIDTHS)
def test_dragging_across_the_time_axis_zooms_in_and_reset_zooms_out(live_server, browser_page, width):
    page = browser_page
    chain = chain_with_retry()
    open_admin(page, live_server, width)
    open_trace(page, live_server, chain)
    axis = box(page.locator(".ao-axis-track"))
    ticks = page.locator(".ao-axis-track .ao-tick").all_inner_texts()
    whole = bar_box(page, chain["llm1"])
    assert page.locator(".ao-zoom-reset").is_hidden()

    # The trace lasts 2.2 s (the fetch task's 61 ms queue wait before the request's start
    # is not in it: the request starts the axis). Select 300 ms to 1.1 s of it.
    total = 2200.0
    y = axis["y"] + axis["height"] / 2
    page.mouse.move(axis["x"] + axis["width"] * 300 / total, y)
    page.mouse.down()
    page.mouse.move(axis["x"] + axis["width"] * 700 / total, y, steps=4)
    page.mouse.move(axis["x"] + axis["width"] * 1100 / total, y, steps=4)
    page.mouse.up()

    assert page.locator(".ao-zoom-reset").is_visible()
    assert page.locator(".ao-axis-track .ao-tick").all_inner_texts() != ticks
    zoomed = bar_box(page, chain["llm1"])  # 380 to 1000 ms: most of the new range
    assert zoomed["width"] > 2.2 * whole["width"]
    track = box(row(page, chain["llm1"]).locator(".ao-track"))
    assert zoomed["x"] == pytest.approx(track["x"] + track["width"] * 80 / 800, abs=3)
    # Spans wholly outside the range leave the picture; the request (0 to 140 ms) among them.
    assert row(page, chain["request"]).locator(".ao-bar").is_hidden()
    assert row(page, chain["retry"]).locator(".ao-bar").is_hidden()
    assert "+300 ms" in page.locator(".ao-zoom-range").inner_text()
    screenshot(page, f"trace-zoomed-{width}.png")

    page.click(".ao-zoom-reset")
    assert page.locator(".ao-zoom-reset").is_hidden()
    assert page.locator(".ao-axis-track .ao-tick").all_inner_texts() == ticks
    assert bar_box(page, chain["llm1"])["width"] == pytest.approx(whole["width"], abs=1)

    # The overview shows the whole trace: a drag there zooms too, and its window follows.
    overview = box(page.locator(".ao-zoomstrip-track"))
    page.mouse.move(overview["x"] + overview["width"] * 0.5, overview["y"] + 10)
    page.mouse.down()
    page.mouse.move(overview["x"] + overview["width"] * 0.75, overview["y"] + 10, steps=4)
    page.mouse.up()
    window = box(page.locator(".ao-window"))
    assert window["width"] == pytest.approx(overview["width"] * 0.25, abs=3)
    assert row(page, chain["retry"]).locator(".ao-bar").is_hidden()
    assert row(page, chain["llm2"]).locator(".ao-bar").is_visible()


@pytest.mark.parametrize("width", WIDTHS)
def test_collapsing_a_span_hides_its_subtree_until_it_is_expanded(live_server, browser_page, width):
    page = browser_page
    chain = chain_with_retry()
    open_admin(page, live_server, width)
    open_trace(page, live_server, chain)
    visible = page.locator(".ao-rows .ao-row:visible")
    assert visible.count() == 13
    agent_toggle = row(page, chain["agent"]).locator(".ao-toggle")
    summarise_toggle = row(page, chain["summarise"]).locator(".ao-toggle")
    assert row(page, chain["llm1"]).locator(".ao-toggle").count() == 0  # a leaf has none

    agent_toggle.click()  # the agent's two LLM calls and its tool
    assert visible.count() == 10
    assert row(page, chain["llm1"]).is_hidden() and row(page, chain["agent"]).is_visible()
    summarise_toggle.click()  # the agent, and the notify task's publish and both attempts
    assert visible.count() == 6
    assert row(page, chain["retry"]).is_hidden()
    summarise_toggle.click()  # expanded again; the agent stays collapsed
    assert visible.count() == 10
    assert row(page, chain["retry"]).is_visible() and row(page, chain["llm1"]).is_hidden()
    agent_toggle.click()
    assert visible.count() == 13


def test_the_critical_path_stands_out(live_server, browser_page):
    """The chain is sequential work, except a cache warm-up the agent ran beside its first LLM call."""
    page = browser_page
    chain = chain_with_retry()
    chain["warm"] = make_span(chain["trace"], "warm_cache.tool", "tool", parent=chain["agent"], start_ms=400)
    open_admin(page, live_server, 1440)
    open_trace(page, live_server, chain)
    off_path = {
        name for name in chain if name != "trace" and "ao-critical" not in row(page, chain[name]).get_attribute("class")
    }
    assert off_path == {"warm"}

    def opacity(name: str) -> float:
        return float(row(page, chain[name]).locator(".ao-bar").evaluate("e => getComputedStyle(e).opacity"))

    assert opacity("warm") < 0.5 < opacity("llm1")
    page.uncheck(".ao-critical-toggle")
    assert opacity("warm") > 0.5


def test_the_name_column_widens_by_dragging_its_edge_and_keeps_its_width(live_server, browser_page):
    page = browser_page
    chain = chain_with_retry()
    open_admin(page, live_server, 1280)
    open_trace(page, live_server, chain)
    name_cell = row(page, chain["llm1"]).locator(".ao-cell")
    before = box(name_cell)["width"]
    handle = box(page.locator(".ao-resize"))
    x, y = handle["x"] + handle["width"] / 2, handle["y"] + handle["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 60, y, steps=5)  # the track keeps 200 px at least
    page.mouse.up()
    assert box(name_cell)["width"] == pytest.approx(before + 60, abs=4)
    page.reload()
    page.wait_for_selector(".ao-rows .ao-row")
    assert box(row(page, chain["llm1"]).locator(".ao-cell"))["width"] == pytest.approx(before + 60, abs=4)
