"""LLM calls recorded by other instrumentations read as LLM calls: in the trace totals and on the trace page.

Each test instruments the real client with the real library (the optional
``genai-instrumentations`` dependency group), calls the stand-in server over
real HTTP, lets the spans go through the real database writer, and reads what
was stored: the trace's tokens and cost (genai-prices' price for those
tokens), the LLM span's kind and model, and the span's LLM panel in the admin.
A library missing locally skips its tests; under ``CI=true`` it fails them.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Iterator
from typing import Any

import genai_prices
import pytest

import agentops
import agentops.integrations
from agentops.testing.llm_server import LLMServer
from agentops_django.models import Span, Trace
from tests.agentops_django.test_admin_browser import browser_page, log_in
from tests.conftest import IN_CI

pytestmark = pytest.mark.django_db(transaction=True)
__all__ = ["browser_page"]  # the fixture, used by the browser test

USER = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello there"}]


def instrumentor(module: str, name: str) -> Any:
    """The library's instrumentor class; skips (fails under CI=true) when the library is missing."""
    try:
        return getattr(importlib.import_module(module), name)
    except ImportError as exc:
        message = f"{module} is not installed (dependency group genai-instrumentations): {exc}"
        if IN_CI:
            pytest.fail(f"{message} (CI=true: a missing library is a failure)")
        pytest.skip(message)


@pytest.fixture(scope="module")
def llm_server() -> Iterator[LLMServer]:
    with LLMServer() as server:
        yield server


