"""The contract between producers and the page: spans made by the real decorators and the real OpenAI client,
stored by the real writer, read by the real admin page.

The other admin tests build rows from attribute names typed by hand; a rename
on one side would leave both consistently wrong. Here nothing is typed twice:
what the page shows must be what the SDK recorded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from genai_prices import Usage, calc_price

import agentops
from agentops.testing.llm_server import LLMServer
from agentops_django.admin._page import format_cost
from agentops_django.models import Span, Trace
from agentops_django.writer import get_processor

pytestmark = pytest.mark.django_db(transaction=True)

QUESTION = [{"role": "user", "content": "Where is my order?"}]


@pytest.fixture
def llm() -> Iterator[Any]:
    """The real OpenAI client, instrumented, talking to the stand-in server over HTTP."""
    import openai

    with LLMServer() as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="test-key", max_retries=0)
        yield client
        client.close()


def test_the_trace_page_shows_what_the_sdk_recorded(configure_agentops: Callable[..., None], llm: Any) -> None:
    configure_agentops(INSTRUMENT_LLM_CALLS=True)

    @agentops.agent(name="support")
    class Support:
        @agentops.tool(cost=0.002)
        def lookup(self, question: str) -> list[str]:
            return ["order 1234 shipped"]

        def answer(self, question: str) -> tuple[Any, str]:
            self.lookup(question)
            reply = llm.chat.completions.create(model="gpt-4o-mini", messages=QUESTION)
            stream = llm.chat.completions.create(
                model="gpt-4o-mini", messages=QUESTION, stream=True, stream_options={"include_usage": True}
            )
            text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
            return reply, text

    with agentops.start_trace("support-request") as trace:
        reply, streamed = Support().answer("Where is my order?")
    assert streamed
    assert get_processor().force_flush(30_000)

    stored = Trace.objects.get(trace_id=trace.trace_id)
    llm_rows = list(Span.objects.filter(trace_id=trace.trace_id, kind="llm").order_by("started_at"))
    assert len(llm_rows) == 2
    # What genai-prices says the recorded tokens cost, plus the tool's price.
    expected = 0.002
    for row in llm_rows:
        usage = Usage(
            input_tokens=row.attributes["gen_ai.usage.input_tokens"],
            output_tokens=row.attributes["gen_ai.usage.output_tokens"],
        )
        price = calc_price(usage, model_ref="gpt-4o-mini", provider_id="openai", genai_request_timestamp=row.started_at)
        assert row.attributes["gen_ai.usage.total_cost"] == pytest.approx(float(price.total_price))
        expected += float(price.total_price)
    assert stored.cost == pytest.approx(expected)
    assert stored.unpriced_calls == 0
    assert stored.input_tokens == sum(r.attributes["gen_ai.usage.input_tokens"] for r in llm_rows)

    admin = Client()
    admin.force_login(User.objects.create_superuser("admin", "admin@example.com", "pw"))
    page_url = reverse("admin:agentops_django_trace_change", args=[stored.pk])
    html = admin.get(page_url).content.decode()
    assert "support-request" in html
    assert "lookup.tool" in html
    assert "gpt-4o-mini" in html
    assert format_cost(expected) in html  # the page's total, by the same rule as the list's

    streamed_row = llm_rows[1]
    detail = admin.get(f"{page_url}?span={streamed_row.span_id}").content.decode()
    assert "First token" in detail
    assert format_cost(streamed_row.attributes["gen_ai.usage.total_cost"]) in detail
    assert reply.choices[0].message.content in detail  # the recorded answer, shown once rendered
