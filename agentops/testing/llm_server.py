"""A deterministic stand-in for the OpenAI and Anthropic HTTP APIs, on loopback.

Tests, the demo and the benchmarks talk to it with the real ``openai`` and
``anthropic`` clients, so that nothing reaches the network::

    with LLMServer() as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="test")
        client.chat.completions.create(model="gpt-4o-mini", messages=[...])
        anthropic.Anthropic(base_url=server.anthropic_base_url, api_key="test")

or as a process: ``python -m agentops.testing.llm_server --port 8765``.

Endpoints (each also answers without the ``/v1`` prefix):

* ``POST /v1/chat/completions``: JSON, or server-sent events with ``stream``
  (a usage chunk last when ``stream_options.include_usage`` is set);
* ``POST /v1/completions``: legacy text completions, JSON or streamed alike;
* ``POST /v1/responses``: JSON, or the Responses API event stream;
* ``POST /v1/embeddings``: deterministic vectors (8 numbers, or
  ``dimensions``), as floats or base64 (``encoding_format``);
* ``POST /v1/messages``: Anthropic JSON, or its event stream (the beta
  Messages API posts here too).

The answer is ``"Echo: <last user text>"``; tokens are whitespace-separated
words, so counts are predictable. A request's ``max_tokens`` (or
``max_completion_tokens``/``max_output_tokens``) cuts the answer to that many
words and reports the cut the way each API does. The usage carries the
details each API reports (cached, cache-written and reasoning tokens), and
the service tier asked for (``service_tier``; Anthropic's ``speed``) is
echoed. Directives in the model name, or in an ``x-stand-in`` header
(``extra_headers={"x-stand-in": "cached-100 reasoning-20"}``, which keeps a
priced model name), drive special behaviour:

* ``error-<status>`` (``error-429``, ``error-500``...) answers that status
  with an error body shaped like the API's;
* ``slow-<ms>`` (e.g. ``gpt-4o-slow-300``) adds that much latency, spread over
  the chunks of a stream;
* ``cached-<n>`` reports ``n`` input tokens read from the prompt cache,
  ``cache-write-<n>`` (``cache-write-1h-<n>``) ``n`` written to it (for an
  hour), besides the counted ones (OpenAI's input count includes them,
  Anthropic's does not, as the real APIs do);
* ``reasoning-<n>`` adds ``n`` reasoning (thinking) tokens to the output;
* ``filtered`` cuts the answer after one word as filtered (``content_filter``;
  Anthropic: ``refusal``);
* ``stream-error`` makes a stream fail after its first piece of text, with the
  error event each API sends.

A request offering ``tools`` whose last turn is the user's own words gets a
call of the first tool, with arguments ``{"query": <last user text>}``; once
the tool result is sent back, the answer is text again. Every request is kept
in :attr:`LLMServer.requests`.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import itertools
import json
import logging
import re
import struct
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

logger = logging.getLogger(__name__)

#: The ``created`` time of every answer, fixed so that answers are reproducible.
CREATED = 1_700_000_000
#: The request header whose directives add to the model name's.
BEHAVIOUR_HEADER = "x-stand-in"
_ERROR_MODEL = re.compile(r"error-(\d{3})")
_SLOW_MODEL = re.compile(r"slow-(\d+)")
_CACHED_MODEL = re.compile(r"cached-(\d+)")
_CACHE_WRITE = re.compile(r"cache-write-(\d+)\b")
_CACHE_WRITE_1H = re.compile(r"cache-write-1h-(\d+)")
_REASONING = re.compile(r"reasoning-(\d+)")
_FILTERED = "filtered"
_STREAM_ERROR = "stream-error"
#: Length of an embedding when the request does not ask for ``dimensions``.
EMBEDDING_DIMENSIONS = 8

_OPENAI_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "invalid_request_error",
    404: "invalid_request_error",
    429: "rate_limit_exceeded",
}
_ANTHROPIC_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}


@dataclass(frozen=True)
class RecordedRequest:
    """One request the server received.

    Attributes:
        method: The HTTP method.
        path: The request path (without query string).
        headers: The request headers, names in lowercase.
        body: The decoded JSON body (``None`` if it was not JSON).
    """

    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass(frozen=True)
class Behaviour:
    """What the directives of one request (model name and ``x-stand-in`` header) ask for."""

    error: int | None = None
    delay: float = 0.0
    cached: int = 0
    cache_write: int = 0
    cache_write_1h: int = 0
    reasoning: int = 0
    filtered: bool = False
    stream_error: bool = False

    @classmethod
    def of(cls, model: str, header: str = "") -> Behaviour:
        spec = f"{model} {header}"

        def number(pattern: re.Pattern[str]) -> int:
            match = pattern.search(spec)
            return int(match.group(1)) if match else 0

        error = _ERROR_MODEL.search(spec)
        return cls(
            error=int(error.group(1)) if error else None,
            delay=number(_SLOW_MODEL) / 1000.0,
            cached=number(_CACHED_MODEL),
            cache_write=number(_CACHE_WRITE),
            cache_write_1h=number(_CACHE_WRITE_1H),
            reasoning=number(_REASONING),
            filtered=_FILTERED in spec,
            stream_error=_STREAM_ERROR in spec,
        )


@dataclass
class _Answer:
    """The deterministic answer to one request."""

    text: str
    words: list[str]
    input_tokens: int
    truncated: bool
    delay: float = 0.0
    chunks: list[str] = field(default_factory=list)
    #: The tool the answer calls (then ``text`` is empty), and its JSON arguments.
    tool: str | None = None
    arguments: str = ""
    filtered: bool = False
    #: Reasoning tokens, counted in the output besides the words.
    reasoning: int = 0

    @property
    def output_tokens(self) -> int:
        return (count_tokens(self.arguments) if self.tool else len(self.words)) + self.reasoning


def count_tokens(text: str) -> int:
    """The stand-in's token count of ``text``: its whitespace-separated words."""
    return len(text.split())


