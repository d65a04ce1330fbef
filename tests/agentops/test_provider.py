"""Specification of agentops as an OpenTelemetry citizen: provider, processors, exporters.

A process can set OpenTelemetry's global provider only once, so the tests
about who installs it run in a fresh Python subprocess each.
"""

from __future__ import annotations

import builtins
import gzip
import http.server
import json
import logging
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry import trace as trace_api
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

import agentops
from agentops.testing import CapturedSpans, memory_exporter

ROOT = Path(__file__).resolve().parents[2]


def run_python(code: str, full_output: bool = False, **env: str) -> dict:
    """Run ``code`` in a fresh interpreter; it prints one JSON object as its last line.

    With ``full_output`` the whole standard output is added under ``"stdout"``.
    """
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("AGENTOPS_", "OTEL_"))}
    environment.update(env)
    environment["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        env=environment,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if full_output:
        result["stdout"] = done.stdout
    return result


# --- who owns the global provider ------------------------------------------------------


def test_an_application_provider_set_before_init_is_kept_and_sees_agentops_spans() -> None:
    result = run_python(
        """
        import json
        from opentelemetry import trace
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        provider = TracerProvider(resource=Resource.create({"service.name": "shop"}))
        exporter = InMemorySpanExporter()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(provider)

        import agentops

        agentops.init(auto_start_session=False, instrument_llm_calls=False, service_name="ignored")

        @agentops.tool
        def lookup():
            pass

        with agentops.start_trace("job"):
            lookup()
        spans = exporter.get_finished_spans()
        print(json.dumps({
            "same_provider": trace.get_tracer_provider() is provider,
            "names": [s.name for s in spans],
            "service": spans[0].resource.attributes["service.name"],
        }))
        """
    )
    assert result == {"same_provider": True, "names": ["lookup.tool", "job"], "service": "shop"}


def test_without_an_application_provider_agentops_installs_its_own_as_the_global_one() -> None:
    result = run_python(
        """
        import json
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        import agentops

        agentops.init(auto_start_session=False, instrument_llm_calls=False, service_name="billing")
        provider = trace.get_tracer_provider()
        exporter = InMemorySpanExporter()
        provider.add_span_processor(SimpleSpanProcessor(exporter))  # the user's processor
        with agentops.start_trace("job"):
            pass
        spans = exporter.get_finished_spans()
        print(json.dumps({
            "sdk_provider": isinstance(provider, TracerProvider),
            "names": [s.name for s in spans],
            "service": spans[0].resource.attributes["service.name"],
        }))
        """
    )
    assert result == {"sdk_provider": True, "names": ["job"], "service": "billing"}


def test_a_second_init_in_the_same_process_keeps_the_provider_and_adds_no_processor_twice() -> None:
    result = run_python(
        """
        import json
        from opentelemetry import trace
        import agentops

        agentops.init(auto_start_session=False, instrument_llm_calls=False)
        provider = trace.get_tracer_provider()
        agentops.init(auto_start_session=False, instrument_llm_calls=False)
        processors = provider._active_span_processor._span_processors
        print(json.dumps({"same": trace.get_tracer_provider() is provider, "processors": len(processors)}))
        """
    )
    assert result == {"same": True, "processors": 1}


def test_importing_agentops_sets_no_provider_and_patches_nothing() -> None:
    result = run_python(
        """
        import builtins, json, sys
        before = (builtins.print, builtins.__import__, list(sys.meta_path))
        from opentelemetry import trace
        import agentops
        after = (builtins.print, builtins.__import__, list(sys.meta_path))
        print(json.dumps({
            "proxy": type(trace.get_tracer_provider()).__name__,
            "untouched": before[0] is after[0] and before[1] is after[1] and before[2] == after[2],
        }))
        """
    )
    assert result == {"proxy": "ProxyTracerProvider", "untouched": True}


def test_init_with_llm_instrumentation_on_leaves_builtins_and_logging_untouched() -> None:
    builtins_before = dict(vars(builtins))
    root_handlers = list(logging.getLogger().handlers)
    agentops.init(auto_start_session=False)
    assert {k: v for k, v in vars(builtins).items() if builtins_before.get(k) is not v} == {}
    assert logging.getLogger().handlers == root_handlers


def test_init_with_llm_instrumentation_off_does_not_touch_the_import_system_either() -> None:
    builtins_before = dict(vars(builtins))
    root_handlers = list(logging.getLogger().handlers)
    meta_path = list(sys.meta_path)
    agentops.init(auto_start_session=False, instrument_llm_calls=False)
    assert {k: v for k, v in vars(builtins).items() if builtins_before.get(k) is not v} == {}
    assert logging.getLogger().handlers == root_handlers
    assert sys.meta_path == meta_path


# --- spans of other instrumentations join agentops traces ---------------------------------


def test_spans_of_other_instrumentations_join_the_current_agentops_trace(spans: CapturedSpans) -> None:
    with agentops.start_trace("job") as trace_context:
        with trace_api.get_tracer("some.library").start_as_current_span("db.query"):
            pass
    query = spans.one("db.query")
    assert query.context.trace_id == int(trace_context.trace_id, 16)
    assert query.parent.span_id == trace_context.span.get_span_context().span_id


def test_agentops_spans_inside_another_instrumentations_span_are_its_children(spans: CapturedSpans) -> None:
    @agentops.tool
    def lookup() -> None:
        pass

    with trace_api.get_tracer("web.framework").start_as_current_span("GET /") as outer:
        lookup()
    assert spans.one("lookup.tool").parent.span_id == outer.get_span_context().span_id


def test_a_processor_added_with_add_span_processor_sees_every_agentops_span(agentops_init) -> None:
    agentops_init()
    collector = agentops.testing.SpanCollector()
    agentops.add_span_processor(collector)

    @agentops.agent
    def run() -> None:
        pass

    with agentops.start_trace("job"):
        run()
    agentops.remove_span_processor(collector)
    with agentops.start_trace("after"):
        pass
    assert [span.name for span in collector.spans] == ["run.agent", "job"]


# --- exporters ----------------------------------------------------------------------------------


def test_the_memory_exporter_holds_every_finished_span(agentops_init) -> None:
    agentops_init(exporters=["memory"])
    with agentops.start_trace("job"):
        pass
    assert [span.name for span in memory_exporter().get_finished_spans()] == ["job"]


def test_the_console_exporter_prints_spans_as_json_to_stdout() -> None:
    result = run_python(
        """
        import json, os, sys
        import agentops

        agentops.init(auto_start_session=False, instrument_llm_calls=False, exporters=["console"])
        with agentops.start_trace("printed-job"):
            pass
        agentops.flush(5_000)
        sys.stdout.flush()
        print()
        print(json.dumps({"flushed": True}))
        """,
        full_output=True,
    )
    assert result["flushed"] is True
    assert '"name": "printed-job"' in result["stdout"]


class _Collector(http.server.BaseHTTPRequestHandler):
    """A tiny OTLP/HTTP receiver: keeps each POST's path, headers and decoded body."""

    received: list[tuple[str, dict[str, str], ExportTraceServiceRequest]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        self.received.append((self.path, dict(self.headers), request))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def otlp_receiver() -> Iterator[tuple[str, list]]:
    received: list = []
    handler = type("Handler", (_Collector,), {"received": received})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", received
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    ("variable", "suffix"),
    [("OTEL_EXPORTER_OTLP_ENDPOINT", ""), ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "/v1/traces")],
)
def test_the_otlp_exporter_posts_protobuf_to_the_standard_endpoint_variables(
    agentops_init, otlp_receiver, monkeypatch: pytest.MonkeyPatch, variable: str, suffix: str
) -> None:
    endpoint, received = otlp_receiver
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(variable, endpoint + suffix)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-team=agents")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    agentops_init(exporters=["otlp"])

    @agentops.tool
    def lookup() -> None:
        pass

    with agentops.start_trace("exported-job"):
        lookup()
    assert agentops.flush(10_000)
    assert received, "nothing reached the receiver"
    path, headers, request = received[0]
    assert path == "/v1/traces"
    assert headers.get("x-team") == "agents"
    names = [span.name for rs in request.resource_spans for ss in rs.scope_spans for span in ss.spans]
    assert sorted(names) == ["exported-job", "lookup.tool"]
    scopes = {ss.scope.name for rs in request.resource_spans for ss in rs.scope_spans}
    assert scopes == {"agentops"}
