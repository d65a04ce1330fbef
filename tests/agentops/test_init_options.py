"""AgentOps 0.4.21's ``init()``/``configure()`` options, ``Client`` and end states work here.

Each option AgentOps documents is accepted; those that mean something here
act (``tags``, ``exporter``, ``processor``, ``exporter_endpoint``,
``log_level``...), the others are accepted and have no effect; an unknown
option is a warning pointing at the caller's line, never an error.
"""

from __future__ import annotations

import http.server
import logging
import threading
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

import agentops
from agentops import semconv
from agentops.testing import CapturedSpans, captured_spans


def test_tags_are_agentops_old_name_of_default_tags(agentops_init) -> None:
    agentops_init(tags=["old"], default_tags=["new"])
    with captured_spans() as spans:
        agentops.end_trace(agentops.start_trace("t"))
    assert spans.one("t").attributes[semconv.AGENTOPS_TAGS] == ("new", "old")


def test_a_span_exporter_given_as_exporter_gets_every_span(agentops_init) -> None:
    exporter = InMemorySpanExporter()
    agentops_init(exporter=exporter)
    agentops.end_trace(agentops.start_trace("exported"))
    assert agentops.flush(5_000)
    assert [span.name for span in exporter.get_finished_spans()] == ["exported"]


def test_a_span_processor_given_as_processor_sees_every_span(agentops_init) -> None:
    exporter = InMemorySpanExporter()
    agentops_init(processor=SimpleSpanProcessor(exporter))
    agentops.end_trace(agentops.start_trace("processed"))
    assert [span.name for span in exporter.get_finished_spans()] == ["processed"]


