"""The request middleware: one root span per request, named by route, ended with the response."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import AsyncClient, Client
from opentelemetry.trace import SpanKind, StatusCode

import agentops
import agentops.testing
from agentops.testing import CapturedSpans

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"


def attrs(span: Any) -> dict[str, Any]:
    return dict(span.attributes or {})


def request_span(spans: CapturedSpans) -> Any:
    found = [s for s in spans if attrs(s).get("agentops.span.kind") == "request"]
    assert len(found) == 1, [s.name for s in spans]
    return found[0]


def test_request_is_a_server_root_span_named_by_method_and_route(traced: CapturedSpans) -> None:
    response = Client().get("/orders/7/?page=2", HTTP_USER_AGENT="pytest-agent")

    assert response.status_code == 200
    span = request_span(traced)
    assert span.name == "GET /orders/<int:pk>/"
    assert span.kind is SpanKind.SERVER
    assert span.parent is None
    a = attrs(span)
    assert a["http.request.method"] == "GET"
    assert a["http.route"] == "/orders/<int:pk>/"
    assert a["url.path"] == "/orders/7/"
    assert a["url.query"] == "page=2"
    assert a["url.scheme"] == "http"
    assert a["client.address"] == "127.0.0.1"
    assert a["user_agent.original"] == "pytest-agent"
    assert a["http.response.status_code"] == 200
    assert a["agentops.end_state"] == "Success"
    assert span.status.status_code is StatusCode.OK


def test_re_path_route_names_the_span(traced: CapturedSpans) -> None:
    Client().get("/legacy/2024/")
    assert request_span(traced).name == "GET /legacy/(?P<year>[0-9]{4})/$"


def test_unmatched_404_is_named_by_what_was_asked_for_and_is_not_an_error(traced: CapturedSpans) -> None:
    response = Client().post("/no/such/page/")

    assert response.status_code == 404
    span = request_span(traced)
    assert span.name == "POST /no/such/page/ (no route)"
    assert "http.route" not in attrs(span)
    assert attrs(span)["agentops.end_state"] == "Success"
    assert span.status.status_code is not StatusCode.ERROR


def test_http404_raised_by_a_matched_view_is_not_an_error(traced: CapturedSpans) -> None:
    response = Client().get("/orders/404/")

    assert response.status_code == 404
    span = request_span(traced)
    assert span.name == "GET /orders/<int:pk>/"
    assert attrs(span)["agentops.end_state"] == "Success"
    assert not span.events, "a 4xx exception is not recorded"


def test_unhandled_exception_ends_the_trace_as_error_with_the_exception_recorded(traced: CapturedSpans) -> None:
    with pytest.raises(ValueError, match="the view failed"):
        Client().get("/boom/")

    span = request_span(traced)
    assert span.status.status_code is StatusCode.ERROR
    a = attrs(span)
    assert a["agentops.end_state"] == "Error"
    assert a["http.response.status_code"] == 500
    assert a["error.type"] == "ValueError"
    [event] = span.events
    assert event.name == "exception"
    assert event.attributes["exception.message"] == "the view failed"


def test_5xx_response_is_an_error_without_an_exception(traced: CapturedSpans) -> None:
    response = Client().get("/unavailable/")

    assert response.status_code == 503
    span = request_span(traced)
    assert span.status.status_code is StatusCode.ERROR
    assert attrs(span)["agentops.end_state"] == "Error"
    assert attrs(span)["error.type"] == "503"


def test_sensitive_query_parameters_are_redacted(traced: CapturedSpans) -> None:
    Client().get("/ping/?q=shoes&api_key=s3cret&access_token=abc&page=1")

    query = attrs(request_span(traced))["url.query"]
    assert "s3cret" not in query and "abc" not in query
    assert query.startswith("q=shoes&api_key=")
    assert query.endswith("&page=1")


def test_headers_are_not_recorded_by_default(traced: CapturedSpans) -> None:
    Client().get("/ping/", HTTP_AUTHORIZATION="Bearer secret-token")
    assert not [k for k in attrs(request_span(traced)) if k.startswith("http.request.header.")]


def test_recorded_headers_mask_authorization_and_cookie(configure_agentops: Any) -> None:
    configure_agentops(DATABASE_WRITER=False, RECORD_HEADERS=True)
    with agentops.testing.captured_spans() as spans:
        Client().get("/ping/", HTTP_AUTHORIZATION="Bearer secret-token", HTTP_COOKIE="sid=1", HTTP_X_SHOP="north")
    a = attrs(request_span(spans))
    assert a["http.request.header.authorization"] == "[REDACTED]"
    assert a["http.request.header.cookie"] == "[REDACTED]"
    assert a["http.request.header.x-shop"] == "north"


def test_bad_host_header_never_breaks_tracing(traced: CapturedSpans) -> None:
    """The middleware never calls get_host(): a bad Host is Django's own 400, traced like any 4xx."""
    response = Client().get("/ping/", HTTP_HOST="bad host with spaces")
    assert response.status_code == 400  # CommonMiddleware's DisallowedHost, after ours
    span = request_span(traced)
    assert attrs(span)["http.response.status_code"] == 400
    assert attrs(span)["agentops.end_state"] == "Success"


