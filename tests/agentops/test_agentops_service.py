"""With an API key, spans also go to AgentOps' service, as the official SDK sends them.

Against :class:`agentops.testing.service_server.ServiceServer` on loopback:
the key is exchanged for a bearer token in the background, spans are posted
as OTLP/HTTP protobuf with that token and the project on the resource, an
expired token is renewed, failures cost counted drops and never the host's
time, and without a key nothing is sent anywhere.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import SpanProcessor

import agentops
from agentops import semconv
from agentops.testing import captured_spans

pytest.importorskip("opentelemetry.exporter.otlp.proto.http.trace_exporter")

from agentops import _service
from agentops.testing.service_server import ServiceServer

KEY = "test-api-key"


@pytest.fixture
def service() -> Iterator[ServiceServer]:
    with ServiceServer(api_key=KEY, project_id="proj-42") as server:
        yield server


@pytest.fixture
def init_with_key(agentops_init: Callable[..., Any], service: ServiceServer) -> Callable[..., Any]:
    """Factory: ``init()`` with the key and both endpoints pointed at the stand-in."""

    def init(**options: Any) -> Any:
        options.setdefault("api_key", KEY)
        options.setdefault("endpoint", service.api_endpoint)
        options.setdefault("exporter_endpoint", service.exporter_endpoint)
        return agentops_init(**options)

    return init


def service_processor() -> Any:
    """The batch processor in front of the service exporter (exactly one)."""
    found = [
        p
        for p in agentops.span_processors()
        if isinstance(getattr(p, "exporter", None), _service.AgentOpsServiceExporter)
    ]
    assert len(found) == 1, agentops.span_processors()
    return found[0]


def test_spans_go_to_the_service_with_the_keys_token_and_project(init_with_key, service: ServiceServer) -> None:
    init_with_key()

    @agentops.agent(name="researcher")
    def research() -> str:
        return "done"

    trace = agentops.start_trace("session-one")
    assert research() == "done"
    agentops.end_trace(trace)
    assert agentops.flush(10_000)

    assert sorted(service.span_names()) == ["researcher.agent", "session-one"]
    [auth] = service.auth_requests
    assert json.loads(auth.body) == {"api_key": KEY}
    assert auth.headers["Content-Type"] == "application/json"
    assert auth.headers["User-Agent"].startswith("agentops-django/")
    assert service.requests[0] == auth  # the exchange came before the first post
    [export] = service.exports
    assert export.token == service_processor().exporter.tokens.token
    [resource] = export.resources
    assert resource[semconv.AGENTOPS_PROJECT_ID] == "proj-42"
    assert resource["service.name"]
    assert service_processor().stats()["dropped"] == 0


def test_the_key_and_endpoints_come_from_agentops_variables(
    agentops_init, service: ServiceServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENTOPS_API_KEY", KEY)
    monkeypatch.setenv("AGENTOPS_API_ENDPOINT", service.api_endpoint)
    monkeypatch.setenv("AGENTOPS_EXPORTER_ENDPOINT", service.exporter_endpoint)
    agentops_init()
    agentops.end_trace(agentops.start_trace("from-env"))
    assert agentops.flush(10_000)
    assert service.span_names() == ["from-env"]


def test_init_and_ending_spans_never_wait_for_the_token(init_with_key, service: ServiceServer) -> None:
    """The exchange happens on the export thread, with the first batch: nothing at init()."""
    init_with_key()
    agentops.end_trace(agentops.start_trace("first"))
    assert service.auth_requests == []  # the batch waits for its interval on the export thread
    assert agentops.flush(10_000)
    assert len(service.auth_requests) == 1


def test_an_expired_token_is_renewed_and_the_batch_sent_again(init_with_key, service: ServiceServer) -> None:
    init_with_key()
    agentops.end_trace(agentops.start_trace("before"))
    assert agentops.flush(10_000)
    service.expire_tokens()

    agentops.end_trace(agentops.start_trace("after"))
    assert agentops.flush(10_000)

    assert service.span_names() == ["before", "after"]
    assert len(service.auth_requests) == 2
    assert [r.status for r in service.export_requests] == [200, 401, 200]
    first, second = service.exports
    assert first.token != second.token
    assert service_processor().stats() == {"exported": 2, "dropped": 0, "queued": 0}


def test_a_token_about_to_expire_is_renewed_before_it_is_refused(
    init_with_key, service: ServiceServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    service.token_lifetime = _service.RENEW_MARGIN / 2  # every token is within the renewal margin
    init_with_key()
    for name in ("one", "two"):
        agentops.end_trace(agentops.start_trace(name))
        assert agentops.flush(10_000)
    assert service.span_names() == ["one", "two"]
    assert len(service.auth_requests) == 2
    assert all(r.status == 200 for r in service.export_requests)


def test_a_refused_key_drops_the_spans_counted_and_logged_and_backs_off(
    init_with_key, service: ServiceServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="agentops")
    init_with_key(api_key="not-the-key")
    with captured_spans() as local:
        agentops.end_trace(agentops.start_trace("refused"))
        assert agentops.flush(10_000)
        agentops.end_trace(agentops.start_trace("still-refused"))
        assert agentops.flush(10_000)

    assert [span.name for span in local] == ["refused", "still-refused"]  # the host's own copy is whole
    assert [r.status for r in service.requests] == [401]  # one exchange: the second batch is within the backoff
    assert service_processor().stats()["dropped"] == 2
    assert "the API key was refused (401)" in caplog.text
    assert "not-the-key" not in caplog.text
    assert "span(s) dropped" in caplog.text


def test_a_failed_exchange_is_retried_after_a_pause(
    init_with_key, service: ServiceServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_service, "BACKOFF_MIN", 0.2)
    service.auth_failures = [503]
    init_with_key()
    agentops.end_trace(agentops.start_trace("during-outage"))
    assert agentops.flush(10_000)
    time.sleep(0.3)
    agentops.end_trace(agentops.start_trace("after-outage"))
    assert agentops.flush(10_000)

    assert [r.status for r in service.auth_requests] == [503, 200]
    assert service.span_names() == ["after-outage"]
    assert service_processor().stats()["dropped"] == 1


def test_a_token_refused_even_when_new_pauses_sending_instead_of_exchanging_per_batch(
    init_with_key, service: ServiceServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="agentops")
    service.export_failures = [401] * 10  # the service takes the key but refuses every token
    init_with_key()
    for name in ("first", "second"):
        agentops.end_trace(agentops.start_trace(name))
        assert agentops.flush(10_000)

    assert len(service.auth_requests) == 2  # the token, then one renewal; the second batch is within the pause
    assert [r.status for r in service.export_requests] == [401, 401]
    assert service_processor().stats()["dropped"] == 2
    assert "refused a new token" in caplog.text


def test_a_transient_5xx_from_the_otlp_endpoint_is_retried(init_with_key, service: ServiceServer) -> None:
    service.export_failures = [503]
    init_with_key()
    agentops.end_trace(agentops.start_trace("retried"))
    assert agentops.flush(10_000)
    assert [r.status for r in service.export_requests] == [503, 200]
    assert service.span_names() == ["retried"]


def test_a_failing_otlp_endpoint_costs_counted_drops_and_nothing_else(init_with_key, service: ServiceServer) -> None:
    service.export_failures = [500]
    init_with_key()

    @agentops.tool(name="lookup")
    def lookup(x: int) -> int:
        return x * 2

    trace = agentops.start_trace("failing-endpoint")
    assert lookup(21) == 42
    agentops.end_trace(trace)
    assert agentops.flush(10_000)

    assert service.span_names() == []
    assert service_processor().stats() == {"exported": 0, "dropped": 2, "queued": 0}
    # The next batch goes through: the failure cost that batch only.
    agentops.end_trace(agentops.start_trace("recovered"))
    assert agentops.flush(10_000)
    assert service.span_names() == ["recovered"]


def test_a_slow_service_never_holds_up_the_callers_thread_and_shutdown_is_bounded(
    init_with_key, service: ServiceServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_service, "REQUEST_TIMEOUT", 0.5)
    service.export_delay = 5.0
    init_with_key()
    agentops.end_trace(agentops.start_trace("warm-up"))  # the first span starts the export thread
    assert not agentops.flush(300)  # the post is held up on the export thread

    slowest = 0.0
    started = time.perf_counter()
    for index in range(200):
        begin = time.perf_counter()
        agentops.end_trace(agentops.start_trace(f"while-slow-{index}"))
        slowest = max(slowest, time.perf_counter() - begin)
    total = time.perf_counter() - started
    # 200 traces ended while the service answers after 5 s: none waited even one
    # request's timeout (a trace costs tens of microseconds; the margin is for a busy machine).
    assert slowest < _service.REQUEST_TIMEOUT, slowest
    assert total < 2.0, total

    began = time.monotonic()
    agentops.shutdown(1_000)
    assert time.monotonic() - began < 3.0  # not the 5 s the service takes to answer
    assert service.span_names() == []


def test_a_forked_child_sends_its_own_spans_with_the_token_it_inherited(init_with_key, service: ServiceServer) -> None:
    """As a Celery prefork child: its own connections, the parent's token, no exchange of its own."""
    init_with_key()
    agentops.end_trace(agentops.start_trace("in-parent"))
    assert agentops.flush(10_000)  # the parent holds a token and a pooled connection

    pid = os.fork()
    if pid == 0:  # the child: leave without pytest's exit handling
        agentops.end_trace(agentops.start_trace("in-child"))
        os._exit(0 if agentops.flush(10_000) else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0

    assert sorted(service.span_names()) == ["in-child", "in-parent"]
    assert len(service.auth_requests) == 1
    assert len({export.token for export in service.exports}) == 1
    agentops.end_trace(agentops.start_trace("parent-again"))  # the parent's connection still works
    assert agentops.flush(10_000)
    assert service.span_names()[-1] == "parent-again"


def test_without_a_key_nothing_is_sent_and_no_exporter_is_installed(agentops_init, service: ServiceServer) -> None:
    agentops_init(endpoint=service.api_endpoint)  # the API endpoint alone sends nothing
    with captured_spans() as local:
        agentops.end_trace(agentops.start_trace("local-only"))
        assert agentops.flush(5_000)
    time.sleep(0.2)
    assert [span.name for span in local] == ["local-only"]
    assert agentops.span_processors() == ()
    assert service.requests == []


def test_an_exporter_endpoint_without_a_key_is_plain_otlp_with_no_token(agentops_init, service: ServiceServer) -> None:
    agentops_init(exporter_endpoint=service.exporter_endpoint)
    agentops.end_trace(agentops.start_trace("plain"))
    agentops.flush(5_000)
    assert service.auth_requests == []
    [post] = service.export_requests
    assert "Authorization" not in post.headers


def test_without_the_otlp_extra_a_key_is_one_clear_log_line_and_tracing_goes_on(
    agentops_init, service: ServiceServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="agentops")
    monkeypatch.setitem(sys.modules, "opentelemetry.exporter.otlp.proto.http.trace_exporter", None)
    monkeypatch.delitem(sys.modules, "agentops._service")
    agentops_init(api_key=KEY, endpoint=service.api_endpoint, exporter_endpoint=service.exporter_endpoint)
    with captured_spans() as local:
        agentops.end_trace(agentops.start_trace("still-traced"))
    assert [span.name for span in local] == ["still-traced"]
    assert agentops.span_processors() == ()
    [record] = [r for r in caplog.records if "otlp extra" in r.getMessage()]
    assert "AgentOps' service" in record.getMessage()
    assert service.requests == []


def test_init_twice_with_the_same_key_keeps_one_exporter(init_with_key, service: ServiceServer) -> None:
    init_with_key()
    init_with_key()
    assert isinstance(service_processor(), SpanProcessor)
    agentops.end_trace(agentops.start_trace("once"))
    assert agentops.flush(10_000)
    assert service.span_names() == ["once"]


def test_the_api_key_is_not_in_the_configurations_repr(init_with_key) -> None:
    init_with_key()
    assert KEY not in repr(agentops.get_client().config)