@pytest.fixture(autouse=True)
def _capture_content(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACELOOP_TRACE_CONTENT", "true")


@pytest.fixture
def instrumented() -> Iterator[Callable[[str, str], None]]:
    """Factory: instrument with ``(module, class name)`` on the global provider; uninstrumented afterwards."""
    done: list[Any] = []

    def instrument(module: str, name: str) -> None:
        found = instrumentor(module, name)()
        found.instrument()
        done.append(found)

    yield instrument
    for found in reversed(done):
        found.uninstrument()
        _unwrap_left_behind(type(found).__module__.rsplit(".", 1)[0])


def _unwrap_left_behind(package: str) -> None:
    """Remove the patches ``package``'s uninstrument() left on the clients' classes.

    OpenLLMetry's OpenAI instrumentation leaves its wrappers on chat and text
    completions and on responses; later tests of the plain clients would run
    through them.
    """
    import sys

    for module_name, module in sys.modules.copy().items():  # (a copy: other threads import too)
        if module is None or not module_name.startswith(("openai.resources", "anthropic.resources")):
            continue
        for owner in dict(vars(module)).values():
            if not isinstance(owner, type) or owner.__module__ != module_name:
                continue
            for attribute, method in list(vars(owner).items()):
                while True:
                    wrapper = getattr(method, "_self_wrapper", None)
                    if wrapper is None or not getattr(wrapper, "__module__", "").startswith(package):
                        break
                    method = method.__wrapped__
                    setattr(owner, attribute, method)


@pytest.fixture
def agentops_wrapping(configure_agentops: Callable[..., None]) -> Iterator[Callable[[], None]]:
    """Factory: agentops_django set up with agentops' own LLM wrappers (removed before ``instrumented``'s)."""
    yield lambda: configure_agentops(INSTRUMENT_LLM_CALLS=True)
    agentops.integrations.uninstrument()


@pytest.fixture
def openai_client(llm_server: LLMServer) -> Any:
    import openai

    return openai.OpenAI(base_url=llm_server.base_url, api_key="test-key", max_retries=0)


@pytest.fixture
def anthropic_client(llm_server: LLMServer) -> Any:
    import anthropic

    return anthropic.Anthropic(base_url=llm_server.anthropic_base_url, api_key="test-key", max_retries=0)


@pytest.fixture
def admin_client(client: Any) -> Any:
    from django.contrib.auth.models import User

    client.force_login(User.objects.create_superuser("admin", "admin@example.com", "pw"))
    return client


def in_a_trace(call: Callable[[], Any]) -> str:
    """Run ``call`` inside an agentops trace, flush the writer; the trace id."""
    context = agentops.start_trace("agent run")
    try:
        call()
    except Exception:  # an error the test asked the stand-in for
        pass
    finally:
        agentops.end_trace(context)
    assert agentops.flush(10_000)
    return format(context.span.get_span_context().trace_id, "032x")


def price(model: str, provider: str, **usage: int) -> float:
    """genai-prices' own price for ``usage``."""
    return float(genai_prices.calc_price(genai_prices.Usage(**usage), model, provider_id=provider).total_price)


def llm_spans(trace_id: str) -> list[Span]:
    return list(Span.objects.filter(trace_id=trace_id, kind="llm").order_by("started_at"))


def panel(admin_client: Any, span: Span) -> str:
    response = admin_client.get(f"/admin/agentops_django/trace/{span.trace_id}/change/?span={span.span_id}")
    assert response.status_code == 200
    return response.content.decode()


CALLS = {
    # name: (instrumentor module, class, client fixture, model, provider id, expected dialect)
    "openinference-openai": (
        "openinference.instrumentation.openai",
        "OpenAIInstrumentor",
        "openai",
        "gpt-4o-mini",
        "openai",
        "openinference",
    ),
    "openllmetry-openai": (
        "opentelemetry.instrumentation.openai",
        "OpenAIInstrumentor",
        "openai",
        "gpt-4o-mini",
        "openai",
        "gen_ai",
    ),
    "openllmetry-anthropic": (
        "opentelemetry.instrumentation.anthropic",
        "AnthropicInstrumentor",
        "anthropic",
        "claude-3-5-haiku-20241022",
        "anthropic",
        "gen_ai",
    ),
}


def call_model(kind: str, client: Any, model: str, header: str = "") -> Any:
    headers = {"x-stand-in": header} if header else None
    if kind == "openai":
        return client.chat.completions.create(model=model, messages=USER, extra_headers=headers)
    return client.messages.create(
        model=model, max_tokens=64, system="be brief", messages=USER[1:], extra_headers=headers
    )


@pytest.mark.parametrize("name", list(CALLS))
def test_another_instrumentations_call_is_stored_as_an_llm_call_with_tokens_and_its_price(
    name: str, writer: Any, instrumented: Any, request: pytest.FixtureRequest, admin_client: Any
) -> None:
    module, cls, kind, model, provider, dialect = CALLS[name]
    instrumented(module, cls)
    client = request.getfixturevalue(f"{kind}_client")

    trace_id = in_a_trace(lambda: call_model(kind, client, model, "cached-100"))

    # The anthropic client records the call too, in a span beside OpenLLMetry's: one call, counted once.
    spans = llm_spans(trace_id)
    counted = [s for s in spans if not {"agentops.llm.inside_call", "agentops.llm.same_call_as"} & set(s.attributes)]
    assert len(counted) == 1
    (span,) = [s for s in spans if "gen_ai.output.messages" in s.attributes]  # the library's own, with content
    assert span.attributes["agentops.llm.dialect"] == dialect
    attributes = span.attributes
    assert attributes["gen_ai.request.model"] == model
    input_tokens = attributes["gen_ai.usage.input_tokens"]
    output_tokens = attributes["gen_ai.usage.output_tokens"]
    assert input_tokens >= 100 and output_tokens == 3  # "Echo: hello there"; 100 read from the cache
    expected = price(model, provider, input_tokens=input_tokens, output_tokens=3, cache_read_tokens=100)
    assert math.isclose(attributes["gen_ai.usage.total_cost"], expected)

    trace = Trace.objects.get(trace_id=trace_id)
    assert (trace.input_tokens, trace.output_tokens, trace.unpriced_calls) == (input_tokens, 3, 0)
    assert math.isclose(trace.cost, expected)

    html = panel(admin_client, span)
    assert "LLM call" in html and model in html and "hello there" in html and "Echo: hello there" in html
    assert f"{input_tokens:,} in" in html and "3 out" in html and f"${expected:.4f}" in html


@pytest.mark.parametrize("name", ["openinference-openai", "openllmetry-openai"])
def test_a_failed_call_of_another_instrumentation_is_an_llm_error_without_a_cost(
    name: str, writer: Any, instrumented: Any, openai_client: Any
) -> None:
    module, cls, *_ = CALLS[name]
    instrumented(module, cls)

    trace_id = in_a_trace(lambda: call_model("openai", openai_client, "gpt-4o-mini", "error-500"))

    (span,) = llm_spans(trace_id)
    assert span.status == "ERROR" and span.attributes["gen_ai.request.model"] == "gpt-4o-mini"
    trace = Trace.objects.get(trace_id=trace_id)
    assert trace.error_count == 1
    assert (trace.input_tokens, trace.cost, trace.unpriced_calls) == (0, 0.0, 0)


def test_the_anthropic_clients_own_span_is_a_call_of_its_own_when_agentops_does_not_wrap_it(
    writer: Any, anthropic_client: Any
) -> None:
    trace_id = in_a_trace(lambda: call_model("anthropic", anthropic_client, "claude-3-5-haiku-20241022"))

    (span,) = llm_spans(trace_id)
    assert span.name == "anthropic.messages.create"
    input_tokens = span.attributes["gen_ai.usage.input_tokens"]
    expected = price("claude-3-5-haiku-20241022", "anthropic", input_tokens=input_tokens, output_tokens=3)
    trace = Trace.objects.get(trace_id=trace_id)
    assert (trace.input_tokens, trace.output_tokens) == (input_tokens, 3) and math.isclose(trace.cost, expected)


def test_a_call_agentops_wraps_and_the_anthropic_client_records_too_counts_once(
    configure_agentops: Any, transactional_db: Any, anthropic_client: Any
) -> None:
    configure_agentops(INSTRUMENT_LLM_CALLS=True)

    trace_id = in_a_trace(lambda: call_model("anthropic", anthropic_client, "claude-3-5-haiku-20241022"))

    outer, inner = llm_spans(trace_id)
    assert inner.parent_span_id == outer.span_id and inner.name == "anthropic.messages.create"
    assert inner.attributes["agentops.llm.inside_call"] is True
    input_tokens = outer.attributes["gen_ai.usage.input_tokens"]
    assert input_tokens > 0 and inner.attributes["gen_ai.usage.input_tokens"] == input_tokens
    expected = price("claude-3-5-haiku-20241022", "anthropic", input_tokens=input_tokens, output_tokens=3)
    trace = Trace.objects.get(trace_id=trace_id)
    assert (trace.input_tokens, trace.output_tokens) == (input_tokens, 3) and math.isclose(trace.cost, expected)


@pytest.mark.parametrize("agentops_outside", [True, False], ids=["agentops-outside", "agentops-inside"])
def test_a_call_wrapped_by_agentops_and_another_instrumentation_counts_once_whichever_is_outside(
    agentops_outside: bool,
    transactional_db: Any,
    instrumented: Any,
    agentops_wrapping: Any,
    openai_client: Any,
    admin_client: Any,
) -> None:
    # The patch applied last is the outer one.
    if agentops_outside:
        instrumented("opentelemetry.instrumentation.openai", "OpenAIInstrumentor")
        agentops_wrapping()
    else:
        agentops_wrapping()
        instrumented("opentelemetry.instrumentation.openai", "OpenAIInstrumentor")

    trace_id = in_a_trace(lambda: call_model("openai", openai_client, "gpt-4o-mini"))

    outer, inner = llm_spans(trace_id)
    assert inner.parent_span_id == outer.span_id
    assert ("agentops.llm.dialect" not in outer.attributes) is agentops_outside
    assert inner.attributes["agentops.llm.inside_call"] is True
    expected = price("gpt-4o-mini", "openai", input_tokens=4, output_tokens=3)  # "be brief", "hello there"
    trace = Trace.objects.get(trace_id=trace_id)
    assert (trace.input_tokens, trace.output_tokens, trace.unpriced_calls) == (4, 3, 0)
    assert math.isclose(trace.cost, expected)
    html = panel(admin_client, inner)  # its own tokens, and where the call is counted
    assert "4 in" in html and "in the enclosing LLM call" in html


@pytest.mark.browser
def test_a_developer_reads_another_instrumentations_call_in_the_browser(
    writer: Any, instrumented: Any, openai_client: Any, live_server: Any, browser_page: Any
) -> None:
    instrumented("openinference.instrumentation.openai", "OpenAIInstrumentor")
    trace_id = in_a_trace(lambda: call_model("openai", openai_client, "gpt-4o-mini"))
    (span,) = llm_spans(trace_id)
    page = browser_page
    log_in(page, live_server)

    page.goto(f"{live_server.url}/admin/agentops_django/trace/{trace_id}/change/")
    row = page.locator(f"[data-span-id='{span.span_id}']")
    assert "ao-k-llm" in row.get_attribute("class")
    assert "gpt-4o-mini" in row.inner_text() and "7 tok" in row.inner_text()
    row.locator("a.ao-label").click()
    detail = page.locator("#ao-detail .ao-span")
    detail.wait_for()
    text = detail.inner_text()
    assert "gpt-4o-mini" in text and "4 in" in text and "3 out" in text and "openinference" in text
    assert "be brief" in text and "hello there" in text and "Echo: hello there" in text
    expected = price("gpt-4o-mini", "openai", input_tokens=4, output_tokens=3)  # "be brief", "hello there"
    assert f"${expected:.4f}" in text