def test_request_is_a_new_trace_even_inside_an_init_session(traced: CapturedSpans) -> None:
    session = agentops.start_trace("script-session")
    try:
        Client().get("/ping/")
    finally:
        agentops.end_trace(session)
    span = request_span(traced)
    assert span.parent is None
    assert span.context.trace_id != session.span.get_span_context().trace_id


def test_start_trace_inside_a_view_is_a_child_and_leftovers_end_indeterminate(traced: CapturedSpans) -> None:
    Client().get("/with-trace/")

    root = request_span(traced)
    inner = traced.one("inner-work")
    left = traced.one("left-open")
    for child in (inner, left):
        assert child.context.trace_id == root.context.trace_id
        assert child.parent.span_id == root.context.span_id
    assert attrs(inner)["agentops.end_state"] == "Success"
    assert attrs(left)["agentops.end_state"] == "Indeterminate"
    assert agentops.active_traces() == []


def test_end_trace_in_a_view_ends_only_that_requests_traces(traced: CapturedSpans) -> None:
    outside = agentops.start_trace("outside")
    try:
        Client().get("/end-all/")
        assert not outside.ended
        assert traced.one("mine").parent.span_id == request_span(traced).context.span_id
    finally:
        agentops.end_trace(outside)


def test_streaming_response_span_ends_when_the_stream_closes(traced: CapturedSpans) -> None:
    response = Client().get("/stream/")

    assert not [s for s in traced if attrs(s).get("agentops.span.kind") == "request"], "ended before the stream"
    assert b"".join(response.streaming_content) == b"one,two"
    root = request_span(traced)
    assert root.name == "GET /stream/"
    assert attrs(root)["agentops.end_state"] == "Success"
    during = traced.one("during-stream")
    assert during.parent.span_id == root.context.span_id, "the stream runs in the request's context"


def test_streaming_response_that_fails_ends_as_error(traced: CapturedSpans) -> None:
    response = Client().get("/stream-error/")
    with pytest.raises(RuntimeError, match="the stream broke"):
        b"".join(response.streaming_content)
    root = request_span(traced)
    assert attrs(root)["agentops.end_state"] == "Error"
    assert root.events[0].attributes["exception.type"] == "RuntimeError"


def test_file_response_span_ends_when_the_file_is_closed(traced: CapturedSpans) -> None:
    response = Client().get("/file/")
    assert not [s for s in traced if attrs(s).get("agentops.span.kind") == "request"]
    assert b"def file" in b"".join(response.streaming_content)
    assert request_span(traced).name == "GET /file/"


async def test_async_view_through_asgi_is_traced_with_children(traced: CapturedSpans) -> None:
    response = await AsyncClient().get("/async-ping/")

    assert response.status_code == 200
    root = request_span(traced)
    assert root.name == "GET /async-ping/"
    assert traced.one("async-work").parent.span_id == root.context.span_id


async def test_async_view_exception_is_an_error(traced: CapturedSpans) -> None:
    with pytest.raises(KeyError):
        await AsyncClient().get("/async-boom/")
    root = request_span(traced)
    assert attrs(root)["agentops.end_state"] == "Error"
    assert attrs(root)["error.type"] == "KeyError"


async def test_async_streaming_response_ends_when_consumed(traced: CapturedSpans) -> None:
    response = await AsyncClient().get("/async-stream/")
    chunks = [chunk async for chunk in response.streaming_content]
    assert b"".join(chunks) == b"a,b"
    assert request_span(traced).name == "GET /async-stream/"


def test_middleware_is_async_capable_and_marks_itself_a_coroutine_in_an_async_chain() -> None:
    from asgiref.sync import iscoroutinefunction

    from agentops_django.middleware import AgentOpsMiddleware

    async def chain(request: Any) -> Any:
        return None

    assert AgentOpsMiddleware.sync_capable and AgentOpsMiddleware.async_capable
    assert iscoroutinefunction(AgentOpsMiddleware(chain))
    assert not iscoroutinefunction(AgentOpsMiddleware(lambda request: None))