def _text_of(content: Any) -> str:
    """The text of a message's content: a string, or a list of text parts/blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, dict):
                text = part.get("text")
                if isinstance(text, str):
                    parts.append(text)
                elif isinstance(part.get("content"), str | list):  # tool results
                    parts.append(_text_of(part["content"]))
        return " ".join(parts)
    return ""


def _messages_text(messages: Any) -> tuple[str, str]:
    """All text of a message list, and the last user message's text."""
    if isinstance(messages, str):
        return messages, messages
    everything: list[str] = []
    last_user = ""
    if isinstance(messages, list):
        for message in messages:
            if not isinstance(message, dict):
                continue
            text = _text_of(message.get("content"))
            if text:
                everything.append(text)
            if message.get("role", "user") == "user" and text:
                last_user = text
    return " ".join(everything), last_user


def _first_tool(tools: Any) -> str | None:
    """The name of the first tool offered (chat, Responses and Anthropic shapes)."""
    if not isinstance(tools, list) or not tools or not isinstance(tools[0], dict):
        return None
    function = tools[0].get("function")
    name = function.get("name") if isinstance(function, dict) else tools[0].get("name")
    return name if isinstance(name, str) and name else None


def _tool_to_call(body: dict[str, Any], messages: Any) -> str | None:
    """The tool to call: the first one offered, when the last turn is the user's own words."""
    name = _first_tool(body.get("tools"))
    if name is None or body.get("tool_choice") == "none":
        return None
    if isinstance(messages, str):
        return name
    if not isinstance(messages, list) or not messages or not isinstance(messages[-1], dict):
        return None
    last = messages[-1]
    if last.get("role", "user") != "user" or last.get("type", "message") != "message":
        return None  # a tool result (or an assistant turn): answer in words
    content = last.get("content")
    if isinstance(content, list) and any(isinstance(p, dict) and p.get("type") == "tool_result" for p in content):
        return None
    return name


def _answer(behaviour: Behaviour, all_input: str, last_user: str, limit: Any, tool: str | None = None) -> _Answer:
    text = f"Echo: {last_user}" if last_user.strip() else "Hello! How can I help?"
    words = text.split()
    truncated = filtered = False
    if behaviour.filtered and tool is None:
        words, filtered = words[:1], True
    elif isinstance(limit, int) and not isinstance(limit, bool) and 0 < limit < len(words):
        words = words[:limit]
        truncated = True
    text = " ".join(words)
    inputs, delay, reasoning = count_tokens(all_input), behaviour.delay, behaviour.reasoning
    if tool is not None:
        arguments = json.dumps({"query": last_user})
        half = len(arguments) // 2
        chunks = [arguments[:half], arguments[half:]]
        return _Answer("", [], inputs, False, delay, chunks, tool, arguments, reasoning=reasoning)
    chunks = [word if i == 0 else f" {word}" for i, word in enumerate(words)]
    return _Answer(text, words, inputs, truncated, delay, chunks, filtered=filtered, reasoning=reasoning)


