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
  when the stream is exhausted, fails, is closed, or is garbage-collected.

All of agentops' own work runs inside ``capture_internal_exceptions``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

import wrapt
from opentelemetry import context as context_api
from opentelemetry import trace as trace_api
from opentelemetry.trace import SpanKind as OtelSpanKind

from agentops import semconv
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


class Accumulator:
    """Collects a stream's items into the attributes of the call span.

    Subclasses take each item in :meth:`add` and, in :meth:`finish`, set
    :attr:`attributes` (span attributes) and :attr:`output` (the messages).
    """

    def __init__(self) -> None:
        self.attributes: dict[str, Any] = {}
        #: The output messages seen so far (recorded when content capture is on).
        self.output: list[dict[str, Any]] | None = None

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

    __slots__ = ("_lock", "adapter", "context", "done", "span")

    def __init__(self, adapter: Adapter, kwargs: Mapping[str, Any], stream: bool) -> None:
        self.adapter = adapter
        self.done = False
        self._lock = threading.Lock()
        attributes = {
            semconv.AGENTOPS_SPAN_KIND: semconv.SpanKind.LLM,
            semconv.GEN_AI_SYSTEM: adapter.system,
            semconv.GEN_AI_OPERATION_NAME: adapter.operation,
            semconv.GEN_AI_REQUEST_STREAM: stream,
            **adapter.request_attributes(kwargs),
        }
        model = attributes.get(semconv.GEN_AI_REQUEST_MODEL)
        name = f"{adapter.operation} {model}" if model else adapter.operation
        self.span = get_tracer().start_span(name, kind=OtelSpanKind.CLIENT, attributes=_clean(attributes))
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

    def succeed(self, result: Any) -> None:
        """Record a complete response and end the span."""
        if not self._claim():
            return
        with capture_internal_exceptions(f"{self.adapter.system} response"):
            if self.span.is_recording():
                self.span.set_attributes(_clean(self.adapter.response_attributes(result)))
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
                if self.span.is_recording():
                    self.span.set_attributes(_clean(accumulator.attributes))
            self.fail(exc)
            return
        if not self._claim():
            return
        with capture_internal_exceptions(f"{self.adapter.system} stream"):
            accumulator.finish()
            if self.span.is_recording():
                self.span.set_attributes(_clean(accumulator.attributes))
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
            self._self_accumulator.add(item)

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
