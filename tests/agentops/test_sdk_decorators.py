"""AgentOps' decorators, used as AgentOps documents them, run unchanged and record what AgentOps records.

The examples follow AgentOps 0.4.21's "Decorators" and "Tracking Agents"
pages: ``from agentops.sdk.decorators import ...``, ``@agent`` classes whose
work is done by ``@operation``/``@task``/``@tool`` methods, ``@trace``
around a workflow. Each states the shape of the data AgentOps' users know.
"""

from __future__ import annotations

import asyncio
import gc
import json
import time
from collections.abc import AsyncIterator, Iterator

import pytest
from opentelemetry import trace as trace_api

import agentops
from agentops import semconv
from agentops.testing import CapturedSpans


def test_the_decorators_import_from_agentops_sdk_decorators_as_in_agentops() -> None:
    from agentops.sdk.decorators import agent, operation, session, task, tool, trace, workflow

    assert (agent, operation, session, task, tool, trace, workflow) == (
        agentops.agent,
        agentops.operation,
        agentops.session,
        agentops.task,
        agentops.tool,
        agentops.trace,
        agentops.workflow,
    )
    from agentops.sdk.decorators import guardrail, track_endpoint

    assert (guardrail, track_endpoint) == (agentops.guardrail, agentops.track_endpoint)


# --- keywords ------------------------------------------------------------------------------


def test_a_misspelt_keyword_is_a_type_error_at_decoration_time() -> None:
    with pytest.raises(TypeError, match=r"@tool\(\) got an unexpected keyword argument 'nmae'"):
        agentops.tool(nmae="search")
    with pytest.raises(TypeError, match="'cots'"):

        @agentops.tool(cots=0.1)
        def search() -> None:
            pass


def test_every_keyword_agentops_documents_is_accepted(spans: CapturedSpans) -> None:
    @agentops.guardrail(
        name="secret_key_guardrail",
        version=3,
        tags=["safety"],
        spec="input",
        attributes={"importance": "high", "threshold": 0.5},
        capture_request=True,
        capture_response=True,
    )
    def check(text: str) -> dict[str, bool]:
        return {"tripwire_triggered": False}

    assert check("hello") == {"tripwire_triggered": False}
    attributes = spans.one("secret_key_guardrail.guardrail").attributes
    assert attributes["agentops.guardrail.spec"] == "input"
    assert attributes["importance"] == "high"
    assert attributes["threshold"] == 0.5
    assert attributes[semconv.AGENTOPS_TAGS] == ("safety",)


def test_a_span_carries_agentops_names_for_its_entity_version_input_and_output(spans: CapturedSpans) -> None:
    @agentops.operation(name="fetch", version=2)
    def fetch(query: str) -> str:
        return query.upper()

    fetch("q")
    attributes = spans.one("fetch.operation").attributes
    assert attributes[semconv.AGENTOPS_SPAN_KIND] == "operation"
    assert attributes["operation.name"] == "fetch"
    assert attributes["operation.version"] == 2
    assert attributes["agentops.entity.version"] == "2"
    assert json.loads(attributes["agentops.operation.input"]) == {"query": "q"}
    assert json.loads(attributes["agentops.operation.output"]) == "Q"


def test_a_tool_cost_is_recorded_under_both_names(spans: CapturedSpans) -> None:
    @agentops.tool(cost=0.01)
    def sync_tool(item: str) -> str:
        return f"Processed {item}"

    sync_tool("a")
    attributes = spans.one("sync_tool.tool").attributes
    assert attributes["gen_ai.usage.total_cost"] == 0.01  # AgentOps' name
    assert attributes[semconv.AGENTOPS_TOOL_COST] == 0.01  # what agentops_django reads


def test_capture_request_and_capture_response_false_keep_input_and_output_out(spans: CapturedSpans) -> None:
    @agentops.tool(capture_request=False, capture_response=False)
    def lookup(card: str) -> str:
        return card

    lookup("4111")
    attributes = spans.one("lookup.tool").attributes
    assert "agentops.tool.input" not in attributes
    assert "agentops.tool.output" not in attributes