class _Receiver(http.server.BaseHTTPRequestHandler):
    received: list[tuple[str, str, bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.received.append((self.path, self.headers.get("Content-Type", ""), body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def otlp_receiver() -> Iterator[tuple[str, list[tuple[str, str, bytes]]]]:
    """A loopback HTTP server that accepts OTLP/HTTP posts and keeps them."""
    received: list[tuple[str, str, bytes]] = []
    handler = type("Receiver", (_Receiver,), {"received": received})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1/traces", received
    finally:
        server.shutdown()
        server.server_close()


def span_names(received: list[tuple[str, str, bytes]]) -> list[str]:
    """The names of the spans in the OTLP/HTTP requests received."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    names = []
    for _, _, body in received:
        for resource_spans in ExportTraceServiceRequest.FromString(body).resource_spans:
            for scope_spans in resource_spans.scope_spans:
                names += [span.name for span in scope_spans.spans]
    return names


def test_exporter_endpoint_sends_every_span_over_otlp_http(agentops_init, otlp_receiver) -> None:
    pytest.importorskip("opentelemetry.exporter.otlp.proto.http.trace_exporter")
    endpoint, received = otlp_receiver
    agentops_init(exporter_endpoint=endpoint)
    agentops.end_trace(agentops.start_trace("over-the-wire"))
    assert agentops.flush(10_000)
    assert received, "nothing was posted"
    path, content_type, _ = received[0]
    assert path == "/v1/traces"
    assert content_type == "application/x-protobuf"
    assert span_names(received) == ["over-the-wire"]


def test_init_twice_with_the_same_exporter_endpoint_exports_each_span_once(agentops_init, otlp_receiver) -> None:
    pytest.importorskip("opentelemetry.exporter.otlp.proto.http.trace_exporter")
    endpoint, received = otlp_receiver
    agentops_init(exporter_endpoint=endpoint)
    agentops_init(exporter_endpoint=endpoint)
    assert len(agentops.span_processors()) == 1
    agentops.end_trace(agentops.start_trace("once"))
    assert agentops.flush(10_000)
    assert span_names(received) == ["once"]


def test_exporter_endpoint_comes_from_agentops_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTOPS_EXPORTER_ENDPOINT", "http://127.0.0.1:9/v1/traces")
    assert agentops.get_client().config.exporter_endpoint == "http://127.0.0.1:9/v1/traces"


def test_agentops_options_without_effect_here_are_accepted_silently(agentops_init, recwarn) -> None:
    agentops_init(
        endpoint="https://api.agentops.ai",
        app_url="https://app.agentops.ai",
        max_wait_time=5000,
        max_queue_size=512,
        auto_init=True,
        skip_auto_end_session=False,
        env_data_opt_out=True,
        fail_safe=True,
        log_session_replay_url=False,
        export_flush_interval=1000,
        prefetch_jwt_token=False,
    )
    assert agentops.is_initialized()
    assert list(recwarn) == []


def test_an_unknown_option_is_a_warning_at_the_callers_line(agentops_init) -> None:
    with pytest.warns(UserWarning, match="unknown init\\(\\) option 'colour'") as caught:
        agentops.init(auto_start_session=False, colour="blue")
    assert caught[0].filename == __file__
    assert agentops.is_initialized()


def test_log_level_sets_the_agentops_logger(agentops_init) -> None:
    logger = logging.getLogger("agentops")
    before = logger.level
    try:
        agentops_init(log_level="DEBUG")
        assert logger.level == logging.DEBUG
    finally:
        logger.setLevel(before)


def test_configure_before_init_is_kept_for_it() -> None:
    agentops.configure(default_tags=["configured"], trace_name="nightly")
    assert not agentops.is_initialized()
    trace_context = agentops.init()
    assert trace_context.name == "nightly"
    assert agentops.get_client().config.default_tags == ("configured",)


def test_configure_after_init_applies_at_once_and_starts_no_session(agentops_init) -> None:
    agentops_init()
    agentops.configure(default_tags=["later"], auto_start_session=True)
    assert agentops.active_traces() == []
    with captured_spans() as spans:
        agentops.end_trace(agentops.start_trace("t"))
    assert spans.one("t").attributes[semconv.AGENTOPS_TAGS] == ("later",)


def test_configure_warns_about_unknown_options_too() -> None:
    with pytest.warns(UserWarning, match="unknown configure\\(\\) option 'max_wait'"):
        agentops.configure(max_wait=1)


def test_there_is_one_client_and_it_initialises_agentops() -> None:
    client = agentops.get_client()
    assert agentops.Client() is client
    assert client.initialized is False
    assert client.init(auto_start_session=False) is None
    assert client.initialized is True
    client.configure(trace_name="renamed")
    assert client.config.trace_name == "renamed"


@pytest.mark.parametrize(
    ("end_state", "stored", "status"),
    [
        (agentops.SUCCESS, "Success", StatusCode.OK),
        (agentops.ERROR, "Error", StatusCode.ERROR),
        (agentops.UNSET, "Indeterminate", StatusCode.UNSET),
        (StatusCode.OK, "Success", StatusCode.OK),
        (StatusCode.ERROR, "Error", StatusCode.ERROR),
        ("UNSET", "Indeterminate", StatusCode.UNSET),
    ],
)
def test_agentops_end_states_end_a_trace(spans: CapturedSpans, end_state, stored: str, status: StatusCode) -> None:
    agentops.end_trace(agentops.start_trace("t"), end_state)
    root = spans.one("t")
    assert root.attributes[semconv.AGENTOPS_SESSION_END_STATE] == stored
    assert root.attributes[semconv.AGENTOPS_END_STATE] == stored
    assert root.status.status_code is status


def test_a_trace_root_carries_agentops_kind_session(spans: CapturedSpans) -> None:
    agentops.end_trace(agentops.start_trace("t"))
    assert spans.one("t").attributes[semconv.AGENTOPS_SPAN_KIND] == "session"


def test_end_session_keywords_are_recorded_under_agentops_legacy_names(spans: CapturedSpans) -> None:
    agentops.start_session()
    agentops.end_session(end_state="Fail", end_state_reason="timeout")
    root = spans.one("session")
    assert root.attributes["agentops.legacy.end_state_reason"] == "timeout"
    assert root.attributes["agentops.status.end_state_reason"] == "timeout"


def test_update_trace_metadata_writes_under_agentops_prefix_or_the_one_given(spans: CapturedSpans) -> None:
    with agentops.start_trace("ai-workflow", tags=["startup"]):
        assert agentops.update_trace_metadata({"status": "processing"})
        assert agentops.update_trace_metadata({"stage": 2}, prefix="custom")
    attributes = spans.one("ai-workflow").attributes
    assert attributes["trace.metadata.status"] == "processing"
    assert attributes["custom.stage"] == 2
