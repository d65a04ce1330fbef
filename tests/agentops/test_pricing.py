"""Every LLM call is priced: by the user's prices, else by genai-prices' table; unknown is never $0.

The cost on a span is what ``genai_prices.calc_price`` gives for the tokens the
provider reported, at the price in force when the call started, for the
service tier it was served in; real clients talk real HTTP to the stand-in.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anthropic
import genai_prices
import openai
import pytest
from genai_prices import Usage, calc_price
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace import ReadableSpan

import agentops
from agentops import _config, _pricing, semconv
from agentops.testing import CapturedSpans, captured_spans

ROOT = Path(__file__).resolve().parents[2]
USER = [{"role": "user", "content": "What is the capital of France?"}]
COST_KEYS = (
    semconv.GEN_AI_USAGE_TOTAL_COST,
    semconv.GEN_AI_USAGE_COST,
    semconv.GEN_AI_USAGE_INPUT_COST,
    semconv.GEN_AI_USAGE_OUTPUT_COST,
)


@pytest.fixture(autouse=True)
def _fresh_price_caches() -> Iterator[None]:
    _pricing.reset()
    yield
    _pricing.reset()


def only_llm_span(spans: CapturedSpans) -> ReadableSpan:
    found = [s for s in spans if s.attributes.get(semconv.AGENTOPS_SPAN_KIND) == semconv.SpanKind.LLM]
    assert len(found) == 1, [s.name for s in spans]
    return found[0]


def started(span: ReadableSpan) -> dt.datetime:
    assert span.start_time is not None
    return dt.datetime.fromtimestamp(span.start_time / 1e9, dt.UTC)


def assert_costs(span: ReadableSpan, price: genai_prices.types.PriceCalculation) -> None:
    attributes = span.attributes
    assert attributes[semconv.GEN_AI_USAGE_TOTAL_COST] == float(price.total_price)
    assert attributes[semconv.GEN_AI_USAGE_COST] == float(price.total_price)
    assert attributes[semconv.GEN_AI_USAGE_INPUT_COST] == float(price.input_price)
    assert attributes[semconv.GEN_AI_USAGE_OUTPUT_COST] == float(price.output_price)
    assert attributes[semconv.AGENTOPS_COST_SOURCE] == semconv.COST_SOURCE_GENAI_PRICES
    assert attributes[semconv.AGENTOPS_COST_MODEL] == price.model.id
    assert semconv.AGENTOPS_COST_UNPRICED not in attributes


def assert_unpriced(span: ReadableSpan, reason: str) -> None:
    for key in COST_KEYS:
        assert key not in span.attributes
    assert span.attributes[semconv.AGENTOPS_COST_UNPRICED] is True
    assert span.attributes[semconv.AGENTOPS_COST_UNPRICED_REASON] == reason


# --- the price table ---------------------------------------------------------------


def test_a_chat_completion_costs_what_genai_prices_gives_for_its_tokens(
    spans: CapturedSpans, openai_client: openai.OpenAI
) -> None:
    completion = openai_client.chat.completions.create(model="gpt-4o-mini", messages=USER)

    span = only_llm_span(spans)
    usage = Usage(input_tokens=completion.usage.prompt_tokens, output_tokens=completion.usage.completion_tokens)
    price = calc_price(
        usage,
        model_ref=completion.model,
        provider_id="openai",
        genai_request_timestamp=started(span),
        price_context={"service_tier": completion.service_tier},
    )
    assert price.total_price > 0
    assert_costs(span, price)
    assert span.attributes[semconv.AGENTOPS_COST_MODEL] == "gpt-4o-mini"
    assert agentops.counters().get(semconv.COUNTER_UNPRICED_LLM_CALLS, 0) == 0


def test_cached_and_reasoning_tokens_are_recorded_and_priced_as_such(
    spans: CapturedSpans, openai_client: openai.OpenAI
) -> None:
    completion = openai_client.chat.completions.create(
        model="o4-mini", messages=USER, extra_headers={"x-stand-in": "cached-1000 reasoning-300"}
    )

    span = only_llm_span(spans)
    usage = completion.usage
    assert span.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == usage.prompt_tokens == 6 + 1000
    assert span.attributes[semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 1000
    assert span.attributes[semconv.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] == 300
    assert span.attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == usage.completion_tokens == 7 + 300
    price = calc_price(
        Usage(
            input_tokens=usage.prompt_tokens,
            cache_read_tokens=1000,
            output_tokens=usage.completion_tokens,
            output_reasoning_tokens=300,
        ),
        model_ref="o4-mini",
        provider_id="openai",
        genai_request_timestamp=started(span),
        price_context={"service_tier": "default"},
    )
    uncached = calc_price(
        Usage(input_tokens=usage.prompt_tokens, output_tokens=usage.completion_tokens), model_ref="o4-mini"
    )
    assert price.total_price < uncached.total_price  # cache reads are cheaper: the detail matters
    assert_costs(span, price)


def test_anthropic_cache_reads_writes_and_hour_long_writes_are_priced_apart(
    spans: CapturedSpans, anthropic_client: anthropic.Anthropic
) -> None:
    message = anthropic_client.messages.create(
        model="claude-sonnet-4-20250514",
        max_tokens=100,
        messages=USER,
        extra_headers={"x-stand-in": "cached-2000 cache-write-500 cache-write-1h-300"},
    )

    span = only_llm_span(spans)
    usage = message.usage
    assert usage.cache_creation_input_tokens == 800
    assert span.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == usage.input_tokens + 2000 + 800
    assert span.attributes[semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 2000
    assert span.attributes[semconv.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS] == 800
    assert span.attributes[semconv.ANTHROPIC_USAGE_CACHE_CREATION_1H_INPUT_TOKENS] == 300
    price = calc_price(
        Usage(
            input_tokens=usage.input_tokens + 2000 + 800,
            cache_read_tokens=2000,
            cache_write_tokens=800,
            cache_write_1h_tokens=300,
            output_tokens=usage.output_tokens,
        ),
        model_ref=message.model,
        provider_id="anthropic",
        genai_request_timestamp=started(span),
    )
    assert_costs(span, price)
    assert span.attributes[semconv.AGENTOPS_COST_MODEL] == "claude-sonnet-4-0"


def test_the_service_tier_the_call_was_served_in_picks_the_price(
    spans: CapturedSpans, openai_client: openai.OpenAI
) -> None:
    openai_client.chat.completions.create(model="gpt-5-mini", messages=USER, service_tier="flex")

    span = only_llm_span(spans)
    assert span.attributes[semconv.OPENAI_REQUEST_SERVICE_TIER] == "flex"
    assert span.attributes[semconv.OPENAI_RESPONSE_SERVICE_TIER] == "flex"
    usage = Usage(input_tokens=6, output_tokens=7)
    flex = calc_price(usage, "gpt-5-mini", provider_id="openai", price_context={"service_tier": "flex"})
    standard = calc_price(usage, "gpt-5-mini", provider_id="openai")
    assert flex.total_price < standard.total_price
    assert span.attributes[semconv.GEN_AI_USAGE_TOTAL_COST] == float(flex.total_price)


def test_anthropic_fast_speed_picks_its_price(spans: CapturedSpans, anthropic_client: anthropic.Anthropic) -> None:
    anthropic_client.messages.create(
        model="claude-opus-4-8", max_tokens=100, messages=USER, extra_body={"speed": "fast"}
    )

    span = only_llm_span(spans)
    assert span.attributes[semconv.ANTHROPIC_RESPONSE_SPEED] == "fast"
    usage = Usage(input_tokens=span.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS], output_tokens=7)
    fast = calc_price(usage, "claude-opus-4-8", provider_id="anthropic", price_context={"speed": "fast"})
    assert fast.total_price > calc_price(usage, "claude-opus-4-8", provider_id="anthropic").total_price
    assert span.attributes[semconv.GEN_AI_USAGE_TOTAL_COST] == float(fast.total_price)


def test_the_price_in_force_when_the_call_started_is_used() -> None:
    """o3's price was cut on 2025-06-10: a call from before costs the old price."""
    attributes = {
        semconv.GEN_AI_REQUEST_MODEL: "o3",
        semconv.GEN_AI_USAGE_INPUT_TOKENS: 10_000,
        semconv.GEN_AI_USAGE_OUTPUT_TOKENS: 2_000,
    }
    costs = []
    for when in (dt.datetime(2025, 5, 1, tzinfo=dt.UTC), dt.datetime(2025, 7, 1, tzinfo=dt.UTC)):
        cost = _pricing.cost_attributes("openai", attributes, int(when.timestamp() * 1e9))
        expected = calc_price(Usage(input_tokens=10_000, output_tokens=2_000), "o3", genai_request_timestamp=when)
        assert cost[semconv.GEN_AI_USAGE_TOTAL_COST] == float(expected.total_price)
        costs.append(cost[semconv.GEN_AI_USAGE_TOTAL_COST])
    before, after = costs
    assert before > after