def test_trace_records_a_session_root_with_agentops_entity_input_output_and_end_state(spans: CapturedSpans) -> None:
    @agentops.trace(name="research-workflow")
    def research_workflow(topic: str) -> str:
        return topic

    research_workflow("quantum computing")
    root = spans.one("research-workflow.session")
    assert root.parent is None
    assert root.attributes[semconv.AGENTOPS_SPAN_KIND] == "session"
    assert json.loads(root.attributes["agentops.entity.input"]) == {"topic": "quantum computing"}
    assert root.attributes["agentops.session.end_state"] == "Success"
    assert root.attributes[semconv.AGENTOPS_END_STATE] == "Success"


def test_track_endpoint_starts_a_trace_per_call(spans: CapturedSpans) -> None:
    @agentops.track_endpoint(name="chat-endpoint", tags=["api"])
    def handle(message: str) -> dict[str, str]:
        return {"reply": message}

    assert handle("hi") == {"reply": "hi"}
    root = spans.one("chat-endpoint.session")
    assert root.parent is None
    assert root.attributes[semconv.AGENTOPS_TAGS] == ("api",)


# --- @agent on a class ---------------------------------------------------------------------


@agentops.agent
class MathAgent:
    @agentops.operation
    def add(self, a: int, b: int) -> int:
        return a + b

    @agentops.operation
    def multiply(self, a: int, b: int) -> int:
        return a * b


def test_an_agent_class_whose_methods_are_all_decorated_gives_one_agent_span_holding_its_operations(
    spans: CapturedSpans,
) -> None:
    @agentops.trace
    def calculate(x: int, y: int) -> dict[str, int]:
        math_agent = MathAgent()
        return {"sum": math_agent.add(x, y), "product": math_agent.multiply(x, y)}

    assert calculate(5, 3) == {"sum": 8, "product": 15}
    root, agent = spans.one("calculate.session"), spans.one("MathAgent.agent")
    assert agent.parent.span_id == root.context.span_id
    assert agent.attributes[semconv.AGENTOPS_SPAN_KIND] == "agent"
    assert agent.attributes["operation.name"] == "MathAgent"
    for name in ("add.operation", "multiply.operation"):
        assert spans.one(name).parent.span_id == agent.context.span_id
    assert agent.end_time <= root.end_time


@agentops.agent(name="ResearchAgent")
class MyAgent:
    def __init__(self, model: str = "gpt-4o", api_key: str = "") -> None:
        self.model = model
        self.api_key = api_key

    @agentops.operation
    def search(self, query: str) -> str:
        return self.summarise(query)

    @agentops.task
    def summarise(self, text: str) -> str:
        return text[:10]

    def plain(self) -> str:
        return trace_api.get_current_span().name


def test_the_agent_span_records_the_constructor_arguments_with_secrets_masked(spans: CapturedSpans) -> None:
    with agentops.start_trace("t"):
        MyAgent("gpt-4o", api_key="sk-secret")
    agent = spans.one("ResearchAgent.agent")
    assert json.loads(agent.attributes["agentops.agent.input"]) == {"model": "gpt-4o", "api_key": "[REDACTED]"}


def test_calls_the_agent_makes_on_itself_nest_under_its_operations(spans: CapturedSpans) -> None:
    with agentops.start_trace("t"):
        MyAgent().search("quantum computing")
    agent, search, summarise = (
        spans.one("ResearchAgent.agent"),
        spans.one("search.operation"),
        spans.one("summarise.task"),
    )
    assert search.parent.span_id == agent.context.span_id
    assert summarise.parent.span_id == search.context.span_id


def test_an_undecorated_method_runs_inside_the_agent_span_without_one_of_its_own(spans: CapturedSpans) -> None:
    with agentops.start_trace("t"):
        assert MyAgent().plain() == "ResearchAgent.agent"
    assert sorted(s.name for s in spans) == ["ResearchAgent.agent", "t"]


def test_building_an_agent_leaves_the_callers_context_alone(spans: CapturedSpans) -> None:
    with agentops.start_trace("t") as trace_context:
        MyAgent()
        assert trace_api.get_current_span() is trace_context.span

        @agentops.tool
        def unrelated() -> None:
            pass

        unrelated()
    assert spans.one("unrelated.tool").parent.span_id == trace_context.span.get_span_context().span_id


