"""Specification of configuration and ``agentops.init()``.

Options come from ``init()`` keywords, then ``AGENTOPS_*`` variables, then
defaults. Configuration never raises into the caller: what cannot be used is
logged and replaced by its default.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from opentelemetry import context as context_api
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import agentops
from agentops import _config, _state, integrations
from agentops._config import DEFAULT_REDACT_KEYS, Config, resolve
from agentops._traces import context_with_scope
from agentops.testing import memory_exporter


@pytest.fixture
def warnings(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.WARNING, logger="agentops")
    return caplog


# --- resolve(): keywords, environment, defaults ------------------------------------


def test_without_options_or_environment_every_option_has_its_default() -> None:
    assert resolve({}, env={}) == Config()


def test_defaults_need_no_api_key_and_start_a_session_and_instrument_llm_calls() -> None:
    config = Config()
    assert config.api_key is None
    assert config.auto_start_session is True
    assert config.instrument_llm_calls is True
    assert config.capture_content is True
    assert config.trace_name == "session"
    assert config.exporters == ()


def test_environment_variables_provide_the_defaults() -> None:
    env = {
        "AGENTOPS_API_KEY": "key",
        "AGENTOPS_AUTO_START_SESSION": "false",
        "AGENTOPS_INSTRUMENT_LLM_CALLS": "0",
        "AGENTOPS_DEFAULT_TAGS": "env:prod, team:ai",
        "AGENTOPS_TRACE_NAME": "nightly",
        "AGENTOPS_SERVICE_NAME": "billing",
        "AGENTOPS_EXPORTERS": "console,otlp",
        "AGENTOPS_CAPTURE_CONTENT": "no",
        "AGENTOPS_MAX_PAYLOAD_SIZE": "2048",
        "AGENTOPS_REDACT_KEYS": "ssn",
    }
    config = resolve({}, env=env)
    assert config.api_key == "key"
    assert config.auto_start_session is False
    assert config.instrument_llm_calls is False
    assert config.default_tags == ("env:prod", "team:ai")
    assert config.trace_name == "nightly"
    assert config.service_name == "billing"
    assert config.exporters == ("console", "otlp")
    assert config.capture_content is False
    assert config.max_payload_size == 2048
    assert "ssn" in config.redact_keys


def test_keywords_win_over_environment_variables() -> None:
    env = {"AGENTOPS_TRACE_NAME": "from-env", "AGENTOPS_CAPTURE_CONTENT": "true"}
    config = resolve({"trace_name": "from-code", "capture_content": False}, env=env)
    assert config.trace_name == "from-code"
    assert config.capture_content is False


def test_a_keyword_given_as_none_counts_as_not_given() -> None:
    assert resolve({"trace_name": None}, env={"AGENTOPS_TRACE_NAME": "env"}).trace_name == "env"


@pytest.mark.parametrize("text", ["1", "true", "True", "YES", "on", " true "])
def test_environment_booleans_accept_the_usual_true_spellings(text: str) -> None:
    assert resolve({}, env={"AGENTOPS_CAPTURE_CONTENT": text}).capture_content is True


@pytest.mark.parametrize("text", ["0", "false", "False", "no", "OFF"])
def test_environment_booleans_accept_the_usual_false_spellings(text: str) -> None:
    assert resolve({}, env={"AGENTOPS_CAPTURE_CONTENT": text}).capture_content is False


@pytest.mark.parametrize("text", ["", "maybe", "2", "enabled"])
def test_an_unrecognised_boolean_keeps_the_default_and_warns(text: str, warnings) -> None:
    assert resolve({}, env={"AGENTOPS_AUTO_START_SESSION": text}).auto_start_session is True
    assert resolve({}, env={"AGENTOPS_CAPTURE_CONTENT": text}).capture_content is True
    assert "AGENTOPS_CAPTURE_CONTENT" in warnings.text


def test_a_boolean_keyword_given_as_a_string_is_parsed_strictly_too() -> None:
    assert resolve({"capture_content": "false"}, env={}).capture_content is False
    assert resolve({"auto_start_session": "off"}, env={}).auto_start_session is False


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        ("a, b,,c", ("a", "b", "c")),
        (["a", 1], ("a", "1")),
        ({"env": "prod"}, ("env:prod",)),
        (("x",), ("x",)),
    ],
)
def test_default_tags_accept_a_comma_string_a_list_or_a_dict(tags: object, expected: tuple[str, ...]) -> None:
    assert resolve({"default_tags": tags}, env={}).default_tags == expected


def test_unknown_exporter_names_are_ignored_with_a_warning(warnings) -> None:
    assert resolve({"exporters": ["memory", "zipkin"]}, env={}).exporters == ("memory",)
    assert "zipkin" in warnings.text


def test_exporters_are_deduplicated_and_names_normalised() -> None:
    exporter = InMemorySpanExporter()
    config = resolve({"exporters": ["Memory", "memory", exporter, exporter]}, env={})
    assert config.exporters == ("memory", exporter)


def test_a_single_exporter_object_is_accepted() -> None:
    exporter = InMemorySpanExporter()
    assert resolve({"exporters": exporter}, env={}).exporters == (exporter,)


@pytest.mark.parametrize("size", ["big", -1, 10, None])
def test_an_unusable_max_payload_size_falls_back_to_the_default(size: object) -> None:
    assert resolve({"max_payload_size": size}, env={}).max_payload_size == Config().max_payload_size


def test_redact_keys_add_to_the_default_secret_keys() -> None:
    config = resolve({"redact_keys": ["SSN"]}, env={})
    assert "ssn" in config.redact_keys
    assert set(DEFAULT_REDACT_KEYS) <= config.redact_keys


def test_an_unknown_option_is_ignored_with_a_warning(warnings) -> None:
    assert resolve({"colour": "blue"}, env={}) == Config()
    assert "colour" in warnings.text


def test_every_option_has_a_documented_environment_variable() -> None:
    names = {value for key, value in vars(_config).items() if key.startswith("ENV_")}
    expected = {f"AGENTOPS_{field.upper()}" for field in Config.__dataclass_fields__}
    assert names == expected


# --- init() ----------------------------------------------------------------------------


def test_init_needs_no_api_key_and_starts_the_automatic_session() -> None:
    init_trace = agentops.init()
    assert init_trace is not None
    assert init_trace.is_init_trace is True
    assert init_trace.name == "session"
    assert agentops.is_initialized()
    assert agentops.active_traces() == [init_trace]


def test_init_names_the_automatic_session_after_trace_name() -> None:
    assert agentops.init(trace_name="nightly").name == "nightly"


def test_init_without_auto_start_session_returns_none() -> None:
    assert agentops.init(auto_start_session=False) is None
    assert agentops.active_traces() == []


def test_init_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTOPS_AUTO_START_SESSION", "false")
    assert agentops.init() is None


def test_init_twice_keeps_the_one_automatic_session() -> None:
    first = agentops.init()
    second = agentops.init()
    assert second is first
    assert len(agentops.active_traces()) == 1


def test_init_twice_with_the_same_exporters_exports_each_span_once() -> None:
    agentops.init(auto_start_session=False, exporters=["memory"])
    agentops.init(auto_start_session=False, exporters=["memory"])
    agentops.end_trace(agentops.start_trace("once"))
    assert [span.name for span in memory_exporter().get_finished_spans()] == ["once"]


def test_a_later_init_applies_new_options() -> None:
    agentops.init(auto_start_session=False, exporters=["memory"], capture_content=True)
    agentops.init(auto_start_session=False, exporters=[], capture_content=False)
    assert memory_exporter() is None
    assert _state.state.config.capture_content is False
    assert _state.span_processors() == ()


def test_a_user_span_processor_given_as_exporter_is_removed_but_not_shut_down_by_a_later_init() -> None:
    exporter = InMemorySpanExporter()
    processor = SimpleSpanProcessor(exporter)
    agentops.init(auto_start_session=False, exporters=[processor])
    agentops.end_trace(agentops.start_trace("first"))
    agentops.init(auto_start_session=False, exporters=[])
    agentops.end_trace(agentops.start_trace("second"))
    assert [span.name for span in exporter.get_finished_spans()] == ["first"]
    processor.on_end(exporter.get_finished_spans()[0])  # still usable: not shut down
    assert len(exporter.get_finished_spans()) == 2


def test_init_never_raises_for_configuration_it_can_survive(warnings) -> None:
    with pytest.warns(UserWarning, match="unknown_option"):  # an unknown option: a warning at the caller's line
        result = agentops.init(
            auto_start_session="perhaps",
            exporters=["nope", 42],
            default_tags=5,
            max_payload_size="big",
            unknown_option=True,
        )
    assert result is not None  # the unusable boolean kept its default: a session started
    assert agentops.is_initialized()
    for fragment in ("perhaps", "nope", "42", "big"):
        assert fragment in warnings.text


def test_init_with_instrument_llm_calls_off_installs_no_integration() -> None:
    agentops.init(auto_start_session=False, instrument_llm_calls=False)
    assert integrations.installed() == frozenset()


def test_init_returns_a_trace_context_usable_with_end_trace() -> None:
    init_trace = agentops.init()
    agentops.end_trace(init_trace, "Success")
    assert agentops.active_traces() == []


def test_init_called_inside_a_request_starts_a_root_session_the_request_cannot_end() -> None:
    agentops.init(auto_start_session=False)  # so that the request span records
    request_span = agentops.get_tracer().start_span("GET /", context=context_api.Context())
    token = context_api.attach(context_with_scope(request_span, "request"))
    init_trace = agentops.init(auto_start_session=True)  # e.g. a lazy init() in a view
    agentops.end_trace()  # the request ends "all its traces"
    context_api.detach(token)
    request_span.end()
    assert init_trace.span.parent is None
    assert not init_trace.ended


def test_a_later_init_keeps_the_options_it_does_not_give() -> None:
    agentops.init(auto_start_session=False, exporters=["memory"], trace_name="nightly")
    agentops.init()
    assert agentops.active_traces() == []  # auto_start_session=False still holds
    assert memory_exporter() is not None
    assert _state.state.config.trace_name == "nightly"


def test_at_exit_traces_still_open_end_as_indeterminate_and_are_exported() -> None:
    code = textwrap.dedent(
        """
        import json
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
        import agentops

        class Printer(SpanExporter):
            def export(self, spans):
                for span in spans:
                    print(json.dumps([span.name, span.attributes.get("agentops.end_state")]), flush=True)
                return SpanExportResult.SUCCESS

        agentops.init(instrument_llm_calls=False, exporters=[SimpleSpanProcessor(Printer())])
        agentops.start_trace("left-open")
        """
    )
    root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTOPS_")}
    env["PYTHONPATH"] = str(root)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60, check=True, cwd=root
    )
    ended = sorted(json.loads(line) for line in done.stdout.splitlines())
    assert ended == [["left-open", "Indeterminate"], ["session", "Indeterminate"]]
