"""What the LLM-client integrations share: the call span, stream proxies, patching.

An integration describes one API with an :class:`Adapter` (what to read from
the request, the response and the stream's items); :func:`sync_wrapper` and
:func:`async_wrapper` turn it into ``wrapt`` wrappers that

* call the original untouched when agentops is not initialised;
* start a ``CLIENT`` span named ``"{operation} {model}"``, a child of the
  caller's current context, and keep it current only while the request is
  being sent (so the HTTP client's own spans nest under it);
* record the response, or the client's exception (re-raised unchanged);
* hand a stream back inside a :class:`StreamProxy` / :class:`AsyncStreamProxy`,
  which is still an instance of the client's stream class and ends the span
  when the stream is exhausted, fails, is closed, or is garbage-collected;
  on the way it times the stream (first chunk, first token, chunk count);
* read the body of a ``with_raw_response`` call (already read by the client)
  to record it like a parsed response;
* just before the span ends, flag how the answer ended (cut short, filtered,
  tool calls) and price the call (:mod:`agentops._pricing`), so every
  exporter carries the cost.

All of agentops' own work runs inside ``capture_internal_exceptions``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import wrapt
from opentelemetry import context as context_api
from opentelemetry import trace as trace_api
from opentelemetry.trace import SpanKind as OtelSpanKind

from agentops import _pricing, semconv
from agentops._guard import capture_internal_exceptions
from agentops._scopes import mark_failed
from agentops._serialize import to_json
from agentops._state import get_tracer, state

logger = logging.getLogger(__name__)


def is_active() -> bool:
    """Whether agentops is initialised (otherwise wrappers call the original untouched)."""
    return state.config is not None


def given(value: Any) -> bool:
    """False for ``None`` and the clients' "not given" sentinels (``omit``, ``NOT_GIVEN``)."""
    if value is None:
        return False
    # openai/anthropic ``NotGiven``/``Omit`` are falsy singletons without a useful value.
    return type(value).__name__ not in {"NotGiven", "Omit"}


def as_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def as_float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    return float(value) if isinstance(value, int | float) else None


def plain_list(value: Any) -> list[Any] | None:
    """``value`` as a list if it can be read without consuming it (never a generator)."""
    if isinstance(value, list | tuple):
        return list(value)
    return None


def as_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def get(value: Any, name: str) -> Any:
    """``value.name`` or ``value[name]``: request parameters may be dicts or the clients' objects."""
    if isinstance(value, Mapping):
        return value.get(name)
    return getattr(value, name, None)


def strings(value: Any) -> list[str] | None:
    """A string or a list of strings as a list (``stop="\\n"`` -> ``["\\n"]``)."""
    if isinstance(value, str):
        return [value]
    items = plain_list(value)
    if items and all(isinstance(item, str) for item in items):
        return items
    return None


def tool_names(tools: Any) -> list[str] | None:
    """Names of the tools offered: function tools by name, built-in tools by type."""
    names = []
    for tool in plain_list(tools) or ():
        function = get(tool, "function")
        name = get(function, "name") if function is not None else None
        name = name or get(tool, "name") or get(tool, "type")
        if isinstance(name, str) and name:
            names.append(name)
    return names or None


def request_parameters(kwargs: Mapping[str, Any]) -> Mapping[str, Any]:
    """The call's keyword arguments over its ``extra_body`` (where parameters the client lacks are sent)."""
    extra = kwargs.get("extra_body")
    if isinstance(extra, Mapping) and extra:
        return {**extra, **{key: value for key, value in kwargs.items() if given(value)}}
    return kwargs


