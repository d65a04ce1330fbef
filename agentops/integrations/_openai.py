"""Instrumentation of the ``openai`` client: chat, Responses, legacy completions, embeddings.

Patched (sync and async): ``chat.completions.create`` and ``.parse``,
``responses.create`` and ``.parse``, ``completions.create`` (the legacy text
completions) and ``embeddings.create``. The streaming helpers
(``chat.completions.stream``, ``responses.stream``) call ``create`` and are
recorded through it, and so are ``with_raw_response`` calls. Each call is one
``CLIENT`` span, ``"{operation} {model}"``: ``chat``, ``text_completion``,
``embeddings``.

``gen_ai.usage.input_tokens`` is OpenAI's prompt count, which includes the
tokens read from (and written to) the prompt cache; those are recorded apart
too, as are reasoning tokens (part of the output count).

For a streamed chat or text completion, usage (and so the price) is recorded
only when the caller asked for it with ``stream_options={"include_usage":
True}``; agentops never changes the request, so such a call is marked
unpriced ("no usage reported").
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from agentops import _pricing, semconv
from agentops._guard import capture_internal_exceptions
from agentops.exceptions import DidNotEnable
from agentops.integrations._common import (
    Accumulator,
    Adapter,
    Patcher,
    as_int,
    as_str,
    async_wrapper,
    common_request_attributes,
    end_proxied_stream,
    given,
    plain_list,
    strings,
    sync_wrapper,
    tool_names,
)

try:
    import openai
    from openai import AsyncStream, Stream
    from openai.resources.chat.completions import AsyncCompletions, Completions
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise DidNotEnable(f"the openai package is not installed or too old ({exc})") from exc

try:
    from openai.resources.responses import AsyncResponses, Responses
except ImportError:  # pragma: no cover - openai before the Responses API
    Responses = AsyncResponses = None  # type: ignore[assignment,misc]

try:
    from openai.resources.completions import AsyncCompletions as AsyncTextCompletions
    from openai.resources.completions import Completions as TextCompletions
    from openai.resources.embeddings import AsyncEmbeddings, Embeddings
except ImportError:  # pragma: no cover - layout of other openai versions
    TextCompletions = AsyncTextCompletions = Embeddings = AsyncEmbeddings = None  # type: ignore[assignment,misc]

try:
    from openai.lib.streaming.chat import AsyncChatCompletionStream, ChatCompletionStream
    from openai.lib.streaming.responses import AsyncResponseStream, ResponseStream

    _SYNC_HELPER_STREAMS: tuple[type, ...] = (ChatCompletionStream, ResponseStream)
    _ASYNC_HELPER_STREAMS: tuple[type, ...] = (AsyncChatCompletionStream, AsyncResponseStream)
except ImportError:  # pragma: no cover - layout of other openai versions
    _SYNC_HELPER_STREAMS = _ASYNC_HELPER_STREAMS = ()

logger = logging.getLogger(__name__)

_patcher = Patcher("openai")


def _model(kwargs: Mapping[str, Any]) -> str | None:
    model = kwargs.get("model")
    return model if isinstance(model, str) and model else None


def _usage(usage: Any, input_name: str, output_name: str) -> dict[str, Any]:
    """Token counts, with the cached and reasoning parts (chat: ``prompt_tokens``; Responses: ``input_tokens``)."""
    if usage is None:
        return {}
    inputs = getattr(usage, f"{input_name}_details", None)
    outputs = getattr(usage, f"{output_name}_details", None)
    return {
        semconv.GEN_AI_USAGE_INPUT_TOKENS: as_int(getattr(usage, input_name, None)),
        semconv.GEN_AI_USAGE_OUTPUT_TOKENS: as_int(getattr(usage, output_name, None)),
        semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: as_int(getattr(inputs, "cached_tokens", None)),
        semconv.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS: as_int(getattr(inputs, "cache_write_tokens", None)),
        semconv.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: as_int(getattr(outputs, "reasoning_tokens", None)),
    }


def _request_attributes(kwargs: Mapping[str, Any], max_tokens: Any) -> dict[str, Any]:
    return {
        semconv.GEN_AI_REQUEST_MODEL: _model(kwargs),
        semconv.GEN_AI_REQUEST_MAX_TOKENS: as_int(max_tokens),
        **common_request_attributes(kwargs),
        semconv.GEN_AI_REQUEST_STOP_SEQUENCES: strings(kwargs.get("stop")),
        semconv.OPENAI_REQUEST_SERVICE_TIER: as_str(kwargs.get("service_tier")),
    }


# --- chat completions -----------------------------------------------------------


def _tool_calls(calls: Any) -> list[dict[str, Any]]:
    result = []
    for call in calls or ():
        function = getattr(call, "function", None)
        result.append(
            {
                "id": getattr(call, "id", None),
                "name": getattr(function, "name", None),
                "arguments": getattr(function, "arguments", None),
            }
        )
    return result


class ChatAccumulator(Accumulator):
    """Chat completion chunks, merged per choice."""

    def __init__(self) -> None:
        super().__init__()
        self._id: str | None = None
        self._model: str | None = None
        self._choices: dict[int, dict[str, Any]] = {}
        self._usage: Any = None
        self._service_tier: str | None = None

    def add(self, item: Any) -> None:
        self._id = self._id or getattr(item, "id", None)
        self._model = self._model or getattr(item, "model", None)
        self._service_tier = as_str(getattr(item, "service_tier", None)) or self._service_tier
        for choice in getattr(item, "choices", None) or ():
            entry = self._choices.setdefault(
                getattr(choice, "index", 0) or 0,
                {"role": "assistant", "content": [], "tool_calls": {}, "finish_reason": None},
            )
            delta = getattr(choice, "delta", None)
            if delta is not None:
                if getattr(delta, "role", None):
                    entry["role"] = delta.role
                if isinstance(getattr(delta, "content", None), str):
                    entry["content"].append(delta.content)
                    self.produced = self.produced or bool(delta.content)
                if getattr(delta, "tool_calls", None) or getattr(delta, "refusal", None):
                    self.produced = True
                for call in getattr(delta, "tool_calls", None) or ():
                    slot = entry["tool_calls"].setdefault(
                        getattr(call, "index", 0), {"id": None, "name": None, "arguments": []}
                    )
                    slot["id"] = slot["id"] or getattr(call, "id", None)
                    function = getattr(call, "function", None)
                    if function is not None:
                        slot["name"] = slot["name"] or getattr(function, "name", None)
                        if isinstance(getattr(function, "arguments", None), str):
                            slot["arguments"].append(function.arguments)
            if getattr(choice, "finish_reason", None):
                entry["finish_reason"] = choice.finish_reason
        usage = getattr(item, "usage", None)
        if usage is not None:
            self._usage = usage

    def finish(self) -> None:
        choices = [self._choices[index] for index in sorted(self._choices)]
        self.attributes = {
            semconv.GEN_AI_RESPONSE_ID: self._id,
            semconv.GEN_AI_RESPONSE_MODEL: self._model,
            semconv.GEN_AI_RESPONSE_FINISH_REASONS: [c["finish_reason"] for c in choices if c["finish_reason"]],
            semconv.OPENAI_RESPONSE_SERVICE_TIER: self._service_tier,
            **_usage(self._usage, "prompt_tokens", "completion_tokens"),
        }
        output = []
        for choice in choices:
            text = "".join(choice["content"])
            # As in a complete response: no text beside tool calls is null, not "".
            message: dict[str, Any] = {
                "role": choice["role"],
                "content": text or (None if choice["tool_calls"] else ""),
            }
            if choice["tool_calls"]:
                message["tool_calls"] = [
                    {"id": slot["id"], "name": slot["name"], "arguments": "".join(slot["arguments"])}
                    for _, slot in sorted(choice["tool_calls"].items())
                ]
            output.append(message)
        self.output = output


class ChatAdapter(Adapter):
    """``chat.completions.create``/``parse``."""

    system = "openai"
    operation = "chat"
    stream_types = (Stream, AsyncStream)

    def request_attributes(self, kwargs: Mapping[str, Any]) -> dict[str, Any]:
        max_tokens = kwargs.get("max_completion_tokens")
        if not given(max_tokens):
            max_tokens = kwargs.get("max_tokens")
        attributes = _request_attributes(kwargs, max_tokens)
        if not attributes[semconv.AGENTOPS_REQUEST_TOOL_NAMES]:
            attributes[semconv.AGENTOPS_REQUEST_TOOL_NAMES] = tool_names(kwargs.get("functions"))  # deprecated
        return attributes

    def input_messages(self, kwargs: Mapping[str, Any]) -> list[Any] | None:
        return plain_list(kwargs.get("messages"))

    def response_attributes(self, result: Any) -> dict[str, Any]:
        choices = getattr(result, "choices", None)
        if not isinstance(choices, list):
            return {}  # e.g. a raw response from ``with_raw_response``
        return {
            semconv.GEN_AI_RESPONSE_ID: getattr(result, "id", None),
            semconv.GEN_AI_RESPONSE_MODEL: getattr(result, "model", None),
            semconv.GEN_AI_RESPONSE_FINISH_REASONS: [c.finish_reason for c in choices if c.finish_reason],
            semconv.OPENAI_RESPONSE_SERVICE_TIER: as_str(getattr(result, "service_tier", None)),
            **_usage(getattr(result, "usage", None), "prompt_tokens", "completion_tokens"),
        }

    def output_messages(self, result: Any) -> list[Any] | None:
        choices = getattr(result, "choices", None)
        if not isinstance(choices, list):
            return None
        output = []
        for choice in choices:
            message = getattr(choice, "message", None)
            entry: dict[str, Any] = {
                "role": getattr(message, "role", "assistant"),
                "content": getattr(message, "content", None),
            }
            calls = _tool_calls(getattr(message, "tool_calls", None))
            if calls:
                entry["tool_calls"] = calls
            output.append(entry)
        return output

    def accumulator(self, kwargs: Mapping[str, Any]) -> Accumulator:
        return ChatAccumulator()


# --- responses ------------------------------------------------------------------

#: Output items of a Responses API answer that call the caller's tools.
_TOOL_CALL_ITEMS = frozenset({"function_call", "custom_tool_call"})


def _response_finish_reasons(response: Any) -> list[str]:
    status = getattr(response, "status", None)
    details = getattr(response, "incomplete_details", None)
    reason = getattr(details, "reason", None)
    if status == "incomplete" and isinstance(reason, str):
        return [reason]
    return [status] if isinstance(status, str) else []


def _response_output(response: Any) -> list[dict[str, Any]] | None:
    items = getattr(response, "output", None)
    if not isinstance(items, list):
        return None
    output: list[dict[str, Any]] = []
    for item in items:
        kind = getattr(item, "type", None)
        if kind == "message":
            texts = [getattr(part, "text", None) or getattr(part, "refusal", None) for part in item.content or ()]
            output.append(
                {"role": getattr(item, "role", "assistant"), "content": "".join(t for t in texts if isinstance(t, str))}
            )
        elif kind == "function_call":
            output.append(
                {
                    "role": "assistant",
                    "tool_calls": [
                        {
                            "id": getattr(item, "call_id", None),
                            "name": getattr(item, "name", None),
                            "arguments": getattr(item, "arguments", None),
                        }
                    ],
                }
            )
        else:
            output.append({"type": kind})
    return output


class ResponsesAccumulator(Accumulator):
    """Responses API events; the final ``response.*`` event carries the whole response."""

    def __init__(self, adapter: ResponsesAdapter) -> None:
        super().__init__()
        self._adapter = adapter
        self._response: Any = None
        self._final: Any = None
        self._text: list[str] = []

    def add(self, item: Any) -> None:
        kind = getattr(item, "type", None)
        response = getattr(item, "response", None)
        if response is not None:
            self._response = response
            if kind in ("response.completed", "response.incomplete", "response.failed"):
                self._final = response
            return
        if isinstance(kind, str) and kind.endswith(".delta"):
            self.produced = True  # text, refusal, function arguments, reasoning...
            if kind == "response.output_text.delta" and isinstance(getattr(item, "delta", None), str):
                self._text.append(item.delta)

    def finish(self) -> None:
        if self._final is not None:
            self.attributes = self._adapter.response_attributes(self._final)
            self.output = _response_output(self._final)
            return
        self.attributes = {
            semconv.GEN_AI_RESPONSE_ID: getattr(self._response, "id", None),
            semconv.GEN_AI_RESPONSE_MODEL: getattr(self._response, "model", None),
        }
        self.output = [{"role": "assistant", "content": "".join(self._text)}] if self._text else None


class ResponsesAdapter(Adapter):
    """``responses.create``/``parse``."""

    system = "openai"
    operation = "chat"
    stream_types = (Stream, AsyncStream)

    def request_attributes(self, kwargs: Mapping[str, Any]) -> dict[str, Any]:
        return _request_attributes(kwargs, kwargs.get("max_output_tokens"))

    def input_messages(self, kwargs: Mapping[str, Any]) -> list[Any] | None:
        messages: list[Any] = []
        instructions = kwargs.get("instructions")
        if isinstance(instructions, str):
            messages.append({"role": "system", "content": instructions})
        value = kwargs.get("input")
        if isinstance(value, str):
            messages.append({"role": "user", "content": value})
        else:
            messages.extend(plain_list(value) or ())
        return messages or None

    def response_attributes(self, result: Any) -> dict[str, Any]:
        if getattr(result, "object", None) != "response":
            return {}
        items = getattr(result, "output", None)
        calls = any(getattr(item, "type", None) in _TOOL_CALL_ITEMS for item in items or ())
        return {
            semconv.GEN_AI_RESPONSE_ID: getattr(result, "id", None),
            semconv.GEN_AI_RESPONSE_MODEL: getattr(result, "model", None),
            semconv.GEN_AI_RESPONSE_FINISH_REASONS: _response_finish_reasons(result),
            semconv.OPENAI_RESPONSE_SERVICE_TIER: as_str(getattr(result, "service_tier", None)),
            semconv.AGENTOPS_RESPONSE_TOOL_CALLS: True if calls else None,
            **_usage(getattr(result, "usage", None), "input_tokens", "output_tokens"),
        }

    def output_messages(self, result: Any) -> list[Any] | None:
        if getattr(result, "object", None) != "response":
            return None
        return _response_output(result)

    def accumulator(self, kwargs: Mapping[str, Any]) -> Accumulator:
        return ResponsesAccumulator(self)


# --- legacy text completions -------------------------------------------------------


def _prompt_messages(prompt: Any) -> list[Any] | None:
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    prompts = strings(prompt)
    return [{"role": "user", "content": text} for text in prompts] if prompts else None


class TextCompletionAccumulator(Accumulator):
    """Text completion chunks, merged per choice."""

    def __init__(self) -> None:
        super().__init__()
        self._id: str | None = None
        self._model: str | None = None
        self._texts: dict[int, list[str]] = {}
        self._reasons: dict[int, str] = {}
        self._usage: Any = None

    def add(self, item: Any) -> None:
        self._id = self._id or getattr(item, "id", None)
        self._model = self._model or getattr(item, "model", None)
        for choice in getattr(item, "choices", None) or ():
            index = getattr(choice, "index", 0) or 0
            text = getattr(choice, "text", None)
            if isinstance(text, str):
                self._texts.setdefault(index, []).append(text)
                self.produced = self.produced or bool(text)
            if getattr(choice, "finish_reason", None):
                self._reasons[index] = choice.finish_reason
        if getattr(item, "usage", None) is not None:
            self._usage = item.usage

    def finish(self) -> None:
        self.attributes = {
            semconv.GEN_AI_RESPONSE_ID: self._id,
            semconv.GEN_AI_RESPONSE_MODEL: self._model,
            semconv.GEN_AI_RESPONSE_FINISH_REASONS: [self._reasons[i] for i in sorted(self._reasons)],
            **_usage(self._usage, "prompt_tokens", "completion_tokens"),
        }
        indexes = sorted(set(self._texts) | set(self._reasons))
        self.output = [{"role": "assistant", "content": "".join(self._texts.get(i, ()))} for i in indexes] or None


class TextCompletionAdapter(Adapter):
    """``completions.create`` (legacy text completions)."""

    system = "openai"
    operation = "text_completion"
    stream_types = (Stream, AsyncStream)

    def request_attributes(self, kwargs: Mapping[str, Any]) -> dict[str, Any]:
        return _request_attributes(kwargs, kwargs.get("max_tokens"))

    def input_messages(self, kwargs: Mapping[str, Any]) -> list[Any] | None:
        return _prompt_messages(kwargs.get("prompt"))

    def response_attributes(self, result: Any) -> dict[str, Any]:
        choices = getattr(result, "choices", None)
        if getattr(result, "object", None) != "text_completion" or not isinstance(choices, list):
            return {}
        return {
            semconv.GEN_AI_RESPONSE_ID: getattr(result, "id", None),
            semconv.GEN_AI_RESPONSE_MODEL: getattr(result, "model", None),
            semconv.GEN_AI_RESPONSE_FINISH_REASONS: [c.finish_reason for c in choices if c.finish_reason],
            **_usage(getattr(result, "usage", None), "prompt_tokens", "completion_tokens"),
        }

    def output_messages(self, result: Any) -> list[Any] | None:
        choices = getattr(result, "choices", None)
        if getattr(result, "object", None) != "text_completion" or not isinstance(choices, list):
            return None
        return [{"role": "assistant", "content": getattr(choice, "text", None)} for choice in choices]

    def accumulator(self, kwargs: Mapping[str, Any]) -> Accumulator:
        return TextCompletionAccumulator()


# --- embeddings ---------------------------------------------------------------------


def _vector_length(embedding: Any) -> int | None:
    if isinstance(embedding, list):
        return len(embedding)
    if isinstance(embedding, str):  # base64 of little-endian float32s, in a raw response
        return (len(embedding) * 3 // 4 - embedding.count("=", -2)) // 4
    return None


class EmbeddingsAdapter(Adapter):
    """``embeddings.create``: input tokens only; the vectors are not recorded."""

    system = "openai"
    operation = "embeddings"

    def request_attributes(self, kwargs: Mapping[str, Any]) -> dict[str, Any]:
        encoding = as_str(kwargs.get("encoding_format"))
        return {
            semconv.GEN_AI_REQUEST_MODEL: _model(kwargs),
            semconv.GEN_AI_REQUEST_ENCODING_FORMATS: [encoding] if encoding else None,
            semconv.GEN_AI_EMBEDDINGS_DIMENSION_COUNT: as_int(kwargs.get("dimensions")),
        }

    def input_messages(self, kwargs: Mapping[str, Any]) -> list[Any] | None:
        return _prompt_messages(kwargs.get("input"))

    def response_attributes(self, result: Any) -> dict[str, Any]:
        data = getattr(result, "data", None)
        if not isinstance(data, list):
            return {}
        usage = getattr(result, "usage", None)
        return {
            semconv.GEN_AI_RESPONSE_MODEL: getattr(result, "model", None),
            semconv.GEN_AI_EMBEDDINGS_DIMENSION_COUNT: _vector_length(getattr(data[0], "embedding", None))
            if data
            else None,
            semconv.GEN_AI_USAGE_INPUT_TOKENS: as_int(getattr(usage, "prompt_tokens", None)),
        }


# --- the streaming helpers' early close ------------------------------------------------
# ``chat.completions.stream()``/``responses.stream()`` wrap the stream that
# ``create`` returned (our proxy), but their ``close()`` (also run when their
# ``with`` block exits) closes the HTTP response directly, bypassing it. These
# wrappers end the call span there too, so leaving a helper early never leaves
# the span open until garbage collection.


def _helper_close(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    try:
        return wrapped(*args, **kwargs)
    finally:
        with capture_internal_exceptions("openai stream helper close"):
            end_proxied_stream(getattr(instance, "_raw_stream", None))


def _helper_aclose(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    async def close() -> Any:
        try:
            return await wrapped(*args, **kwargs)
        finally:
            with capture_internal_exceptions("openai stream helper close"):
                end_proxied_stream(getattr(instance, "_raw_stream", None))

    return close()


# --- installing -------------------------------------------------------------------


def instrument() -> None:
    """Patch the openai client classes (once; a second call does nothing)."""
    if _patcher.active:
        return
    chat, responses = ChatAdapter(), ResponsesAdapter()
    _pricing.warm()
    for method in ("create", "parse"):
        if method in vars(Completions):
            _patcher.wrap(Completions, method, sync_wrapper(chat))
        if method in vars(AsyncCompletions):
            _patcher.wrap(AsyncCompletions, method, async_wrapper(chat))
        if Responses is not None and method in vars(Responses):
            _patcher.wrap(Responses, method, sync_wrapper(responses))
        if AsyncResponses is not None and method in vars(AsyncResponses):
            _patcher.wrap(AsyncResponses, method, async_wrapper(responses))
    for owner, adapter, wrapper in (
        (TextCompletions, TextCompletionAdapter(), sync_wrapper),
        (AsyncTextCompletions, TextCompletionAdapter(), async_wrapper),
        (Embeddings, EmbeddingsAdapter(), sync_wrapper),
        (AsyncEmbeddings, EmbeddingsAdapter(), async_wrapper),
    ):
        if owner is not None and "create" in vars(owner):
            _patcher.wrap(owner, "create", wrapper(adapter))
    for helper in _SYNC_HELPER_STREAMS:
        if "close" in vars(helper):
            _patcher.wrap(helper, "close", _helper_close)
    for helper in _ASYNC_HELPER_STREAMS:
        if "close" in vars(helper):
            _patcher.wrap(helper, "close", _helper_aclose)
    logger.debug("agentops: openai %s instrumented", getattr(openai, "__version__", "?"))


def uninstrument() -> None:
    """Restore the original openai methods."""
    _patcher.unwrap_all()
