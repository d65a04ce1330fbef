"""Specification of the legacy session API: ``start_session``, ``end_session``, ``Session``.

Sessions are traces under their old names. The "current session" belongs to
the caller's thread or asyncio task, never to the whole process.
"""

from __future__ import annotations

import asyncio
import threading

import pytest
from opentelemetry import context as context_api
from opentelemetry.trace import StatusCode

import agentops
from agentops import semconv
from agentops._traces import context_with_scope
from agentops.testing import CapturedSpans


def test_start_session_returns_a_running_session_over_a_trace(spans: CapturedSpans) -> None:
    session = agentops.start_session(tags=["legacy"])
    assert isinstance(session, agentops.Session)
    assert session.is_running
    assert len(session.trace_id) == 32
    assert session.trace_context in agentops.active_traces()
    agentops.end_session(session)
    root = spans.one("session")
    assert root.attributes[semconv.AGENTOPS_SPAN_KIND] == "session"
    assert root.attributes[semconv.AGENTOPS_TAGS] == ("legacy",)


def test_start_session_before_init_initialises_agentops_without_an_extra_session() -> None:
    session = agentops.start_session()
    assert agentops.is_initialized()
    assert agentops.active_traces() == [session.trace_context]
    agentops.end_session(session)


def test_end_session_with_a_session_object_ends_that_session(spans: CapturedSpans) -> None:
    session = agentops.start_session()
    agentops.end_session(session)
    assert not session.is_running
    assert spans.one("session").attributes[semconv.AGENTOPS_END_STATE] == "Success"


def test_end_session_with_a_status_string_ends_the_current_session_with_that_state(spans: CapturedSpans) -> None:
    session = agentops.start_session()
    agentops.end_session("Error")
    assert not session.is_running
    root = spans.one("session")
    assert root.attributes[semconv.AGENTOPS_END_STATE] == "Error"
    assert root.status.status_code is StatusCode.ERROR


def test_end_session_with_keywords_only_records_the_state_and_reason(spans: CapturedSpans) -> None:
    agentops.start_session()
    agentops.end_session(end_state="Indeterminate", end_state_reason="user quit")
    root = spans.one("session")
    assert root.attributes[semconv.AGENTOPS_END_STATE] == "Indeterminate"
    assert root.attributes["agentops.status.end_state_reason"] == "user quit"


def test_end_session_without_arguments_ends_the_current_session_as_success(spans: CapturedSpans) -> None:
    session = agentops.start_session()
    agentops.end_session()
    assert not session.is_running
    assert spans.one("session").attributes[semconv.AGENTOPS_END_STATE] == "Success"


def test_session_end_session_method_ends_it(spans: CapturedSpans) -> None:
    session = agentops.start_session()
    session.end_session("Error", end_state_reason="failed")
    assert spans.one("session").attributes["agentops.status.end_state_reason"] == "failed"


def test_end_session_without_arguments_falls_back_to_the_init_session_in_a_plain_script(agentops_init) -> None:
    init_trace = agentops_init(auto_start_session=True)
    agentops.end_session()
    assert init_trace.ended


def test_end_session_inside_a_request_never_ends_the_processs_init_session(agentops_init) -> None:
    init_trace = agentops_init(auto_start_session=True)
    request_span = agentops.get_tracer().start_span("GET /", context=context_api.Context())
    token = context_api.attach(context_with_scope(request_span, "request"))
    agentops.end_session()
    context_api.detach(token)
    request_span.end()
    assert not init_trace.ended


def test_end_session_before_init_is_ignored() -> None:
    agentops.end_session("Success")  # no error, nothing to end


def test_ending_a_session_twice_is_harmless(spans: CapturedSpans) -> None:
    session = agentops.start_session()
    agentops.end_session(session, end_state="Error")
    agentops.end_session(session)
    assert spans.one("session").attributes[semconv.AGENTOPS_END_STATE] == "Error"


def test_the_current_session_is_per_thread(spans: CapturedSpans) -> None:
    mine = agentops.start_session()
    ended_elsewhere: list[bool] = []

    def other() -> None:
        theirs = agentops.start_session()
        agentops.end_session("Error")
        ended_elsewhere.append(not theirs.is_running)

    thread = threading.Thread(target=other)
    thread.start()
    thread.join(10)
    assert ended_elsewhere == [True]
    assert mine.is_running
    agentops.end_session(mine)


async def test_the_current_session_is_per_asyncio_task(spans: CapturedSpans) -> None:
    async def job(name: str) -> agentops.Session:
        session = agentops.start_session(tags=[name])
        await asyncio.sleep(0)
        agentops.end_session("Success")
        return session

    sessions = await asyncio.gather(job("a"), job("b"), job("c"))
    assert all(not session.is_running for session in sessions)
    assert len(spans.named("session")) == 3


def test_end_all_sessions_ends_every_session_of_a_plain_script(spans: CapturedSpans) -> None:
    first, second = agentops.start_session(), agentops.start_session()
    agentops.end_all_sessions()
    assert not first.is_running
    assert not second.is_running


def test_legacy_helpers_on_session_are_accepted_and_record_nothing(spans: CapturedSpans) -> None:
    session = agentops.start_session()
    session.create_agent(name="a")
    session.record(object())
    agentops.end_session(session)
    assert [span.name for span in spans] == ["session"]


@pytest.mark.parametrize("state", list(agentops.TraceState))
def test_end_session_accepts_the_trace_state_enum(spans: CapturedSpans, state: agentops.TraceState) -> None:
    agentops.start_session()
    agentops.end_session(state)
    assert spans.one("session").attributes[semconv.AGENTOPS_END_STATE] == state.value