def common_request_attributes(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The request parameters most APIs share, under OpenTelemetry's names."""
    choices = as_int(kwargs.get("n"))
    tool_choice = kwargs.get("tool_choice")
    return {
        semconv.GEN_AI_REQUEST_TEMPERATURE: as_float(kwargs.get("temperature")),
        semconv.GEN_AI_REQUEST_TOP_P: as_float(kwargs.get("top_p")),
        semconv.GEN_AI_REQUEST_FREQUENCY_PENALTY: as_float(kwargs.get("frequency_penalty")),
        semconv.GEN_AI_REQUEST_PRESENCE_PENALTY: as_float(kwargs.get("presence_penalty")),
        semconv.GEN_AI_REQUEST_SEED: as_int(kwargs.get("seed")),
        semconv.GEN_AI_REQUEST_CHOICE_COUNT: choices if choices is not None and choices != 1 else None,
        semconv.AGENTOPS_REQUEST_TOOL_NAMES: tool_names(kwargs.get("tools")),
        semconv.AGENTOPS_REQUEST_TOOL_CHOICE: tool_choice if isinstance(tool_choice, str) else None,
    }


#: Finish reasons (of any API) that flag an answer cut short, filtered, or ending in tool calls.
TRUNCATED = frozenset({"length", "max_tokens", "max_output_tokens", "model_context_window_exceeded"})
FILTERED = frozenset({"content_filter", "refusal"})
TOOL_CALLS = frozenset({"tool_calls", "function_call", "tool_use"})


def finish_flags(reasons: Any) -> dict[str, Any]:
    """The ``agentops.response.*`` flags for a list of finish reasons (only those that are true)."""
    flags: dict[str, Any] = {}
    for reason in reasons or ():
        if reason in TRUNCATED:
            flags[semconv.AGENTOPS_RESPONSE_TRUNCATED] = True
        elif reason in FILTERED:
            flags[semconv.AGENTOPS_RESPONSE_FILTERED] = True
        elif reason in TOOL_CALLS:
            flags[semconv.AGENTOPS_RESPONSE_TOOL_CALLS] = True
    return flags


class Fields(dict[str, Any]):
    """A JSON object whose keys read as attributes, as the clients' response objects do (``None`` if absent)."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return self.get(name)


def raw_body_possible(result: Any) -> bool:
    """Whether ``result`` is a client's raw response (``with_raw_response``) rather than a parsed one."""
    return hasattr(result, "http_response") and hasattr(result, "parse")


def raw_body(result: Any) -> Any:
    """The JSON body of a ``with_raw_response`` result, if the client has read it already, else None.

    The clients read the whole body of a call that is not streamed before they
    return; a streamed body (``stream=True``, ``with_streaming_response``) is
    left for the caller to read, and so never touched here.
    """
    http_response = getattr(result, "http_response", None)
    if http_response is None or not getattr(http_response, "is_closed", False):
        return None
    try:
        content = http_response.content
    except Exception:  # closed without being read: nothing to record, not our error
        return None
    try:
        return json.loads(content, object_hook=Fields)
    except ValueError:
        return None


class Accumulator:
    """Collects a stream's items into the attributes of the call span, and times them.

    Subclasses take each item in :meth:`add`, set :attr:`produced` once an
    item carries generated output (text, tool arguments, reasoning), and, in
    :meth:`finish`, set :attr:`attributes` (span attributes) and
    :attr:`output` (the messages).
    """

    def __init__(self) -> None:
        self.attributes: dict[str, Any] = {}
        #: The output messages seen so far (recorded when content capture is on).
        self.output: list[dict[str, Any]] | None = None
        #: Whether an item with generated output has been seen.
        self.produced = False
        self.chunks = 0
        self.first_chunk_at: float | None = None
        self.first_output_at: float | None = None
        self.last_at: float | None = None

    def observe(self, item: Any) -> None:
        """Count and time one item, then :meth:`add` it."""
        now = time.perf_counter()
        self.chunks += 1
        if self.first_chunk_at is None:
            self.first_chunk_at = now
        self.last_at = now
        self.add(item)
        if self.first_output_at is None and self.produced:
            self.first_output_at = now

    def timing(self, started: float) -> dict[str, Any]:
        """The stream's shape: chunks, seconds to the first chunk and token, seconds generating."""
        timing: dict[str, Any] = {semconv.GEN_AI_STREAMING_CHUNK_COUNT: self.chunks}
        if self.first_chunk_at is not None:
            timing[semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] = self.first_chunk_at - started
        if self.first_output_at is not None and self.last_at is not None:
            timing[semconv.GEN_AI_STREAMING_TIME_TO_FIRST_TOKEN] = self.first_output_at - started
            timing[semconv.GEN_AI_STREAMING_TIME_TO_GENERATE] = self.last_at - self.first_output_at
        return timing

    def add(self, item: Any) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        """Called once, before the span ends, to settle what was collected."""


class Adapter:
    """How one API's calls become spans. Subclasses override the readers.

    Attributes:
        system: ``gen_ai.system`` (``"openai"``, ``"anthropic"``).
        operation: ``gen_ai.operation.name`` (``"chat"``).
        stream_types: The client's stream classes; a result of one of them is proxied.
    """

    system = ""
    operation = "chat"
    stream_types: tuple[type, ...] = ()

    def request_attributes(self, kwargs: Mapping[str, Any]) -> dict[str, Any]:
        """Attributes read from the call's keyword arguments (model, limits...)."""
        return {}

    def input_messages(self, kwargs: Mapping[str, Any]) -> list[Any] | None:
        """The request's messages for ``gen_ai.input.messages``, or None."""
        return None

    def response_attributes(self, result: Any) -> dict[str, Any]:
        """Attributes read from a complete (non-streamed) response."""
        return {}

    def output_messages(self, result: Any) -> list[Any] | None:
        """The response's messages for ``gen_ai.output.messages``, or None."""
        return None

    def accumulator(self, kwargs: Mapping[str, Any]) -> Accumulator:
        raise NotImplementedError

    def is_stream(self, result: Any) -> bool:
        return bool(self.stream_types) and isinstance(result, self.stream_types)


def _content_json(produce: Callable[[], Any]) -> str | None:
    """JSON of what ``produce()`` returns, or None when content capture is off (then it is not called)."""
    config = state.config
    if config is None or not config.capture_content:
        return None
    value = produce()
    if value is None:
        return None
    return to_json(value, redact_keys=config.redact_keys, max_size=config.max_payload_size)


def _clean(attributes: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in attributes.items() if value is not None and value != []}


class LLMCall:
    """One LLM call's span, from request to response; finished exactly once."""

    __slots__ = ("_lock", "adapter", "context", "done", "request", "span", "started", "stream")

    def __init__(self, adapter: Adapter, kwargs: Mapping[str, Any], stream: bool) -> None:
        self.adapter = adapter
        self.done = False
        self.stream = stream
        self._lock = threading.Lock()
        self.started = time.perf_counter()
        attributes = {
            semconv.AGENTOPS_SPAN_KIND: semconv.SpanKind.LLM,
            semconv.GEN_AI_SYSTEM: adapter.system,
            semconv.GEN_AI_OPERATION_NAME: adapter.operation,
            semconv.GEN_AI_REQUEST_STREAM: stream,
            **adapter.request_attributes(request_parameters(kwargs)),
        }
        #: The request's attributes, which pricing reads with the response's.
        self.request = _clean(attributes)
        model = attributes.get(semconv.GEN_AI_REQUEST_MODEL)
        name = f"{adapter.operation} {model}" if model else adapter.operation
        self.span = get_tracer().start_span(name, kind=OtelSpanKind.CLIENT, attributes=self.request)
        self.context = trace_api.set_span_in_context(self.span)
        # Guarded apart: the span has started, so a failure here must not lose it.
        with capture_internal_exceptions(f"{adapter.system} request content"):
            if self.span.is_recording():
                messages = _content_json(lambda: adapter.input_messages(kwargs))
                if messages is not None:
                    self.span.set_attribute(semconv.GEN_AI_INPUT_MESSAGES, messages)

    def _claim(self) -> bool:
        with self._lock:
            if self.done:
                return False
            self.done = True
            return True

    def _settle(self, found: Mapping[str, Any], failed: bool = False) -> dict[str, Any]:
        """What the response adds to the span: ``found``, the finish flags, tokens per second, the cost."""
        attributes = _clean(found)
        attributes.update(finish_flags(attributes.get(semconv.GEN_AI_RESPONSE_FINISH_REASONS)))
        generating = attributes.get(semconv.GEN_AI_STREAMING_TIME_TO_GENERATE)
        output_tokens = attributes.get(semconv.GEN_AI_USAGE_OUTPUT_TOKENS)
        if isinstance(output_tokens, int) and output_tokens > 0 and isinstance(generating, float) and generating > 0:
            attributes[semconv.GEN_AI_STREAMING_TOKENS_PER_SECOND] = output_tokens / generating
        everything = {**self.request, **attributes}
        # A failed call is priced only for the usage it reported (a stream that broke midway).
        if not failed or _pricing.usage_counts(everything) is not None:
            with capture_internal_exceptions(f"{self.adapter.system} pricing"):
                start_time = getattr(self.span, "start_time", None)
                attributes.update(_pricing.cost_attributes(self.adapter.system, everything, start_time))
        return attributes

    def succeed(self, result: Any) -> None:
        """Record a complete response and end the span."""
        if not self._claim():
            return
        with capture_internal_exceptions(f"{self.adapter.system} response"):
            if self.span.is_recording():
                if not self.stream and raw_body_possible(result):
                    # with_raw_response: the body the client read, recorded like a parsed response.
                    result = raw_body(result) or result
                self.span.set_attributes(self._settle(self.adapter.response_attributes(result)))
                messages = _content_json(lambda: self.adapter.output_messages(result))
                if messages is not None:
                    self.span.set_attribute(semconv.GEN_AI_OUTPUT_MESSAGES, messages)
        self.span.end()

    def fail(self, exc: BaseException) -> None:
        """Record the client's exception (status ERROR, ``error.type``, an event) and end the span."""
        if not self._claim():
            return
        with capture_internal_exceptions(f"{self.adapter.system} error"):
            mark_failed(self.span, exc)
            status_code = as_int(getattr(exc, "status_code", None))
            if status_code is not None and self.span.is_recording():
                self.span.set_attribute(semconv.HTTP_RESPONSE_STATUS_CODE, status_code)
        self.span.end()

    def finish_stream(self, accumulator: Accumulator, exc: BaseException | None = None) -> None:
        """Record what a stream delivered (and its failure, if any) and end the span."""
        if exc is not None:
            with capture_internal_exceptions(f"{self.adapter.system} stream"):
                accumulator.finish()
                if self.span.is_recording() and not self.done:
                    found = {**accumulator.attributes, **accumulator.timing(self.started)}
                    self.span.set_attributes(self._settle(found, failed=True))
            self.fail(exc)
            return
        if not self._claim():
            return
        with capture_internal_exceptions(f"{self.adapter.system} stream"):
            accumulator.finish()
            if self.span.is_recording():
                self.span.set_attributes(self._settle({**accumulator.attributes, **accumulator.timing(self.started)}))
                messages = _content_json(lambda: accumulator.output)
                if messages is not None:
                    self.span.set_attribute(semconv.GEN_AI_OUTPUT_MESSAGES, messages)
        self.span.end()


def start_call(adapter: Adapter, kwargs: Mapping[str, Any]) -> LLMCall | None:
    call = None
    with capture_internal_exceptions(f"{adapter.system} call start"):
        call = LLMCall(adapter, kwargs, stream=kwargs.get("stream") is True)
    return call


def handle_result(call: LLMCall, kwargs: Mapping[str, Any], result: Any) -> Any:
    """Record a returned result; a stream comes back inside a proxy that ends the span later."""
    proxy = None
    with capture_internal_exceptions(f"{call.adapter.system} result"):
        if call.adapter.is_stream(result):
            accumulator = call.adapter.accumulator(kwargs)
            proxy_type = AsyncStreamProxy if hasattr(result, "__anext__") else StreamProxy
            proxy = proxy_type(result, call, accumulator)
    if proxy is not None:
        return proxy
    # Not a stream (or the proxy failed): the call is complete now.
    call.succeed(result)
    return result


def sync_wrapper(adapter: Adapter) -> Callable[..., Any]:
    """A ``wrapt`` wrapper recording each call of a synchronous client method."""

    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if not is_active():
            return wrapped(*args, **kwargs)
        call = start_call(adapter, kwargs)
        if call is None:
            return wrapped(*args, **kwargs)
        token = context_api.attach(call.context)
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as exc:
            call.fail(exc)
            raise
        finally:
            context_api.detach(token)
        return handle_result(call, kwargs, result)

    return wrapper


def async_wrapper(adapter: Adapter) -> Callable[..., Any]:
    """A ``wrapt`` wrapper recording each call of an ``async def`` client method."""

    async def traced(wrapped: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        call = start_call(adapter, kwargs)
        if call is None:
            return await wrapped(*args, **kwargs)
        token = context_api.attach(call.context)
        try:
            result = await wrapped(*args, **kwargs)
        except BaseException as exc:
            call.fail(exc)
            raise
        finally:
            context_api.detach(token)
        return handle_result(call, kwargs, result)

    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if not is_active():
            return wrapped(*args, **kwargs)
        return traced(wrapped, args, kwargs)

    return wrapper


class _ObservedStream(wrapt.ObjectProxy):  # type: ignore[misc,type-arg,unused-ignore]
    """What both stream proxies share: each item goes to the accumulator, the span ends once."""

    def __init__(self, stream: Any, call: LLMCall, accumulator: Accumulator) -> None:
        super().__init__(stream)
        self._self_call = call
        self._self_accumulator = accumulator

    def _self_observe(self, item: Any) -> None:
        with capture_internal_exceptions("LLM stream item"):
            self._self_accumulator.observe(item)

    def _self_end(self, exc: BaseException | None = None) -> None:
        call = self._self_call
        if not call.done:
            call.finish_stream(self._self_accumulator, exc)


class StreamProxy(_ObservedStream):
    """A client's synchronous stream, observed: still an instance of its class.

    The call span ends when iteration stops (exhausted or failed), on
    ``close()``, when a ``with`` block exits, or when the proxy is collected.
    The span is never made current between items.
    """

    def __iter__(self) -> StreamProxy:
        return self

    def __next__(self) -> Any:
        try:
            item = self.__wrapped__.__next__()
        except StopIteration:
            self._self_end()
            raise
        except BaseException as exc:
            self._self_end(exc)
            raise
        self._self_observe(item)
        return item

    def __enter__(self) -> StreamProxy:
        self.__wrapped__.__enter__()
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> Any:
        try:
            return self.__wrapped__.__exit__(exc_type, exc, tb)
        finally:
            self._self_end()

    def close(self) -> None:
        try:
            self.__wrapped__.close()
        finally:
            self._self_end()

    def __del__(self) -> None:
        with capture_internal_exceptions("stream proxy collected"):
            self._self_end()


class AsyncStreamProxy(_ObservedStream):
    """A client's asynchronous stream, observed (see :class:`StreamProxy`)."""

    def __aiter__(self) -> AsyncStreamProxy:
        return self

    async def __anext__(self) -> Any:
        try:
            item = await self.__wrapped__.__anext__()
        except StopAsyncIteration:
            self._self_end()
            raise
        except BaseException as exc:
            self._self_end(exc)
            raise
        self._self_observe(item)
        return item

    async def __aenter__(self) -> AsyncStreamProxy:
        await self.__wrapped__.__aenter__()
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> Any:
        try:
            return await self.__wrapped__.__aexit__(exc_type, exc, tb)
        finally:
            self._self_end()

    async def close(self) -> None:
        try:
            await self.__wrapped__.close()
        finally:
            self._self_end()

    def __del__(self) -> None:
        with capture_internal_exceptions("stream proxy collected"):
            self._self_end()


def end_proxied_stream(stream: Any) -> None:
    """End the call span of ``stream`` if it is one of our proxies (else do nothing)."""
    if isinstance(stream, StreamProxy | AsyncStreamProxy):
        stream._self_end()


class Patcher:
    """Applies ``wrapt`` patches to classes and takes them off again.

    Args:
        name: The integration's name, for log lines.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = threading.Lock()
        self._patched: list[tuple[type, str, Any]] = []

    @property
    def active(self) -> bool:
        return bool(self._patched)

    def wrap(self, owner: type, attribute: str, wrapper: Callable[..., Any]) -> None:
        """Wrap ``owner.attribute`` (a method defined on ``owner``) with ``wrapper``."""
        original = owner.__dict__[attribute]
        wrapt.wrap_function_wrapper(owner, attribute, wrapper)
        with self._lock:
            self._patched.append((owner, attribute, original))

    def unwrap_all(self) -> None:
        """Restore every original this patcher replaced, newest first."""
        with self._lock:
            patched, self._patched = self._patched, []
        for owner, attribute, original in reversed(patched):
            with capture_internal_exceptions(f"uninstrumenting {self.name}"):
                setattr(owner, attribute, original)