def test_static_files_and_excluded_paths_produce_no_span(configure_agentops: Any) -> None:
    configure_agentops(DATABASE_WRITER=False, EXCLUDED_PATHS=[r"^/health/", r"^/ping/$"])
    with agentops.testing.captured_spans() as spans:
        Client().get("/static/app.css")
        Client().get("/admin/agentops_django/trace/")
        Client().get("/health/live")
        Client().get("/ping/")
        Client().get("/orders/1/")
    assert [s.name for s in spans] == ["GET /orders/<int:pk>/"]


def test_sample_rate_zero_records_nothing_not_even_traces_started_inside(configure_agentops: Any) -> None:
    configure_agentops(DATABASE_WRITER=False, SAMPLE_RATE=0.0)
    with agentops.testing.captured_spans() as spans:
        for _ in range(5):
            Client().get("/with-trace/")
    assert list(spans) == []
    assert agentops.active_traces() == []


def test_sample_rate_one_records_every_request(configure_agentops: Any) -> None:
    configure_agentops(DATABASE_WRITER=False, SAMPLE_RATE=1.0)
    with agentops.testing.captured_spans() as spans:
        for _ in range(5):
            Client().get("/ping/")
    assert [s.name for s in spans] == ["GET /ping/"] * 5


def test_incoming_traceparent_is_ignored_unless_trusted(traced: CapturedSpans) -> None:
    Client().get("/ping/", HTTP_TRACEPARENT=f"00-{TRACE_ID}-{PARENT_ID}-01")
    span = request_span(traced)
    assert span.parent is None
    assert format(span.context.trace_id, "032x") != TRACE_ID


def test_trusted_traceparent_continues_the_callers_trace(configure_agentops: Any) -> None:
    configure_agentops(DATABASE_WRITER=False, TRUST_INCOMING_TRACEPARENT=True)
    with agentops.testing.captured_spans() as spans:
        Client().get("/ping/", HTTP_TRACEPARENT=f"00-{TRACE_ID}-{PARENT_ID}-01", HTTP_TRACESTATE="shop=north")
    span = request_span(spans)
    assert format(span.context.trace_id, "032x") == TRACE_ID
    assert format(span.parent.span_id, "016x") == PARENT_ID
    assert span.parent.is_remote
    assert span.context.trace_state.get("shop") == "north"


@pytest.mark.parametrize(
    "header",
    ["garbage", f"00-{'0' * 32}-{PARENT_ID}-01", f"00-{TRACE_ID}-{PARENT_ID}", f"zz-{TRACE_ID}-{PARENT_ID}-01", ""],
)
def test_malformed_trusted_traceparent_starts_a_fresh_trace(configure_agentops: Any, header: str) -> None:
    configure_agentops(DATABASE_WRITER=False, TRUST_INCOMING_TRACEPARENT=True)
    with agentops.testing.captured_spans() as spans:
        response = Client().get("/ping/", HTTP_TRACEPARENT=header)
    assert response.status_code == 200
    span = request_span(spans)
    assert span.parent is None
    assert format(span.context.trace_id, "032x") != TRACE_ID


def test_disabled_setting_traces_nothing(configure_agentops: Any) -> None:
    agentops.testing.reset()
    configure_agentops(ENABLED=False)
    assert not agentops.is_initialized()
    response = Client().get("/ping/")
    assert response.status_code == 200


def test_a_failing_should_trace_callback_never_breaks_the_request(configure_agentops: Any) -> None:
    configure_agentops(DATABASE_WRITER=False, SHOULD_TRACE_REQUEST="tests.agentops_django.test_middleware.only_orders")
    with agentops.testing.captured_spans() as spans:
        Client().get("/ping/")
        Client().get("/orders/2/")
    assert [s.name for s in spans] == ["GET /orders/<int:pk>/"]


def only_orders(request: Any) -> bool:
    return request.path.startswith("/orders/")


def test_the_admin_favicon_and_static_files_are_not_traced_by_default(traced: CapturedSpans, admin_user: Any) -> None:
    """A developer browsing the admin must not bury their own traces under admin visits."""
    client = Client()
    client.force_login(admin_user)
    for path in ("/admin/", "/admin/jsi18n/", "/admin/auth/user/", "/favicon.ico", "/static/x.css"):
        client.get(path)
    client.get("/orders/3/")
    assert [s.name for s in traced if attrs(s).get("agentops.span.kind") == "request"] == ["GET /orders/<int:pk>/"]


def test_the_admin_is_traced_when_default_exclusions_are_off(configure_agentops: Any, admin_user: Any) -> None:
    from agentops.testing import captured_spans

    configure_agentops(DATABASE_WRITER=False, EXCLUDE_DEFAULT_PATHS=False)
    client = Client()
    client.force_login(admin_user)
    with captured_spans() as spans:
        client.get("/admin/")
    assert [s.name for s in spans] == ["GET /admin/"]
