"""The Anthropic integration: every Messages API call is an LLM span.

Real ``anthropic`` clients talk real HTTP to the stand-in server; nothing of
the client library is mocked.
"""

from __future__ import annotations

import gc
import json
import threading
from collections.abc import Callable
from typing import Any

import anthropic
import pytest
import wrapt
from opentelemetry import trace as trace_api
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind as OtelSpanKind
from opentelemetry.trace import StatusCode

import agentops
from agentops import integrations, semconv
from agentops.testing import CapturedSpans, captured_spans

USER = [{"role": "user", "content": "Name three rivers"}]


def llm_spans(spans: CapturedSpans) -> list[ReadableSpan]:
    return [s for s in spans if s.attributes.get(semconv.AGENTOPS_SPAN_KIND) == semconv.SpanKind.LLM]


def only_llm_span(spans: CapturedSpans) -> ReadableSpan:
    found = llm_spans(spans)
    assert len(found) == 1, [s.name for s in spans]
    return found[0]


def test_message_is_a_client_span_named_chat_model_with_request_and_response_attributes(
    spans: CapturedSpans, anthropic_client: anthropic.Anthropic
) -> None:
    message = anthropic_client.messages.create(model="claude-test-large", max_tokens=256, messages=USER)

    span = only_llm_span(spans)
    assert span.name == "chat claude-test-large"
    assert span.kind is OtelSpanKind.CLIENT
    assert span.status.status_code is StatusCode.UNSET
    attributes = span.attributes
    assert attributes[semconv.GEN_AI_SYSTEM] == "anthropic"
    assert attributes[semconv.GEN_AI_OPERATION_NAME] == "chat"
    assert attributes[semconv.GEN_AI_REQUEST_MODEL] == "claude-test-large"
    assert attributes[semconv.GEN_AI_REQUEST_MAX_TOKENS] == 256
    assert attributes[semconv.GEN_AI_REQUEST_STREAM] is False
    assert attributes[semconv.GEN_AI_RESPONSE_ID] == message.id
    assert attributes[semconv.GEN_AI_RESPONSE_MODEL] == message.model
    assert list(attributes[semconv.GEN_AI_RESPONSE_FINISH_REASONS]) == ["end_turn"]
    assert attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == message.usage.input_tokens == 3
    assert attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == message.usage.output_tokens == 4


def test_input_tokens_include_tokens_read_from_the_prompt_cache(
    spans: CapturedSpans, anthropic_client: anthropic.Anthropic
) -> None:
    message = anthropic_client.messages.create(model="claude-cached-100", max_tokens=256, messages=USER)

    assert message.usage.cache_read_input_tokens == 100
    span = only_llm_span(spans)
    assert span.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == message.usage.input_tokens + 100


def test_system_prompt_messages_and_answer_are_recorded_when_content_capture_is_on(
    spans: CapturedSpans, anthropic_client: anthropic.Anthropic
) -> None:
    anthropic_client.messages.create(model="claude-test", max_tokens=64, system="Be brief.", messages=USER)

    span = only_llm_span(spans)
    assert json.loads(span.attributes[semconv.GEN_AI_INPUT_MESSAGES]) == [
        {"role": "system", "content": "Be brief."},
        *USER,
    ]
    assert json.loads(span.attributes[semconv.GEN_AI_OUTPUT_MESSAGES]) == [
        {"role": "assistant", "content": "Echo: Name three rivers"}
    ]


def test_no_prompt_or_answer_is_recorded_when_content_capture_is_off(
    agentops_init: Callable[..., Any], anthropic_client: anthropic.Anthropic
) -> None:
    agentops_init(capture_content=False)
    with captured_spans() as spans:
        anthropic_client.messages.create(model="claude-test", max_tokens=64, system="secret plan", messages=USER)
        for _event in anthropic_client.messages.create(model="claude-test", max_tokens=64, messages=USER, stream=True):
            pass

    assert len(llm_spans(spans)) == 2
    for span in llm_spans(spans):
        assert semconv.GEN_AI_INPUT_MESSAGES not in span.attributes
        assert semconv.GEN_AI_OUTPUT_MESSAGES not in span.attributes
        assert "secret plan" not in json.dumps(dict(span.attributes))


async def test_async_message_is_recorded(
    spans: CapturedSpans, async_anthropic_client: anthropic.AsyncAnthropic
) -> None:
    message = await async_anthropic_client.messages.create(model="claude-test", max_tokens=64, messages=USER)

    span = only_llm_span(spans)
    assert span.name == "chat claude-test"
    assert span.attributes[semconv.GEN_AI_RESPONSE_ID] == message.id


