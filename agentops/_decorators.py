"""The decorators: ``@trace @session @agent @tool @operation @task @workflow @guardrail @track_endpoint``.

Each works with and without arguments (``@agent``, ``@agent()``,
``@agent(name="planner", version=2, tags=["x"])``) on functions, coroutine
functions, generator and async generator functions, methods and classes, and
takes AgentOps' keywords: ``name``, ``version``, ``tags``, ``cost``, ``spec``,
``attributes``, ``capture_request``, ``capture_response``. Any other keyword
is a ``TypeError`` at decoration time, so a misspelt option never goes
unnoticed.

A call becomes a span named ``"{name}.{kind}"`` with ``agentops.span.kind``
set, its arguments and result recorded as redacted, size-capped JSON under
AgentOps' names (``agentops.tool.input``/``agentops.tool.output``, per kind;
when content capture is on), and any exception recorded and re-raised
unchanged. ``@trace``, ``@session`` and ``@track_endpoint`` start a trace
(kind ``session``, as AgentOps) instead of a child span. On a class, see
:mod:`agentops._instances`. When each span starts and ends is
:mod:`agentops._wrappers`' business.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextvars import Token
from typing import Any, Protocol, TypeVar, cast, overload

from opentelemetry import context as context_api
from opentelemetry import trace as trace_api
from opentelemetry.context import Context

from agentops import semconv
from agentops._guard import capture_internal_exceptions
from agentops._instances import decorate_class
from agentops._scopes import mark_failed
from agentops._serialize import to_json
from agentops._state import state
from agentops._traces import TraceContext, close_trace, new_trace
from agentops._wrappers import Traced, function_of, wrap_function
from agentops.semconv import SpanKind, TraceState

logger = logging.getLogger(__name__)

#: The kinds whose decorators start a trace rather than a child span.
TRACE_KINDS = frozenset({SpanKind.TRACE, SpanKind.SESSION})
_ATTRIBUTE_TYPES = (str, bool, int, float)
_F = TypeVar("_F", bound=Callable[..., Any])


class SpanRun:
    """One decorated call's span: started, made current per step, finished once.

    Args:
        spec: What the decorator was asked for.
        instance: What ``wrapt`` passes as the bound object (not recorded).
        args: The call's positional arguments.
        kwargs: The call's keyword arguments.
        marker: A ``(key, value)`` to set in the span's context (the agent
            instance a class's span stands for).
    """

    __slots__ = ("ctx", "done", "span", "spec", "trace")

    def __init__(
        self,
        spec: Spec,
        instance: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        marker: tuple[str, Any] | None = None,
    ) -> None:
        self.spec = spec
        self.trace: TraceContext | None = None
        self.done = False
        if spec.kind in TRACE_KINDS:
            self.trace = new_trace(spec.span_name, spec.tags, kind=SpanKind.SESSION)
            self.span = self.trace.span
            self.ctx = self.trace.context
            if self.span.is_recording():
                self.span.set_attributes(spec.attributes)
        else:
            # Attributes at start: samplers and on_start processors see the kind.
            self.span = state.tracer.start_span(spec.span_name, attributes=spec.attributes)
            self.ctx = trace_api.set_span_in_context(self.span)
        if marker is not None:
            self.ctx = context_api.set_value(marker[0], marker[1], self.ctx)
        if spec.capture_input and self.span.is_recording():
            with capture_internal_exceptions("decorator start"):
                config = state.config
                if config is not None and config.capture_content:
                    self.span.set_attribute(
                        spec.input_key,
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
        if self.spec.capture_output and config is not None and config.capture_content and self.span.is_recording():
            with capture_internal_exceptions("decorator output"):
                self.span.set_attribute(
                    self.spec.output_key,
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


class Spec:
    """What a decorator was asked for: kind, names, attributes; built once per function."""

    __slots__ = (
        "_names",
        "_signature",
        "attributes",
        "capture_input",
        "capture_output",
        "input_key",
        "kind",
        "output_key",
        "span_name",
        "tags",
    )

    def __init__(
        self,
        func: Any,
        kind: str,
        entity_name: str,
        *,
        version: Any = None,
        tags: Any = None,
        cost: Any = None,
        spec: Any = None,
        attributes: Mapping[str, Any] | None = None,
        capture_request: bool = True,
        capture_response: bool = True,
    ) -> None:
        self.kind = kind
        self.span_name = f"{entity_name}.{kind}"
        self.tags = tags
        entity_kind = semconv.ENTITY_KIND_ENTITY if kind in TRACE_KINDS else kind
        self.input_key = semconv.AGENTOPS_DECORATOR_INPUT.format(entity_kind=entity_kind)
        self.output_key = semconv.AGENTOPS_DECORATOR_OUTPUT.format(entity_kind=entity_kind)
        self.capture_input = bool(capture_request)
        self.capture_output = bool(capture_response)
        # The user's attributes first: the ones below always win.
        self.attributes: dict[str, Any] = _user_attributes(attributes, entity_name)
        self.attributes.update(
            {
                semconv.AGENTOPS_SPAN_KIND: SpanKind.SESSION if kind in TRACE_KINDS else kind,
                semconv.AGENTOPS_ENTITY_NAME: entity_name,
                semconv.OPERATION_NAME: entity_name,
            }
        )
        if version is not None:
            self.attributes[semconv.AGENTOPS_ENTITY_VERSION] = str(version)
            self.attributes[semconv.OPERATION_VERSION] = (
                version if isinstance(version, _ATTRIBUTE_TYPES) else str(version)
            )
        if cost is not None:
            try:
                self.attributes[semconv.AGENTOPS_TOOL_COST] = float(cost)
                if kind == SpanKind.TOOL:
                    self.attributes[semconv.GEN_AI_USAGE_TOTAL_COST] = float(cost)
            except (TypeError, ValueError):
                logger.warning("agentops: cost=%r of %s is not a number; not recorded", cost, entity_name)
        if spec is not None:
            if kind == SpanKind.GUARDRAIL and spec in ("input", "output"):
                self.attributes[semconv.AGENTOPS_DECORATOR_SPEC.format(entity_kind=kind)] = spec
            else:
                logger.warning(
                    "agentops: spec=%r of %s ignored (a @guardrail's is 'input' or 'output')", spec, entity_name
                )
        if tags and kind not in TRACE_KINDS:
            self.attributes[semconv.AGENTOPS_TAGS] = _tag_list(tags)
        try:
            self._signature: inspect.Signature | None = inspect.signature(function_of(func))
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


def _user_attributes(attributes: Mapping[str, Any] | None, entity_name: str) -> dict[str, Any]:
    """``attributes=`` as span attributes: other values than OpenTelemetry's types are kept as their ``str``."""
    if not attributes:
        return {}
    if not isinstance(attributes, Mapping):
        logger.warning("agentops: attributes=%r of %s is not a mapping; ignored", attributes, entity_name)
        return {}
    result: dict[str, Any] = {}
    for key, value in attributes.items():
        if isinstance(value, _ATTRIBUTE_TYPES):
            result[str(key)] = value
        elif isinstance(value, list | tuple) and value and all(isinstance(v, str) for v in value):
            result[str(key)] = list(value)
        elif value is not None:
            result[str(key)] = str(value)
    return result