def test_the_agent_span_ends_with_the_span_it_was_built_in_at_the_end_of_its_last_call(spans: CapturedSpans) -> None:
    kept = []
    with agentops.start_trace("t"):
        agent = MyAgent()
        kept.append(agent)  # still referenced after the trace: only the trace's end ends its span
        agent.search("q")
        time.sleep(0.02)
    agent_span, root, search = spans.one("ResearchAgent.agent"), spans.one("t"), spans.one("search.operation")
    assert agent_span.end_time <= root.end_time
    assert agent_span.end_time - search.end_time < 5_000_000  # the last call's end, not the trace's
    assert root.end_time - agent_span.end_time >= 15_000_000


def test_the_agent_span_ends_soon_after_the_agent_is_garbage_collected(spans: CapturedSpans) -> None:
    @agentops.tool
    def later() -> None:
        pass

    with agentops.start_trace("t"):
        agent = MyAgent()
        agent.search("q")
        del agent
        gc.collect()
        later()  # the next span to end ends it (a finalizer itself never ends spans)
        assert "ResearchAgent.agent" in [s.name for s in spans]
    assert [s.name for s in spans][-1] == "t"


def test_a_new_agent_reusing_a_collected_agents_id_gets_its_own_span(spans: CapturedSpans) -> None:
    with agentops.start_trace("t"):
        for query in ("a", "b", "c"):
            MyAgent().search(query)  # each instance is freed at once, and its id often reused
    agents = spans.named("ResearchAgent.agent")
    assert len(agents) == 3
    for agent in agents:
        assert len(spans.children_of(agent)) == 1


def test_an_agent_used_in_another_trace_gets_a_span_of_its_own_there(spans: CapturedSpans) -> None:
    with agentops.start_trace("first"):
        agent = MyAgent()
    with agentops.start_trace("second") as second:
        agent.search("q")
    stand_in = spans.one("ResearchAgent.search.agent")
    assert stand_in.context.trace_id == second.span.get_span_context().trace_id
    assert spans.one("search.operation").parent.span_id == stand_in.context.span_id


def test_an_agent_built_outside_any_trace_has_a_span_per_outermost_call(spans: CapturedSpans) -> None:
    agent = MyAgent()
    with agentops.start_trace("t"):
        agent.search("q")
        agent.search("r")
    assert len(spans.named("ResearchAgent.search.agent")) == 2
    assert [s.name for s in spans].count("ResearchAgent.agent") == 0


def test_agent_spans_still_open_end_at_shutdown(agentops_init) -> None:
    from agentops.testing import captured_spans

    agentops_init()
    with captured_spans() as spans:
        agentops.start_trace("t")
        agent = MyAgent()
        agent.search("q")
        agentops.shutdown()
        assert {"ResearchAgent.agent", "t"} <= {s.name for s in spans}
    del agent


@agentops.agent
class AsyncAgent:
    @agentops.tool(cost=0.02)
    async def async_tool(self, item: str) -> str:
        await asyncio.sleep(0)
        return f"Async processed {item}"

    @agentops.tool(cost=0.03)
    def generator_tool(self, items: list[str]) -> Iterator[str]:
        yield from items

    @agentops.tool(cost=0.04)
    async def async_generator_tool(self, items: list[str]) -> AsyncIterator[str]:
        for item in items:
            yield item


async def test_async_and_generator_methods_of_an_agent_nest_under_its_span(spans: CapturedSpans) -> None:
    with agentops.start_trace("t"):
        agent = AsyncAgent()
        assert await agent.async_tool("a") == "Async processed a"
        assert list(agent.generator_tool(["x", "y"])) == ["x", "y"]
        assert [item async for item in agent.async_generator_tool(["z"])] == ["z"]
    agent_span = spans.one("AsyncAgent.agent")
    for name in ("async_tool.tool", "generator_tool.tool", "async_generator_tool.tool"):
        assert spans.one(name).parent.span_id == agent_span.context.span_id, name


@agentops.agent
class BaseAgent:
    def __init__(self) -> None:
        self.ready = True


@agentops.agent
class SpecialAgent(BaseAgent):
    def __init__(self) -> None:
        super().__init__()


def test_a_decorated_subclass_of_a_decorated_agent_gives_one_span_per_instance(spans: CapturedSpans) -> None:
    with agentops.start_trace("t"):
        assert SpecialAgent().ready
    assert [s.name for s in spans if s.name.endswith(".agent")] == ["SpecialAgent.agent"]


def test_an_agent_class_works_untouched_before_init() -> None:
    agent = MyAgent()
    assert agent.search("quantum computing") == "quantum co"