def test_answer_cut_by_max_tokens_records_the_stop_reason(
    spans: CapturedSpans, anthropic_client: anthropic.Anthropic
) -> None:
    anthropic_client.messages.create(model="claude-test", max_tokens=2, messages=USER)

    span = only_llm_span(spans)
    assert list(span.attributes[semconv.GEN_AI_RESPONSE_FINISH_REASONS]) == ["max_tokens"]
    assert span.attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 2


def test_the_clients_own_span_nests_under_the_llm_span(
    spans: CapturedSpans, anthropic_client: anthropic.Anthropic
) -> None:
    anthropic_client.messages.create(model="claude-test", max_tokens=64, messages=USER)

    llm_span = only_llm_span(spans)
    (client_span,) = [span for span in spans if span is not llm_span]
    assert client_span.name == "anthropic.messages.create"
    assert client_span.parent.span_id == llm_span.context.span_id


SEARCH_TOOL = {"name": "search", "input_schema": {"type": "object", "properties": {"query": {"type": "string"}}}}


@pytest.mark.parametrize("stream", [False, True])
def test_tool_use_is_recorded_the_same_whether_streamed_or_not(
    spans: CapturedSpans, anthropic_client: anthropic.Anthropic, stream: bool
) -> None:
    if stream:
        with anthropic_client.messages.stream(
            model="claude-test", max_tokens=64, messages=USER, tools=[SEARCH_TOOL]
        ) as message_stream:
            message = message_stream.get_final_message()
    else:
        message = anthropic_client.messages.create(
            model="claude-test", max_tokens=64, messages=USER, tools=[SEARCH_TOOL]
        )

    span = only_llm_span(spans)
    assert list(span.attributes[semconv.GEN_AI_RESPONSE_FINISH_REASONS]) == ["tool_use"]
    assert json.loads(span.attributes[semconv.GEN_AI_OUTPUT_MESSAGES]) == [
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {"id": message.content[0].id, "name": "search", "arguments": {"query": "Name three rivers"}}
            ],
        }
    ]


# --- streaming ---------------------------------------------------------------------


def test_streamed_message_is_still_a_stream_and_its_span_ends_when_exhausted(
    spans: CapturedSpans, anthropic_client: anthropic.Anthropic
) -> None:
    stream = anthropic_client.messages.create(model="claude-test", max_tokens=64, messages=USER, stream=True)

    assert isinstance(stream, anthropic.Stream)
    assert llm_spans(spans) == []
    events = list(stream)

    text = "".join(e.delta.text for e in events if e.type == "content_block_delta")
    span = only_llm_span(spans)
    assert span.attributes[semconv.GEN_AI_REQUEST_STREAM] is True
    assert span.attributes[semconv.GEN_AI_RESPONSE_ID] == events[0].message.id
    assert list(span.attributes[semconv.GEN_AI_RESPONSE_FINISH_REASONS]) == ["end_turn"]
    assert span.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 3
    assert span.attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 4
    assert json.loads(span.attributes[semconv.GEN_AI_OUTPUT_MESSAGES]) == [{"role": "assistant", "content": text}]


async def test_async_streamed_message_is_recorded_when_exhausted(
    spans: CapturedSpans, async_anthropic_client: anthropic.AsyncAnthropic
) -> None:
    stream = await async_anthropic_client.messages.create(
        model="claude-test", max_tokens=64, messages=USER, stream=True
    )
    assert isinstance(stream, anthropic.AsyncStream)
    types = [event.type async for event in stream]

    assert types[-1] == "message_stop"
    span = only_llm_span(spans)
    assert span.attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 4


def test_stream_helper_is_recorded(spans: CapturedSpans, anthropic_client: anthropic.Anthropic) -> None:
    with anthropic_client.messages.stream(model="claude-test", max_tokens=64, messages=USER) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()

    span = only_llm_span(spans)
    assert span.name == "chat claude-test"
    assert span.attributes[semconv.GEN_AI_REQUEST_STREAM] is True
    assert span.attributes[semconv.GEN_AI_RESPONSE_ID] == final.id
    assert span.attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == final.usage.output_tokens
    assert json.loads(span.attributes[semconv.GEN_AI_OUTPUT_MESSAGES]) == [{"role": "assistant", "content": text}]


async def test_async_stream_helper_is_recorded(
    spans: CapturedSpans, async_anthropic_client: anthropic.AsyncAnthropic
) -> None:
    async with async_anthropic_client.messages.stream(model="claude-test", max_tokens=64, messages=USER) as stream:
        text = await stream.get_final_text()

    span = only_llm_span(spans)
    assert json.loads(span.attributes[semconv.GEN_AI_OUTPUT_MESSAGES])[0]["content"] == text


