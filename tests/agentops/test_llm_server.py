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

from agentops.testing.llm_server import LLMServer, count_tokens

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
