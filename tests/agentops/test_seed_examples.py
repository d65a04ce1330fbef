"""The code examples of AgentOps' "Session Management" page run unchanged on our SDK.

Each example's code text is copied verbatim from the page and run as a script
in a fresh interpreter, with ``OPENAI_BASE_URL``/``OPENAI_API_KEY`` pointing
at the stand-in server. A small harness around the text (never inside it)
adds a span processor to OpenTelemetry's *global* provider, with
``trace.get_tracer_provider().add_span_processor(...)``, and writes every span
it saw to a JSON file when the interpreter exits. So these tests also prove
that a processor a user adds to the global provider receives agentops' spans,
both when the application installed the provider before ``agentops.init()``
and when agentops installed it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from agentops.testing.llm_server import LLMServer

ROOT = Path(__file__).resolve().parents[2]

# --- the examples, verbatim ---------------------------------------------------------

MODERN_TRACE_API = """\
import agentops

agentops.init()
trace_context = agentops.start_trace("my_workflow")
# Your agent logic here
agentops.end_trace(trace_context, "Success")
"""

LEGACY_SESSION_API = """\
import agentops
agentops.init()
agentops.end_session(end_state='Success')
"""

STARTING_TRACES = """\
agentops.init(auto_start_session=False)
trace_1 = agentops.start_trace("user_query_1")
trace_2 = agentops.start_trace("user_query_2")
trace_3 = agentops.start_trace("background_task")
"""

ENDING_TRACES = """\
# End specific trace
agentops.end_trace(trace_1, "Success")

# End all active traces
agentops.end_trace(end_state="Success")
"""

USING_DECORATORS = """\
import agentops

@agentops.trace
def my_workflow():
    # Your agent logic here
    return "result"

@agentops.agent
class MyAgent:
    def run(self):
        # Agent logic here
        pass
"""

LLM_CALL_TRACKING = """\
import agentops
import openai

agentops.init()
client = openai.OpenAI()

trace_1 = agentops.start_trace("query_1")
response_1 = client.chat.completions.create(
    model="gpt-3.5-turbo",
    messages=[{"role": "user", "content": "Hello from trace 1"}]
)

trace_2 = agentops.start_trace("query_2")
response_2 = client.chat.completions.create(
    model="gpt-3.5-turbo",
    messages=[{"role": "user", "content": "Hello from trace 2"}]
)

agentops.end_trace(trace_1, "Success")
agentops.end_trace(trace_2, "Success")
"""

# --- the harness around them -----------------------------------------------------------

_COLLECTOR = """\
import atexit as _atexit
import json as _json
import os as _os

from opentelemetry import trace as _trace
from opentelemetry.sdk.trace import SpanProcessor as _SpanProcessor


class _Collector(_SpanProcessor):
    def __init__(self):
        self.spans = []

    def on_end(self, span):
        self.spans.append(span)


def _dump():
    rows = []
    for span in _collector.spans:
        rows.append(
            {
                "name": span.name,
                "trace_id": format(span.context.trace_id, "032x"),
                "span_id": format(span.context.span_id, "016x"),
                "parent_id": format(span.parent.span_id, "016x") if span.parent else None,
                "status": span.status.status_code.name,
                "attributes": {k: list(v) if isinstance(v, tuple) else v for k, v in span.attributes.items()},
            }
        )
    with open(_os.environ["HARNESS_SPANS_FILE"], "w") as f:
        _json.dump(rows, f)


_collector = _Collector()
# Registered before agentops registers its own exit handler, so it runs after
# it and sees the traces agentops ends at exit.
_atexit.register(_dump)
"""

#: The application installs an SDK provider first; agentops joins it.
_USER_PROVIDER = (
    _COLLECTOR
    + """
from opentelemetry.sdk.trace import TracerProvider as _TracerProvider

_trace.set_tracer_provider(_TracerProvider())
_trace.get_tracer_provider().add_span_processor(_collector)
import agentops
"""
)

#: agentops installs the global provider (inside the example's own init());
#: the processor is added to it the moment it is installed, as a user would
#: right after init(), without the harness configuring agentops itself.
_AGENTOPS_PROVIDER = (
    _COLLECTOR
    + """
_set_tracer_provider = _trace.set_tracer_provider


def _add_collector_once_installed(provider):
    _set_tracer_provider(provider)
    _trace.get_tracer_provider().add_span_processor(_collector)


