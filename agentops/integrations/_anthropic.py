"""Instrumentation of the ``anthropic`` client: the Messages API, and its beta.

Patched (sync and async), on ``messages`` and ``beta.messages`` alike:
``create`` (with and without ``stream=True``), ``parse``, and the
``stream(...)`` helper, whose request is recorded when its context manager is
entered; ``with_raw_response`` calls go through ``create``. Each call is one
``CLIENT`` span, ``"chat {model}"``.

``gen_ai.usage.input_tokens`` counts every input token, cached ones included
(Anthropic reports cache reads and writes apart from ``input_tokens``), as the
OpenTelemetry GenAI conventions ask; the reads, the writes (and those kept an
hour, priced apart) and the thinking tokens are recorded apart too.

The anthropic client also emits a span of its own per API call
(``anthropic.messages.create``) when OpenTelemetry is installed; since the
agentops span is current while the request is sent, that span is its child.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from opentelemetry import context as context_api

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
    handle_result,
    is_active,
    plain_list,
    start_call,
    strings,
    sync_wrapper,
)

try:
    import anthropic
    from anthropic import AsyncStream, Stream
    from anthropic.resources.messages import AsyncMessages, Messages
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise DidNotEnable(f"the anthropic package is not installed or too old ({exc})") from exc

try:
    from anthropic.resources.beta.messages import AsyncMessages as AsyncBetaMessages
    from anthropic.resources.beta.messages import Messages as BetaMessages
except ImportError:  # pragma: no cover - anthropic without the beta Messages API
    BetaMessages = AsyncBetaMessages = None  # type: ignore[assignment,misc]

logger = logging.getLogger(__name__)

_patcher = Patcher("anthropic")
# Where MessageStreamManager keeps the request it sends on __enter__ (a private
# name of the anthropic client; without it the helper goes unrecorded).
_SYNC_REQUEST = "_MessageStreamManager__api_request"
_ASYNC_REQUEST = "_AsyncMessageStreamManager__api_request"
_BETA_SYNC_REQUEST = "_BetaMessageStreamManager__api_request"
_BETA_ASYNC_REQUEST = "_BetaAsyncMessageStreamManager__api_request"


def _input_tokens(usage: Any) -> int | None:
    total = None
    for name in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"):
        value = as_int(getattr(usage, name, None))
        if value is not None:
            total = (total or 0) + value
    return total


def _usage(usage: Any) -> dict[str, Any]:
    """Token counts (input with the cached ones), cache and thinking details, service tier and speed."""
    if usage is None:
        return {}
    creation = getattr(usage, "cache_creation", None)
    details = getattr(usage, "output_tokens_details", None)
    counted = as_int(getattr(usage, "input_tokens", None)) is not None
    return {
        semconv.GEN_AI_USAGE_INPUT_TOKENS: _input_tokens(usage) if counted else None,
        semconv.GEN_AI_USAGE_OUTPUT_TOKENS: as_int(getattr(usage, "output_tokens", None)),
        semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: as_int(getattr(usage, "cache_read_input_tokens", None)),
        semconv.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS: as_int(getattr(usage, "cache_creation_input_tokens", None)),
        semconv.ANTHROPIC_USAGE_CACHE_CREATION_1H_INPUT_TOKENS: as_int(
            getattr(creation, "ephemeral_1h_input_tokens", None)
        ),
        semconv.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: as_int(getattr(details, "thinking_tokens", None)),
        semconv.ANTHROPIC_RESPONSE_SERVICE_TIER: as_str(getattr(usage, "service_tier", None)),
        semconv.ANTHROPIC_RESPONSE_SPEED: as_str(getattr(usage, "speed", None)),
    }


def _parse_json(text: str) -> Any:
    """A tool call's streamed arguments as the object a complete response has (the text if cut short)."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _blocks_message(blocks: list[dict[str, Any]]) -> dict[str, Any]:
    """One assistant message from content blocks (text joined, tool uses as tool calls)."""
    message: dict[str, Any] = {"role": "assistant", "content": "".join(b["text"] for b in blocks if b.get("text"))}
    calls = [
        {"id": b.get("id"), "name": b.get("name"), "arguments": b.get("input")}
        for b in blocks
        if b.get("type") in ("tool_use", "server_tool_use")
    ]
    if calls:
        message["tool_calls"] = calls
    return message