def _tag_list(tags: Any) -> list[str]:
    if isinstance(tags, str):
        return [tags]
    if isinstance(tags, Mapping):
        return [f"{k}:{v}" for k, v in tags.items()]
    if isinstance(tags, Iterable):
        return [str(t) for t in tags]
    return [str(tags)]


class EntityDecorator(Protocol):
    """The type of each decorator: usable bare, with a name, or with keywords."""

    @overload
    def __call__(self, wrapped: _F, /) -> _F: ...

    @overload
    def __call__(
        self,
        wrapped: str | None = None,
        /,
        *,
        name: str | None = None,
        version: Any = None,
        tags: Sequence[str] | Mapping[str, Any] | None = None,
        cost: float | None = None,
        spec: str | None = None,
        attributes: Mapping[str, Any] | None = None,
        capture_request: bool = True,
        capture_response: bool = True,
    ) -> Callable[[_F], _F]: ...


#: The keywords every decorator takes (AgentOps 0.4.21's, and ``attributes`` from its documentation).
KEYWORDS = ("name", "version", "tags", "cost", "spec", "attributes", "capture_request", "capture_response")


def _decorator_for(kind: str, public_name: str) -> EntityDecorator:
    def decorator(
        wrapped: Any = None,
        *,
        name: str | None = None,
        version: Any = None,
        tags: Any = None,
        cost: Any = None,
        spec: Any = None,
        attributes: Mapping[str, Any] | None = None,
        capture_request: bool = True,
        capture_response: bool = True,
        **unknown: Any,
    ) -> Any:
        if unknown:
            raise TypeError(
                f"@{public_name}() got an unexpected keyword argument {next(iter(unknown))!r} "
                f"(it takes {', '.join(KEYWORDS)})"
            )
        if isinstance(wrapped, str):  # @trace("name")
            name, wrapped = wrapped, None
        options: dict[str, Any] = {
            "version": version,
            "tags": tags,
            "cost": cost,
            "spec": spec,
            "attributes": attributes,
            "capture_request": capture_request,
            "capture_response": capture_response,
        }

        def make_spec(target: Any, entity_name: str) -> Spec:
            return Spec(target, kind, entity_name, **options)

        def apply(target: Any) -> Any:
            if inspect.isclass(target):
                return decorate_class(target, name, make_spec, SpanRun, per_instance=kind not in TRACE_KINDS)
            entity_name = name or getattr(function_of(target), "__name__", None) or type(target).__name__
            spec_ = make_spec(target, entity_name)
            return wrap_function(target, lambda instance, args, kwargs: SpanRun(spec_, instance, args, kwargs))

        return apply if wrapped is None else apply(wrapped)

    decorator.__name__ = public_name
    decorator.__qualname__ = public_name
    decorator.__doc__ = (
        f"Record each call of the decorated callable as a ``{kind}`` span"
        f"{' starting a trace' if kind in TRACE_KINDS else ''}.\n\n"
        f"Usable bare, with a name (``@{public_name}('name')``) or with the keywords "
        f"{', '.join(KEYWORDS)}; any other keyword raises ``TypeError``."
    )
    return cast(EntityDecorator, decorator)


trace = _decorator_for(SpanKind.SESSION, "trace")
session = _decorator_for(SpanKind.SESSION, "session")
track_endpoint = _decorator_for(SpanKind.SESSION, "track_endpoint")
agent = _decorator_for(SpanKind.AGENT, "agent")
tool = _decorator_for(SpanKind.TOOL, "tool")
operation = _decorator_for(SpanKind.OPERATION, "operation")
task = _decorator_for(SpanKind.TASK, "task")
workflow = _decorator_for(SpanKind.WORKFLOW, "workflow")
guardrail = _decorator_for(SpanKind.GUARDRAIL, "guardrail")

__all__ = [
    "KEYWORDS",
    "TRACE_KINDS",
    "EntityDecorator",
    "SpanRun",
    "Spec",
    "Traced",
    "agent",
    "guardrail",
    "operation",
    "session",
    "task",
    "tool",
    "trace",
    "track_endpoint",
    "workflow",
]
