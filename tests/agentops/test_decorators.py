"""Specification of the decorators ``@trace @session @agent @tool @operation @task @workflow @guardrail``.

A decorated call becomes one span named ``"{name}.{kind}"``; these tests state
how that holds for every kind of callable, what is recorded, and that the
decorated callable behaves exactly as before.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import json
import traceback
from collections.abc import AsyncIterator, Iterator

import pytest
from opentelemetry import trace as trace_api
from opentelemetry.sdk.trace import SpanProcessor
from opentelemetry.trace import StatusCode

import agentops
from agentops import semconv
from agentops.testing import CapturedSpans, captured_spans

SPAN_KINDS = ["agent", "tool", "operation", "task", "workflow", "guardrail"]
TRACE_KINDS = ["trace", "session"]


def kind_of(decorator_name: str) -> str:
    """The span kind a decorator records: ``session`` for the trace decorators, as AgentOps."""
    return "session" if decorator_name in TRACE_KINDS else decorator_name


def decorator(kind: str):
    return getattr(agentops, kind)


def current_span_name() -> str:
    return getattr(trace_api.get_current_span(), "name", "")


def payload_key(span, which: str) -> str:
    """AgentOps' name of a span's input or output: ``agentops.tool.input``; ``agentops.entity.input`` for traces."""
    kind = span.attributes[semconv.AGENTOPS_SPAN_KIND]
    entity_kind = semconv.ENTITY_KIND_ENTITY if kind == semconv.SpanKind.SESSION else kind
    template = semconv.AGENTOPS_DECORATOR_INPUT if which == "input" else semconv.AGENTOPS_DECORATOR_OUTPUT
    return template.format(entity_kind=entity_kind)


def inputs(span) -> object:
    return json.loads(span.attributes[payload_key(span, "input")])


def output(span) -> object:
    return json.loads(span.attributes[payload_key(span, "output")])


# --- names, kinds and arguments -------------------------------------------------


@pytest.mark.parametrize("kind", SPAN_KINDS + TRACE_KINDS)
def test_bare_decorator_makes_a_span_named_function_dot_kind(spans: CapturedSpans, kind: str) -> None:
    @decorator(kind)
    def plan() -> str:
        return "ok"

    assert plan() == "ok"
    span = spans.one(f"plan.{kind_of(kind)}")
    assert span.attributes[semconv.AGENTOPS_SPAN_KIND] == kind_of(kind)
    assert span.attributes[semconv.AGENTOPS_ENTITY_NAME] == "plan"


@pytest.mark.parametrize("kind", SPAN_KINDS + TRACE_KINDS)
def test_decorator_with_empty_parentheses_works_like_the_bare_one(spans: CapturedSpans, kind: str) -> None:
    @decorator(kind)()
    def plan() -> str:
        return "ok"

    assert plan() == "ok"
    assert spans.one(f"plan.{kind_of(kind)}")


def test_name_version_and_tags_arguments_are_recorded(spans: CapturedSpans) -> None:
    @agentops.agent(name="planner", version=2, tags=["beta", "eu"])
    def plan() -> None:
        pass

    plan()
    span = spans.one("planner.agent")
    assert span.attributes[semconv.AGENTOPS_ENTITY_NAME] == "planner"
    assert span.attributes[semconv.AGENTOPS_ENTITY_VERSION] == "2"
    assert span.attributes[semconv.AGENTOPS_TAGS] == ("beta", "eu")


def test_a_name_can_be_given_as_the_only_positional_argument(spans: CapturedSpans) -> None:
    @agentops.trace("nightly-report")
    def run() -> None:
        pass

    run()
    assert spans.one("nightly-report.session")


def test_tool_cost_is_recorded(spans: CapturedSpans) -> None:
    @agentops.tool(cost=0.25)
    def search(query: str) -> str:
        return query

    search("q")
    assert spans.one("search.tool").attributes[semconv.AGENTOPS_TOOL_COST] == 0.25


# --- where the span goes ------------------------------------------------------------


def test_nested_decorated_calls_make_a_parent_and_child(spans: CapturedSpans) -> None:
    @agentops.tool
    def lookup() -> None:
        pass

    @agentops.agent
    def run() -> None:
        lookup()

    with agentops.start_trace("t"):
        run()
    root, agent, tool = spans.one("t"), spans.one("run.agent"), spans.one("lookup.tool")
    assert agent.parent.span_id == root.context.span_id
    assert tool.parent.span_id == agent.context.span_id
    assert {s.context.trace_id for s in spans} == {root.context.trace_id}


def test_the_span_is_current_inside_the_call_and_not_after(spans: CapturedSpans) -> None:
    seen = []

    @agentops.tool
    def lookup() -> None:
        seen.append(current_span_name())

    lookup()
    assert seen == ["lookup.tool"]
    assert trace_api.get_current_span() is trace_api.INVALID_SPAN


@pytest.mark.parametrize("kind", TRACE_KINDS)
def test_trace_and_session_decorators_start_a_new_trace_with_an_end_state(spans: CapturedSpans, kind: str) -> None:
    @decorator(kind)
    def job() -> None:
        pass

    with agentops.start_trace("outer"):
        job()
    span = spans.one(f"job.{kind_of(kind)}")
    assert span.parent is None
    assert span.attributes[semconv.AGENTOPS_END_STATE] == "Success"
    assert span.status.status_code is StatusCode.OK


def test_a_trace_decorated_call_is_not_left_among_the_active_traces(spans: CapturedSpans) -> None:
    @agentops.trace
    def job() -> int:
        assert len(agentops.active_traces()) == 1
        return 1

    job()
    assert agentops.active_traces() == []


def test_decorators_before_init_call_the_function_and_record_nothing() -> None:
    @agentops.agent
    def plan(x: int) -> int:
        return x + 1

    @agentops.tool
    async def fetch() -> str:
        return "x"

    @agentops.task
    def items() -> Iterator[int]:
        yield 1

    assert plan(1) == 2
    assert asyncio.run(fetch()) == "x"
    assert list(items()) == [1]
    assert agentops.active_traces() == []


# --- inputs and outputs -------------------------------------------------------------


def test_arguments_are_recorded_by_parameter_name_and_the_result_as_json(spans: CapturedSpans) -> None:
    @agentops.tool
    def search(query: str, limit: int = 3, **options: object) -> dict[str, object]:
        return {"hits": [query] * limit}

    search("cats", limit=2, lang="en")
    span = spans.one("search.tool")
    assert inputs(span) == {"query": "cats", "limit": 2, "lang": "en"}
    assert output(span) == {"hits": ["cats", "cats"]}


def test_secret_arguments_and_result_keys_are_masked(spans: CapturedSpans) -> None:
    @agentops.tool
    def connect(url: str, api_key: str, password: str) -> dict[str, str]:
        return {"Authorization": "Bearer sk-secret", "status": "ok"}

    connect("https://example.invalid", api_key="sk-secret", password="hunter2")
    span = spans.one("connect.tool")
    assert inputs(span) == {"url": "https://example.invalid", "api_key": "[REDACTED]", "password": "[REDACTED]"}
    assert output(span) == {"Authorization": "[REDACTED]", "status": "ok"}
    assert "sk-secret" not in str(span.attributes)


def test_payloads_longer_than_max_payload_size_are_truncated(agentops_init) -> None:
    agentops_init(max_payload_size=100)

    @agentops.tool
    def echo(text: str) -> str:
        return text

    with captured_spans() as spans:
        echo("x" * 1000)
    recorded = spans.one("echo.tool").attributes["agentops.tool.output"]
    assert recorded.startswith('"xxxx')
    assert "...[truncated" in recorded
    assert len(recorded) < 200


def test_with_content_capture_off_no_inputs_or_outputs_are_recorded(agentops_init) -> None:
    agentops_init(capture_content=False)

    @agentops.tool
    def echo(text: str) -> str:
        return text

    with captured_spans() as spans:
        echo("private")
    attributes = spans.one("echo.tool").attributes
    assert not [key for key in attributes if key.endswith((".input", ".output"))]


def test_an_unserialisable_argument_is_recorded_by_repr_and_the_call_still_works(spans: CapturedSpans) -> None:
    class Opaque:
        def __repr__(self) -> str:
            return "<Opaque>"

    @agentops.tool
    def use(thing: object) -> object:
        return thing

    thing = Opaque()
    assert use(thing) is thing
    assert inputs(spans.one("use.tool")) == {"thing": "<Opaque>"}


# --- exceptions ----------------------------------------------------------------------


def test_an_exception_is_recorded_and_re_raised_as_the_same_object_with_its_traceback(spans: CapturedSpans) -> None:
    error = KeyError("missing")

    @agentops.tool
    def lookup() -> None:
        raise error

    with pytest.raises(KeyError) as raised:
        lookup()
    assert raised.value is error
    frames = [frame.name for frame in traceback.extract_tb(raised.value.__traceback__)]
    assert frames[-1] == "lookup"
    span = spans.one("lookup.tool")
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[semconv.ERROR_TYPE] == "KeyError"
    assert [event.name for event in span.events] == ["exception"]


def test_an_exception_in_a_trace_decorated_call_ends_the_trace_as_error(spans: CapturedSpans) -> None:
    @agentops.trace
    def job() -> None:
        raise RuntimeError("no")

    with pytest.raises(RuntimeError):
        job()
    assert spans.one("job.session").attributes[semconv.AGENTOPS_END_STATE] == "Error"


async def test_an_exception_in_a_coroutine_is_recorded_and_re_raised_unchanged(spans: CapturedSpans) -> None:
    error = ValueError("bad")

    @agentops.agent
    async def plan() -> None:
        await asyncio.sleep(0)
        raise error

    with pytest.raises(ValueError) as raised:
        await plan()
    assert raised.value is error
    assert spans.one("plan.agent").status.status_code is StatusCode.ERROR


# --- coroutines -------------------------------------------------------------------------


async def test_coroutine_functions_stay_coroutine_functions_and_make_one_span(spans: CapturedSpans) -> None:
    @agentops.tool
    async def fetch(x: int) -> int:
        await asyncio.sleep(0)
        return x * 2

    assert inspect.iscoroutinefunction(fetch)
    assert await fetch(2) == 4
    assert output(spans.one("fetch.tool")) == 4


async def test_concurrent_coroutines_each_parent_their_own_children(spans: CapturedSpans) -> None:
    @agentops.tool
    async def step(i: int) -> None:
        await asyncio.sleep(0)

    @agentops.agent
    async def worker(i: int) -> None:
        await asyncio.sleep(0)
        await step(i)

    await asyncio.gather(*(worker(i) for i in range(5)))
    workers = {s.context.span_id: inputs(s)["i"] for s in spans.named("worker.agent")}
    for step_span in spans.named("step.tool"):
        assert workers[step_span.parent.span_id] == inputs(step_span)["i"]


def test_a_coroutine_that_is_never_awaited_opens_no_span(spans: CapturedSpans) -> None:
    @agentops.tool
    async def fetch() -> None:
        pass

    coroutine = fetch()
    coroutine.close()
    assert spans == []


# --- generators ---------------------------------------------------------------------


def test_a_generators_span_ends_when_it_is_exhausted_and_records_the_count(spans: CapturedSpans) -> None:
    @agentops.task
    def numbers(n: int) -> Iterator[int]:
        yield from range(n)
        return "done"

    assert list(numbers(3)) == [0, 1, 2]
    assert output(spans.one("numbers.task")) == {"yielded": 3, "return": "done"}


def test_a_generators_span_ends_when_it_is_closed(spans: CapturedSpans) -> None:
    cleaned = []

    @agentops.task
    def numbers() -> Iterator[int]:
        try:
            yield from range(10)
        finally:
            cleaned.append(current_span_name())

    gen = numbers()
    next(gen)
    assert spans == []
    gen.close()
    assert spans.one("numbers.task").end_time is not None
    assert cleaned == ["numbers.task"]  # the body's cleanup still runs inside its span


def test_a_generators_span_ends_when_it_is_garbage_collected(spans: CapturedSpans) -> None:
    @agentops.task
    def numbers() -> Iterator[int]:
        yield from range(10)

    gen = numbers()
    next(gen)
    del gen
    gc.collect()
    assert len(spans.named("numbers.task")) == 1


def test_a_generators_span_is_current_only_while_its_body_runs(spans: CapturedSpans) -> None:
    inside = []

    @agentops.task
    def numbers() -> Iterator[int]:
        for i in range(2):
            inside.append(current_span_name())
            yield i

    with agentops.start_trace("t"):
        for _ in numbers():
            assert current_span_name() == "t"
            with trace_api.get_tracer("x").start_as_current_span("consumer"):
                pass
    assert inside == ["numbers.task", "numbers.task"]
    assert {s.parent.span_id for s in spans.named("consumer")} == {spans.one("t").context.span_id}


def test_a_generator_is_a_child_of_the_context_it_was_created_in(spans: CapturedSpans) -> None:
    @agentops.task
    def numbers() -> Iterator[int]:
        yield 1

    with agentops.start_trace("t"):
        gen = numbers()
    assert list(gen) == [1]
    assert spans.one("numbers.task").parent.span_id == spans.one("t").context.span_id


def test_values_sent_and_exceptions_thrown_into_a_generator_reach_its_body(spans: CapturedSpans) -> None:
    received = []

    @agentops.task
    def echo() -> Iterator[object]:
        value = yield "ready"
        while True:
            try:
                value = yield value
            except KeyError as exc:
                received.append(exc)
                value = yield "recovered"

    gen = echo()
    assert next(gen) == "ready"
    assert gen.send("a") == "a"
    assert gen.throw(KeyError("k")) == "recovered"
    gen.close()
    assert len(received) == 1
    assert len(spans.named("echo.task")) == 1


def test_an_exception_raised_by_a_generator_is_recorded_and_re_raised_unchanged(spans: CapturedSpans) -> None:
    error = RuntimeError("broken stream")

    @agentops.task
    def numbers() -> Iterator[int]:
        yield 1
        raise error

    with pytest.raises(RuntimeError) as raised:
        list(numbers())
    assert raised.value is error
    assert spans.one("numbers.task").status.status_code is StatusCode.ERROR


def test_a_generator_created_but_never_started_opens_no_span(spans: CapturedSpans) -> None:
    @agentops.task
    def numbers() -> Iterator[int]:
        yield 1

    gen = numbers()
    del gen
    gc.collect()
    assert spans == []


# --- async generators ------------------------------------------------------------------


async def test_an_async_generators_span_ends_when_it_is_exhausted(spans: CapturedSpans) -> None:
    @agentops.task
    async def numbers(n: int) -> AsyncIterator[int]:
        for i in range(n):
            await asyncio.sleep(0)
            yield i

    assert inspect.isasyncgenfunction(numbers)
    assert [i async for i in numbers(3)] == [0, 1, 2]
    assert output(spans.one("numbers.task")) == {"yielded": 3}


async def test_an_async_generators_span_ends_when_it_is_closed(spans: CapturedSpans) -> None:
    @agentops.task
    async def numbers() -> AsyncIterator[int]:
        for i in range(10):
            yield i

    agen = numbers()
    assert await agen.__anext__() == 0
    await agen.aclose()
    assert len(spans.named("numbers.task")) == 1


async def test_an_async_generators_span_is_current_only_while_its_body_runs(spans: CapturedSpans) -> None:
    inside = []

    @agentops.task
    async def numbers() -> AsyncIterator[int]:
        for i in range(2):
            inside.append(current_span_name())
            yield i

    async for _ in numbers():
        assert trace_api.get_current_span() is trace_api.INVALID_SPAN
    assert inside == ["numbers.task", "numbers.task"]


async def test_an_exception_raised_by_an_async_generator_is_recorded_and_re_raised(spans: CapturedSpans) -> None:
    error = RuntimeError("broken stream")

    @agentops.task
    async def numbers() -> AsyncIterator[int]:
        yield 1
        raise error

    with pytest.raises(RuntimeError) as raised:
        async for _ in numbers():
            pass
    assert raised.value is error
    assert spans.one("numbers.task").status.status_code is StatusCode.ERROR


# --- methods and classes -------------------------------------------------------------------


class Shop:
    """A class whose methods are decorated one by one."""

    def __init__(self, name: str) -> None:
        self.name = name

    @agentops.tool
    def buy(self, item: str) -> str:
        return f"{self.name}:{item}"

    @classmethod
    @agentops.tool
    def open(cls, hours: int) -> int:
        return hours

    @staticmethod
    @agentops.tool
    def price(item: str) -> int:
        return len(item)

    @agentops.tool
    async def deliver(self, item: str) -> str:
        return item


def test_instance_methods_record_arguments_without_self(spans: CapturedSpans) -> None:
    assert Shop("s").buy("milk") == "s:milk"
    assert inputs(spans.one("buy.tool")) == {"item": "milk"}


def test_an_instance_method_called_through_the_class_records_arguments_without_self(spans: CapturedSpans) -> None:
    assert Shop.buy(Shop("s"), "tea") == "s:tea"
    assert inputs(spans.one("buy.tool")) == {"item": "tea"}


def test_class_methods_record_arguments_without_cls(spans: CapturedSpans) -> None:
    assert Shop.open(8) == 8
    assert Shop("s").open(9) == 9
    assert [inputs(s) for s in spans.named("open.tool")] == [{"hours": 8}, {"hours": 9}]


def test_static_methods_record_their_arguments(spans: CapturedSpans) -> None:
    assert Shop.price("milk") == 4
    assert inputs(spans.one("price.tool")) == {"item": "milk"}


async def test_async_methods_are_traced(spans: CapturedSpans) -> None:
    assert await Shop("s").deliver("milk") == "milk"
    assert inputs(spans.one("deliver.tool")) == {"item": "milk"}


@agentops.agent(name="Planner", version="1")
class Planner:
    """A decorated class: one agent span per instance, or per outermost call outside one."""

    def __init__(self) -> None:
        self.calls = 0

    def plan(self, goal: str) -> list[str]:
        self.calls += 1
        return [goal]

    async def aplan(self, goal: str) -> str:
        return goal

    def steps(self, n: int) -> Iterator[int]:
        yield from range(n)

    @classmethod
    def create(cls) -> Planner:
        return cls()

    @staticmethod
    def describe() -> str:
        return "planner"

    @agentops.tool
    def search(self, q: str) -> str:
        return q

    def _private(self) -> str:
        return "hidden"

    @property
    def label(self) -> str:
        return "label"


def test_a_decorated_class_is_still_the_same_class() -> None:
    assert isinstance(Planner(), Planner)
    assert Planner.__name__ == "Planner"
    assert Planner.__doc__.startswith("A decorated class")


def test_outside_any_trace_each_outermost_call_of_a_decorated_class_is_a_span_named_class_method_kind(
    spans: CapturedSpans,
) -> None:
    planner = Planner()  # outside any trace: no instance span
    planner.plan("ship")
    assert list(planner.steps(2)) == [0, 1]
    assert Planner.describe() == "planner"
    assert asyncio.run(planner.aplan("x")) == "x"
    assert [s.name for s in spans] == [
        "Planner.plan.agent",
        "Planner.steps.agent",
        "Planner.describe.agent",
        "Planner.aplan.agent",
    ]
    plan = spans.one("Planner.plan.agent")
    assert inputs(plan) == {"goal": "ship"}
    assert plan.attributes[semconv.AGENTOPS_ENTITY_VERSION] == "1"
    assert planner.calls == 1


def test_a_decorated_class_leaves_private_methods_and_properties_alone(spans: CapturedSpans) -> None:
    planner = Planner()
    assert planner._private() == "hidden"
    assert planner.label == "label"
    assert list(spans) == []


def test_a_decorated_method_of_a_decorated_class_called_outside_a_trace_is_inside_a_class_span(
    spans: CapturedSpans,
) -> None:
    Planner().search("q")
    outer, inner = spans.one("Planner.search.agent"), spans.one("search.tool")
    assert inner.parent.span_id == outer.context.span_id


# --- the decorated callable looks like the original ----------------------------------------


def test_decorated_functions_keep_name_doc_signature_and_wrapped() -> None:
    def original(a: int, b: str = "x", *, c: bool = False) -> str:
        """Original doc."""
        return b

    decorated = agentops.tool(original)
    assert decorated.__name__ == "original"
    assert decorated.__doc__ == "Original doc."
    assert decorated.__wrapped__ is original
    assert inspect.signature(decorated) == inspect.signature(original)


def test_decorated_generator_functions_are_still_generator_functions() -> None:
    @agentops.task
    def numbers() -> Iterator[int]:
        yield 1

    assert inspect.isgeneratorfunction(numbers)
    assert not inspect.iscoroutinefunction(numbers)


def test_a_decorated_method_keeps_its_signature_through_the_instance() -> None:
    assert str(inspect.signature(Shop("s").buy)) == "(item: 'str') -> 'str'"


def test_an_unusable_cost_is_ignored_with_a_warning_not_raised_at_import(
    spans: CapturedSpans, caplog: pytest.LogCaptureFixture
) -> None:
    @agentops.tool(cost="cheap")
    def lookup() -> None:
        pass

    lookup()
    assert semconv.AGENTOPS_TOOL_COST not in spans.one("lookup.tool").attributes
    assert "cheap" in caplog.text


def test_an_abandoned_async_generators_span_ends_when_its_event_loop_shuts_down(spans: CapturedSpans) -> None:
    @agentops.task
    async def numbers() -> AsyncIterator[int]:
        for i in range(10):
            yield i

    async def consume() -> None:
        async for i in numbers():
            if i == 2:
                break  # the generator is left suspended, never closed by the consumer

    asyncio.run(consume())
    assert len(spans.named("numbers.task")) == 1


def test_span_processors_see_the_span_kind_when_the_span_starts(agentops_init) -> None:
    agentops_init()
    seen: list[object] = []

    class OnStart(SpanProcessor):
        def on_start(self, span, parent_context=None) -> None:
            seen.append(span.attributes.get(semconv.AGENTOPS_SPAN_KIND))

    processor = OnStart()
    agentops.add_span_processor(processor)

    @agentops.tool
    def lookup() -> None:
        pass

    lookup()
    agentops.remove_span_processor(processor)
    assert seen == ["tool"]
