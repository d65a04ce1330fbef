"""The AGENTOPS setting: merged over documented defaults, cached, refreshed when the setting changes."""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.trace.export import ConsoleSpanExporter

from agentops_django.conf import DEFAULTS, get_config, resolve_exporters


def test_defaults_apply_where_the_setting_is_silent(settings: Any) -> None:
    settings.AGENTOPS = {"SAMPLE_RATE": 0.25}
    config = get_config()
    assert config.sample_rate == 0.25
    assert config.enabled is True
    assert config.trust_traceparent is False
    assert config.database_alias == "default"
    assert config.retention_days == DEFAULTS["RETENTION_DAYS"]
    assert config.queue_size == DEFAULTS["QUEUE_SIZE"]


def test_the_configuration_is_cached_and_refreshed_on_setting_changed(settings: Any) -> None:
    settings.AGENTOPS = {"BATCH_SIZE": 10}
    first = get_config()
    assert get_config() is first
    settings.AGENTOPS = {"BATCH_SIZE": 20}
    assert get_config().batch_size == 20


def test_unusable_values_fall_back_to_defaults_instead_of_breaking(settings: Any) -> None:
    settings.AGENTOPS = {"SAMPLE_RATE": 7, "QUEUE_SIZE": "many", "EXCLUDED_PATHS": ["(", r"^/ok/"]}
    config = get_config()
    assert config.sample_rate == DEFAULTS["SAMPLE_RATE"]
    assert config.queue_size == DEFAULTS["QUEUE_SIZE"]
    assert config.excluded.match("/ok/here")
    assert not config.excluded.match("/not/ok/")


def test_static_media_and_the_admins_agentops_pages_are_excluded_by_default(settings: Any) -> None:
    settings.MEDIA_URL = "/uploads/"
    settings.AGENTOPS = {}
    excluded = get_config().excluded
    for path in ("/static/app.js", "/uploads/a.png", "/admin/agentops_django/trace/", "/ops/admin/agentops_django/"):
        assert excluded.match(path), path
    for path in ("/", "/orders/1/", "/admin/auth/user/", "/api/static/"):
        assert not excluded.match(path), path


def test_excluded_paths_are_anchored_at_the_start_of_the_path(settings: Any) -> None:
    settings.AGENTOPS = {"EXCLUDED_PATHS": ["/health"], "EXCLUDE_DEFAULT_PATHS": False}
    excluded = get_config().excluded
    assert excluded.match("/health")
    assert not excluded.match("/api/health")
    assert not excluded.match("/static/app.js")


def test_a_cdn_static_url_excludes_its_path_only(settings: Any) -> None:
    settings.STATIC_URL = "https://cdn.example.test/assets/"
    settings.AGENTOPS = {}
    assert get_config().excluded.match("/assets/x.css")


def test_should_trace_request_is_imported_from_its_dotted_path(settings: Any) -> None:
    settings.AGENTOPS = {"SHOULD_TRACE_REQUEST": "tests.agentops_django.test_middleware.only_orders"}
    from tests.agentops_django.test_middleware import only_orders

    assert get_config().should_trace is only_orders


def test_exporters_accept_names_and_dotted_paths() -> None:
    made = resolve_exporters(["console", "opentelemetry.sdk.trace.export.ConsoleSpanExporter", "no.such.Exporter"])
    assert made[0] == "console"
    assert isinstance(made[1], ConsoleSpanExporter)
    assert len(made) == 2


def test_a_should_trace_request_that_is_no_path_is_ignored(settings: Any) -> None:
    settings.AGENTOPS = {"SHOULD_TRACE_REQUEST": 5}
    assert get_config().should_trace is None


def test_the_readmes_settings_table_lists_every_option_with_its_default() -> None:
    """The README's ``AGENTOPS = {...}`` block is the declared schema: same keys, same order, same defaults."""
    import ast
    from pathlib import Path

    from agentops_django.conf import OPTIONS

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## Settings", 1)[1]
    block = section.split("```python\n", 1)[1].split("```", 1)[0]
    table = ast.literal_eval(block.split("=", 1)[1])
    assert list(table) == [option.key for option in OPTIONS]
    assert table == {option.key: option.default for option in OPTIONS}