class MessageAccumulator(Accumulator):
    """Raw message stream events: ``message_start``, content block deltas, ``message_delta``."""

    def __init__(self) -> None:
        super().__init__()
        self._id: str | None = None
        self._model: str | None = None
        self._stop_reason: str | None = None
        self._usage: dict[str, Any] = {}
        self._blocks: dict[int, dict[str, Any]] = {}

    def add(self, item: Any) -> None:
        kind = getattr(item, "type", None)
        if kind == "message_start":
            message = item.message
            self._id = getattr(message, "id", None)
            self._model = getattr(message, "model", None)
            self._usage = _usage(getattr(message, "usage", None))
        elif kind == "content_block_start":
            block = item.content_block
            self._blocks[item.index] = {
                "type": getattr(block, "type", None),
                "id": getattr(block, "id", None),
                "name": getattr(block, "name", None),
                "text": getattr(block, "text", None) or "",
                "json": [],
            }
        elif kind == "content_block_delta":
            entry = self._blocks.setdefault(item.index, {"type": "text", "text": "", "json": []})
            delta = item.delta
            self.produced = True  # text, tool input, thinking...
            if getattr(delta, "type", None) == "text_delta":
                entry["text"] += delta.text
            elif getattr(delta, "type", None) == "input_json_delta":
                entry["json"].append(delta.partial_json)
        elif kind == "message_delta":
            self._stop_reason = getattr(item.delta, "stop_reason", None) or self._stop_reason
            # message_delta usage is cumulative; input counts appear there in newer API versions.
            self._usage.update((k, v) for k, v in _usage(getattr(item, "usage", None)).items() if v is not None)

    def finish(self) -> None:
        self.attributes = {
            semconv.GEN_AI_RESPONSE_ID: self._id,
            semconv.GEN_AI_RESPONSE_MODEL: self._model,
            semconv.GEN_AI_RESPONSE_FINISH_REASONS: [self._stop_reason] if self._stop_reason else [],
            **self._usage,
        }
        blocks = []
        for _, block in sorted(self._blocks.items()):
            if block["json"]:
                block = {**block, "input": _parse_json("".join(block["json"]))}
            blocks.append(block)
        if blocks:
            self.output = [_blocks_message(blocks)]


class MessagesAdapter(Adapter):
    """``messages.create``/``parse``/``stream``."""

    system = "anthropic"
    operation = "chat"
    stream_types = (Stream, AsyncStream)

    def request_attributes(self, kwargs: Mapping[str, Any]) -> dict[str, Any]:
        tool_choice = kwargs.get("tool_choice")
        return {
            semconv.GEN_AI_REQUEST_MODEL: as_str(kwargs.get("model")),
            semconv.GEN_AI_REQUEST_MAX_TOKENS: as_int(kwargs.get("max_tokens")),
            **common_request_attributes(kwargs),
            semconv.GEN_AI_REQUEST_TOP_K: as_int(kwargs.get("top_k")),
            semconv.GEN_AI_REQUEST_STOP_SEQUENCES: strings(kwargs.get("stop_sequences")),
            # Anthropic's tool_choice is an object: {"type": "auto" | "any" | "tool" | "none"}.
            semconv.AGENTOPS_REQUEST_TOOL_CHOICE: as_str(tool_choice.get("type"))
            if isinstance(tool_choice, Mapping)
            else None,
        }

    def input_messages(self, kwargs: Mapping[str, Any]) -> list[Any] | None:
        messages: list[Any] = []
        system = kwargs.get("system")
        if isinstance(system, str):
            messages.append({"role": "system", "content": system})
        elif plain_list(system):
            messages.append({"role": "system", "content": plain_list(system)})
        messages.extend(plain_list(kwargs.get("messages")) or ())
        return messages or None

    def response_attributes(self, result: Any) -> dict[str, Any]:
        if getattr(result, "type", None) != "message":
            return {}  # e.g. a raw response from ``with_raw_response``
        stop_reason = getattr(result, "stop_reason", None)
        return {
            semconv.GEN_AI_RESPONSE_ID: getattr(result, "id", None),
            semconv.GEN_AI_RESPONSE_MODEL: getattr(result, "model", None),
            semconv.GEN_AI_RESPONSE_FINISH_REASONS: [stop_reason] if isinstance(stop_reason, str) else [],
            **_usage(getattr(result, "usage", None)),
        }

    def output_messages(self, result: Any) -> list[Any] | None:
        if getattr(result, "type", None) != "message":
            return None
        blocks = []
        for block in getattr(result, "content", None) or ():
            blocks.append(
                {
                    "type": getattr(block, "type", None),
                    "text": getattr(block, "text", None),
                    "id": getattr(block, "id", None),
                    "name": getattr(block, "name", None),
                    "input": getattr(block, "input", None),
                }
            )
        return [_blocks_message(blocks)]

    def accumulator(self, kwargs: Mapping[str, Any]) -> Accumulator:
        return MessageAccumulator()