def _openai_usage(counted: int, behaviour: Behaviour, names: tuple[str, str], outputs: int) -> dict[str, Any]:
    """OpenAI's usage object (``names``: chat's ``prompt``/``completion`` or Responses' ``input``/``output``).

    Its input count includes the tokens read from and written to the cache.
    """
    written = behaviour.cache_write + behaviour.cache_write_1h
    inputs = counted + behaviour.cached + written
    input_name, output_name = names
    input_details: dict[str, Any] = {"cached_tokens": behaviour.cached, "cache_write_tokens": written}
    output_details: dict[str, Any] = {"reasoning_tokens": behaviour.reasoning}
    if input_name == "prompt":
        input_details["audio_tokens"] = 0
        output_details.update(audio_tokens=0, accepted_prediction_tokens=0, rejected_prediction_tokens=0)
    return {
        f"{input_name}_tokens": inputs,
        f"{output_name}_tokens": outputs,
        "total_tokens": inputs + outputs,
        f"{input_name}_tokens_details": input_details,
        f"{output_name}_tokens_details": output_details,
    }


def _service_tier(body: dict[str, Any]) -> str:
    """The tier OpenAI reports: the one asked for, ``default`` for ``auto`` or none."""
    tier = body.get("service_tier")
    return tier if isinstance(tier, str) and tier not in ("", "auto") else "default"