def test_a_price_with_tiers_takes_genai_prices_own_path() -> None:
    """Gemini 2.5 Pro costs more per token past 200k input tokens."""
    for tokens in (1_000, 300_000):
        attributes = {
            semconv.GEN_AI_REQUEST_MODEL: "gemini-2.5-pro",
            semconv.GEN_AI_USAGE_INPUT_TOKENS: tokens,
            semconv.GEN_AI_USAGE_OUTPUT_TOKENS: 1_000,
        }
        cost = _pricing.cost_attributes("google", attributes, None)
        expected = calc_price(Usage(input_tokens=tokens, output_tokens=1_000), "gemini-2.5-pro", provider_id="google")
        assert cost[semconv.GEN_AI_USAGE_TOTAL_COST] == float(expected.total_price)


_MODELS = [("openai", "gpt-4o-mini"), ("openai", "gpt-5-mini"), ("anthropic", "claude-sonnet-4-0")]
_MODELS += [("anthropic", "claude-opus-4-8"), ("openai", "text-embedding-3-small")]


@settings(max_examples=150, deadline=None)
@given(
    model=st.sampled_from(_MODELS),
    tier=st.sampled_from([None, "default", "flex", "priority", "fast"]),
    counts=st.tuples(*[st.integers(0, 2_000_000)] * 6),
)
def test_the_compiled_price_is_exactly_genai_prices_calculation(
    model: tuple[str, str], tier: str | None, counts: tuple[int, ...]
) -> None:
    provider_id, name = model
    inputs, outputs, read, write, write_1h, reasoning = counts
    read, write = min(read, inputs), min(write, max(inputs - read, 0))
    write_1h, reasoning = min(write_1h, write), min(reasoning, outputs)
    attributes: dict[str, Any] = {
        semconv.GEN_AI_REQUEST_MODEL: name,
        semconv.GEN_AI_USAGE_INPUT_TOKENS: inputs,
        semconv.GEN_AI_USAGE_OUTPUT_TOKENS: outputs,
        semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: read,
        semconv.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS: write,
        semconv.ANTHROPIC_USAGE_CACHE_CREATION_1H_INPUT_TOKENS: write_1h,
        semconv.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: reasoning,
    }
    if tier is not None:
        attributes[semconv.OPENAI_RESPONSE_SERVICE_TIER] = tier
    when = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    cost = _pricing.cost_attributes(provider_id, attributes, int(when.timestamp() * 1e9))
    usage = Usage(
        input_tokens=inputs,
        output_tokens=outputs,
        cache_read_tokens=read,
        cache_write_tokens=write,
        cache_write_1h_tokens=write_1h,
        output_reasoning_tokens=reasoning,
    )
    context = {"service_tier": tier} if tier else None
    expected = calc_price(usage, name, provider_id=provider_id, genai_request_timestamp=when, price_context=context)
    assert cost[semconv.GEN_AI_USAGE_TOTAL_COST] == float(expected.total_price)
    assert cost[semconv.GEN_AI_USAGE_INPUT_COST] == float(expected.input_price)
    assert cost[semconv.GEN_AI_USAGE_OUTPUT_COST] == float(expected.output_price)


