"""System checks: each bad AGENTOPS value or middleware placement is reported with a stable id and a hint."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import checks

from agentops_django.checks import check_settings
from agentops_django.conf import MIDDLEWARE_PATH


def ids(settings: Any, **agentops: Any) -> list[str]:
    settings.AGENTOPS = agentops
    messages = check_settings()
    assert all(message.hint for message in messages), "every message tells how to fix it"
    return [message.id for message in messages]


def test_the_test_projects_settings_pass(settings: Any) -> None:
    assert check_settings() == []


def test_checks_are_registered_with_django() -> None:
    assert check_settings in checks.registry.registry.get_checks()


def test_agentops_must_be_a_dict(settings: Any) -> None:
    settings.AGENTOPS = ["SAMPLE_RATE", 1]
    assert [m.id for m in check_settings()] == ["agentops_django.W010"]


@pytest.mark.parametrize(
    "key, value",
    [
        ("ENABLED", "yes"),
        ("TRUST_INCOMING_TRACEPARENT", 1),
        ("CAPTURE_CONTENT", "false"),
        ("QUEUE_SIZE", "1000"),
        ("BATCH_SIZE", 2.5),
        ("BATCH_INTERVAL", "1s"),
        ("SAMPLE_RATE", "half"),
        ("REDACT_KEYS", "password"),
        ("EXCLUDED_PATHS", r"^/health/"),
        ("DATABASE_ALIAS", 0),
        ("SERVICE_NAME", 3),
        ("EXPORTERS", 5),
    ],
)
def test_wrong_types_are_warnings(settings: Any, key: str, value: Any) -> None:
    assert ids(settings, **{key: value}) == ["agentops_django.W011"]


@pytest.mark.parametrize("rate", [-0.1, 1.5])
def test_sample_rate_outside_zero_to_one_is_a_warning(settings: Any, rate: float) -> None:
    assert ids(settings, SAMPLE_RATE=rate) == ["agentops_django.W012"]


def test_sample_rate_bounds_are_accepted(settings: Any) -> None:
    assert ids(settings, SAMPLE_RATE=0) == []
    assert ids(settings, SAMPLE_RATE=1.0) == []


def test_invalid_excluded_path_regex_is_a_warning(settings: Any) -> None:
    assert ids(settings, EXCLUDED_PATHS=[r"^/ok/", r"^/broken(/"]) == ["agentops_django.W013"]


def test_database_alias_must_be_a_configured_database(settings: Any) -> None:
    assert ids(settings, DATABASE_ALIAS="traces") == ["agentops_django.W014"]
    assert ids(settings, DATABASE_ALIAS="traces", DATABASE_WRITER=False) == []


def test_unknown_exporter_is_a_warning(settings: Any) -> None:
    assert ids(settings, EXPORTERS=["otlp", "zipkin"]) == ["agentops_django.W015"]
    assert ids(settings, EXPORTERS=["console", "opentelemetry.sdk.trace.export.ConsoleSpanExporter"]) == []


def test_should_trace_request_must_import(settings: Any) -> None:
    assert ids(settings, SHOULD_TRACE_REQUEST="no.such.module.func") == ["agentops_django.W016"]
    assert ids(settings, SHOULD_TRACE_REQUEST=5) == ["agentops_django.W016"]


def test_sizes_must_be_positive(settings: Any) -> None:
    assert ids(settings, QUEUE_SIZE=0, BATCH_INTERVAL=0) == ["agentops_django.W017", "agentops_django.W017"]


def test_unknown_key_is_a_warning(settings: Any) -> None:
    assert ids(settings, SAMPLE_RATIO=0.5) == ["agentops_django.W001"]


def test_middleware_listed_twice_is_a_warning(settings: Any) -> None:
    settings.MIDDLEWARE = [MIDDLEWARE_PATH, "django.middleware.common.CommonMiddleware", MIDDLEWARE_PATH]
    assert ids(settings) == ["agentops_django.W002"]


def test_middleware_not_first_is_a_warning(settings: Any) -> None:
    settings.MIDDLEWARE = ["django.middleware.common.CommonMiddleware", MIDDLEWARE_PATH]
    assert ids(settings) == ["agentops_django.W003"]


def test_unsupported_database_engine_for_the_writer_is_a_warning(settings: Any, monkeypatch: Any) -> None:
    from django.conf import settings as django_settings

    # override_settings refuses DATABASES; the check only reads it.
    databases = {**django_settings.DATABASES, "mysql": {"ENGINE": "django.db.backends.mysql", "NAME": "x"}}
    monkeypatch.setattr(django_settings, "DATABASES", databases)
    assert ids(settings, DATABASE_ALIAS="mysql") == ["agentops_django.W004"]


def test_no_check_of_ours_is_an_error(settings: Any) -> None:
    """Every bad value has a safe fallback, so none may stop ``migrate``, ``runserver`` or a deploy."""
    settings.AGENTOPS = {"SAMPLE_RATE": 2, "QUEUE_SIZE": 0, "EXPORTERS": ["zipkin"], "DATABASE_ALIAS": "nope"}
    messages = check_settings()
    assert messages and all(message.level == checks.WARNING for message in messages)


def test_a_bad_sample_rate_does_not_stop_manage_py_commands(settings: Any) -> None:
    from django.core.management import call_command

    settings.AGENTOPS = {"SAMPLE_RATE": 2}
    call_command("check", fail_level="ERROR")  # raises SystemCheckError if one of ours is an error


def test_a_second_database_without_the_router_is_a_warning(settings: Any, monkeypatch: Any) -> None:
    from django.conf import settings as django_settings

    databases = {**django_settings.DATABASES, "traces": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
    monkeypatch.setattr(django_settings, "DATABASES", databases)
    assert ids(settings, DATABASE_ALIAS="traces") == ["agentops_django.W005"]


def test_running_tests_keys_take_booleans(settings: Any) -> None:
    assert ids(settings, IS_RUNNING_TESTS=None, WRITE_DURING_TESTS=True) == []
    assert ids(settings, WRITE_DURING_TESTS="yes") == ["agentops_django.W011"]


def test_the_official_agentops_sdk_installed_alongside_is_a_warning_with_the_fix(
    settings: Any, tmp_path: Any, monkeypatch: Any
) -> None:
    """Both distributions install the package ``agentops``: ``check`` says so and how to fix it."""
    import sys

    dist = tmp_path / "agentops-0.4.21.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: agentops\nVersion: 0.4.21\n")
    monkeypatch.setattr(sys, "path", [str(tmp_path), *sys.path])
    (message,) = [m for m in check_settings() if m.id == "agentops_django.W006"]
    assert "'agentops' 0.4.21" in message.msg
    assert "pip uninstall -y agentops agentops-django" in message.hint


def test_a_site_whose_agentops_is_not_ours_stops_at_start_up_with_the_fix(tmp_path: Any) -> None:
    """The official SDK installed over ours: Django's start-up says what happened, not a cryptic import error."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    (tmp_path / "agentops").mkdir()
    (tmp_path / "agentops" / "__init__.py").write_text("# another distribution's agentops\n")
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{root}", "DJANGO_SETTINGS_MODULE": "tests.settings"}
    done = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "ImproperlyConfigured" in done.stderr
    assert "pip uninstall -y agentops agentops-django" in done.stderr
