"""The stand-in LLM server answers like the real APIs, deterministically.

Tests, the demo and the benchmarks rely on these answers: the same request
always gets the same text and token counts, errors come with the status the
model name asks for, and every request is kept for inspection.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import anthropic
import openai
import pytest

from agentops.testing.llm_server import EMBEDDING_DIMENSIONS, LLMServer, count_tokens

ROOT = Path(__file__).resolve().parents[2]


def test_the_answer_echoes_the_last_user_message_with_word_token_counts(openai_client: openai.OpenAI) -> None:
    messages = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "an answer"},
        {"role": "user", "content": "second question here"},
    ]
    first = openai_client.chat.completions.create(model="gpt-4o", messages=messages)
    second = openai_client.chat.completions.create(model="gpt-4o", messages=messages)

    assert first.choices[0].message.content == second.choices[0].message.content == "Echo: second question here"
    assert first.usage.prompt_tokens == count_tokens("You are terse. first question an answer second question here")
    assert first.usage.completion_tokens == 4
    assert first.id != second.id


def test_max_tokens_cuts_the_answer_like_each_api_reports_it(
    openai_client: openai.OpenAI, anthropic_client: anthropic.Anthropic
) -> None:
    chat = openai_client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "a b c d"}], max_completion_tokens=2
    )
    response = openai_client.responses.create(model="gpt-4o", input="a b c d", max_output_tokens=2)
    message = anthropic_client.messages.create(
        model="claude-test", max_tokens=2, messages=[{"role": "user", "content": "a b c d"}]
    )

    assert (chat.choices[0].message.content, chat.choices[0].finish_reason) == ("Echo: a", "length")
    assert (response.output_text, response.status) == ("Echo: a", "incomplete")
    assert (message.content[0].text, message.stop_reason) == ("Echo: a", "max_tokens")


def test_streams_deliver_the_same_text_as_plain_answers(
    openai_client: openai.OpenAI, anthropic_client: anthropic.Anthropic
) -> None:
    messages = [{"role": "user", "content": "stream me please"}]
    chunks = openai_client.chat.completions.create(model="gpt-4o", messages=messages, stream=True)
    with openai_client.responses.stream(model="gpt-4o", input="stream me please") as response_stream:
        response_text = response_stream.get_final_response().output_text
    with anthropic_client.messages.stream(model="claude-test", max_tokens=99, messages=messages) as message_stream:
        message_text = message_stream.get_final_text()

    chat_text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert chat_text == response_text == message_text == "Echo: stream me please"


def test_offered_tools_are_called_first_and_their_results_answered(
    openai_client: openai.OpenAI, anthropic_client: anthropic.Anthropic
) -> None:
    chat_tool = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}
    asked = [{"role": "user", "content": "rivers"}]
    first = openai_client.chat.completions.create(model="gpt-4o", messages=asked, tools=[chat_tool])
    (call,) = first.choices[0].message.tool_calls
    answered = [
        *asked,
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "Seine"},
    ]
    second = openai_client.chat.completions.create(model="gpt-4o", messages=answered, tools=[chat_tool])

    assert (call.function.name, json.loads(call.function.arguments)) == ("lookup", {"query": "rivers"})
    assert first.choices[0].finish_reason == "tool_calls"
    assert second.choices[0].message.content == "Echo: rivers"

    tool = {"name": "lookup", "input_schema": {"type": "object"}}
    use = anthropic_client.messages.create(model="claude-test", max_tokens=50, messages=asked, tools=[tool])
    result = {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": use.content[0].id, "content": "Seine"}],
    }
    reply = anthropic_client.messages.create(
        model="claude-test",
        max_tokens=50,
        tools=[tool],
        messages=[*asked, {"role": "assistant", "content": [use.content[0].model_dump()]}, result],
    )
    assert (use.stop_reason, use.content[0].input) == ("tool_use", {"query": "rivers"})
    assert reply.content[0].text == "Echo: Seine"


@pytest.mark.parametrize("status", [400, 401, 404, 429, 500, 503])
def test_error_models_get_that_status_with_an_api_shaped_body(
    openai_client: openai.OpenAI, anthropic_client: anthropic.Anthropic, status: int
) -> None:
    with pytest.raises(openai.APIStatusError) as openai_error:
        openai_client.chat.completions.create(model=f"error-{status}", messages=[{"role": "user", "content": "x"}])
    with pytest.raises(anthropic.APIStatusError) as anthropic_error:
        anthropic_client.messages.create(
            model=f"error-{status}", max_tokens=5, messages=[{"role": "user", "content": "x"}]
        )

    assert openai_error.value.status_code == anthropic_error.value.status_code == status
    assert "message" in openai_error.value.body
    assert anthropic_error.value.body["type"] == "error"


def test_every_request_is_recorded_with_path_headers_and_body(
    llm_server: LLMServer, openai_client: openai.OpenAI
) -> None:
    openai_client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])

    (request,) = llm_server.requests
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer test-key"
    assert request.body["messages"] == [{"role": "user", "content": "hi"}]
    llm_server.clear()
    assert llm_server.requests == []


def test_runs_as_a_process_for_the_demo() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "agentops.testing.llm_server", "--port", "0"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()
        assert line.startswith("stand-in LLM server listening on http://127.0.0.1:")
        base_url = line.split()[-1]
        request = urllib.request.Request(
            f"{base_url}/chat/completions",
            data=json.dumps({"model": "m", "messages": [{"role": "user", "content": "ping"}]}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert json.load(answer)["choices"][0]["message"]["content"] == "Echo: ping"
    finally:
        process.terminate()
        process.wait(timeout=10)
        process.stdout.close()


# --- embeddings, legacy completions, usage details, endings ----------------------------


def test_embeddings_are_deterministic_vectors_as_floats_or_base64(openai_client: openai.OpenAI) -> None:
    first = openai_client.embeddings.create(model="text-embedding-3-small", input=["one two", "three"])
    again = openai_client.embeddings.create(model="text-embedding-3-small", input="one two", encoding_format="float")
    short = openai_client.embeddings.create(model="text-embedding-3-small", input="one two", dimensions=3)

    assert [d.index for d in first.data] == [0, 1]
    assert len(first.data[0].embedding) == EMBEDDING_DIMENSIONS
    # The client asks for base64 and decodes it; asked for floats, the same numbers come back.
    assert first.data[0].embedding == again.data[0].embedding
    assert first.data[0].embedding != first.data[1].embedding
    assert all(-1 <= value < 1 for value in first.data[0].embedding)
    assert len(short.data[0].embedding) == 3
    assert (first.usage.prompt_tokens, first.usage.total_tokens) == (3, 3)


def test_legacy_completions_answer_each_prompt_plain_or_streamed(openai_client: openai.OpenAI) -> None:
    plain = openai_client.completions.create(model="gpt-3.5-turbo-instruct", prompt=["a b", "c"], n=2)
    chunks = list(
        openai_client.completions.create(
            model="gpt-3.5-turbo-instruct",
            prompt="a b c",
            max_tokens=2,
            stream=True,
            stream_options={"include_usage": True},
        )
    )

    assert plain.object == "text_completion"
    assert [(c.index, c.text, c.finish_reason) for c in plain.choices] == [
        (0, "Echo: a b", "stop"),
        (1, "Echo: a b", "stop"),
        (2, "Echo: c", "stop"),
        (3, "Echo: c", "stop"),
    ]
    assert (plain.usage.prompt_tokens, plain.usage.completion_tokens) == (3, 2 * 3 + 2 * 2)
    assert "".join(c.choices[0].text for c in chunks if c.choices) == "Echo: a"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
    assert chunks[-1].usage.completion_tokens == 2


def test_directives_in_a_header_report_cache_and_reasoning_tokens_as_each_api_does(
    openai_client: openai.OpenAI, anthropic_client: anthropic.Anthropic
) -> None:
    header = {"x-stand-in": "cached-100 cache-write-20 cache-write-1h-5 reasoning-7"}
    messages = [{"role": "user", "content": "a b c"}]
    chat = openai_client.chat.completions.create(model="gpt-4o", messages=messages, extra_headers=header)
    response = openai_client.responses.create(model="gpt-4o", input="a b c", extra_headers=header)
    message = anthropic_client.messages.create(
        model="claude-test", max_tokens=50, messages=messages, extra_headers=header
    )

    # OpenAI counts cached and written tokens in the prompt; Anthropic apart.
    assert chat.model == "gpt-4o"
    assert chat.usage.prompt_tokens == 3 + 100 + 25
    assert chat.usage.prompt_tokens_details.cached_tokens == 100
    assert chat.usage.prompt_tokens_details.cache_write_tokens == 25
    assert chat.usage.completion_tokens_details.reasoning_tokens == 7
    assert chat.usage.completion_tokens == 4 + 7
    assert response.usage.input_tokens == 3 + 100 + 25
    assert response.usage.input_tokens_details.cached_tokens == 100
    assert response.usage.output_tokens_details.reasoning_tokens == 7
    assert message.usage.input_tokens == 3
    assert message.usage.cache_read_input_tokens == 100
    assert message.usage.cache_creation_input_tokens == 25
    assert message.usage.cache_creation.ephemeral_1h_input_tokens == 5
    assert message.usage.output_tokens_details.thinking_tokens == 7
    assert message.usage.output_tokens == 4 + 7


def test_a_filtered_answer_ends_the_way_each_api_reports_it(
    openai_client: openai.OpenAI, anthropic_client: anthropic.Anthropic
) -> None:
    header = {"x-stand-in": "filtered"}
    messages = [{"role": "user", "content": "a b c"}]
    chat = openai_client.chat.completions.create(model="gpt-4o", messages=messages, extra_headers=header)
    response = openai_client.responses.create(model="gpt-4o", input="a b c", extra_headers=header)
    text = openai_client.completions.create(model="gpt-3.5-turbo-instruct", prompt="a b c", extra_headers=header)
    message = anthropic_client.messages.create(
        model="claude-test", max_tokens=50, messages=messages, extra_headers=header
    )

    assert (chat.choices[0].finish_reason, chat.choices[0].message.content) == ("content_filter", "Echo:")
    assert (response.status, response.incomplete_details.reason) == ("incomplete", "content_filter")
    assert text.choices[0].finish_reason == "content_filter"
    assert message.stop_reason == "refusal"


def test_the_service_tier_and_speed_asked_for_are_echoed(
    openai_client: openai.OpenAI, anthropic_client: anthropic.Anthropic
) -> None:
    messages = [{"role": "user", "content": "hi"}]
    flex = openai_client.chat.completions.create(model="gpt-4o", messages=messages, service_tier="flex")
    plain = openai_client.chat.completions.create(model="gpt-4o", messages=messages)
    streamed = list(openai_client.chat.completions.create(model="gpt-4o", messages=messages, stream=True))
    response = openai_client.responses.create(model="gpt-4o", input="hi", service_tier="priority")
    fast = anthropic_client.messages.create(model="claude-test", max_tokens=5, messages=messages, speed="fast")

    assert (flex.service_tier, plain.service_tier, response.service_tier) == ("flex", "default", "priority")
    assert {chunk.service_tier for chunk in streamed} == {"default"}
    assert (fast.usage.speed, fast.usage.service_tier) == ("fast", "standard")