def _embedding(text: str, dimensions: int) -> list[float]:
    """A deterministic vector for ``text``: float32 values in [-1, 1) from its SHA-256."""
    values: list[float] = []
    counter = 0
    while len(values) < dimensions:
        digest = hashlib.sha256(f"{counter}:{text}".encode()).digest()
        values.extend(struct.unpack("<8i", digest)[i] / 2**31 for i in range(8))
        counter += 1
    packed = struct.pack(f"<{dimensions}f", *values[:dimensions])
    return list(struct.unpack(f"<{dimensions}f", packed))


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; without TCP_NODELAY each
    # answer would wait for the client's delayed ACK (~40 ms).
    disable_nagle_algorithm = True
    # Idle keep-alive connections are dropped after this many seconds.
    timeout = 30

    def log_message(self, format: str, *args: Any) -> None:
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("llm_server: %s", format % args)

    # --- plumbing -------------------------------------------------------------
    def _send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _send_events(self, events: Iterator[tuple[str | None, Any]], delay: float, count: int) -> None:
        """Send server-sent events with chunked transfer encoding (keep-alive friendly)."""
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        pause = delay / max(count, 1)
        try:
            for name, data in events:
                text = data if isinstance(data, str) else json.dumps(data)
                frame = (f"event: {name}\n" if name else "") + f"data: {text}\n\n"
                raw = frame.encode("utf-8")
                self.wfile.write(f"{len(raw):x}\r\n".encode() + raw + b"\r\n")
                self.wfile.flush()
                if pause:
                    time.sleep(pause)
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            # The client closed the stream early; that is its right.
            self.close_connection = True

    def _read_body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            return None

    # --- dispatch -------------------------------------------------------------
    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0].rstrip("/")
        body = self._read_body()
        self.server.record(
            RecordedRequest("POST", path, {k.lower(): v for k, v in self.headers.items()}, body),
        )
        handler: Any
        if path.endswith("/chat/completions"):
            api = "openai"
            handler = self._chat_completions
        elif path.endswith("/completions"):
            api = "openai"
            handler = self._text_completions
        elif path.endswith("/responses"):
            api = "openai"
            handler = self._responses
        elif path.endswith("/embeddings"):
            api = "openai"
            handler = self._embeddings
        elif path.endswith("/messages"):
            api = "anthropic"
            handler = self._messages
        else:
            self._send_json(404, {"error": {"message": f"no route {path}", "type": "invalid_request_error"}})
            return
        if not isinstance(body, dict):
            self._error(api, 400, "the body must be a JSON object")
            return
        behaviour = Behaviour.of(str(body.get("model", "")), self.headers.get(BEHAVIOUR_HEADER) or "")
        if behaviour.error is not None:
            status = behaviour.error
            self._error(api, status, f"stand-in error {status} requested by the model name")
            return
        handler(body, behaviour)

    def do_GET(self) -> None:
        if self.path.rstrip("/") in ("", "/health", "/v1/models"):
            self._send_json(200, {"object": "list", "data": [{"id": "stand-in", "object": "model"}]})
        else:
            self._send_json(404, {"error": {"message": "not found", "type": "invalid_request_error"}})

    def _error(self, api: str, status: int, message: str) -> None:
        # Ask the clients not to retry, so an error test costs one request.
        headers = {"x-should-retry": "false"}
        if api == "anthropic":
            kind = _ANTHROPIC_ERROR_TYPES.get(status, "api_error")
            payload: Any = {"type": "error", "error": {"type": kind, "message": message}}
        else:
            kind = _OPENAI_ERROR_TYPES.get(status, "server_error")
            payload = {"error": {"message": message, "type": kind, "param": None, "code": str(status)}}
        self._send_json(status, payload, headers)

    # --- OpenAI chat completions ------------------------------------------------
    def _chat_completions(self, body: dict[str, Any], behaviour: Behaviour) -> None:
        all_input, last_user = _messages_text(body.get("messages"))
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        tool = _tool_to_call(body, body.get("messages"))
        answer = _answer(behaviour, all_input, last_user, limit, tool)
        model = str(body.get("model", ""))
        number = self.server.next_id()
        ident = f"chatcmpl-{number:06d}"
        call_id = f"call_{number:06d}"
        finish = _openai_finish(answer)
        requested_n = body.get("n")
        n = requested_n if isinstance(requested_n, int) and requested_n > 0 else 1
        usage = _openai_usage(answer.input_tokens, behaviour, ("prompt", "completion"), answer.output_tokens * n)
        tier = _service_tier(body)
        if not body.get("stream"):
            time.sleep(answer.delay)
            message: dict[str, Any] = {"role": "assistant", "content": answer.text, "refusal": None, "annotations": []}
            if tool:
                function = {"name": tool, "arguments": answer.arguments}
                message["content"] = None
                message["tool_calls"] = [{"id": call_id, "type": "function", "function": function}]
            self._send_json(
                200,
                {
                    "id": ident,
                    "object": "chat.completion",
                    "created": CREATED,
                    "model": model,
                    "choices": [
                        {"index": i, "message": message, "logprobs": None, "finish_reason": finish} for i in range(n)
                    ],
                    "usage": usage,
                    "service_tier": tier,
                    "system_fingerprint": "fp_stand_in",
                },
            )
            return
        midstream_error = behaviour.stream_error
        options = body.get("stream_options") or {}
        include_usage = isinstance(options, dict) and bool(options.get("include_usage"))

        def chunk(choices: list[dict[str, Any]], with_usage: Any = None) -> dict[str, Any]:
            data: dict[str, Any] = {
                "id": ident,
                "object": "chat.completion.chunk",
                "created": CREATED,
                "model": model,
                "service_tier": tier,
                "system_fingerprint": "fp_stand_in",
                "choices": choices,
            }
            if include_usage:
                data["usage"] = with_usage
            return data

        def events() -> Iterator[tuple[str | None, Any]]:
            for i in range(n):
                first: dict[str, Any] = {"role": "assistant", "content": ""}
                if tool:
                    function = {"name": tool, "arguments": ""}
                    first = {"role": "assistant", "content": None, "tool_calls": [
                        {"index": 0, "id": call_id, "type": "function", "function": function}
                    ]}  # fmt: skip
                yield None, chunk([{"index": i, "delta": first, "finish_reason": None}])
            for number, piece in enumerate(answer.chunks):
                if number == 1 and midstream_error:
                    yield None, {"error": {"message": "stand-in stream error", "type": "server_error"}}
                    return
                delta: dict[str, Any] = {"content": piece}
                if tool:
                    delta = {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}
                for i in range(n):
                    yield None, chunk([{"index": i, "delta": delta, "finish_reason": None}])
            for i in range(n):
                yield None, chunk([{"index": i, "delta": {}, "finish_reason": finish}])
            if include_usage:
                yield None, chunk([], usage)
            yield None, "[DONE]"

        self._send_events(events(), answer.delay, len(answer.chunks))

    # --- OpenAI responses -------------------------------------------------------
    def _responses(self, body: dict[str, Any], behaviour: Behaviour) -> None:
        all_input, last_user = _messages_text(body.get("input"))
        instructions = body.get("instructions")
        if isinstance(instructions, str):
            all_input = f"{instructions} {all_input}"
        tool = _tool_to_call(body, body.get("input"))
        answer = _answer(behaviour, all_input, last_user, body.get("max_output_tokens"), tool)
        number = self.server.next_id()
        ident = f"resp_{number:06d}"
        item_id = f"msg_{number:06d}"

        def function_call(arguments: str, status: str) -> dict[str, Any]:
            return {
                "id": f"fc_{number:06d}",
                "type": "function_call",
                "status": status,
                "call_id": f"call_{number:06d}",
                "name": tool,
                "arguments": arguments,
            }

        def message(text: str, status: str) -> dict[str, Any]:
            return {
                "id": item_id,
                "type": "message",
                "status": status,
                "role": "assistant",
                "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}] if text else [],
            }

        def response(status: str, output: list[dict[str, Any]], usage: Any) -> dict[str, Any]:
            return {
                "id": ident,
                "object": "response",
                "created_at": CREATED,
                "status": status,
                "error": None,
                "incomplete_details": {"reason": incomplete_reason} if status == "incomplete" else None,
                "instructions": instructions if isinstance(instructions, str) else None,
                "max_output_tokens": body.get("max_output_tokens"),
                "model": str(body.get("model", "")),
                "output": output,
                "parallel_tool_calls": True,
                "previous_response_id": body.get("previous_response_id"),
                "reasoning": {"effort": None, "summary": None},
                "store": bool(body.get("store", True)),
                "temperature": body.get("temperature", 1.0),
                "text": {"format": {"type": "text"}},
                "tool_choice": "auto",
                "tools": [],
                "top_p": body.get("top_p", 1.0),
                "truncation": "disabled",
                "service_tier": _service_tier(body),
                "usage": usage,
                "user": None,
                "metadata": body.get("metadata") or {},
            }

        usage = _openai_usage(answer.input_tokens, behaviour, ("input", "output"), answer.output_tokens)
        incomplete_reason = "content_filter" if answer.filtered else "max_output_tokens"
        final_status = "incomplete" if answer.truncated or answer.filtered else "completed"
        final_item = function_call(answer.arguments, "completed") if tool else message(answer.text, "completed")
        final = response(final_status, [final_item], usage)
        if not body.get("stream"):
            time.sleep(answer.delay)
            self._send_json(200, final)
            return
        sequence = itertools.count()

        def event(kind: str, **data: Any) -> tuple[str, dict[str, Any]]:
            return kind, {"type": kind, "sequence_number": next(sequence), **data}

        def events() -> Iterator[tuple[str | None, Any]]:
            yield event("response.created", response=response("in_progress", [], None))
            yield event("response.in_progress", response=response("in_progress", [], None))
            if tool:
                where_call = {"item_id": f"fc_{number:06d}", "output_index": 0}
                yield event("response.output_item.added", output_index=0, item=function_call("", "in_progress"))
                for piece in answer.chunks:
                    yield event("response.function_call_arguments.delta", **where_call, delta=piece)
                yield event("response.function_call_arguments.done", **where_call, arguments=answer.arguments)
                yield event("response.output_item.done", output_index=0, item=final_item)
                yield event("response.completed", response=final)
                return
            yield event("response.output_item.added", output_index=0, item=message("", "in_progress"))
            part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            where = {"item_id": item_id, "output_index": 0, "content_index": 0}
            yield event("response.content_part.added", **where, part=part)
            for piece in answer.chunks:
                yield event("response.output_text.delta", **where, delta=piece, logprobs=[])
            yield event("response.output_text.done", **where, text=answer.text, logprobs=[])
            yield event("response.content_part.done", **where, part={**part, "text": answer.text})
            yield event("response.output_item.done", output_index=0, item=message(answer.text, "completed"))
            yield event(f"response.{final_status}", response=final)

        self._send_events(events(), answer.delay, len(answer.chunks))

    # --- Anthropic messages -----------------------------------------------------
    def _messages(self, body: dict[str, Any], behaviour: Behaviour) -> None:
        all_input, last_user = _messages_text(body.get("messages"))
        system = body.get("system")
        system_text = _text_of(system)
        if system_text:
            all_input = f"{system_text} {all_input}"
        tool = _tool_to_call(body, body.get("messages"))
        answer = _answer(behaviour, all_input, last_user, body.get("max_tokens"), tool)
        number = self.server.next_id()
        ident = f"msg_{number:06d}"
        stop = (
            "tool_use" if tool else "max_tokens" if answer.truncated else "refusal" if answer.filtered else "end_turn"
        )
        tool_block: dict[str, Any] = {"type": "tool_use", "id": f"toolu_{number:06d}", "name": tool, "input": {}}
        model = str(body.get("model", ""))
        speed = body.get("speed")
        usage: dict[str, Any] = {
            "input_tokens": answer.input_tokens,
            "output_tokens": answer.output_tokens,
            "cache_creation_input_tokens": behaviour.cache_write + behaviour.cache_write_1h,
            "cache_read_input_tokens": behaviour.cached,
            "cache_creation": {
                "ephemeral_5m_input_tokens": behaviour.cache_write,
                "ephemeral_1h_input_tokens": behaviour.cache_write_1h,
            },
            "service_tier": "standard",
            "speed": speed if speed in ("standard", "fast") else "standard",
        }
        if behaviour.reasoning:
            usage["output_tokens_details"] = {"thinking_tokens": behaviour.reasoning}

        def message(content: list[dict[str, Any]], stop_reason: Any, use: dict[str, Any]) -> dict[str, Any]:
            return {
                "id": ident,
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": content,
                "stop_reason": stop_reason,
                "stop_sequence": None,
                "usage": use,
            }

        if not body.get("stream"):
            time.sleep(answer.delay)
            if tool:
                content = [{**tool_block, "input": json.loads(answer.arguments)}]
            else:
                content = [{"type": "text", "text": answer.text}]
            self._send_json(200, message(content, stop, usage))
            return

        def events() -> Iterator[tuple[str | None, Any]]:
            start_usage = {**usage, "output_tokens": 1}
            yield "message_start", {"type": "message_start", "message": message([], None, start_usage)}
            block = tool_block if tool else {"type": "text", "text": ""}
            yield "content_block_start", {"type": "content_block_start", "index": 0, "content_block": block}
            yield "ping", {"type": "ping"}
            for position, piece in enumerate(answer.chunks):
                if position == 1 and behaviour.stream_error:
                    yield "error", {"type": "error", "error": {"type": "overloaded_error", "message": "stand-in"}}
                    return
                delta = (
                    {"type": "input_json_delta", "partial_json": piece}
                    if tool
                    else {"type": "text_delta", "text": piece}
                )
                yield "content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}
            yield "content_block_stop", {"type": "content_block_stop", "index": 0}
            yield (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop, "stop_sequence": None},
                    "usage": {
                        key: value
                        for key, value in usage.items()
                        if key not in ("cache_creation", "service_tier", "speed")
                    },
                },
            )
            yield "message_stop", {"type": "message_stop"}

        self._send_events(events(), answer.delay, len(answer.chunks))

    # --- OpenAI legacy text completions --------------------------------------------
    def _text_completions(self, body: dict[str, Any], behaviour: Behaviour) -> None:
        prompt = body.get("prompt")
        if isinstance(prompt, str):
            prompts = [prompt]
        else:
            prompts = [p for p in prompt if isinstance(p, str)] if isinstance(prompt, list) else []
        requested_n = body.get("n")
        n = requested_n if isinstance(requested_n, int) and requested_n > 0 else 1
        answers = [_answer(behaviour, text, text, body.get("max_tokens")) for text in prompts or [""]]
        ident = f"cmpl-{self.server.next_id():06d}"
        model = str(body.get("model", ""))
        outputs = sum(a.output_tokens for a in answers) * n
        inputs = sum(a.input_tokens for a in answers)
        usage = _openai_usage(inputs, behaviour, ("prompt", "completion"), outputs)
        choices = [(i * n + j, answer) for i, answer in enumerate(answers) for j in range(n)]

        def completion(items: list[dict[str, Any]]) -> dict[str, Any]:
            return {"id": ident, "object": "text_completion", "created": CREATED, "model": model, "choices": items}

        if not body.get("stream"):
            time.sleep(answers[0].delay)
            items = [
                {"index": i, "text": a.text, "logprobs": None, "finish_reason": _openai_finish(a)} for i, a in choices
            ]
            self._send_json(200, {**completion(items), "system_fingerprint": "fp_stand_in", "usage": usage})
            return
        options = body.get("stream_options") or {}
        include_usage = isinstance(options, dict) and bool(options.get("include_usage"))

        def events() -> Iterator[tuple[str | None, Any]]:
            for position in range(max(len(a.chunks) for _, a in choices)):
                if position == 1 and behaviour.stream_error:
                    yield None, {"error": {"message": "stand-in stream error", "type": "server_error"}}
                    return
                for i, answer in choices:
                    if position < len(answer.chunks):
                        piece = answer.chunks[position]
                        yield None, completion([{"index": i, "text": piece, "logprobs": None, "finish_reason": None}])
            for i, answer in choices:
                last = {"index": i, "text": "", "logprobs": None, "finish_reason": _openai_finish(answer)}
                yield None, completion([last])
            if include_usage:
                yield None, {**completion([]), "usage": usage}
            yield None, "[DONE]"

        self._send_events(events(), answers[0].delay, len(answers[0].chunks))

    # --- OpenAI embeddings ------------------------------------------------------------
    def _embeddings(self, body: dict[str, Any], behaviour: Behaviour) -> None:
        given = body.get("input")
        inputs: list[Any] = given if isinstance(given, list) and given and not isinstance(given[0], int) else [given]
        dimensions = body.get("dimensions")
        if not isinstance(dimensions, int) or isinstance(dimensions, bool) or dimensions <= 0:
            dimensions = EMBEDDING_DIMENSIONS
        data = []
        tokens = 0
        for index, item in enumerate(inputs):
            # Text counts its words; a list of token ids counts its ids.
            text = item if isinstance(item, str) else " ".join(str(i) for i in item) if isinstance(item, list) else ""
            tokens += count_tokens(text)
            vector = _embedding(text, dimensions)
            value: Any = vector
            if body.get("encoding_format") == "base64":
                value = base64.b64encode(struct.pack(f"<{dimensions}f", *vector)).decode("ascii")
            data.append({"object": "embedding", "index": index, "embedding": value})
        time.sleep(behaviour.delay)
        self._send_json(
            200,
            {
                "object": "list",
                "data": data,
                "model": str(body.get("model", "")),
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            },
        )


