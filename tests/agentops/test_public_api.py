"""Specification of the public surface: names, signatures and what importing does."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import agentops
from agentops import _guard, _serialize, _state, _traces

ROOT = Path(__file__).resolve().parents[2]

PUBLIC_NAMES = {
    "Config",
    "Session",
    "SpanKind",
    "TraceContext",
    "TraceState",
    "__version__",
    "active_traces",
    "add_span_processor",
    "agent",
    "counters",
    "end_all_sessions",
    "end_session",
    "end_trace",
    "flush",
    "get_tracer",
    "guardrail",
    "init",
    "is_initialized",
    "operation",
    "remove_span_processor",
    "session",
    "shutdown",
    "span_processors",
    "start_session",
    "start_trace",
    "task",
    "tool",
    "trace",
    "update_trace_metadata",
    "workflow",
}


def test_all_is_sorted_and_names_exactly_the_public_api() -> None:
    assert agentops.__all__ == sorted(agentops.__all__)
    assert set(agentops.__all__) == PUBLIC_NAMES
    for name in agentops.__all__:
        assert hasattr(agentops, name), name


def test_every_public_callable_has_a_docstring() -> None:
    for name in agentops.__all__:
        value = getattr(agentops, name)
        if callable(value):
            assert inspect.getdoc(value), name


def test_init_takes_an_optional_api_key_and_keyword_options() -> None:
    parameters = inspect.signature(agentops.init).parameters
    assert parameters["api_key"].default is None
    assert parameters["options"].kind is inspect.Parameter.VAR_KEYWORD


def test_start_and_end_trace_have_the_agentops_signatures() -> None:
    start = inspect.signature(agentops.start_trace).parameters
    assert start["trace_name"].default == "session"
    assert start["tags"].default is None
    end = inspect.signature(agentops.end_trace).parameters
    assert end["trace_context"].default is None
    assert end["end_state"].default == "Success"


def test_trace_state_values_are_the_strings_they_stand_for() -> None:
    assert [state.value for state in agentops.TraceState] == ["Success", "Error", "Indeterminate"]
    assert agentops.TraceState.ERROR == "Error"
    assert str(agentops.TraceState.ERROR) == "Error"


def test_the_internal_api_other_packages_build_on_is_there() -> None:
    for module, names in [
        (_state, ["state", "get_tracer", "add_span_processor"]),
        (_traces, ["context_with_scope", "current_scope", "new_trace", "close_trace", "start_trace", "end_trace"]),
        (_serialize, ["to_json"]),
        (_guard, ["capture_internal_exceptions", "count", "counters"]),
    ]:
        for name in names:
            assert callable(getattr(module, name)) or name == "state", f"{module.__name__}.{name}"


def test_the_package_ships_its_type_information() -> None:
    assert (Path(agentops.__file__).parent / "py.typed").exists()


def test_importing_agentops_imports_neither_django_nor_celery_nor_llm_clients() -> None:
    code = (
        "import json, sys, agentops, agentops.testing, agentops.semconv, agentops.exceptions;"
        "print(json.dumps(sorted(m for m in ('django', 'celery', 'openai', 'anthropic') if m in sys.modules)))"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60, check=True)
    assert json.loads(done.stdout) == []
