"""AgentOps' legacy event API records spans in the current trace.

``record(ActionEvent(...))`` and friends are still exported by AgentOps 0.4.21
(which records nothing with them); code written against them runs unchanged
here and its events show up as spans of the trace they happened in.
"""

from __future__ import annotations

import datetime
import json

from opentelemetry.trace import StatusCode

import agentops
from agentops import semconv
from agentops.testing import CapturedSpans, captured_spans


def iso(seconds_ago: float) -> str:
    moment = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=seconds_ago)
    return moment.isoformat()


def test_an_action_event_becomes_an_operation_span_of_the_current_trace(spans: CapturedSpans) -> None:
    with agentops.start_trace("t") as trace_context:
        event = agentops.ActionEvent(action_type="search", params={"q": "x"}, returns=["a"], logs="looked it up")
        assert agentops.record(event) is event
    span = spans.one("search.operation")
    assert span.parent.span_id == trace_context.span.get_span_context().span_id
    assert span.attributes[semconv.AGENTOPS_SPAN_KIND] == "operation"
    assert span.attributes[semconv.AGENTOPS_EVENT_TYPE] == "actions"
    assert span.attributes[semconv.AGENTOPS_EVENT_ID] == str(event.id)
    assert json.loads(span.attributes["agentops.operation.input"]) == {"q": "x"}
    assert json.loads(span.attributes["agentops.operation.output"]) == ["a"]
    assert span.attributes[semconv.AGENTOPS_EVENT_LOGS] == "looked it up"


def test_record_sets_the_end_timestamp_and_the_span_keeps_the_events_times(spans: CapturedSpans) -> None:
    with agentops.start_trace("t"):
        event = agentops.ToolEvent(name="web_search", init_timestamp=iso(2.0))
        assert event.end_timestamp is None
        agentops.record(event)
    assert event.end_timestamp is not None
    span = spans.one("web_search.tool")
    assert 1.9e9 < span.end_time - span.start_time < 3e9


def test_an_llm_event_becomes_an_llm_span_whose_tokens_and_cost_count(spans: CapturedSpans) -> None:
    with agentops.start_trace("t"):
        agentops.record(
            agentops.LLMEvent(
                prompt="What is 2+2?", completion="4", model="gpt-4o", prompt_tokens=12, completion_tokens=1, cost=0.002
            )
        )
    span = spans.one("chat gpt-4o")
    assert span.attributes[semconv.AGENTOPS_SPAN_KIND] == "llm"
    assert span.attributes[semconv.GEN_AI_REQUEST_MODEL] == "gpt-4o"
    assert span.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 12
    assert span.attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 1
    assert span.attributes[semconv.GEN_AI_USAGE_COST] == 0.002
    assert span.attributes[semconv.GEN_AI_INPUT_MESSAGES] == "What is 2+2?"


def test_an_error_event_becomes_a_failed_span_with_the_exception(spans: CapturedSpans) -> None:
    with agentops.start_trace("t"):
        try:
            raise TimeoutError("the search backend timed out")
        except TimeoutError as exc:
            agentops.record(agentops.ErrorEvent(exception=exc, code="504"))
    span = spans.one("TimeoutError.error")
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[semconv.ERROR_TYPE] == "TimeoutError"
    assert span.attributes[semconv.ERROR_MESSAGE] == "the search backend timed out"
    assert span.attributes[semconv.AGENTOPS_ERROR_CODE] == "504"
    (event,) = span.events
    assert event.name == "exception"
    assert "TimeoutError" in event.attributes[semconv.EXCEPTION_STACKTRACE]


def test_an_error_event_is_a_child_of_the_recorded_event_that_triggered_it(spans: CapturedSpans) -> None:
    with agentops.start_trace("t"):
        action = agentops.record(agentops.ActionEvent(action_type="fetch"))
        agentops.record(agentops.ErrorEvent(trigger_event=action, error_type="HTTPError", details="404"))
    assert spans.one("HTTPError.error").parent.span_id == spans.one("fetch.operation").context.span_id


def test_in_a_script_events_go_to_the_session_init_started(agentops_init) -> None:
    session = agentops_init(auto_start_session=True)
    with captured_spans() as spans:
        agentops.record(agentops.ActionEvent(action_type="step"))
    assert spans.one("step.operation").parent.span_id == session.span.get_span_context().span_id


def test_a_legacy_session_records_events_in_its_own_trace(spans: CapturedSpans) -> None:
    session = agentops.start_session(tags=["legacy"])
    session.record(agentops.ToolEvent(name="calculator"))
    session.end_session("Success")
    assert spans.one("calculator.tool").context.trace_id == spans.one("session").context.trace_id


def test_events_before_init_or_outside_any_trace_record_nothing_and_do_not_fail() -> None:
    event = agentops.record(agentops.ActionEvent(action_type="early"))
    assert event.end_timestamp is not None
    agentops.init(auto_start_session=False)
    with captured_spans() as spans:
        agentops.record(agentops.ActionEvent(action_type="nowhere"))
    assert list(spans) == []


def test_with_content_capture_off_an_event_records_no_payloads(agentops_init) -> None:
    agentops_init(capture_content=False)
    with captured_spans() as spans, agentops.start_trace("t"):
        agentops.record(agentops.ActionEvent(action_type="search", params={"q": "secret"}, returns="r"))
    attributes = spans.one("search.operation").attributes
    assert "agentops.operation.input" not in attributes
    assert "secret" not in str(attributes)


def test_events_accept_keywords_they_do_not_know_as_agentops_0_4_did() -> None:
    event = agentops.ActionEvent(action_type="x", colour="blue")
    assert event.action_type == "x"


def test_an_error_event_keeps_the_old_timestamp_property() -> None:
    event = agentops.ErrorEvent(details="boom")
    assert event.timestamp == event.init_timestamp
    assert event.end_timestamp is not None


def test_track_agent_and_track_tool_are_agent_and_tool(spans: CapturedSpans) -> None:
    @agentops.track_agent(name="researcher")
    class Researcher:
        def run(self) -> str:
            return lookup("x")

    @agentops.track_tool(name="lookup")
    def lookup(query: str) -> str:
        return query

    with agentops.start_trace("t"):
        assert Researcher().run() == "x"
    agent = spans.one("researcher.agent")
    assert spans.one("lookup.tool").parent.span_id == agent.context.span_id


def test_track_agent_works_bare_too(spans: CapturedSpans) -> None:
    @agentops.track_agent
    def plan() -> int:
        return 1

    assert plan() == 1
    assert spans.one("plan.agent")


def test_record_of_something_that_is_not_an_event_is_ignored(spans: CapturedSpans) -> None:
    with agentops.start_trace("t"):
        assert agentops.record("not an event") == "not an event"
    assert [s.name for s in spans] == ["t"]