_trace.set_tracer_provider = _add_collector_once_installed
import agentops
"""
)

HARNESSES = {"user_provider": _USER_PROVIDER, "agentops_provider": _AGENTOPS_PROVIDER}


def run_example(tmp_path: Path, server: LLMServer, harness: str, code: str, epilogue: str = "") -> list[dict[str, Any]]:
    """Run ``code`` unchanged between the harness and ``epilogue``; return the spans seen."""
    script = tmp_path / "example.py"
    script.write_text(f"{HARNESSES[harness]}\n# --- the example, verbatim ---\n{code}\n{epilogue}")
    spans_file = tmp_path / "spans.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AGENTOPS_", "OTEL_", "OPENAI_"))}
    env.update(
        OPENAI_BASE_URL=server.base_url,
        OPENAI_API_KEY="test-key",
        HARNESS_SPANS_FILE=str(spans_file),
        PYTHONPATH=str(ROOT),
    )
    result = subprocess.run(
        [sys.executable, str(script)], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "internal error" not in result.stderr, result.stderr
    return json.loads(spans_file.read_text())


def by_name(spans: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    names = [s["name"] for s in spans]
    assert len(names) == len(set(names)), names
    return {s["name"]: s for s in spans}


pytestmark = pytest.mark.parametrize("harness", sorted(HARNESSES))


def test_modern_trace_api_example_records_a_successful_workflow_trace(
    tmp_path: Path, llm_server: LLMServer, harness: str
) -> None:
    spans = by_name(run_example(tmp_path, llm_server, harness, MODERN_TRACE_API))

    workflow = spans["my_workflow"]
    assert workflow["parent_id"] is None
    assert workflow["attributes"]["agentops.end_state"] == "Success"
    assert workflow["status"] == "OK"
    # The session init() started is a separate trace, still open at exit and ended then.
    session = spans["session"]
    assert session["trace_id"] != workflow["trace_id"]
    assert session["attributes"]["agentops.span.kind"] == "session"
    assert session["attributes"]["agentops.end_state"] == "Indeterminate"


def test_legacy_end_session_ends_the_session_init_started(tmp_path: Path, llm_server: LLMServer, harness: str) -> None:
    spans = run_example(tmp_path, llm_server, harness, LEGACY_SESSION_API)

    assert [s["name"] for s in spans] == ["session"]
    (session,) = spans
    assert session["parent_id"] is None
    assert session["attributes"]["agentops.end_state"] == "Success"
    assert session["status"] == "OK"


def test_multiple_traces_run_side_by_side_and_end_trace_without_context_ends_the_rest(
    tmp_path: Path, llm_server: LLMServer, harness: str
) -> None:
    spans = by_name(run_example(tmp_path, llm_server, harness, STARTING_TRACES + "\n" + ENDING_TRACES))

    assert set(spans) == {"user_query_1", "user_query_2", "background_task"}
    assert len({s["trace_id"] for s in spans.values()}) == 3
    for span in spans.values():
        assert span["parent_id"] is None
        assert span["attributes"]["agentops.end_state"] == "Success"


def test_decorator_example_records_a_trace_and_an_agent_span(
    tmp_path: Path, llm_server: LLMServer, harness: str
) -> None:
    # The page only defines the functions; the harness calls them.
    epilogue = 'agentops.init(auto_start_session=False)\nassert my_workflow() == "result"\nMyAgent().run()\n'
    spans = by_name(run_example(tmp_path, llm_server, harness, USING_DECORATORS, epilogue))

    workflow = spans["my_workflow.session"]  # AgentOps' name and kind for a @trace root
    assert workflow["parent_id"] is None
    assert workflow["attributes"]["agentops.span.kind"] == "session"
    assert workflow["attributes"]["agentops.entity.output"] == '"result"'
    assert workflow["attributes"]["agentops.end_state"] == "Success"
    agent = spans["MyAgent.run.agent"]
    assert agent["attributes"]["agentops.span.kind"] == "agent"
    assert agent["trace_id"] != workflow["trace_id"]


def test_llm_example_puts_each_response_in_the_trace_that_was_current(
    tmp_path: Path, llm_server: LLMServer, harness: str
) -> None:
    spans = run_example(tmp_path, llm_server, harness, LLM_CALL_TRACKING)

    roots = by_name([s for s in spans if s["parent_id"] is None])
    assert set(roots) == {"session", "query_1", "query_2"}
    assert len({s["trace_id"] for s in roots.values()}) == 3
    assert roots["query_1"]["attributes"]["agentops.end_state"] == "Success"
    assert roots["query_2"]["attributes"]["agentops.end_state"] == "Success"
    llm = [s for s in spans if s["attributes"].get("agentops.span.kind") == "llm"]
    assert [s["name"] for s in llm] == ["chat gpt-3.5-turbo", "chat gpt-3.5-turbo"]
    response_1, response_2 = llm
    assert json.loads(response_1["attributes"]["gen_ai.input.messages"])[0]["content"] == "Hello from trace 1"
    assert response_1["trace_id"] == roots["query_1"]["trace_id"]
    assert response_1["parent_id"] == roots["query_1"]["span_id"]
    assert json.loads(response_2["attributes"]["gen_ai.input.messages"])[0]["content"] == "Hello from trace 2"
    assert response_2["trace_id"] == roots["query_2"]["trace_id"]
    assert response_2["parent_id"] == roots["query_2"]["span_id"]
    assert [r.path for r in llm_server.requests] == ["/v1/chat/completions", "/v1/chat/completions"]