def test_stream_helper_left_unread_ends_the_span_on_exit(
    spans: CapturedSpans, anthropic_client: anthropic.Anthropic
) -> None:
    with anthropic_client.messages.stream(model="claude-test", max_tokens=64, messages=USER):
        assert llm_spans(spans) == []

    span = only_llm_span(spans)
    assert semconv.GEN_AI_RESPONSE_FINISH_REASONS not in span.attributes


def test_stream_closed_early_ends_the_span(spans: CapturedSpans, anthropic_client: anthropic.Anthropic) -> None:
    stream = anthropic_client.messages.create(model="claude-test", max_tokens=64, messages=USER, stream=True)
    first = next(stream)
    stream.close()

    span = only_llm_span(spans)
    assert span.attributes[semconv.GEN_AI_RESPONSE_ID] == first.message.id
    assert span.status.status_code is StatusCode.UNSET


def test_dropped_stream_ends_its_span_when_garbage_collected(
    spans: CapturedSpans, anthropic_client: anthropic.Anthropic
) -> None:
    stream = anthropic_client.messages.create(model="claude-test", max_tokens=64, messages=USER, stream=True)
    next(stream)
    del stream
    gc.collect()

    assert len(llm_spans(spans)) == 1


def test_stream_does_not_keep_its_span_current_between_events(
    spans: CapturedSpans, anthropic_client: anthropic.Anthropic
) -> None:
    seen = []
    with agentops.start_trace("reader") as trace_context:
        with anthropic_client.messages.stream(model="claude-test", max_tokens=64, messages=USER) as stream:
            for _event in stream:
                seen.append(trace_api.get_current_span())

    assert len(seen) > 3
    assert all(span is trace_context.span for span in seen)


def test_error_in_the_middle_of_a_stream_is_recorded_and_reraised(
    spans: CapturedSpans, anthropic_client: anthropic.Anthropic
) -> None:
    stream = anthropic_client.messages.create(model="claude-stream-error", max_tokens=64, messages=USER, stream=True)
    with pytest.raises(anthropic.APIStatusError):
        for _event in stream:
            pass

    span = only_llm_span(spans)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[semconv.GEN_AI_RESPONSE_ID].startswith("msg_")  # what arrived is kept


# --- errors ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (400, anthropic.BadRequestError),
        (429, anthropic.RateLimitError),
        (500, anthropic.InternalServerError),
        (529, anthropic.OverloadedError),
    ],
)
def test_api_error_marks_the_span_as_error_and_reaches_the_caller_unchanged(
    spans: CapturedSpans, anthropic_client: anthropic.Anthropic, status: int, error_class: type[Exception]
) -> None:
    with pytest.raises(error_class) as raised:
        anthropic_client.messages.create(model=f"error-{status}", max_tokens=64, messages=USER)

    assert type(raised.value) is error_class
    assert raised.value.status_code == status
    span = only_llm_span(spans)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[semconv.ERROR_TYPE] == error_class.__name__
    assert span.attributes[semconv.HTTP_RESPONSE_STATUS_CODE] == status
    assert [e.name for e in span.events] == ["exception"]


def test_stream_helper_error_is_recorded_and_reraised(
    spans: CapturedSpans, anthropic_client: anthropic.Anthropic
) -> None:
    with pytest.raises(anthropic.RateLimitError):
        with anthropic_client.messages.stream(model="error-429", max_tokens=64, messages=USER):
            pass

    span = only_llm_span(spans)
    assert span.status.status_code is StatusCode.ERROR


async def test_async_error_is_recorded_and_reraised(
    spans: CapturedSpans, async_anthropic_client: anthropic.AsyncAnthropic
) -> None:
    with pytest.raises(anthropic.InternalServerError):
        await async_anthropic_client.messages.create(model="error-500", max_tokens=64, messages=USER)

    assert only_llm_span(spans).status.status_code is StatusCode.ERROR


# --- nesting, concurrency, installing ---------------------------------------------------


def test_llm_span_is_a_child_of_the_tool_inside_the_trace(
    spans: CapturedSpans, anthropic_client: anthropic.Anthropic
) -> None:
    @agentops.tool
    def summarise() -> str:
        message = anthropic_client.messages.create(model="claude-test", max_tokens=64, messages=USER)
        return message.content[0].text

    with agentops.start_trace("summary") as trace_context:
        summarise()

    tool_span = spans.one("summarise.tool")
    llm_span = only_llm_span(spans)
    assert llm_span.parent.span_id == tool_span.context.span_id
    assert llm_span.context.trace_id == trace_context.span.get_span_context().trace_id


