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
import logging
import types
from collections.abc import Callable, Iterable, Mapping
from contextvars import Token
from typing import Any

import wrapt
from opentelemetry import context as context_api
from opentelemetry import trace as trace_api
from opentelemetry.context import Context

from agentops import semconv
from agentops._guard import capture_internal_exceptions
from agentops._scopes import mark_failed
from agentops._serialize import to_json
from agentops._state import state
from agentops._traces import TraceContext, close_trace, new_trace, step_out_of_ended_trace
from agentops.semconv import SpanKind, TraceState

logger = logging.getLogger(__name__)
_TRACE_KINDS = frozenset({SpanKind.TRACE, SpanKind.SESSION})


class _Traced(wrapt.FunctionWrapper):  # type: ignore[type-arg,unused-ignore]
    """agentops' wrapper type, so that decorating a class skips methods decorated on their own."""

    def __reduce_ex__(self, protocol: Any) -> Any:
        # Pickled by reference like the plain function it wraps, so a decorated
        # function can still be sent to a multiprocessing pool or a process
        # executor (wrapt's proxies refuse to be pickled by value).
        return self.__qualname__


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
            if self.span.is_recording():
                self.span.set_attributes(spec.attributes)
        else:
            # Attributes at start: samplers and on_start processors see the kind.
            self.span = state.tracer.start_span(spec.span_name, attributes=spec.attributes)
            self.ctx = trace_api.set_span_in_context(self.span)
        if self.span.is_recording():
            with capture_internal_exceptions("decorator start"):
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

    def attach(self) -> Token[Context]:
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
        if exc is not None:
            # Apart from ending: our error handling must never stop the span's end.
            with capture_internal_exceptions("decorator error"):
                mark_failed(self.span, exc)
        with capture_internal_exceptions("decorator finish"):
            if self.trace is not None:
                close_trace(self.trace, TraceState.ERROR if exc is not None else TraceState.SUCCESS)
            else:
                self.span.end()


def _function_of(target: Any) -> Any:
    """The plain function behind a static/class/bound method (for its signature and kind)."""
    if isinstance(target, staticmethod | classmethod | types.MethodType):
        return target.__func__
    return target