def test_embeddings_and_legacy_completions_are_priced(spans: CapturedSpans, openai_client: openai.OpenAI) -> None:
    embedded = openai_client.embeddings.create(model="text-embedding-3-small", input=["one two three", "four"])
    completed = openai_client.completions.create(model="gpt-3.5-turbo-instruct", prompt="Say hi")

    embedding_span, completion_span = [s for s in spans if s.attributes.get(semconv.AGENTOPS_SPAN_KIND) == "llm"]
    embedding_price = calc_price(
        Usage(input_tokens=embedded.usage.prompt_tokens, output_tokens=0),
        "text-embedding-3-small",
        provider_id="openai",
        genai_request_timestamp=started(embedding_span),
    )
    completion_price = calc_price(
        Usage(input_tokens=completed.usage.prompt_tokens, output_tokens=completed.usage.completion_tokens),
        "gpt-3.5-turbo-instruct",
        provider_id="openai",
        genai_request_timestamp=started(completion_span),
    )
    assert embedded.usage.prompt_tokens == 4
    assert_costs(embedding_span, embedding_price)
    assert_costs(completion_span, completion_price)


def test_a_raw_response_call_is_priced_from_the_body_the_client_read(
    spans: CapturedSpans, openai_client: openai.OpenAI, anthropic_client: anthropic.Anthropic
) -> None:
    raw = openai_client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=USER)
    message = anthropic_client.messages.with_raw_response.create(
        model="claude-3-5-haiku-latest", max_tokens=50, messages=USER
    ).parse()

    completion = raw.parse()
    chat_span, message_span = [s for s in spans if s.attributes.get(semconv.AGENTOPS_SPAN_KIND) == "llm"]
    assert chat_span.attributes[semconv.GEN_AI_RESPONSE_ID] == completion.id
    assert message_span.attributes[semconv.GEN_AI_RESPONSE_ID] == message.id
    assert_costs(
        chat_span,
        calc_price(
            Usage(input_tokens=completion.usage.prompt_tokens, output_tokens=completion.usage.completion_tokens),
            "gpt-4o-mini",
            provider_id="openai",
            genai_request_timestamp=started(chat_span),
            price_context={"service_tier": "default"},
        ),
    )
    assert_costs(
        message_span,
        calc_price(
            Usage(input_tokens=message.usage.input_tokens, output_tokens=message.usage.output_tokens),
            "claude-3-5-haiku-latest",
            provider_id="anthropic",
            genai_request_timestamp=started(message_span),
        ),
    )