def _openai_finish(answer: _Answer) -> str:
    if answer.tool:
        return "tool_calls"
    return "length" if answer.truncated else "content_filter" if answer.filtered else "stop"


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int]) -> None:
        super().__init__(address, _Handler)
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self.requests: list[RecordedRequest] = []

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client dropping its keep-alive connection is routine, not an error.
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError | TimeoutError):
            logger.debug("llm_server: connection from %s ended: %r", client_address, error)
            return
        logger.exception("llm_server: error while serving %s", client_address)

    def record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def next_id(self) -> int:
        with self._lock:
            return next(self._ids)


class LLMServer:
    """The stand-in server, run on a background thread.

    Args:
        host: The address to listen on; loopback by default.
        port: The port; 0 picks a free one (see :attr:`port` once started).
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self._port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the server is not running")
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        """The server's root URL, e.g. ``http://127.0.0.1:PORT``."""
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The ``base_url`` for the OpenAI client (``.../v1``)."""
        return f"{self.url}/v1"

    @property
    def anthropic_base_url(self) -> str:
        """The ``base_url`` for the Anthropic client (the root; it adds ``/v1``)."""
        return self.url

    @property
    def requests(self) -> list[RecordedRequest]:
        """A copy of the requests received so far, oldest first."""
        if self._server is None:
            return []
        with self._server._lock:
            return list(self._server.requests)

    def clear(self) -> None:
        """Forget the requests received so far."""
        if self._server is not None:
            with self._server._lock:
                self._server.requests.clear()

    def start(self) -> LLMServer:
        """Start listening and serving on a daemon thread.

        Returns:
            The server itself, started.
        """
        if self._server is None:
            self._server = _Server((self.host, self._port))
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.1},
                name="agentops-llm-server",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the listening socket."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> LLMServer:
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()


__all__ = [
    "BEHAVIOUR_HEADER",
    "CREATED",
    "EMBEDDING_DIMENSIONS",
    "Behaviour",
    "LLMServer",
    "RecordedRequest",
    "count_tokens",
    "main",
]


def main(argv: list[str] | None = None) -> None:
    """Run the stand-in server in the foreground until interrupted."""
    parser = argparse.ArgumentParser(description="A deterministic stand-in for the OpenAI and Anthropic APIs.")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback)")
    parser.add_argument("--port", type=int, default=8765, help="port to listen on (0 picks a free one)")
    options = parser.parse_args(argv)
    server = _Server((options.host, options.port))
    port = server.server_address[1]
    print(f"stand-in LLM server listening on http://{options.host}:{port}/v1", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
