"""The OpenAI integration: every chat completion and Responses API call is an LLM span.

Real ``openai`` clients talk real HTTP to the stand-in server; nothing of the
client library is mocked.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openai
import pytest
import wrapt
from opentelemetry import trace as trace_api
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind as OtelSpanKind
from opentelemetry.trace import StatusCode

import agentops
from agentops import _guard, integrations, semconv
from agentops.integrations import _openai
from agentops.testing import CapturedSpans, captured_spans
from agentops.testing.llm_server import LLMServer

ROOT = Path(__file__).resolve().parents[2]
USER = [{"role": "user", "content": "What is the capital of France?"}]


def llm_spans(spans: CapturedSpans) -> list[ReadableSpan]:
    return [s for s in spans if s.attributes.get(semconv.AGENTOPS_SPAN_KIND) == semconv.SpanKind.LLM]


def only_llm_span(spans: CapturedSpans) -> ReadableSpan:
    found = llm_spans(spans)
    assert len(found) == 1, [s.name for s in spans]
    return found[0]


# --- chat completions ---------------------------------------------------------------


def test_chat_completion_is_a_client_span_named_chat_model_with_request_and_response_attributes(
    spans: CapturedSpans, openai_client: openai.OpenAI
) -> None:
    completion = openai_client.chat.completions.create(
        model="gpt-4o-mini", messages=USER, max_tokens=50, temperature=0.2
    )

    span = only_llm_span(spans)
    assert span.name == "chat gpt-4o-mini"
    assert span.kind is OtelSpanKind.CLIENT
    assert span.status.status_code is StatusCode.UNSET
    attributes = span.attributes
    assert attributes[semconv.GEN_AI_SYSTEM] == "openai"
    assert attributes[semconv.GEN_AI_OPERATION_NAME] == "chat"
    assert attributes[semconv.GEN_AI_REQUEST_MODEL] == "gpt-4o-mini"
    assert attributes[semconv.GEN_AI_REQUEST_MAX_TOKENS] == 50
    assert attributes[semconv.GEN_AI_REQUEST_TEMPERATURE] == 0.2
    assert attributes[semconv.GEN_AI_REQUEST_STREAM] is False
    assert attributes[semconv.GEN_AI_RESPONSE_ID] == completion.id
    assert attributes[semconv.GEN_AI_RESPONSE_MODEL] == completion.model
    assert list(attributes[semconv.GEN_AI_RESPONSE_FINISH_REASONS]) == ["stop"]
    assert attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == completion.usage.prompt_tokens == 6
    assert attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == completion.usage.completion_tokens == 7


def test_chat_completion_messages_are_recorded_as_json_when_content_capture_is_on(
    spans: CapturedSpans, openai_client: openai.OpenAI
) -> None:
    openai_client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "system", "content": "Be brief."}, *USER]
    )

    span = only_llm_span(spans)
    assert json.loads(span.attributes[semconv.GEN_AI_INPUT_MESSAGES]) == [
        {"role": "system", "content": "Be brief."},
        *USER,
    ]
    assert json.loads(span.attributes[semconv.GEN_AI_OUTPUT_MESSAGES]) == [
        {"role": "assistant", "content": "Echo: What is the capital of France?"}
    ]


def test_no_prompt_or_completion_is_recorded_when_content_capture_is_off(
    agentops_init: Callable[..., Any], openai_client: openai.OpenAI
) -> None:
    agentops_init(capture_content=False)
    with captured_spans() as spans:
        openai_client.chat.completions.create(model="gpt-4o-mini", messages=USER)
        openai_client.chat.completions.create(model="gpt-4o-mini", messages=USER, stream=True).close()

    for span in llm_spans(spans):
        assert semconv.GEN_AI_INPUT_MESSAGES not in span.attributes
        assert semconv.GEN_AI_OUTPUT_MESSAGES not in span.attributes
    assert len(llm_spans(spans)) == 2


def test_recorded_messages_are_cut_to_max_payload_size(
    agentops_init: Callable[..., Any], openai_client: openai.OpenAI
) -> None:
    agentops_init(max_payload_size=200)
    with captured_spans() as spans:
        openai_client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "word " * 500}]
        )

    recorded = only_llm_span(spans).attributes[semconv.GEN_AI_INPUT_MESSAGES]
    assert recorded.startswith('[{"role":"user","content":"word word')
    assert "...[truncated" in recorded
    assert len(recorded) < 300


def test_configured_redact_keys_are_masked_in_recorded_messages(
    agentops_init: Callable[..., Any], openai_client: openai.OpenAI
) -> None:
    agentops_init(redact_keys=["name"])
    with captured_spans() as spans:
        openai_client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "name": "Alice Example", "content": "hi"}]
        )

    recorded = json.loads(only_llm_span(spans).attributes[semconv.GEN_AI_INPUT_MESSAGES])
    assert recorded == [{"role": "user", "name": "[REDACTED]", "content": "hi"}]


async def test_async_chat_completion_is_recorded(spans: CapturedSpans, async_openai_client: openai.AsyncOpenAI) -> None:
    completion = await async_openai_client.chat.completions.create(model="gpt-4o", messages=USER)

    span = only_llm_span(spans)
    assert span.name == "chat gpt-4o"
    assert span.attributes[semconv.GEN_AI_RESPONSE_ID] == completion.id
    assert span.attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == completion.usage.completion_tokens


def test_parse_is_recorded_like_create(spans: CapturedSpans, openai_client: openai.OpenAI) -> None:
    parsed = openai_client.chat.completions.parse(model="gpt-4o", messages=USER)

    span = only_llm_span(spans)
    assert span.name == "chat gpt-4o"
    assert span.attributes[semconv.GEN_AI_RESPONSE_ID] == parsed.id


def test_raw_response_calls_still_work_and_are_recorded(spans: CapturedSpans, openai_client: openai.OpenAI) -> None:
    raw = openai_client.chat.completions.with_raw_response.create(model="gpt-4o", messages=USER)

    assert raw.parse().choices[0].message.content == "Echo: What is the capital of France?"
    span = only_llm_span(spans)
    assert span.attributes[semconv.GEN_AI_REQUEST_MODEL] == "gpt-4o"


# --- streaming ---------------------------------------------------------------------


def test_streamed_chat_completion_is_still_a_stream_and_its_span_ends_when_exhausted(
    spans: CapturedSpans, openai_client: openai.OpenAI, llm_server: LLMServer
) -> None:
    stream = openai_client.chat.completions.create(model="gpt-4o-mini", messages=USER, stream=True)

    assert isinstance(stream, openai.Stream)
    assert llm_spans(spans) == []  # open while the caller reads
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)

    assert text == "Echo: What is the capital of France?"
    span = only_llm_span(spans)
    assert span.attributes[semconv.GEN_AI_REQUEST_STREAM] is True
    assert list(span.attributes[semconv.GEN_AI_RESPONSE_FINISH_REASONS]) == ["stop"]
    assert span.attributes[semconv.GEN_AI_RESPONSE_ID].startswith("chatcmpl-")
    assert json.loads(span.attributes[semconv.GEN_AI_OUTPUT_MESSAGES]) == [{"role": "assistant", "content": text}]
    # Usage was not asked for, so none is recorded, and agentops did not ask for it either.
    assert semconv.GEN_AI_USAGE_INPUT_TOKENS not in span.attributes
    assert "stream_options" not in llm_server.requests[-1].body


def test_streamed_chat_completion_records_usage_when_the_caller_asks_for_it(
    spans: CapturedSpans, openai_client: openai.OpenAI
) -> None:
    stream = openai_client.chat.completions.create(
        model="gpt-4o-mini", messages=USER, stream=True, stream_options={"include_usage": True}
    )
    usage = [chunk.usage for chunk in stream if chunk.usage][-1]

    span = only_llm_span(spans)
    assert span.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == usage.prompt_tokens
    assert span.attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == usage.completion_tokens


async def test_async_streamed_chat_completion_is_recorded_when_exhausted(
    spans: CapturedSpans, async_openai_client: openai.AsyncOpenAI
) -> None:
    stream = await async_openai_client.chat.completions.create(
        model="gpt-4o-mini", messages=USER, stream=True, stream_options={"include_usage": True}
    )
    assert isinstance(stream, openai.AsyncStream)
    pieces = [chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices]

    span = only_llm_span(spans)
    assert json.loads(span.attributes[semconv.GEN_AI_OUTPUT_MESSAGES])[0]["content"] == "".join(pieces)
    assert span.attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 7


def test_stream_closed_early_ends_the_span(spans: CapturedSpans, openai_client: openai.OpenAI) -> None:
    stream = openai_client.chat.completions.create(model="gpt-4o-mini", messages=USER, stream=True)
    next(stream)
    next(stream)
    stream.close()

    span = only_llm_span(spans)
    assert span.end_time is not None
    assert semconv.GEN_AI_RESPONSE_FINISH_REASONS not in span.attributes  # it never finished
    assert span.status.status_code is StatusCode.UNSET


def test_stream_left_through_its_with_block_ends_the_span(spans: CapturedSpans, openai_client: openai.OpenAI) -> None:
    with openai_client.chat.completions.create(model="gpt-4o-mini", messages=USER, stream=True) as stream:
        assert isinstance(stream, openai.Stream)
        next(stream)
        assert llm_spans(spans) == []

    assert len(llm_spans(spans)) == 1


async def test_async_stream_closed_early_ends_the_span(
    spans: CapturedSpans, async_openai_client: openai.AsyncOpenAI
) -> None:
    async with await async_openai_client.chat.completions.create(
        model="gpt-4o-mini", messages=USER, stream=True
    ) as stream:
        await stream.__anext__()

    assert len(llm_spans(spans)) == 1


def test_dropped_stream_ends_its_span_when_garbage_collected(
    spans: CapturedSpans, openai_client: openai.OpenAI
) -> None:
    stream = openai_client.chat.completions.create(model="gpt-4o-mini", messages=USER, stream=True)
    next(stream)
    del stream
    gc.collect()

    assert len(llm_spans(spans)) == 1


def test_stream_does_not_keep_its_span_current_in_the_callers_context(
    spans: CapturedSpans, openai_client: openai.OpenAI
) -> None:
    seen = []
    with agentops.start_trace("reader") as trace_context:
        stream = openai_client.chat.completions.create(model="gpt-4o-mini", messages=USER, stream=True)
        seen.append(trace_api.get_current_span())
        for _chunk in stream:
            seen.append(trace_api.get_current_span())

    assert len(seen) > 3
    assert all(span is trace_context.span for span in seen)


def test_error_in_the_middle_of_a_stream_is_recorded_and_reraised(
    spans: CapturedSpans, openai_client: openai.OpenAI
) -> None:
    stream = openai_client.chat.completions.create(model="gpt-4o-stream-error", messages=USER, stream=True)
    with pytest.raises(openai.APIError) as raised:
        for _chunk in stream:
            pass

    assert type(raised.value) is openai.APIError
    span = only_llm_span(spans)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[semconv.ERROR_TYPE] == "APIError"
    assert span.attributes[semconv.GEN_AI_RESPONSE_ID].startswith("chatcmpl-")  # what arrived is kept


def test_chat_stream_helper_is_recorded(spans: CapturedSpans, openai_client: openai.OpenAI) -> None:
    with openai_client.chat.completions.stream(model="gpt-4o-mini", messages=USER) as stream:
        for _event in stream:
            pass
        final = stream.get_final_completion()

    span = only_llm_span(spans)
    assert span.attributes[semconv.GEN_AI_RESPONSE_ID] == final.id
    assert json.loads(span.attributes[semconv.GEN_AI_OUTPUT_MESSAGES])[0]["content"] == final.choices[0].message.content


SEARCH_TOOL = {
    "type": "function",
    "function": {"name": "search", "parameters": {"type": "object", "properties": {"query": {"type": "string"}}}},
}


@pytest.mark.parametrize("stream", [False, True])
def test_tool_calls_are_recorded_the_same_whether_streamed_or_not(
    spans: CapturedSpans, openai_client: openai.OpenAI, stream: bool
) -> None:
    result = openai_client.chat.completions.create(model="gpt-4o", messages=USER, tools=[SEARCH_TOOL], stream=stream)
    if stream:
        for _chunk in result:
            pass

    span = only_llm_span(spans)
    assert list(span.attributes[semconv.GEN_AI_RESPONSE_FINISH_REASONS]) == ["tool_calls"]
    (message,) = json.loads(span.attributes[semconv.GEN_AI_OUTPUT_MESSAGES])
    assert message == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": message["tool_calls"][0]["id"],
                "name": "search",
                "arguments": json.dumps({"query": "What is the capital of France?"}),
            }
        ],
    }
    assert message["tool_calls"][0]["id"].startswith("call_")


def test_stream_helpers_left_early_end_the_span_on_exit(spans: CapturedSpans, openai_client: openai.OpenAI) -> None:
    with openai_client.chat.completions.stream(model="gpt-4o-mini", messages=USER) as stream:
        next(iter(stream))
    with openai_client.responses.stream(model="gpt-4.1", input="hello") as response_stream:
        next(iter(response_stream))

    assert [s.name for s in llm_spans(spans)] == ["chat gpt-4o-mini", "chat gpt-4.1"]


async def test_async_stream_helpers_left_early_end_the_span_on_exit(
    spans: CapturedSpans, async_openai_client: openai.AsyncOpenAI
) -> None:
    async with async_openai_client.chat.completions.stream(model="gpt-4o-mini", messages=USER) as stream:
        await stream.__aiter__().__anext__()
    async with async_openai_client.responses.stream(model="gpt-4.1", input="hello") as response_stream:
        await response_stream.__aiter__().__anext__()

    assert [s.name for s in llm_spans(spans)] == ["chat gpt-4o-mini", "chat gpt-4.1"]


# --- responses API -----------------------------------------------------------------


def test_responses_call_is_recorded_with_usage_and_status(spans: CapturedSpans, openai_client: openai.OpenAI) -> None:
    response = openai_client.responses.create(
        model="gpt-4.1", instructions="Be brief.", input="Hello there", max_output_tokens=100, temperature=1.0
    )

    span = only_llm_span(spans)
    assert span.name == "chat gpt-4.1"
    assert span.kind is OtelSpanKind.CLIENT
    assert span.attributes[semconv.GEN_AI_REQUEST_MAX_TOKENS] == 100
    assert span.attributes[semconv.GEN_AI_REQUEST_TEMPERATURE] == 1.0
    assert span.attributes[semconv.GEN_AI_RESPONSE_ID] == response.id
    assert list(span.attributes[semconv.GEN_AI_RESPONSE_FINISH_REASONS]) == ["completed"]
    assert span.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == response.usage.input_tokens
    assert span.attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == response.usage.output_tokens
    assert json.loads(span.attributes[semconv.GEN_AI_INPUT_MESSAGES]) == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hello there"},
    ]
    assert json.loads(span.attributes[semconv.GEN_AI_OUTPUT_MESSAGES]) == [
        {"role": "assistant", "content": response.output_text}
    ]


def test_responses_cut_short_record_the_reason(spans: CapturedSpans, openai_client: openai.OpenAI) -> None:
    openai_client.responses.create(model="gpt-4.1", input="one two three four", max_output_tokens=2)

    span = only_llm_span(spans)
    assert list(span.attributes[semconv.GEN_AI_RESPONSE_FINISH_REASONS]) == ["max_output_tokens"]


def test_streamed_responses_call_is_recorded_from_its_final_event(
    spans: CapturedSpans, openai_client: openai.OpenAI
) -> None:
    events = list(openai_client.responses.create(model="gpt-4.1", input="Hello there", stream=True))

    final = events[-1].response
    span = only_llm_span(spans)
    assert span.attributes[semconv.GEN_AI_RESPONSE_ID] == final.id
    assert span.attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == final.usage.output_tokens
    assert json.loads(span.attributes[semconv.GEN_AI_OUTPUT_MESSAGES])[0]["content"] == "Echo: Hello there"


async def test_async_responses_call_and_stream_helper_are_recorded(
    spans: CapturedSpans, async_openai_client: openai.AsyncOpenAI
) -> None:
    await async_openai_client.responses.create(model="gpt-4.1", input="first")
    async with async_openai_client.responses.stream(model="gpt-4.1-mini", input="second") as stream:
        async for _event in stream:
            pass
        final = await stream.get_final_response()

    first, second = llm_spans(spans)
    assert first.name == "chat gpt-4.1"
    assert second.name == "chat gpt-4.1-mini"
    assert second.attributes[semconv.GEN_AI_REQUEST_STREAM] is True
    assert second.attributes[semconv.GEN_AI_RESPONSE_ID] == final.id


def test_responses_function_call_is_recorded_as_a_tool_call(spans: CapturedSpans, openai_client: openai.OpenAI) -> None:
    tool = {"type": "function", "name": "search", "parameters": {"type": "object", "properties": {}}}
    response = openai_client.responses.create(model="gpt-4.1", input="find rivers", tools=[tool])

    (message,) = json.loads(only_llm_span(spans).attributes[semconv.GEN_AI_OUTPUT_MESSAGES])
    call = response.output[0]
    assert message == {
        "role": "assistant",
        "tool_calls": [{"id": call.call_id, "name": "search", "arguments": call.arguments}],
    }


# --- errors ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error_class"),
    [(400, openai.BadRequestError), (429, openai.RateLimitError), (500, openai.InternalServerError)],
)
def test_api_error_marks_the_span_as_error_and_reaches_the_caller_unchanged(
    spans: CapturedSpans, openai_client: openai.OpenAI, status: int, error_class: type[Exception]
) -> None:
    with pytest.raises(error_class) as raised:
        openai_client.chat.completions.create(model=f"error-{status}", messages=USER)

    assert type(raised.value) is error_class
    assert raised.value.status_code == status
    span = only_llm_span(spans)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[semconv.ERROR_TYPE] == error_class.__name__
    assert span.attributes[semconv.HTTP_RESPONSE_STATUS_CODE] == status
    (event,) = [e for e in span.events if e.name == "exception"]
    assert event.attributes["exception.type"].endswith(error_class.__name__)


async def test_async_api_error_is_recorded_and_reraised(
    spans: CapturedSpans, async_openai_client: openai.AsyncOpenAI
) -> None:
    with pytest.raises(openai.RateLimitError):
        await async_openai_client.responses.create(model="error-429", input="x")

    span = only_llm_span(spans)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[semconv.ERROR_TYPE] == "RateLimitError"


def test_connection_error_is_recorded_and_reraised(spans: CapturedSpans) -> None:
    with LLMServer() as server:
        url = server.base_url
    client = openai.OpenAI(base_url=url, api_key="test-key", max_retries=0)  # nothing listens there now
    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(model="gpt-4o", messages=USER)
    client.close()

    span = only_llm_span(spans)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[semconv.ERROR_TYPE] == "APIConnectionError"


@pytest.mark.allow_internal_errors
def test_a_failure_inside_agentops_never_reaches_the_caller(
    spans: CapturedSpans, openai_client: openai.OpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: Any, result: Any) -> dict[str, Any]:
        raise RuntimeError("bug in agentops")

    monkeypatch.setattr(_openai.ChatAdapter, "response_attributes", broken)
    completion = openai_client.chat.completions.create(model="gpt-4o", messages=USER)

    assert completion.choices[0].message.content == "Echo: What is the capital of France?"
    assert only_llm_span(spans).end_time is not None
    assert _guard.counters()["internal_errors"] >= 1


@pytest.mark.allow_internal_errors
def test_a_failure_recording_the_request_still_records_and_ends_the_span(
    spans: CapturedSpans, openai_client: openai.OpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: Any, kwargs: Any) -> list[Any]:
        raise RuntimeError("bug in agentops")

    monkeypatch.setattr(_openai.ChatAdapter, "input_messages", broken)
    stream = openai_client.chat.completions.create(model="gpt-4o", messages=USER, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices).startswith("Echo:")

    span = only_llm_span(spans)
    assert semconv.GEN_AI_INPUT_MESSAGES not in span.attributes
    assert span.attributes[semconv.GEN_AI_OUTPUT_MESSAGES]


# --- nesting and concurrency -------------------------------------------------------------


def test_llm_span_is_a_child_of_the_agent_and_in_the_trace(spans: CapturedSpans, openai_client: openai.OpenAI) -> None:
    @agentops.agent
    def researcher() -> str:
        return openai_client.chat.completions.create(model="gpt-4o", messages=USER).choices[0].message.content

    with agentops.start_trace("research") as trace_context:
        researcher()

    agent_span = spans.one("researcher.agent")
    llm_span = only_llm_span(spans)
    assert llm_span.parent.span_id == agent_span.context.span_id
    assert llm_span.context.trace_id == trace_context.span.get_span_context().trace_id


def test_each_thread_llm_call_lands_in_that_threads_trace(spans: CapturedSpans, openai_client: openai.OpenAI) -> None:
    trace_ids: dict[int, int] = {}
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            with agentops.start_trace(f"query_{i}") as trace_context:
                trace_ids[i] = trace_context.span.get_span_context().trace_id
                openai_client.chat.completions.create(
                    model="gpt-4o", messages=[{"role": "user", "content": f"thread {i}"}]
                )
                stream = openai_client.chat.completions.create(
                    model="gpt-4o", messages=[{"role": "user", "content": f"thread {i}"}], stream=True
                )
                for _chunk in stream:
                    pass
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert len(set(trace_ids.values())) == 8
    found = llm_spans(spans)
    assert len(found) == 16
    for span in found:
        (message,) = json.loads(span.attributes[semconv.GEN_AI_INPUT_MESSAGES])
        i = int(message["content"].split()[1])
        assert span.context.trace_id == trace_ids[i]


async def test_each_asyncio_task_llm_call_lands_in_that_tasks_trace(
    spans: CapturedSpans, async_openai_client: openai.AsyncOpenAI
) -> None:
    async def work(i: int) -> int:
        with agentops.start_trace(f"task_{i}") as trace_context:
            await async_openai_client.chat.completions.create(
                model="gpt-4o", messages=[{"role": "user", "content": f"task {i}"}]
            )
            return trace_context.span.get_span_context().trace_id

    trace_ids = await asyncio.gather(*(work(i) for i in range(6)))

    for span in llm_spans(spans):
        (message,) = json.loads(span.attributes[semconv.GEN_AI_INPUT_MESSAGES])
        assert span.context.trace_id == trace_ids[int(message["content"].split()[1])]
    assert len(llm_spans(spans)) == 6


# --- installing and uninstalling ---------------------------------------------------------


def test_uninstrument_restores_the_client_and_calls_make_no_span(
    spans: CapturedSpans, openai_client: openai.OpenAI
) -> None:
    from openai.resources.chat.completions import Completions

    assert "openai" in integrations.installed()
    assert isinstance(vars(Completions)["create"], wrapt.FunctionWrapper)
    integrations.uninstrument()

    assert "openai" not in integrations.installed()
    assert not isinstance(vars(Completions)["create"], wrapt.FunctionWrapper)
    stream = openai_client.chat.completions.create(model="gpt-4o", messages=USER, stream=True)
    assert type(stream) is openai.Stream
    stream.close()
    openai_client.chat.completions.create(model="gpt-4o", messages=USER)
    openai_client.responses.create(model="gpt-4o", input="x")
    assert llm_spans(spans) == []


def test_instrument_after_uninstrument_records_again(spans: CapturedSpans, openai_client: openai.OpenAI) -> None:
    integrations.uninstrument()
    integrations.instrument(["openai"])
    openai_client.chat.completions.create(model="gpt-4o", messages=USER)

    assert len(llm_spans(spans)) == 1


def test_init_without_llm_instrumentation_records_no_llm_span(
    agentops_init: Callable[..., Any], openai_client: openai.OpenAI
) -> None:
    agentops_init(instrument_llm_calls=False)
    with captured_spans() as spans:
        openai_client.chat.completions.create(model="gpt-4o", messages=USER)

    assert llm_spans(spans) == []


_IMPORT_ORDER_SCRIPT = """
import json, os, sys
IMPORT_FIRST = sys.argv[1] == "before"
if IMPORT_FIRST:
    import openai
