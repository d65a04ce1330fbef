"""Reading other instrumentations' LLM spans: which spans are calls, and their canonical attributes."""

from __future__ import annotations

import json

import genai_prices

from agentops.integrations.genai import foreign_llm_attributes, is_llm_call

# What OpenLLMetry's releases before the current GenAI conventions wrote for one chat call.
OPENLLMETRY_LEGACY = {
    "llm.request.type": "chat",
    "gen_ai.system": "openai",
    "gen_ai.request.model": "gpt-4o-mini",
    "gen_ai.prompt.0.role": "user",
    "gen_ai.prompt.0.content": "hello there",
    "gen_ai.completion.0.role": "assistant",
    "gen_ai.completion.0.content": "Echo: hello there",
    "gen_ai.completion.0.finish_reason": "stop",
    "gen_ai.usage.prompt_tokens": 2,
    "gen_ai.usage.completion_tokens": 3,
}


def test_spans_that_are_no_llm_call_are_left_alone() -> None:
    assert foreign_llm_attributes({"http.request.method": "GET"}) is None
    assert foreign_llm_attributes({"gen_ai.operation.name": "invoke_agent", "gen_ai.usage.input_tokens": 9}) is None
    assert foreign_llm_attributes({"agentops.span.kind": "llm", "gen_ai.operation.name": "chat"}) is None
    assert not is_llm_call({"gen_ai.operation.name": "execute_tool"})
    assert is_llm_call({"agentops.span.kind": "llm"}) and is_llm_call({"openinference.span.kind": "LLM"})


def test_openllmetrys_older_names_give_the_canonical_view_and_the_price() -> None:
    added = foreign_llm_attributes(OPENLLMETRY_LEGACY)

    assert added is not None and added["agentops.llm.dialect"] == "openllmetry"
    assert (added["gen_ai.usage.input_tokens"], added["gen_ai.usage.output_tokens"]) == (2, 3)
    assert json.loads(added["gen_ai.input.messages"]) == [{"role": "user", "content": "hello there"}]
    assert json.loads(added["gen_ai.output.messages"]) == [{"role": "assistant", "content": "Echo: hello there"}]
    assert added["gen_ai.response.finish_reasons"] == ["stop"]
    usage = genai_prices.Usage(input_tokens=2, output_tokens=3)
    assert added["gen_ai.usage.total_cost"] == float(genai_prices.calc_price(usage, "gpt-4o-mini").total_price)


def test_a_span_inside_another_llm_call_is_read_but_not_priced() -> None:
    added = foreign_llm_attributes({**OPENLLMETRY_LEGACY, "agentops.llm.inside_call": True})
    assert added is not None and added["gen_ai.usage.input_tokens"] == 2
    assert "gen_ai.usage.total_cost" not in added and "agentops.cost.unpriced" not in added


def test_an_unknown_model_is_unpriced_not_free() -> None:
    added = foreign_llm_attributes({**OPENLLMETRY_LEGACY, "gen_ai.request.model": "no-such-model"})
    assert added is not None and added["agentops.cost.unpriced"] is True
    assert "gen_ai.usage.total_cost" not in added