# --- unknown -----------------------------------------------------------------------


def test_a_model_without_a_price_shows_unknown_never_zero_and_is_counted(
    spans: CapturedSpans, openai_client: openai.OpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="agentops")
    for _ in range(2):
        openai_client.chat.completions.create(model="my-local-llama", messages=USER)

    for span in spans:
        assert_unpriced(span, semconv.UNPRICED_UNKNOWN_MODEL)
    assert agentops.counters()[semconv.COUNTER_UNPRICED_LLM_CALLS] == 2
    warnings = [r for r in caplog.records if "my-local-llama" in r.getMessage()]
    assert len(warnings) == 1  # once per model, not per call
    assert "prices=" in warnings[0].getMessage()


def test_a_stream_that_reports_no_usage_is_unpriced_for_that_reason(
    spans: CapturedSpans, openai_client: openai.OpenAI
) -> None:
    for _chunk in openai_client.chat.completions.create(model="gpt-4o-mini", messages=USER, stream=True):
        pass

    assert_unpriced(only_llm_span(spans), semconv.UNPRICED_NO_USAGE)
    assert agentops.counters()[semconv.COUNTER_UNPRICED_LLM_CALLS] == 1


def test_a_failed_call_is_neither_priced_nor_counted_as_unpriced(
    spans: CapturedSpans, openai_client: openai.OpenAI
) -> None:
    with pytest.raises(openai.RateLimitError):
        openai_client.chat.completions.create(model="gpt-4o-mini-error-429", messages=USER)

    span = only_llm_span(spans)
    assert not {*COST_KEYS, semconv.AGENTOPS_COST_UNPRICED} & set(span.attributes)
    assert semconv.COUNTER_UNPRICED_LLM_CALLS not in agentops.counters()


