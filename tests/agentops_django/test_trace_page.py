"""What the trace page says about each span, as served HTML: state at a glance, readable numbers, one message list."""

from __future__ import annotations

import html as html_lib
import json
import re

import pytest
from django.urls import reverse

from agentops_django.admin._page import format_duration
from tests.agentops_django.test_admin import admin_client, change_url, make_chain_trace, make_span, superuser

__all__ = ["admin_client", "superuser"]  # the fixtures

pytestmark = pytest.mark.django_db


def row_of(page: str, span) -> str:
    found = re.search(rf'<li [^>]*data-span-id="{span.span_id}".*?</li>', page, re.S)
    assert found, f"no row for {span.name}"
    return found.group(0)


def flags(row: str) -> list[str]:
    return re.findall(r'class="ao-flag[^"]*"[^>]*>([^<]+)<', row)


def span_fragment(client, trace, span) -> str:
    url = reverse("admin:agentops_django_trace_span", args=[trace.pk, span.span_id])
    response = client.get(url)
    assert response.status_code == 200
    return response.content.decode()


def test_a_retried_attempt_and_a_failed_task_carry_their_celery_state_as_a_badge(admin_client):
    chain = make_chain_trace()
    chain["notify"].attributes.update({"celery.task.retried": True, "celery.task.state": "RETRY"})
    chain["notify"].save(update_fields=["attributes"])
    chain["retry"].attributes["celery.task.state"] = "FAILURE"
    chain["retry"].status = "ERROR"
    chain["retry"].save(update_fields=["attributes", "status"])
    page = admin_client.get(change_url(chain["trace"])).content.decode()
    assert flags(row_of(page, chain["notify"])) == ["retry"]
    assert flags(row_of(page, chain["retry"])) == ["failure"]
    # A span that ended well says nothing; the ancestors of a failure point at it.
    assert flags(row_of(page, chain["fetch_tool"])) == []
    assert flags(row_of(page, chain["summarise"])) == ["&#9888;"]


def test_a_kind_the_page_does_not_know_is_badged_in_full():
    from agentops_django.admin._page import kind_of

    assert kind_of("operation") == ("other", "OPERATION")


def test_a_task_row_counts_its_queue_wait_in_its_duration_and_says_so(admin_client):
    chain = make_chain_trace()
    page = admin_client.get(change_url(chain["trace"])).content.decode()
    fetch = row_of(page, chain["fetch"])  # 61 ms queued, 260 ms running
    assert re.search(r'class="ao-dur ao-dur--queued">321 ms<', fetch)
    assert "61 ms queued + 260 ms running" in html_lib.unescape(fetch)
    assert re.search(r'class="ao-dur">620 ms<', row_of(page, chain["llm1"]))


def test_rows_say_their_self_time_and_whether_they_are_on_the_critical_path(admin_client):
    chain = make_chain_trace()
    page = admin_client.get(change_url(chain["trace"])).content.decode()
    agent = html_lib.unescape(row_of(page, chain["agent"]))  # 1180 ms, its children cover 620 + 40 + 480
    assert 'data-self="40 ms"' in agent and "self 40 ms" in agent
    assert "ao-critical" in agent and "on the critical path" in agent


def test_a_successful_llm_call_reads_ok_with_its_parameters_finish_reason_and_messages_once(admin_client):
    chain = make_chain_trace()
    llm = chain["llm1"]
    llm.attributes.update(
        {
            "gen_ai.request.temperature": 0.2,
            "gen_ai.request.max_tokens": 4096,
            "gen_ai.response.finish_reasons": ["stop"],
        }
    )
    llm.save(update_fields=["attributes"])
    assert llm.status == "UNSET"
    fragment = span_fragment(admin_client, chain["trace"], llm)
    text = html_lib.unescape(re.sub(r"<[^>]+>", " ", fragment))
    assert re.search(r"Status\s+OK", text) and "Unset" not in text
    assert 'title="Recorded status: UNSET (ended without an error)"' in fragment
    assert re.search(r"Finish reason\s+stop", text)
    assert re.search(r"Temperature\s+0.2", text) and re.search(r"Max tokens\s+4,096", text)
    # The prompt appears once, as messages; the attributes table leaves the message lists out.
    assert text.count("You summarise documents in three sentences.") == 1
    assert "gen_ai.input.messages" not in text and "gen_ai.output.messages" not in text
    assert "the messages shown above" in text


def test_numbers_in_the_attributes_are_formatted_and_keep_the_stored_value_on_hover(admin_client):
    chain = make_chain_trace()
    task = make_span(
        chain["trace"],
        "run shop.tasks.report",
        "celery.task",
        parent=chain["request"],
        attributes={
            "celery.queue_wait_ms": 96.04692459106445,
            "gen_ai.usage.input_tokens": 1234567,
            "gen_ai.usage.cost": 0.0015,
            "ratio": 0.333333333,
            "retries": 2,
            "flag": True,
        },
    )
    fragment = span_fragment(admin_client, chain["trace"], task)
    cells = dict(re.findall(r'<th scope="row">([^<]+)</th><td><code[^>]*>([^<]*)</code>', fragment))
    assert cells["celery.queue_wait_ms"] == "96 ms"
    assert 'title="96.04692459106445">96 ms<' in fragment
    assert cells["gen_ai.usage.input_tokens"] == "1,234,567"
    assert cells["gen_ai.usage.cost"] == "$0.0015"
    assert cells["ratio"] == "0.3333"
    assert cells["retries"] == "2" and cells["flag"] == "true"
    assert "Queue wait" in fragment and "96 ms" in fragment


@pytest.mark.parametrize(
    ("ms", "text"),
    [(0.4, "0.40 ms"), (4.25, "4.2 ms"), (96.04692459106445, "96 ms"), (1250, "1.25 s"), (125_000, "2 min 05 s")],
)
def test_durations_read_with_sensible_precision(ms, text):
    assert format_duration(ms) == text


def test_the_messages_of_a_call_are_only_left_in_the_attributes_when_they_cannot_be_read(admin_client):
    chain = make_chain_trace()
    llm = chain["llm2"]
    llm.attributes["gen_ai.input.messages"] = "not json"
    llm.save(update_fields=["attributes"])
    fragment = span_fragment(admin_client, chain["trace"], llm)
    assert "gen_ai.input.messages" in fragment and "not json" in fragment
    assert json.dumps("not json")[1:-1] in fragment


@pytest.mark.parametrize(
    ("cost", "text"), [(0.0, "\u2013"), (0.0000123, "$0.000012"), (0.0015, "$0.0015"), (12.5, "$12.50")]
)
def test_costs_read_as_dollars_and_a_tiny_cost_never_as_zero(cost, text):
    from agentops_django.admin._page import format_cost

    assert format_cost(cost) == text


def test_the_trace_duration_adds_the_queue_wait_of_a_root_task(admin_client):
    from tests.agentops_django.test_admin import make_trace

    trace = make_trace("research.write_digest", kind="task", duration_ms=64.0)
    make_span(
        trace, "research.write_digest", "celery.task", duration_ms=64.0, attributes={"celery.queue_wait_ms": 12.5}
    )
    text = html_lib.unescape(re.sub(r"<[^>]+>", " ", admin_client.get(change_url(trace)).content.decode()))
    assert re.search(r"Duration\s+64 ms\s+\+ 12 ms queued", text)
