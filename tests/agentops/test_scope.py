"""The seam for framework integrations (``agentops.integrations.scope``): one lifecycle, one failure rule.

The Django middleware and the Celery handlers are built on exactly this; so
can any other integration, without touching agentops' private modules.
"""

from __future__ import annotations

from typing import Any

from opentelemetry import context as context_api
from opentelemetry.context import Context
from opentelemetry.trace import SpanContext, SpanKind, StatusCode, TraceFlags

import agentops
from agentops.integrations import scope
from agentops.testing import CapturedSpans


def test_before_init_the_seam_says_inactive() -> None:
    assert scope.is_active() is False
    assert scope.capture_content() is False


def test_a_scope_is_a_span_whose_context_owns_the_traces_started_inside(spans: CapturedSpans) -> None:
    opened = scope.open_scope("GET /x/", parent=Context(), kind=SpanKind.SERVER, attributes={"a": 1})
    token = context_api.attach(opened.context)
    try:
        inner = agentops.start_trace("inside")  # a child of the scope's span, not a new root
        forgotten = agentops.start_trace("forgotten")
        agentops.end_trace(inner)
    finally:
        context_api.detach(token)
    assert opened.close(agentops.TraceState.SUCCESS, {"http.response.status_code": 200})
    assert agentops.active_traces() == []
    request = spans.one("GET /x/")
    assert request.kind is SpanKind.SERVER and request.parent is None
    assert request.status.status_code is StatusCode.OK
    assert request.attributes["agentops.end_state"] == "Success"
    assert request.attributes["http.response.status_code"] == 200
    left = spans.one("forgotten")
    assert left.attributes["agentops.end_state"] == "Indeterminate"
    assert left.context.trace_id == request.context.trace_id
    assert forgotten.ended
    assert spans.one("inside").parent.span_id == request.context.span_id


def test_closing_twice_is_a_no_op(spans: CapturedSpans) -> None:
    opened = scope.open_scope("task", parent=Context())
    assert opened.close(agentops.TraceState.SUCCESS) is True
    assert opened.close(agentops.TraceState.ERROR) is False
    assert [s.attributes["agentops.end_state"] for s in spans] == ["Success"]


def test_a_failed_scope_keeps_the_exception_and_a_capped_status(spans: CapturedSpans) -> None:
    opened = scope.open_scope("task", parent=Context())
    try:
        raise ValueError("x" * 5000)
    except ValueError as exc:
        opened.fail(exc, traceback="Traceback (most recent call last): ...")
    opened.close(agentops.TraceState.ERROR)
    (span,) = spans
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description.startswith("ValueError: xxx")
    assert len(span.status.description) == scope.MAX_STATUS_MESSAGE
    assert span.attributes["error.type"] == "ValueError"
    assert span.attributes["agentops.end_state"] == "Error"
    (event,) = span.events
    assert event.name == "exception"
    assert event.attributes["exception.stacktrace"].startswith("Traceback")


def test_a_failure_without_an_exception_names_its_type(spans: CapturedSpans) -> None:
    opened = scope.open_scope("GET /", parent=Context())
    opened.fail(error_type="503")
    opened.close(agentops.TraceState.ERROR)
    (span,) = spans
    assert span.attributes["error.type"] == "503"
    assert span.status.status_code is StatusCode.ERROR
    assert span.events == ()


def test_a_user_exception_whose_str_fails_still_marks_the_span(spans: CapturedSpans) -> None:
    class Hostile(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no")

    opened = scope.open_scope("task", parent=Context())
    opened.fail(Hostile())
    opened.close(agentops.TraceState.ERROR)
    assert spans[0].status.status_code is StatusCode.ERROR


def test_a_non_recording_scope_drops_everything_started_inside(spans: CapturedSpans) -> None:
    unsampled = SpanContext(1, 1, is_remote=False, trace_flags=TraceFlags(0))
    opened = scope.non_recording_scope(unsampled, base=Context())
    token = context_api.attach(opened.context)
    try:
        with agentops.start_trace("inside"):
            pass
    finally:
        context_api.detach(token)
    opened.close(agentops.TraceState.SUCCESS)
    assert list(spans) == []


def test_serialize_applies_the_sdks_redaction_and_size_cap(agentops_init: Any) -> None:
    agentops_init(max_payload_size=200, redact_keys=["secret"])
    text = scope.serialize({"secret": "s3cr3t", "long": "y" * 1000})
    assert "s3cr3t" not in text and scope.REDACTED in text
    assert len(text) <= 250


def test_shutdown_ends_open_traces_and_stops_the_processors(spans: CapturedSpans) -> None:
    agentops.start_trace("left-open")
    assert agentops.shutdown(2_000) is True
    assert spans.one("left-open").attributes["agentops.end_state"] == "Indeterminate"
    assert agentops.span_processors() == ()