def test_usage_the_table_finds_inconsistent_is_unpriced() -> None:
    attributes = {
        semconv.GEN_AI_REQUEST_MODEL: "gpt-4o-mini",
        semconv.GEN_AI_USAGE_INPUT_TOKENS: 10,
        semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: 50,
    }

    cost = _pricing.cost_attributes("openai", attributes, None)

    assert cost == {semconv.AGENTOPS_COST_UNPRICED: True, semconv.AGENTOPS_COST_UNPRICED_REASON: "invalid usage"}


def test_without_genai_prices_calls_are_unpriced_not_broken(
    monkeypatch: pytest.MonkeyPatch, spans: CapturedSpans, openai_client: openai.OpenAI
) -> None:
    monkeypatch.setattr(_pricing, "_table", None)
    monkeypatch.setattr(_pricing, "_table_loaded", True)

    completion = openai_client.chat.completions.create(model="gpt-4o-mini", messages=USER)

    assert completion.choices[0].message.content
    assert_unpriced(only_llm_span(spans), semconv.UNPRICED_NO_PRICE_TABLE)


@pytest.mark.allow_internal_errors
def test_a_failure_while_pricing_never_reaches_the_caller_nor_loses_the_response(
    monkeypatch: pytest.MonkeyPatch, spans: CapturedSpans, openai_client: openai.OpenAI
) -> None:
    def broken(*args: Any) -> dict[str, Any]:
        raise RuntimeError("pricing bug")

    monkeypatch.setattr(_pricing, "cost_attributes", broken)

    completion = openai_client.chat.completions.create(model="gpt-4o-mini", messages=USER)

    span = only_llm_span(spans)
    assert span.attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == completion.usage.completion_tokens
    assert semconv.GEN_AI_USAGE_TOTAL_COST not in span.attributes
    assert agentops.counters()["internal_errors"] == 1


# --- the user's prices -------------------------------------------------------------


def test_the_users_price_wins_over_the_table(agentops_init: Callable[..., Any], openai_client: openai.OpenAI) -> None:
    agentops_init(prices={"GPT-4o-mini": {"input_mtok": 1.0, "output_mtok": 4.0, "cache_read_mtok": 0.5}})
    with captured_spans() as spans:
        openai_client.chat.completions.create(
            model="gpt-4o-mini", messages=USER, extra_headers={"x-stand-in": "cached-4"}
        )

    span = only_llm_span(spans)
    attributes = span.attributes
    # 6 counted + 4 cached input tokens (4 at the cache price), 7 output tokens.
    assert attributes[semconv.GEN_AI_USAGE_TOTAL_COST] == pytest.approx((6 * 1.0 + 4 * 0.5 + 7 * 4.0) / 1e6)
    assert attributes[semconv.GEN_AI_USAGE_INPUT_COST] == pytest.approx(8 / 1e6)
    assert attributes[semconv.AGENTOPS_COST_SOURCE] == semconv.COST_SOURCE_USER
    assert attributes[semconv.AGENTOPS_COST_MODEL] == "gpt-4o-mini"