class _Spec:
    """What a decorator was asked for: kind, names, attributes; built once per function."""

    __slots__ = ("_names", "_signature", "attributes", "kind", "span_name", "tags")

    def __init__(
        self,
        func: Any,
        kind: str,
        entity_name: str,
        version: Any,
        tags: Any,
        cost: float | None,
    ) -> None:
        self.kind = kind
        self.span_name = f"{entity_name}.{kind}"
        self.tags = tags
        self.attributes: dict[str, Any] = {
            semconv.AGENTOPS_SPAN_KIND: kind,
            semconv.AGENTOPS_ENTITY_NAME: entity_name,
        }
        if version is not None:
            self.attributes[semconv.AGENTOPS_ENTITY_VERSION] = str(version)
        if cost is not None:
            try:
                self.attributes[semconv.AGENTOPS_TOOL_COST] = float(cost)
            except (TypeError, ValueError):
                logger.warning("agentops: cost=%r of %s is not a number; not recorded", cost, entity_name)
        if tags and kind not in _TRACE_KINDS:
            self.attributes[semconv.AGENTOPS_TAGS] = _tag_list(tags)
        try:
            self._signature: inspect.Signature | None = inspect.signature(_function_of(func))
        except (TypeError, ValueError):
            self._signature = None
        # Parameter names when all are plain positional-or-keyword ones: then
        # binding is a zip (Signature.bind is the slow path).
        self._names: tuple[str, ...] | None = None
        if self._signature is not None and all(
            p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD for p in self._signature.parameters.values()
        ):
            self._names = tuple(self._signature.parameters)

    def bind(self, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Arguments by parameter name (so secrets are masked by key), minus ``self``/``cls``.

        ``wrapt`` passes the object (or the class, for a classmethod) a method
        is bound to as ``instance`` and leaves it out of ``args``; it fills the
        function's first parameter, which is not recorded.
        """
        names = self._names
        if names is not None:
            if instance is not None:
                names = names[1:]
            if len(args) <= len(names) and (not kwargs or kwargs.keys() <= set(names[len(args) :])):
                values = dict(zip(names, args, strict=False))  # fewer args than names: defaults
                values.update(kwargs)
                return values
        if self._signature is None:
            return {"args": args, "kwargs": kwargs}
        try:
            if instance is None:
                values = self._signature.bind_partial(*args, **kwargs).arguments
            else:
                values = self._signature.bind_partial(instance, *args, **kwargs).arguments
                values.pop(next(iter(values)))
        except TypeError:
            return {"args": args, "kwargs": kwargs}
        for param in self._signature.parameters.values():
            if param.kind is inspect.Parameter.VAR_KEYWORD and param.name in values:
                values.update(values.pop(param.name))
        return values


def _tag_list(tags: Any) -> list[str]:
    if isinstance(tags, str):
        return [tags]
    if isinstance(tags, Mapping):
        return [f"{k}:{v}" for k, v in tags.items()]
    if isinstance(tags, Iterable):
        return [str(t) for t in tags]
    return [str(tags)]


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
            step_out_of_ended_trace()
        run.output(result)
        run.finish()
        return result

    return wrapper


def _coroutine_wrapper(spec: _Spec) -> Callable[..., Any]:
    async def call(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        # The span starts when the coroutine is first awaited, in the awaiting
        # context: a coroutine that is never awaited never opens a span.
        run = _Run(spec, instance, args, kwargs)
        token = run.attach()
        try:
            result = await wrapped(*args, **kwargs)
        except BaseException as exc:
            run.finish(exc)
            raise
        finally:
            context_api.detach(token)
            step_out_of_ended_trace()
        run.output(result)
        run.finish()
        return result

    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if not _active():
            return wrapped(*args, **kwargs)
        return call(wrapped, instance, args, kwargs)

    return wrapper


def _start_generator(
    parent: Context,
    spec: _Spec,
    wrapped: Callable[..., Any],
    instance: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> tuple[_Run, Any]:
    """Start a generator's span as a child of ``parent`` and create the generator inside it."""
    token = context_api.attach(parent)
    try:
        run = _Run(spec, instance, args, kwargs)
    finally:
        context_api.detach(token)
    token = run.attach()
    try:
        return run, wrapped(*args, **kwargs)
    except BaseException as exc:
        run.finish(exc)
        raise
    finally:
        context_api.detach(token)


def _generator_wrapper(spec: _Spec) -> Callable[..., Any]:
    def steps(
        parent: Context, wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        # The span starts at the first next(), as a child of the context the
        # generator was created in, and is current only while the generator's
        # own code runs, never between yields: it cannot leak into the
        # consumer. Exhaustion, an exception, close() and garbage collection
        # (which closes a suspended generator) all end it.
        run, gen = _start_generator(parent, spec, wrapped, instance, args, kwargs)
        sent: Any = None
        thrown: BaseException | None = None
        count = 0
        try:
            while True:
                token = run.attach()
                try:
                    item = gen.send(sent) if thrown is None else gen.throw(thrown)
                except StopIteration as stop:
                    run.output({"yielded": count, "return": stop.value})
                    return stop.value
                finally:
                    context_api.detach(token)
                    thrown = None
                count += 1
                try:
                    sent = yield item
                except GeneratorExit:
                    token = run.attach()
                    try:
                        gen.close()
                    finally:
                        context_api.detach(token)
                    raise
                except BaseException as exc:  # thrown in by the consumer: pass it on
                    thrown = exc
                    sent = None
        except GeneratorExit:
            run.finish()
            raise
        except BaseException as exc:
            run.finish(exc)
            raise
        finally:
            run.finish()

    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if not _active():
            return wrapped(*args, **kwargs)
        return steps(context_api.get_current(), wrapped, instance, args, kwargs)

    return wrapper


def _async_generator_wrapper(spec: _Spec) -> Callable[..., Any]:
    async def steps(
        parent: Context, wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        # As for generators (see _generator_wrapper).
        run, agen = _start_generator(parent, spec, wrapped, instance, args, kwargs)
        sent: Any = None
        thrown: BaseException | None = None
        count = 0
        try:
            while True:
                token = run.attach()
                try:
                    item = await (agen.asend(sent) if thrown is None else agen.athrow(thrown))
                except StopAsyncIteration:
                    run.output({"yielded": count})
                    return
                finally:
                    context_api.detach(token)
                    thrown = None
                count += 1
                try:
                    sent = yield item
                except GeneratorExit:
                    token = run.attach()
                    try:
                        await agen.aclose()
                    finally:
                        context_api.detach(token)
                    raise
                except BaseException as exc:
                    thrown = exc
                    sent = None
        except GeneratorExit:
            run.finish()
            raise
        except BaseException as exc:
            run.finish(exc)
            raise
        finally:
            run.finish()

    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if not _active():
            return wrapped(*args, **kwargs)
        return steps(context_api.get_current(), wrapped, instance, args, kwargs)

    return wrapper


def _wrap_function(target: Any, spec: _Spec) -> Any:
    func = _function_of(target)
    if inspect.isasyncgenfunction(func):
        wrapper = _async_generator_wrapper(spec)
    elif inspect.iscoroutinefunction(func):
        wrapper = _coroutine_wrapper(spec)
    elif inspect.isgeneratorfunction(func):
        wrapper = _generator_wrapper(spec)
    else:
        wrapper = _sync_wrapper(spec)
    return _Traced(target, wrapper)


def _is_traced(value: Any) -> bool:
    return isinstance(value, _Traced) or isinstance(getattr(value, "__func__", None), _Traced)


def _wrap_class(cls: type, kind: str, name: str | None, version: Any, tags: Any, cost: float | None) -> type:
    """Make every public method defined on ``cls`` (and ``__call__``) a span of ``kind``.

    Methods decorated on their own keep their own decorator only; properties,
    private and inherited methods are left alone. The class itself is
    returned, so ``isinstance`` and subclassing are unaffected.
    """
    owner = name or cls.__name__
    for attr, value in list(vars(cls).items()):
        if (attr.startswith("_") and attr != "__call__") or _is_traced(value):
            continue
        if isinstance(value, staticmethod | classmethod) or inspect.isfunction(value):
            method_name = _function_of(value).__name__
            spec = _Spec(value, kind, f"{owner}.{method_name}", version, tags, cost)
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
            entity_name = name or getattr(_function_of(target), "__name__", None) or type(target).__name__
            return _wrap_function(target, _Spec(target, kind, entity_name, version, tags, cost))

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
