"""Specification of traces: ``start_trace``/``end_trace``, scopes, metadata.

A trace is a root span plus the :class:`agentops.TraceContext` that
``start_trace`` returns. These tests state what a user can rely on: which
spans belong to which trace, what ``end_trace`` ends, and what it records.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry import context as context_api
from opentelemetry import trace as trace_api
from opentelemetry.trace import StatusCode

import agentops
from agentops import semconv
from agentops._traces import context_with_scope, current_scope, current_trace
from agentops.testing import CapturedSpans, captured_spans

ROOT = Path(__file__).resolve().parents[2]


def child_span(name: str = "work") -> None:
    """A span made the way any OpenTelemetry instrumentation makes one."""
    with trace_api.get_tracer("someone.else").start_as_current_span(name):
        pass


@pytest.fixture
def scope() -> Iterator[trace_api.Span]:
    """Run the test inside an automatic scope, as the Django middleware opens one."""
    span = agentops.get_tracer().start_span("GET /", context=context_api.Context())
    token = context_api.attach(context_with_scope(span, "request"))
    yield span
    context_api.detach(token)
    span.end()


# --- what start_trace returns --------------------------------------------------


def test_start_trace_returns_a_context_with_span_token_and_is_init_trace(spans: CapturedSpans) -> None:
    trace_context = agentops.start_trace("checkout")
    assert trace_context.span.is_recording()
    assert trace_context.token is not None
    assert trace_context.is_init_trace is False
    agentops.end_trace(trace_context)


def test_trace_id_is_32_lowercase_hex_characters_of_the_root_span(spans: CapturedSpans) -> None:
    trace_context = agentops.start_trace("checkout")
    agentops.end_trace(trace_context)
    assert re.fullmatch(r"[0-9a-f]{32}", trace_context.trace_id)
    assert int(trace_context.trace_id, 16) == spans.one("checkout").context.trace_id


def test_trace_root_span_is_named_after_the_trace_and_has_no_parent(spans: CapturedSpans) -> None:
    agentops.end_trace(agentops.start_trace("checkout"))
    root = spans.one("checkout")
    assert root.parent is None
    assert root.attributes[semconv.AGENTOPS_SPAN_KIND] == semconv.SpanKind.SESSION  # AgentOps' kind of a trace root
    assert root.attributes[semconv.AGENTOPS_TRACE_NAME] == "checkout"


def test_default_trace_name_is_session(spans: CapturedSpans) -> None:
    agentops.end_trace(agentops.start_trace())
    assert spans.one("session")


def test_tags_are_stored_as_strings_after_the_default_tags(agentops_init) -> None:
    agentops_init(default_tags=["env:test"])
    with captured_spans() as spans:
        agentops.end_trace(agentops.start_trace("a", tags=["x", 1]))
        agentops.end_trace(agentops.start_trace("b", tags={"user": "ann"}))
    assert spans.one("a").attributes[semconv.AGENTOPS_TAGS] == ("env:test", "x", "1")
    assert spans.one("b").attributes[semconv.AGENTOPS_TAGS] == ("env:test", "user:ann")


def test_start_trace_before_init_returns_a_harmless_non_recording_trace() -> None:
    trace_context = agentops.start_trace("early")
    assert not trace_context.span.is_recording()
    agentops.end_trace(trace_context)  # no error


# --- which spans belong to a trace ---------------------------------------------


def test_spans_started_while_a_trace_is_current_belong_to_it(spans: CapturedSpans) -> None:
    trace_context = agentops.start_trace("checkout")
    child_span("charge")
    agentops.end_trace(trace_context)
    charge = spans.one("charge")
    assert charge.context.trace_id == spans.one("checkout").context.trace_id
    assert charge.parent.span_id == trace_context.span.get_span_context().span_id


def test_start_trace_inside_another_trace_is_a_new_root(spans: CapturedSpans) -> None:
    outer = agentops.start_trace("outer")
    inner = agentops.start_trace("inner")
    agentops.end_trace(inner)
    agentops.end_trace(outer)
    assert spans.one("inner").parent is None
    assert inner.trace_id != outer.trace_id


def test_start_trace_inside_a_foreign_span_is_a_new_root(spans: CapturedSpans) -> None:
    with trace_api.get_tracer("web").start_as_current_span("foreign"):
        agentops.end_trace(agentops.start_trace("mine"))
    assert spans.one("mine").parent is None


def test_start_trace_after_init_with_auto_session_is_a_new_root(agentops_init) -> None:
    """Nothing nests under the automatic init session by accident."""
    init_trace = agentops_init(auto_start_session=True)
    with captured_spans() as spans:
        trace_context = agentops.start_trace("job")
        agentops.end_trace(trace_context)
    assert spans.one("job").parent is None
    assert trace_context.trace_id != init_trace.trace_id


def test_ending_a_trace_makes_the_previous_context_current_again(spans: CapturedSpans) -> None:
    outer = agentops.start_trace("outer")
    inner = agentops.start_trace("inner")
    agentops.end_trace(inner)
    assert current_trace() is outer
    child_span("after-inner")
    agentops.end_trace(outer)
    assert current_trace() is None
    child_span("after-all")
    assert spans.one("after-inner").context.trace_id == int(outer.trace_id, 16)
    assert spans.one("after-all").parent is None


def test_ending_traces_out_of_order_never_leaves_an_ended_trace_current(spans: CapturedSpans) -> None:
    first = agentops.start_trace("first")
    second = agentops.start_trace("second")
    agentops.end_trace(first)
    assert current_trace() is second
    agentops.end_trace(second)
    assert current_trace() is None
    assert trace_api.get_current_span() is trace_api.INVALID_SPAN


def test_a_trace_started_in_an_asyncio_task_is_not_current_in_its_parent(spans: CapturedSpans) -> None:
    async def job() -> str:
        return agentops.start_trace("in-task").trace_id

    async def main() -> None:
        await asyncio.create_task(job())
        assert current_trace() is None

    asyncio.run(main())


# --- ending -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("end_state", "stored", "status"),
    [
        ("Success", "Success", StatusCode.OK),
        ("Error", "Error", StatusCode.ERROR),
        ("Indeterminate", "Indeterminate", StatusCode.UNSET),
        (agentops.TraceState.SUCCESS, "Success", StatusCode.OK),
        (agentops.TraceState.ERROR, "Error", StatusCode.ERROR),
        (agentops.TraceState.INDETERMINATE, "Indeterminate", StatusCode.UNSET),
        ("error", "Error", StatusCode.ERROR),
    ],
)
def test_end_state_is_stored_as_its_string_and_sets_the_span_status(
    spans: CapturedSpans, end_state: object, stored: str, status: StatusCode
) -> None:
    agentops.end_trace(agentops.start_trace("t"), end_state=end_state)
    root = spans.one("t")
    assert root.attributes[semconv.AGENTOPS_END_STATE] == stored
    assert root.status.status_code is status


def test_default_end_state_is_success(spans: CapturedSpans) -> None:
    agentops.end_trace(agentops.start_trace("t"))
    assert spans.one("t").attributes[semconv.AGENTOPS_END_STATE] == "Success"


def test_an_unknown_end_state_is_recorded_as_indeterminate_with_a_warning(
    spans: CapturedSpans, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="agentops"):
        agentops.end_trace(agentops.start_trace("t"), end_state="Done-ish")
    assert spans.one("t").attributes[semconv.AGENTOPS_END_STATE] == "Indeterminate"
    assert "Done-ish" in caplog.text


def test_ending_a_trace_twice_is_a_harmless_no_op(spans: CapturedSpans, caplog: pytest.LogCaptureFixture) -> None:
    trace_context = agentops.start_trace("t")
    agentops.end_trace(trace_context, "Error")
    with caplog.at_level(logging.WARNING):
        agentops.end_trace(trace_context, "Success")
    assert len(spans.named("t")) == 1
    assert spans.one("t").attributes[semconv.AGENTOPS_END_STATE] == "Error"
    assert caplog.records == []


def test_trace_context_as_context_manager_ends_the_trace_as_success(spans: CapturedSpans) -> None:
    with agentops.start_trace("t") as trace_context:
        child_span()
    assert trace_context not in agentops.active_traces()
    assert spans.one("t").attributes[semconv.AGENTOPS_END_STATE] == "Success"


def test_trace_context_as_context_manager_records_an_exception_and_lets_it_through(spans: CapturedSpans) -> None:
    error = ValueError("boom")
    with pytest.raises(ValueError) as raised, agentops.start_trace("t"):
        raise error
    assert raised.value is error
    root = spans.one("t")
    assert root.attributes[semconv.AGENTOPS_END_STATE] == "Error"
    assert root.status.status_code is StatusCode.ERROR
    assert [event.name for event in root.events] == ["exception"]


def test_end_trace_without_argument_ends_every_trace_of_a_plain_script(spans: CapturedSpans) -> None:
    agentops.start_trace("a")
    agentops.start_trace("b")
    agentops.end_trace()
    assert agentops.active_traces() == []
    assert {span.name for span in spans} == {"a", "b"}


def test_active_traces_lists_open_traces_oldest_first(spans: CapturedSpans) -> None:
    a = agentops.start_trace("a")
    b = agentops.start_trace("b")
    assert agentops.active_traces() == [a, b]
    agentops.end_trace(a)
    assert agentops.active_traces() == [b]
    agentops.end_trace(b)


# --- automatic scopes (requests, tasks) -------------------------------------------


def test_start_trace_inside_a_request_scope_is_a_child_of_the_request(spans: CapturedSpans, scope) -> None:
    trace_context = agentops.start_trace("inner")
    agentops.end_trace(trace_context)
    inner = spans.one("inner")
    assert inner.parent.span_id == scope.get_span_context().span_id
    assert current_scope() is not None


def test_end_trace_without_argument_inside_a_scope_ends_only_that_scopes_traces(spans: CapturedSpans, scope) -> None:
    token = context_api.attach(context_api.Context())  # step out of the scope: a plain-script trace
    outside = agentops.start_trace("outside")
    context_api.detach(token)
    inside = agentops.start_trace("inside")
    agentops.end_trace()
    assert agentops.active_traces() == [outside]
    assert inside.span.end_time is not None
    agentops.end_trace(outside)


def test_end_trace_without_argument_never_ends_another_threads_request_trace(spans: CapturedSpans) -> None:
    started = threading.Event()
    release = threading.Event()
    seen: dict[str, object] = {}

    def request() -> None:
        span = agentops.get_tracer().start_span("GET /", context=context_api.Context())
        context_api.attach(context_with_scope(span, "request"))
        seen["trace"] = agentops.start_trace("in-request")
        started.set()
        release.wait(10)
        seen["still_active"] = seen["trace"] in agentops.active_traces()
        agentops.end_trace()
        span.end()

    thread = threading.Thread(target=request)
    thread.start()
    assert started.wait(10)
    mine = agentops.start_trace("script")
    agentops.end_trace()  # the plain script's "end everything"
    release.set()
    thread.join(10)
    assert seen["still_active"] is True
    assert mine not in agentops.active_traces()
    assert agentops.active_traces() == []


def test_context_with_scope_makes_the_scope_span_current(spans: CapturedSpans) -> None:
    span = agentops.get_tracer().start_span("task")
    ctx = context_with_scope(span, "celery")
    assert trace_api.get_current_span(ctx) is span
    assert current_scope(ctx).name == "celery"
    assert current_trace(ctx) is None
    span.end()


# --- update_trace_metadata ---------------------------------------------------------


def test_update_trace_metadata_sets_prefixed_attributes_on_the_callers_trace(spans: CapturedSpans) -> None:
    trace_context = agentops.start_trace("t")
    assert agentops.update_trace_metadata({"user": "ann", "attempt": 2, "labels": ["a", "b"]}) is True
    agentops.end_trace(trace_context)
    attributes = spans.one("t").attributes
    assert attributes["trace.metadata.user"] == "ann"
    assert attributes["trace.metadata.attempt"] == 2
    assert attributes["trace.metadata.labels"] == ("a", "b")


def test_update_trace_metadata_stores_other_values_as_json_and_masks_secrets(spans: CapturedSpans) -> None:
    trace_context = agentops.start_trace("t")
    agentops.update_trace_metadata({"order": {"id": 7, "card_token": "abc"}, "api_key": "sk-1"})
    agentops.end_trace(trace_context)
    attributes = spans.one("t").attributes
    assert attributes["trace.metadata.order"] == '{"id":7,"card_token":"[REDACTED]"}'
    assert attributes["trace.metadata.api_key"] == "[REDACTED]"


def test_update_trace_metadata_inside_a_decorated_call_reaches_the_trace(spans: CapturedSpans) -> None:
    @agentops.tool
    def step() -> None:
        agentops.update_trace_metadata({"step": "done"})

    with agentops.start_trace("t"):
        step()
    assert spans.one("t").attributes["trace.metadata.step"] == "done"


def test_update_trace_metadata_outside_any_trace_returns_false(spans: CapturedSpans) -> None:
    assert agentops.update_trace_metadata({"a": 1}) is False


def test_update_trace_metadata_in_a_request_without_a_trace_updates_the_request(spans: CapturedSpans, scope) -> None:
    assert agentops.update_trace_metadata({"a": 1}) is True
    assert scope.attributes["trace.metadata.a"] == 1


def test_update_trace_metadata_never_touches_another_threads_trace(spans: CapturedSpans) -> None:
    mine = agentops.start_trace("mine")
    results: list[bool] = []

    def other() -> None:
        with agentops.start_trace("other"):
            results.append(agentops.update_trace_metadata({"who": "other"}))

    thread = threading.Thread(target=other)
    thread.start()
    thread.join(10)
    agentops.end_trace(mine)
    assert results == [True]
    assert "trace.metadata.who" not in spans.one("mine").attributes
    assert spans.one("other").attributes["trace.metadata.who"] == "other"


def test_end_trace_accepts_a_legacy_session(spans: CapturedSpans) -> None:
    session = agentops.start_session()
    agentops.end_trace(session, "Error")
    assert not session.is_running
    assert spans.one("session").attributes[semconv.AGENTOPS_END_STATE] == "Error"


def test_end_trace_with_only_a_state_string_ends_the_callers_traces_with_it(spans: CapturedSpans) -> None:
    agentops.start_trace("t")
    agentops.end_trace("Error")
    assert spans.one("t").attributes[semconv.AGENTOPS_END_STATE] == "Error"


def test_end_trace_with_something_that_is_not_a_trace_warns_and_does_nothing(
    spans: CapturedSpans, caplog: pytest.LogCaptureFixture
) -> None:
    trace_context = agentops.start_trace("t")
    agentops.end_trace(42)
    assert trace_context in agentops.active_traces()
    assert "42" in caplog.text
    agentops.end_trace(trace_context)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_never_ends_or_exports_the_parents_open_traces() -> None:
    code = textwrap.dedent(
        """
        import json, os
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
        import agentops

        class Printer(SpanExporter):
            def export(self, spans):
                for span in spans:
                    print(json.dumps([span.name, os.getpid() == parent]), flush=True)
                return SpanExportResult.SUCCESS

        parent = os.getpid()
        agentops.init(instrument_llm_calls=False, exporters=[SimpleSpanProcessor(Printer())])
        pid = os.fork()
        if pid == 0:
            assert agentops.active_traces() == []
            with agentops.start_trace("child-job"):
                pass
            raise SystemExit(0)  # a normal exit: atexit handlers run in the child too
        os.waitpid(pid, 0)
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTOPS_")}
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60, check=True, cwd=ROOT
    )
    exported = sorted(json.loads(line) for line in done.stdout.splitlines())
    assert exported == [["child-job", False], ["session", True]]


def test_a_trace_ended_inside_a_decorated_call_is_not_current_after_the_call(spans: CapturedSpans) -> None:
    trace_context = agentops.start_trace("t")

    @agentops.agent
    def finish_up() -> None:
        agentops.end_trace(trace_context)

    finish_up()
    assert current_trace() is None
    child_span("later")
    assert spans.one("later").parent is None
