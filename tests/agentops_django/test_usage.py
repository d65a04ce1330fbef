"""One totals rule and one number parser: the trace list (the writer's summary) and the trace page agree."""

from __future__ import annotations

import math
from typing import Any

import pytest

from agentops_django._usage import number, span_usage
from agentops_django.admin._page import span_rows
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
    usage = {"gen_ai.usage.input_tokens": 10, "gen_ai.usage.output_tokens": 5, "gen_ai.usage.cost": 0.1}
    assert span_usage("llm", usage) == (10, 5, 0.1)
    assert span_usage("agent", usage) == (0, 0, 0.0)
    assert span_usage("tool", {"agentops.tool.cost": "0.25"}) == (0, 0, 0.25)
    assert span_usage("llm", {"gen_ai.usage.input_tokens": -3, "gen_ai.usage.cost": -1}) == (0, 0, 0.0)


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