def test_a_users_price_can_cover_fine_tuned_models_by_prefix_and_self_hosted_ones_at_zero(
    agentops_init: Callable[..., Any], openai_client: openai.OpenAI
) -> None:
    agentops_init(
        prices={
            "ft:gpt-4o-mini:acme:*": {"input_mtok": 0.3, "output_mtok": 1.2},
            "ft:gpt-4o-mini:acme:support:*": {"input_mtok": 0.6, "output_mtok": 2.4},
            "my-llama": {"input_mtok": 0, "output_mtok": 0},
        }
    )
    with captured_spans() as spans:
        for model in ("ft:gpt-4o-mini:acme:sales:7x", "ft:gpt-4o-mini:acme:support:9z", "my-llama"):
            openai_client.chat.completions.create(model=model, messages=USER)

    sales, support, llama = (s.attributes for s in spans)
    assert sales[semconv.GEN_AI_USAGE_TOTAL_COST] == pytest.approx((6 * 0.3 + 7 * 1.2) / 1e6)
    assert sales[semconv.AGENTOPS_COST_MODEL] == "ft:gpt-4o-mini:acme:*"
    assert support[semconv.AGENTOPS_COST_MODEL] == "ft:gpt-4o-mini:acme:support:*"  # the longest prefix
    assert llama[semconv.GEN_AI_USAGE_TOTAL_COST] == 0.0  # a known zero, not unknown
    assert semconv.AGENTOPS_COST_UNPRICED not in llama
    assert semconv.COUNTER_UNPRICED_LLM_CALLS not in agentops.counters()


def test_prices_come_from_the_environment_too_and_bad_entries_are_dropped(caplog: pytest.LogCaptureFixture) -> None:
    env = {"AGENTOPS_PRICES": '{"My-Model": {"input_mtok": 2, "output_mtok": -1}, "x": 3}'}

    config = _config.resolve({}, env=env)

    assert config.prices == {"my-model": {"input_mtok": 2.0}}
    assert "output_mtok" in caplog.text
    assert _config.resolve({"prices": "not json"}, env={}).prices == {}
    assert _config.resolve({}, env={}).prices == {}


def test_an_unknown_price_key_is_reported_and_ignored(
    agentops_init: Callable[..., Any], openai_client: openai.OpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    agentops_init(prices={"my-llama": {"input_mtok": 1, "per_token": 5}})
    with captured_spans() as spans:
        openai_client.chat.completions.create(model="my-llama", messages=USER)

    assert only_llm_span(spans).attributes[semconv.GEN_AI_USAGE_TOTAL_COST] == pytest.approx(6 / 1e6)
    assert "per_token" in caplog.text


# --- no network, and cheap -----------------------------------------------------------


def test_pricing_makes_no_network_request_and_never_starts_genai_prices_updates() -> None:
    script = textwrap.dedent(
        """
        import socket

        def refuse(*args, **kwargs):
            raise AssertionError(f"network use: {args!r}")

        socket.socket.connect = refuse
        socket.create_connection = refuse
        socket.getaddrinfo = refuse

        import genai_prices.update_prices as updates
        from agentops import _pricing, semconv

        _pricing.warm()
        cost = _pricing.cost_attributes(
            "openai",
            {semconv.GEN_AI_REQUEST_MODEL: "gpt-4o-mini", semconv.GEN_AI_USAGE_INPUT_TOKENS: 100},
            None,
        )
        assert cost[semconv.GEN_AI_USAGE_TOTAL_COST] > 0, cost
        assert updates._shared_updater.ref_count == 0
        print("ok")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_lookups_are_cached_per_provider_and_model_misses_included(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    table = _pricing._get_table()
    assert table is not None
    real = table.calc_price

    def counting(usage: Any, model: str, **kwargs: Any) -> Any:
        calls.append(model)
        return real(usage, model, **kwargs)

    monkeypatch.setattr(table, "calc_price", counting)
    for model in ("gpt-4o-mini", "gpt-4o-mini", "nope", "nope"):
        attributes = {semconv.GEN_AI_REQUEST_MODEL: model, semconv.GEN_AI_USAGE_INPUT_TOKENS: 5}
        _pricing.cost_attributes("openai", attributes, None)

    assert calls == ["gpt-4o-mini", "nope"]


def test_the_pricing_benchmark_runs_and_reports_microseconds_per_span() -> None:
    result = subprocess.run(
        [sys.executable, "benchmarks/pricing.py", "--n", "200", "--calls", "5", "--json"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=180,
    )

    assert result.returncode == 0, result.stderr
    numbers = json.loads(result.stdout.strip().splitlines()[-1])
    assert {"price_openai", "pricing_inside_llm_call", "llm_call_priced"} <= set(numbers)
    assert all(value >= 0 for value in numbers.values())