import agentops
from agentops.testing import captured_spans
agentops.init(auto_start_session=False)
assert ("openai" in sys.modules) == IMPORT_FIRST
import openai
client = openai.OpenAI(max_retries=0)
with captured_spans() as spans:
    client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
print(json.dumps([s.name for s in spans]))
"""


@pytest.mark.parametrize("order", ["before", "after"])
def test_client_imported_before_or_after_init_is_instrumented(llm_server: LLMServer, order: str) -> None:
    env = {
        **os.environ,
        "OPENAI_BASE_URL": llm_server.base_url,
        "OPENAI_API_KEY": "test-key",
        "PYTHONPATH": str(ROOT),
    }
    result = subprocess.run(
        [sys.executable, "-c", _IMPORT_ORDER_SCRIPT, order],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == ["chat gpt-4o"]


# --- the shape of a call: request parameters, stream timing, how it ended ----------------


def test_request_parameters_and_offered_tools_are_recorded(spans: CapturedSpans, openai_client: openai.OpenAI) -> None:
    openai_client.chat.completions.create(
        model="gpt-4o-mini",
        messages=USER,
        temperature=0.3,
        top_p=0.9,
        max_completion_tokens=64,
        seed=7,
        stop="\n\n",
        n=2,
        frequency_penalty=0.5,
        presence_penalty=-0.5,
        tools=[SEARCH_TOOL],
        tool_choice="required",
        service_tier="priority",
    )

    attributes = only_llm_span(spans).attributes
    assert attributes[semconv.GEN_AI_REQUEST_TEMPERATURE] == 0.3
    assert attributes[semconv.GEN_AI_REQUEST_TOP_P] == 0.9
    assert attributes[semconv.GEN_AI_REQUEST_MAX_TOKENS] == 64
    assert attributes[semconv.GEN_AI_REQUEST_SEED] == 7
    assert list(attributes[semconv.GEN_AI_REQUEST_STOP_SEQUENCES]) == ["\n\n"]
    assert attributes[semconv.GEN_AI_REQUEST_CHOICE_COUNT] == 2
    assert attributes[semconv.GEN_AI_REQUEST_FREQUENCY_PENALTY] == 0.5
    assert attributes[semconv.GEN_AI_REQUEST_PRESENCE_PENALTY] == -0.5
    assert list(attributes[semconv.AGENTOPS_REQUEST_TOOL_NAMES]) == ["search"]
    assert attributes[semconv.AGENTOPS_REQUEST_TOOL_CHOICE] == "required"
    assert attributes[semconv.OPENAI_REQUEST_SERVICE_TIER] == "priority"
    assert attributes[semconv.OPENAI_RESPONSE_SERVICE_TIER] == "priority"


def test_parameters_not_given_are_not_recorded(spans: CapturedSpans, openai_client: openai.OpenAI) -> None:
    openai_client.chat.completions.create(model="gpt-4o-mini", messages=USER)

    attributes = only_llm_span(spans).attributes
    for key in (
        semconv.GEN_AI_REQUEST_TEMPERATURE,
        semconv.GEN_AI_REQUEST_TOP_P,
        semconv.GEN_AI_REQUEST_SEED,
        semconv.GEN_AI_REQUEST_CHOICE_COUNT,
        semconv.AGENTOPS_REQUEST_TOOL_NAMES,
        semconv.OPENAI_REQUEST_SERVICE_TIER,
    ):
        assert key not in attributes


def test_a_streamed_call_records_time_to_first_token_chunk_count_and_tokens_per_second(
    spans: CapturedSpans, openai_client: openai.OpenAI
) -> None:
    stream = openai_client.chat.completions.create(
        model="gpt-4o-mini",
        messages=USER,
        stream=True,
        stream_options={"include_usage": True},
        extra_headers={"x-stand-in": "slow-210"},
    )
    chunks = list(stream)

    span = only_llm_span(spans)
    attributes = span.attributes
    output_tokens = chunks[-1].usage.completion_tokens
    assert attributes[semconv.GEN_AI_STREAMING_CHUNK_COUNT] == len(chunks)
    first_chunk = attributes[semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK]
    first_token = attributes[semconv.GEN_AI_STREAMING_TIME_TO_FIRST_TOKEN]
    generating = attributes[semconv.GEN_AI_STREAMING_TIME_TO_GENERATE]
    duration = (span.end_time - span.start_time) / 1e9
    # The role-only first chunk carries no token; the 210 ms are spread over the 7 words.
    assert 0 < first_chunk < first_token < duration
    assert 0.1 < generating < duration
    assert attributes[semconv.GEN_AI_STREAMING_TOKENS_PER_SECOND] == pytest.approx(output_tokens / generating)
    assert semconv.GEN_AI_USAGE_TOTAL_COST in attributes


def test_a_plain_call_has_no_stream_timing(spans: CapturedSpans, openai_client: openai.OpenAI) -> None:
    openai_client.chat.completions.create(model="gpt-4o-mini", messages=USER)

    attributes = only_llm_span(spans).attributes
    assert not {semconv.GEN_AI_STREAMING_CHUNK_COUNT, semconv.GEN_AI_STREAMING_TIME_TO_FIRST_TOKEN} & set(attributes)


async def test_streamed_responses_and_text_completions_are_timed_too(
    spans: CapturedSpans, async_openai_client: openai.AsyncOpenAI
) -> None:
    events = [e async for e in await async_openai_client.responses.create(model="gpt-4.1", input="hi", stream=True)]
    text_chunks = [
        c
        async for c in await async_openai_client.completions.create(
            model="gpt-3.5-turbo-instruct", prompt="hi", stream=True, stream_options={"include_usage": True}
        )
    ]

    responses_span, text_span = llm_spans(spans)
    for span, count in ((responses_span, len(events)), (text_span, len(text_chunks))):
        assert span.attributes[semconv.GEN_AI_STREAMING_CHUNK_COUNT] == count
        assert span.attributes[semconv.GEN_AI_STREAMING_TIME_TO_FIRST_TOKEN] > 0
        assert semconv.GEN_AI_STREAMING_TOKENS_PER_SECOND in span.attributes
        assert semconv.GEN_AI_USAGE_TOTAL_COST in span.attributes


@pytest.mark.parametrize(
    ("kwargs", "flag"),
    [
        ({"max_tokens": 2}, semconv.AGENTOPS_RESPONSE_TRUNCATED),
        ({"extra_headers": {"x-stand-in": "filtered"}}, semconv.AGENTOPS_RESPONSE_FILTERED),
        ({"tools": [SEARCH_TOOL]}, semconv.AGENTOPS_RESPONSE_TOOL_CALLS),
        ({}, None),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
def test_how_a_chat_answer_ended_is_flagged(
    spans: CapturedSpans, openai_client: openai.OpenAI, kwargs: dict[str, Any], flag: str | None, stream: bool
) -> None:
    result = openai_client.chat.completions.create(model="gpt-4o-mini", messages=USER, stream=stream, **kwargs)
    if stream:
        for _chunk in result:
            pass

    attributes = only_llm_span(spans).attributes
    flags = {semconv.AGENTOPS_RESPONSE_TRUNCATED, semconv.AGENTOPS_RESPONSE_FILTERED}
    flags.add(semconv.AGENTOPS_RESPONSE_TOOL_CALLS)
    assert {key for key in flags if attributes.get(key) is True} == ({flag} if flag else set())


@pytest.mark.parametrize(
    ("kwargs", "reason", "flag"),
    [
        ({"max_output_tokens": 2}, "max_output_tokens", semconv.AGENTOPS_RESPONSE_TRUNCATED),
        ({"extra_headers": {"x-stand-in": "filtered"}}, "content_filter", semconv.AGENTOPS_RESPONSE_FILTERED),
        ({"tools": [{"type": "function", "name": "search"}]}, "completed", semconv.AGENTOPS_RESPONSE_TOOL_CALLS),
    ],
)
def test_how_a_responses_answer_ended_is_flagged(
    spans: CapturedSpans, openai_client: openai.OpenAI, kwargs: dict[str, Any], reason: str, flag: str
) -> None:
    openai_client.responses.create(model="gpt-4.1", input="one two three", **kwargs)

    attributes = only_llm_span(spans).attributes
    assert list(attributes[semconv.GEN_AI_RESPONSE_FINISH_REASONS]) == [reason]
    assert attributes[flag] is True


# --- embeddings and legacy completions -----------------------------------------------------


def test_embeddings_are_a_span_with_input_tokens_and_dimensions_but_no_vectors(
    spans: CapturedSpans, openai_client: openai.OpenAI
) -> None:
    result = openai_client.embeddings.create(model="text-embedding-3-small", input="one two three", dimensions=4)

    span = only_llm_span(spans)
    assert span.name == "embeddings text-embedding-3-small"
    assert span.attributes[semconv.GEN_AI_OPERATION_NAME] == "embeddings"
    assert span.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == result.usage.prompt_tokens == 3
    assert semconv.GEN_AI_USAGE_OUTPUT_TOKENS not in span.attributes
    assert span.attributes[semconv.GEN_AI_EMBEDDINGS_DIMENSION_COUNT] == len(result.data[0].embedding) == 4
    assert json.loads(span.attributes[semconv.GEN_AI_INPUT_MESSAGES]) == [{"role": "user", "content": "one two three"}]
    assert semconv.GEN_AI_OUTPUT_MESSAGES not in span.attributes
    assert span.attributes[semconv.GEN_AI_USAGE_TOTAL_COST] > 0


async def test_async_and_raw_embeddings_are_recorded(
    spans: CapturedSpans, async_openai_client: openai.AsyncOpenAI
) -> None:
    await async_openai_client.embeddings.create(
        model="text-embedding-3-small", input=["a", "b"], encoding_format="float"
    )
    raw = await async_openai_client.embeddings.with_raw_response.create(model="text-embedding-3-small", input="a b")

    plain, raw_span = llm_spans(spans)
    assert list(plain.attributes[semconv.GEN_AI_REQUEST_ENCODING_FORMATS]) == ["float"]
    assert plain.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 2
    # The raw body holds base64 vectors, measured without decoding them.
    assert raw_span.attributes[semconv.GEN_AI_EMBEDDINGS_DIMENSION_COUNT] == len(raw.parse().data[0].embedding) == 8
    assert raw_span.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 2


@pytest.mark.parametrize("stream", [False, True])
def test_legacy_text_completions_are_recorded_like_chat(
    spans: CapturedSpans, openai_client: openai.OpenAI, stream: bool
) -> None:
    result = openai_client.completions.create(
        model="gpt-3.5-turbo-instruct",
        prompt="Say hi",
        max_tokens=50,
        temperature=0.1,
        stream=stream,
        stream_options={"include_usage": True} if stream else openai.omit,
    )
    text = "".join(c.choices[0].text for c in result if c.choices) if stream else result.choices[0].text

    span = only_llm_span(spans)
    assert span.name == "text_completion gpt-3.5-turbo-instruct"
    assert span.attributes[semconv.GEN_AI_OPERATION_NAME] == "text_completion"
    assert span.attributes[semconv.GEN_AI_REQUEST_MAX_TOKENS] == 50
    assert span.attributes[semconv.GEN_AI_REQUEST_STREAM] is stream
    assert list(span.attributes[semconv.GEN_AI_RESPONSE_FINISH_REASONS]) == ["stop"]
    assert span.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 2
    assert span.attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 3
    assert json.loads(span.attributes[semconv.GEN_AI_INPUT_MESSAGES]) == [{"role": "user", "content": "Say hi"}]
    assert json.loads(span.attributes[semconv.GEN_AI_OUTPUT_MESSAGES]) == [{"role": "assistant", "content": text}]
    assert text == "Echo: Say hi"


def test_a_legacy_completion_cut_short_is_flagged(spans: CapturedSpans, openai_client: openai.OpenAI) -> None:
    openai_client.completions.create(model="gpt-3.5-turbo-instruct", prompt="one two three", max_tokens=1)

    attributes = only_llm_span(spans).attributes
    assert list(attributes[semconv.GEN_AI_RESPONSE_FINISH_REASONS]) == ["length"]
    assert attributes[semconv.AGENTOPS_RESPONSE_TRUNCATED] is True


# --- raw and streaming responses ---------------------------------------------------------


def test_a_raw_response_is_recorded_from_its_body_and_still_parses(
    spans: CapturedSpans, openai_client: openai.OpenAI
) -> None:
    raw = openai_client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=USER, max_tokens=3)

    completion = raw.parse()
    span = only_llm_span(spans)
    assert span.attributes[semconv.GEN_AI_RESPONSE_ID] == completion.id
    assert span.attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == completion.usage.completion_tokens == 3
    assert span.attributes[semconv.AGENTOPS_RESPONSE_TRUNCATED] is True
    assert json.loads(span.attributes[semconv.GEN_AI_OUTPUT_MESSAGES]) == [
        {"role": "assistant", "content": completion.choices[0].message.content}
    ]


def test_streamed_bodies_of_raw_calls_are_left_to_the_caller(
    spans: CapturedSpans, openai_client: openai.OpenAI
) -> None:
    raw = openai_client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=USER, stream=True)
    with openai_client.chat.completions.with_streaming_response.create(model="gpt-4o", messages=USER) as response:
        completion = response.parse()
    text = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)

    assert text == completion.choices[0].message.content == "Echo: What is the capital of France?"
    for span in llm_spans(spans):
        assert span.attributes[semconv.AGENTOPS_COST_UNPRICED_REASON] == semconv.UNPRICED_NO_USAGE
