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

#: Every public name of AgentOps 0.4.21's ``agentops/__init__.py`` (its ``__all__``).
AGENTOPS_0_4_21_NAMES = {
    "start_session",
    "end_session",
    "track_agent",
    "track_tool",
    "end_all_sessions",
    "Session",
    "ToolEvent",
    "ErrorEvent",
    "ActionEvent",
    "LLMEvent",
    "init",
    "start_trace",
    "end_trace",
    "update_trace_metadata",
    "Client",
    "get_client",
    "trace",
    "session",
    "agent",
    "task",
    "workflow",
    "operation",
    "tool",
    "guardrail",
    "track_endpoint",
    "TraceState",
    "SUCCESS",
    "ERROR",
    "UNSET",
    "validate_trace_spans",
    "print_validation_summary",
    "ValidationError",
}
#: AgentOps' ``init()`` parameters, and those it passes on to ``Config.configure()``.
AGENTOPS_0_4_21_INIT_OPTIONS = {
    "api_key",
    "endpoint",
    "app_url",
    "max_wait_time",
    "max_queue_size",
    "tags",
    "default_tags",
    "trace_name",
    "instrument_llm_calls",
    "auto_start_session",
    "auto_init",
    "skip_auto_end_session",
    "env_data_opt_out",
    "log_level",
    "fail_safe",
    "log_session_replay_url",
    "exporter_endpoint",
    "export_flush_interval",
    "prefetch_jwt_token",
    "exporter",
    "processor",
}
PUBLIC_NAMES = AGENTOPS_0_4_21_NAMES | {
    "Config",
    "SpanKind",
    "TraceContext",
    "__version__",
    "active_traces",
    "add_span_processor",
    "add_trace_source",
    "configure",
    "counters",
    "flush",
    "get_tracer",
    "is_initialized",
    "record",
    "remove_span_processor",
    "remove_trace_source",
    "shutdown",
    "span_processors",
}


def isort_order(name: str) -> tuple[int, str]:
    """ruff's (isort's) order of ``__all__``: CONSTANTS, then Classes, then the rest, each alphabetical."""
    return (0 if name.isupper() else 1 if name[:1].isupper() else 2, name)


def test_all_is_sorted_and_names_exactly_the_public_api() -> None:
    assert agentops.__all__ == sorted(agentops.__all__, key=isort_order)
    assert set(agentops.__all__) == PUBLIC_NAMES
    for name in agentops.__all__:
        assert hasattr(agentops, name), name


def test_every_public_callable_has_a_docstring() -> None:
    for name in agentops.__all__:
        value = getattr(agentops, name)
        if callable(value):
            assert inspect.getdoc(value), name


def test_every_public_name_of_agentops_0_4_21_is_here() -> None:
    assert AGENTOPS_0_4_21_NAMES <= set(agentops.__all__)


def test_init_takes_an_optional_api_key_then_every_agentops_option_by_keyword_only() -> None:
    parameters = inspect.signature(agentops.init).parameters
    assert parameters["api_key"].default is None
    assert parameters["api_key"].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    assert AGENTOPS_0_4_21_INIT_OPTIONS <= set(parameters)
    for name, parameter in parameters.items():
        if name != "api_key":
            assert parameter.kind is inspect.Parameter.KEYWORD_ONLY, name
            assert parameter.default is None, name


def test_configure_takes_the_options_of_init() -> None:
    assert inspect.signature(agentops.configure).parameters == inspect.signature(agentops.init).parameters


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