def _traced_request(adapter: Adapter, kwargs: Mapping[str, Any], send: Callable[[], Any]) -> Callable[[], Any]:
    """The stream helper's request, recorded as a streamed call when it is sent."""

    def request() -> Any:
        call = start_call(adapter, kwargs) if is_active() else None
        if call is None:
            return send()
        token = context_api.attach(call.context)
        try:
            raw_stream = send()
        except BaseException as exc:
            call.fail(exc)
            raise
        finally:
            context_api.detach(token)
        return handle_result(call, kwargs, raw_stream)

    return request


async def _traced_request_async(adapter: Adapter, kwargs: Mapping[str, Any], send: Awaitable[Any]) -> Any:
    call = start_call(adapter, kwargs) if is_active() else None
    if call is None:
        return await send
    token = context_api.attach(call.context)
    try:
        raw_stream = await send
    except BaseException as exc:
        call.fail(exc)
        raise
    finally:
        context_api.detach(token)
    return handle_result(call, kwargs, raw_stream)


def _stream_helper_wrapper(adapter: Adapter, attribute: str, is_async: bool) -> Callable[..., Any]:
    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        manager = wrapped(*args, **kwargs)
        if not is_active():
            return manager
        with capture_internal_exceptions("anthropic messages.stream"):
            send = getattr(manager, attribute, None)
            if send is None:
                logger.debug("agentops: anthropic %s has no %s; stream helper not recorded", type(manager), attribute)
                return manager
            call_kwargs = {**kwargs, "stream": True}
            if is_async:
                traced: Any = _traced_request_async(adapter, call_kwargs, send)
            else:
                traced = _traced_request(adapter, call_kwargs, send)
            setattr(manager, attribute, traced)
        return manager

    return wrapper


def instrument() -> None:
    """Patch the anthropic client classes (once; a second call does nothing)."""
    if _patcher.active:
        return
    adapter = MessagesAdapter()
    _pricing.warm()
    for sync_class, async_class, sync_request, async_request in (
        (Messages, AsyncMessages, _SYNC_REQUEST, _ASYNC_REQUEST),
        (BetaMessages, AsyncBetaMessages, _BETA_SYNC_REQUEST, _BETA_ASYNC_REQUEST),
    ):
        if sync_class is None or async_class is None:
            continue
        for method in ("create", "parse"):
            if method in vars(sync_class):
                _patcher.wrap(sync_class, method, sync_wrapper(adapter))
            if method in vars(async_class):
                _patcher.wrap(async_class, method, async_wrapper(adapter))
        if "stream" in vars(sync_class):
            _patcher.wrap(sync_class, "stream", _stream_helper_wrapper(adapter, sync_request, is_async=False))
        if "stream" in vars(async_class):
            _patcher.wrap(async_class, "stream", _stream_helper_wrapper(adapter, async_request, is_async=True))
    logger.debug("agentops: anthropic %s instrumented", getattr(anthropic, "__version__", "?"))


def uninstrument() -> None:
    """Restore the original anthropic methods."""
    _patcher.unwrap_all()
