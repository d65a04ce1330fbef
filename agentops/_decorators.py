"""The decorators: ``@trace @session @agent @tool @operation @task @workflow @guardrail``.

Each works with and without arguments (``@agent``, ``@agent()``,
``@agent(name="planner", version=2, tags=["x"])``) on functions, coroutine
functions, generator and async generator functions, methods, and classes
(every public method of a decorated class becomes a span of that kind).

A call becomes a span named ``"{name}.{kind}"`` with ``agentops.span.kind``
set, its arguments and result recorded as redacted, size-capped JSON (when
content capture is on), and any exception recorded and re-raised unchanged.
``@trace``/``@session`` start a trace instead of a child span. A generator's
span ends when it is exhausted, closed or garbage-collected.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

import wrapt
from opentelemetry import context as context_api
from opentelemetry import trace as trace_api
from opentelemetry.trace import Status, StatusCode

from agentops import semconv
from agentops._guard import capture_internal_exceptions
from agentops._serialize import to_json
from agentops._state import state
from agentops._traces import TraceContext, close_trace, new_trace
from agentops.semconv import SpanKind, TraceState

F = TypeVar("F", bound=Callable[..., Any])
_TRACE_KINDS = frozenset({SpanKind.TRACE, SpanKind.SESSION})


class _Run:
    """One decorated call's span: started, made current per step, finished once."""

    __slots__ = ("ctx", "done", "span", "trace")

    def __init__(self, spec: _Spec, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.trace: TraceContext | None = None
        self.done = False
        if spec.kind in _TRACE_KINDS:
            self.trace = new_trace(spec.span_name, spec.tags, kind=spec.kind)
            self.span = self.trace.span
            self.ctx = self.trace.context
        else:
            self.span = state.tracer.start_span(spec.span_name)
            self.ctx = trace_api.set_span_in_context(self.span)
        if self.span.is_recording():
            with capture_internal_exceptions("decorator start"):
                self.span.set_attributes(spec.attributes)
                config = state.config
                if config is not None and config.capture_content:
                    self.span.set_attribute(
                        semconv.AGENTOPS_ENTITY_INPUT,
                        to_json(
                            spec.bind(instance, args, kwargs),
                            redact_keys=config.redact_keys,
                            max_size=config.max_payload_size,
                        ),
                    )

    def attach(self) -> object:
        return context_api.attach(self.ctx)

    def output(self, value: Any) -> None:
        config = state.config
        if config is not None and config.capture_content and self.span.is_recording():
            with capture_internal_exceptions("decorator output"):
                self.span.set_attribute(
                    semconv.AGENTOPS_ENTITY_OUTPUT,
                    to_json(value, redact_keys=config.redact_keys, max_size=config.max_payload_size),
                )

    def finish(self, exc: BaseException | None = None) -> None:
        if self.done:
            return
        self.done = True
        with capture_internal_exceptions("decorator finish"):
            if exc is not None and self.span.is_recording():
                self.span.record_exception(exc)
                self.span.set_attribute(semconv.ERROR_TYPE, type(exc).__qualname__)
                self.span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"[:1024]))
            if self.trace is not None:
                close_trace(self.trace, TraceState.ERROR if exc is not None else TraceState.SUCCESS)
            else:
                self.span.end()


class _Spec:
    """What a decorator was asked for: kind, names, attributes; built once."""

    __slots__ = ("_signature", "_skip_first", "attributes", "kind", "span_name", "tags")

    def __init__(
        self,
        func: Callable[..., Any],
        kind: str,
        name: str | None,
        version: Any,
        tags: Any,
        cost: float | None,
        method_of: str | None = None,
    ) -> None:
        base = name or getattr(func, "__name__", "call")
        if method_of and not name:
            base = f"{method_of}.{base}"
        self.kind = kind
        self.span_name = f"{base}.{kind}"
        self.tags = tags
        self.attributes: dict[str, Any] = {
            semconv.AGENTOPS_SPAN_KIND: kind,
            semconv.AGENTOPS_ENTITY_NAME: base,
        }
        if version is not None:
            self.attributes[semconv.AGENTOPS_ENTITY_VERSION] = str(version)
        if cost is not None:
            self.attributes[semconv.AGENTOPS_TOOL_COST] = float(cost)
        if tags and kind not in _TRACE_KINDS:
            self.attributes[semconv.AGENTOPS_TAGS] = [str(t) for t in tags]
        try:
            self._signature: inspect.Signature | None = inspect.signature(func)
        except (TypeError, ValueError):
            self._signature = None
        self._skip_first = method_of is not None

    def bind(self, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Arguments by parameter name (so secrets are masked by key), minus ``self``."""
        if self._signature is None:
            return {"args": args, "kwargs": kwargs}
        try:
            call_args = (instance, *args) if self._skip_first and instance is not None else args
            bound = self._signature.bind_partial(*call_args, **kwargs)
        except TypeError:
            return {"args": args, "kwargs": kwargs}
        values = dict(bound.arguments)
        if self._skip_first and values:
            values.pop(next(iter(values)))
        for param in self._signature.parameters.values():
            if param.kind is inspect.Parameter.VAR_KEYWORD and param.name in values:
                values.update(values.pop(param.name))
        return values


def _active() -> bool:
    return state.config is not None


def _sync_wrapper(spec: _Spec) -> Callable[..., Any]:
    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if not _active():
            return wrapped(*args, **kwargs)
        run = _Run(spec, instance, args, kwargs)
        token = run.attach()
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as exc:
            run.finish(exc)
            raise
        finally:
            context_api.detach(token)
        run.output(result)
        run.finish()
        return result

    return wrapper


def _coroutine_wrapper(spec: _Spec) -> Callable[..., Any]:
    async def call(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if not _active():
            return await wrapped(*args, **kwargs)
        run = _Run(spec, instance, args, kwargs)
        token = run.attach()
        try:
            result = await wrapped(*args, **kwargs)
        except BaseException as exc:
            run.finish(exc)
            raise
        finally:
            context_api.detach(token)
        run.output(result)
        run.finish()
        return result

    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        return call(wrapped, instance, args, kwargs)

    return wrapper


def _generator_wrapper(spec: _Spec) -> Callable[..., Any]:
    def steps(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if not _active():
            return (yield from wrapped(*args, **kwargs))
        run = _Run(spec, instance, args, kwargs)
        # The span is current only while the generator's own code runs, never
        # between yields, so it cannot leak into the consumer's context.
        token = run.attach()
        try:
            gen = wrapped(*args, **kwargs)
        finally:
            context_api.detach(token)
        sent: Any = None
        thrown: BaseException | None = None
        count = 0
        try:
            while True:
                token = run.attach()
                try:
                    item = gen.throw(thrown) if thrown is not None else gen.send(sent)
                except StopIteration as stop:
                    run.output({"yielded": count, "return": stop.value})
                    run.finish()
                    return stop.value
                finally:
                    context_api.detach(token)
                    thrown = None
                count += 1
                try:
                    sent = yield item
                except GeneratorExit:
                    gen.close()
                    raise
                except BaseException as exc:  # thrown in by the consumer
                    thrown = exc
        except GeneratorExit:
            run.finish()
            raise
        except BaseException as exc:
            run.finish(exc)
            raise
        finally:
            run.finish()

    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        return steps(wrapped, instance, args, kwargs)

    return wrapper


def _async_generator_wrapper(spec: _Spec) -> Callable[..., Any]:
    async def steps(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if not _active():
            async for item in wrapped(*args, **kwargs):
                yield item
            return
        run = _Run(spec, instance, args, kwargs)
        token = run.attach()
        try:
            agen = wrapped(*args, **kwargs)
        finally:
            context_api.detach(token)
        sent: Any = None
        thrown: BaseException | None = None
        count = 0
        try:
            while True:
                token = run.attach()
                try:
                    item = await (agen.athrow(thrown) if thrown is not None else agen.asend(sent))
                except StopAsyncIteration:
                    run.output({"yielded": count})
                    run.finish()
                    return
                finally:
                    context_api.detach(token)
                    thrown = None
                count += 1
                try:
                    sent = yield item
                except GeneratorExit:
                    await agen.aclose()
                    raise
                except BaseException as exc:
                    thrown = exc
        except GeneratorExit:
            run.finish()
            raise
        except BaseException as exc:
            run.finish(exc)
            raise
        finally:
            run.finish()

    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        return steps(wrapped, instance, args, kwargs)

    return wrapper


def _wrap_function(func: Callable[..., Any], spec: _Spec) -> Any:
    if inspect.isasyncgenfunction(func):
        wrapper = _async_generator_wrapper(spec)
    elif inspect.iscoroutinefunction(func):
        wrapper = _coroutine_wrapper(spec)
    elif inspect.isgeneratorfunction(func):
        wrapper = _generator_wrapper(spec)
    else:
        wrapper = _sync_wrapper(spec)
    return wrapt.FunctionWrapper(func, wrapper)


def _wrap_class(cls: type, kind: str, name: str | None, version: Any, tags: Any, cost: float | None) -> type:
    owner = name or cls.__name__
    for attr, value in list(vars(cls).items()):
        if attr.startswith("_") and attr != "__call__":
            continue
        if isinstance(value, staticmethod | classmethod):
            func = value.__func__
            spec = _Spec(func, kind, None, version, tags, cost, method_of=None)
            spec.span_name = f"{owner}.{func.__name__}.{kind}"
            spec.attributes[semconv.AGENTOPS_ENTITY_NAME] = f"{owner}.{func.__name__}"
            setattr(cls, attr, type(value)(_wrap_function(func, spec)))
        elif inspect.isfunction(value):
            spec = _Spec(value, kind, None, version, tags, cost, method_of=owner)
            setattr(cls, attr, _wrap_function(value, spec))
    return cls


def _decorator_for(kind: str) -> Callable[..., Any]:
    def decorator(
        func: Any = None,
        *,
        name: str | None = None,
        version: Any = None,
        tags: Any = None,
        cost: float | None = None,
        **_ignored: Any,
    ) -> Any:
        if isinstance(func, str):  # @trace("name")
            name, func = func, None

        def apply(target: Any) -> Any:
            if inspect.isclass(target):
                return _wrap_class(target, kind, name, version, tags, cost)
            return _wrap_function(target, _Spec(target, kind, name, version, tags, cost))

        return apply if func is None else apply(func)

    decorator.__name__ = kind
    decorator.__qualname__ = kind
    decorator.__doc__ = (
        f"Record each call of the decorated callable as a ``{kind}`` span.\n\n"
        "Usable bare or with ``name``, ``version``, ``tags`` (and ``cost`` for tools)."
    )
    return functools.update_wrapper(decorator, decorator, assigned=(), updated=())


trace = _decorator_for(SpanKind.TRACE)
session = _decorator_for(SpanKind.SESSION)
agent = _decorator_for(SpanKind.AGENT)
tool = _decorator_for(SpanKind.TOOL)
operation = _decorator_for(SpanKind.OPERATION)
task = _decorator_for(SpanKind.TASK)
workflow = _decorator_for(SpanKind.WORKFLOW)
guardrail = _decorator_for(SpanKind.GUARDRAIL)
