"""One totals rule and one number parser: the trace list (the writer's summary) and the trace page agree."""

from __future__ import annotations

import math
from typing import Any

import pytest

from agentops_django._usage import number, span_usage
from agentops_django.admin._page import format_cost, span_rows
from agentops_django.admin._tree import totals_of
from agentops_django.models import Trace
from agentops_django.writer import write_batch
from tests.agentops_django.test_exporter import make_span, new_trace_id


@pytest.mark.parametrize(
    "value, expected",
    [
        (3, 3.0),
        (0.25, 0.25),
        ("0.5", 0.5),
        (" 7 ", 7.0),
        (True, None),
        (None, None),
        ("many", None),
        (float("nan"), None),
        (float("inf"), None),
        ("-inf", None),
        ([1], None),
    ],
)
def test_one_number_parser_for_every_attribute_value(value: Any, expected: float | None) -> None:
    assert number(value) == expected


def test_only_llm_spans_count_tokens_and_tools_add_their_price() -> None:
    usage = {"gen_ai.usage.input_tokens": 10, "gen_ai.usage.output_tokens": 5, "gen_ai.usage.total_cost": 0.1}
    assert span_usage("llm", usage) == (10, 5, 0.1, 0)
    assert span_usage("agent", usage) == (0, 0, 0.0, 0)
    assert span_usage("tool", {"agentops.tool.cost": "0.25"}) == (0, 0, 0.25, 0)
    assert span_usage("llm", {"gen_ai.usage.input_tokens": -3, "gen_ai.usage.cost": -1}) == (0, 0, 0.0, 0)


def test_a_call_without_a_known_price_is_counted_not_priced_at_zero() -> None:
    unpriced = {"gen_ai.usage.input_tokens": 10, "agentops.cost.unpriced": True}
    assert span_usage("llm", unpriced) == (10, 0, 0.0, 1)
    assert span_usage("llm", {**unpriced, "agentops.cost.unpriced": "true"}).unpriced == 1  # extracted by SQL


def test_spans_stored_before_pricing_still_count_their_cost() -> None:
    assert span_usage("llm", {"gen_ai.usage.cost": 0.3}).cost == 0.3
    assert span_usage("llm", {"gen_ai.usage.cost": 0.3, "gen_ai.usage.total_cost": 0.5}).cost == 0.5


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "cost, expected",
    [("0.5", 0.5), (float("nan"), 0.0), (0.125, 0.125), ("free", 0.0)],
    ids=["numeric-string", "nan", "float", "text"],
)
def test_the_list_and_the_trace_page_give_the_same_cost(cost: Any, expected: float) -> None:
    """A cost the writer stores and a cost the page recomputes come from the same rule (they once differed)."""
    trace_id = new_trace_id()
    attributes = {"gen_ai.usage.input_tokens": "12", "gen_ai.usage.output_tokens": 3, "gen_ai.usage.cost": cost}
    write_batch(
        "default",
        [
            make_span(trace_id, 1, name="GET /", kind="request"),
            make_span(trace_id, 2, 1, name="openai.chat", kind="llm", attributes=attributes),
        ],
    )
    stored = Trace.objects.get(trace_id=format(trace_id, "032x"))
    page = totals_of(span_rows(stored))
    assert math.isclose(stored.cost, expected) and math.isclose(page.cost, expected)
    assert (stored.input_tokens, stored.output_tokens) == (page.input_tokens, page.output_tokens) == (12, 3)


@pytest.mark.django_db(transaction=True)
def test_unpriced_calls_are_counted_on_the_list_and_the_page() -> None:
    trace_id = new_trace_id()
    unpriced = {"gen_ai.usage.input_tokens": 5, "agentops.cost.unpriced": True}
    priced = {"gen_ai.usage.input_tokens": 5, "gen_ai.usage.total_cost": 0.25}
    write_batch("default", [make_span(trace_id, 1, name="GET /", kind="request")])
    write_batch("default", [make_span(trace_id, 2, 1, kind="llm", attributes=unpriced)])
    write_batch("default", [make_span(trace_id, 3, 1, kind="llm", attributes=priced)])
    stored = Trace.objects.get(trace_id=format(trace_id, "032x"))
    page = totals_of(span_rows(stored))
    assert (stored.unpriced_calls, stored.cost) == (page.unpriced, page.cost) == (1, 0.25)
    assert format_cost(stored.cost, stored.unpriced_calls) == "\u2265 $0.2500 (1 call without a price)"
    assert format_cost(0.0, 2) == "unknown"


CHAT = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o-mini",
    "gen_ai.response.id": "chatcmpl-1",
    "gen_ai.usage.input_tokens": 10,
    "gen_ai.usage.output_tokens": 5,
}


@pytest.mark.django_db(transaction=True)
def test_two_records_of_one_call_side_by_side_count_once_even_in_separate_batches() -> None:
    """Spans that do not nest but share a response id in one trace are one call: the first written counts."""
    trace_id = new_trace_id()
    write_batch("default", [make_span(trace_id, 1, name="GET /", kind="request")])
    write_batch("default", [make_span(trace_id, 2, 1, name="openai.chat", attributes=CHAT)])
    write_batch("default", [make_span(trace_id, 3, 1, name="ChatCompletion", attributes=CHAT)])

    stored = Trace.objects.get(trace_id=format(trace_id, "032x"))
    page = totals_of(span_rows(stored))
    assert (stored.input_tokens, stored.output_tokens) == (page.input_tokens, page.output_tokens) == (10, 5)
    assert stored.cost > 0 and math.isclose(page.cost, stored.cost)


@pytest.mark.django_db(transaction=True)
def test_an_llm_span_inside_another_llm_call_adds_nothing_to_the_totals() -> None:
    trace_id = new_trace_id()
    write_batch(
        "default",
        [
            make_span(trace_id, 1, name="chat gpt-4o-mini", kind="llm", attributes=CHAT),
            make_span(trace_id, 2, 1, name="openai.chat", attributes={**CHAT, "agentops.llm.inside_call": True}),
        ],
    )
    stored = Trace.objects.get(trace_id=format(trace_id, "032x"))
    assert (stored.input_tokens, stored.output_tokens) == (10, 5)
    assert totals_of(span_rows(stored)).input_tokens == 10