def test_each_thread_llm_call_lands_in_that_threads_trace(
    spans: CapturedSpans, anthropic_client: anthropic.Anthropic
) -> None:
    trace_ids: dict[int, int] = {}
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            with agentops.start_trace(f"job_{i}") as trace_context:
                trace_ids[i] = trace_context.span.get_span_context().trace_id
                with anthropic_client.messages.stream(
                    model="claude-test", max_tokens=64, messages=[{"role": "user", "content": f"job {i}"}]
                ) as stream:
                    stream.get_final_message()
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert len(llm_spans(spans)) == 6
    for span in llm_spans(spans):
        (message,) = json.loads(span.attributes[semconv.GEN_AI_INPUT_MESSAGES])
        assert span.context.trace_id == trace_ids[int(message["content"].split()[1])]


def test_uninstrument_restores_the_client_and_calls_make_no_span(
    spans: CapturedSpans, anthropic_client: anthropic.Anthropic
) -> None:
    from anthropic.resources.messages import Messages

    assert isinstance(vars(Messages)["create"], wrapt.FunctionWrapper)
    integrations.uninstrument(["anthropic"])

    assert "anthropic" not in integrations.installed()
    for method in ("create", "stream", "parse"):
        assert not isinstance(vars(Messages)[method], wrapt.FunctionWrapper)
    anthropic_client.messages.create(model="claude-test", max_tokens=64, messages=USER)
    with anthropic_client.messages.stream(model="claude-test", max_tokens=64, messages=USER) as stream:
        stream.get_final_message()
    assert llm_spans(spans) == []


# --- the shape of a call, and its price --------------------------------------------------

PRICED = "claude-3-5-haiku-latest"


def test_request_parameters_and_offered_tools_are_recorded(
    spans: CapturedSpans, anthropic_client: anthropic.Anthropic
) -> None:
    anthropic_client.messages.create(
        model=PRICED,
        max_tokens=64,
        messages=USER,
        # Sampling parameters the installed client no longer takes go in the body.
        extra_body={"temperature": 0.2, "top_p": 0.8, "top_k": 40},
        stop_sequences=["END"],
        tools=[SEARCH_TOOL, {"type": "web_search_20250305", "name": "web_search"}],
        tool_choice={"type": "any"},
    )

    attributes = only_llm_span(spans).attributes
    assert attributes[semconv.GEN_AI_REQUEST_TEMPERATURE] == 0.2
    assert attributes[semconv.GEN_AI_REQUEST_TOP_P] == 0.8
    assert attributes[semconv.GEN_AI_REQUEST_TOP_K] == 40
    assert list(attributes[semconv.GEN_AI_REQUEST_STOP_SEQUENCES]) == ["END"]
    assert list(attributes[semconv.AGENTOPS_REQUEST_TOOL_NAMES]) == ["search", "web_search"]
    assert attributes[semconv.AGENTOPS_REQUEST_TOOL_CHOICE] == "any"


def test_thinking_tokens_are_recorded_as_reasoning_and_counted_in_the_output(
    spans: CapturedSpans, anthropic_client: anthropic.Anthropic
) -> None:
    message = anthropic_client.messages.create(
        model=PRICED, max_tokens=64, messages=USER, extra_headers={"x-stand-in": "reasoning-50"}
    )

    attributes = only_llm_span(spans).attributes
    assert message.usage.output_tokens_details.thinking_tokens == 50
    assert attributes[semconv.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] == 50
    assert attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == message.usage.output_tokens == 4 + 50


@pytest.mark.parametrize(
    ("kwargs", "reason", "flag"),
    [
        ({"max_tokens": 2}, "max_tokens", semconv.AGENTOPS_RESPONSE_TRUNCATED),
        ({"extra_headers": {"x-stand-in": "filtered"}}, "refusal", semconv.AGENTOPS_RESPONSE_FILTERED),
        ({"tools": [SEARCH_TOOL]}, "tool_use", semconv.AGENTOPS_RESPONSE_TOOL_CALLS),
    ],
)
def test_how_an_answer_ended_is_flagged(
    spans: CapturedSpans, anthropic_client: anthropic.Anthropic, kwargs: dict[str, Any], reason: str, flag: str
) -> None:
    options: dict[str, Any] = {"max_tokens": 64, **kwargs}
    with anthropic_client.messages.stream(model=PRICED, messages=USER, **options) as stream:
        stream.until_done()

    attributes = only_llm_span(spans).attributes
    assert list(attributes[semconv.GEN_AI_RESPONSE_FINISH_REASONS]) == [reason]
    assert attributes[flag] is True


def test_a_streamed_message_records_time_to_first_token_chunk_count_and_tokens_per_second(
    spans: CapturedSpans, anthropic_client: anthropic.Anthropic
) -> None:
    stream = anthropic_client.messages.create(
        model=PRICED, max_tokens=64, messages=USER, stream=True, extra_headers={"x-stand-in": "slow-120"}
    )
    events = list(stream)

    span = only_llm_span(spans)
    attributes = span.attributes
    assert attributes[semconv.GEN_AI_STREAMING_CHUNK_COUNT] == len(events)
    # message_start comes first; the first text delta carries the first token.
    assert (
        0
        < attributes[semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK]
        < attributes[semconv.GEN_AI_STREAMING_TIME_TO_FIRST_TOKEN]
    )
    generating = attributes[semconv.GEN_AI_STREAMING_TIME_TO_GENERATE]
    assert generating > 0.05
    assert attributes[semconv.GEN_AI_STREAMING_TOKENS_PER_SECOND] == pytest.approx(4 / generating)
    assert attributes[semconv.GEN_AI_USAGE_TOTAL_COST] > 0


def test_a_stream_that_breaks_midway_is_priced_for_the_usage_it_reported(
    spans: CapturedSpans, anthropic_client: anthropic.Anthropic
) -> None:
    stream = anthropic_client.messages.create(
        model=PRICED, max_tokens=64, messages=USER, stream=True, extra_headers={"x-stand-in": "stream-error"}
    )
    with pytest.raises(anthropic.APIStatusError):
        for _event in stream:
            pass

    span = only_llm_span(spans)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 3
    assert span.attributes[semconv.GEN_AI_USAGE_TOTAL_COST] > 0


# --- the beta Messages API -----------------------------------------------------------------


def test_beta_messages_create_parse_and_stream_are_recorded(
    spans: CapturedSpans, anthropic_client: anthropic.Anthropic
) -> None:
    created = anthropic_client.beta.messages.create(model=PRICED, max_tokens=64, messages=USER, betas=["x-test"])
    parsed = anthropic_client.beta.messages.parse(model=PRICED, max_tokens=64, messages=USER)
    with anthropic_client.beta.messages.stream(model=PRICED, max_tokens=64, messages=USER) as stream:
        streamed = stream.get_final_message()
    events = list(anthropic_client.beta.messages.create(model=PRICED, max_tokens=64, messages=USER, stream=True))

    found = llm_spans(spans)
    assert [s.name for s in found] == [f"chat {PRICED}"] * 4
    ids = [s.attributes[semconv.GEN_AI_RESPONSE_ID] for s in found]
    assert ids == [created.id, parsed.id, streamed.id, events[0].message.id]
    for span in found:
        assert span.attributes[semconv.GEN_AI_SYSTEM] == "anthropic"
        assert span.attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 4
        assert span.attributes[semconv.GEN_AI_USAGE_TOTAL_COST] > 0
    assert [s.attributes[semconv.GEN_AI_REQUEST_STREAM] for s in found] == [False, False, True, True]


async def test_async_beta_messages_are_recorded(
    spans: CapturedSpans, async_anthropic_client: anthropic.AsyncAnthropic
) -> None:
    await async_anthropic_client.beta.messages.create(model=PRICED, max_tokens=64, messages=USER)
    async with async_anthropic_client.beta.messages.stream(model=PRICED, max_tokens=64, messages=USER) as stream:
        await stream.get_final_text()

    assert [s.attributes[semconv.GEN_AI_REQUEST_STREAM] for s in llm_spans(spans)] == [False, True]


def test_uninstrument_restores_the_beta_client_too(spans: CapturedSpans, anthropic_client: anthropic.Anthropic) -> None:
    integrations.uninstrument(["anthropic"])
    try:
        assert not isinstance(vars(anthropic.resources.beta.messages.Messages)["create"], wrapt.FunctionWrapper)
        anthropic_client.beta.messages.create(model=PRICED, max_tokens=64, messages=USER)
        assert llm_spans(spans) == []
    finally:
        integrations.instrument(["anthropic"])


def test_a_raw_beta_response_is_recorded_from_its_body(
    spans: CapturedSpans, anthropic_client: anthropic.Anthropic
) -> None:
    raw = anthropic_client.beta.messages.with_raw_response.create(
        model=PRICED, max_tokens=64, messages=USER, extra_headers={"x-stand-in": "cached-7"}
    )

    message = raw.parse()
    attributes = only_llm_span(spans).attributes
    assert attributes[semconv.GEN_AI_RESPONSE_ID] == message.id
    assert attributes[semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 7
    assert attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == message.usage.input_tokens + 7
