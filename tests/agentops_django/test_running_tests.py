"""While the host's test suite runs, tracing keeps out of its way: spans stay in memory, no database is touched.

Django's test machinery owns the test database: it creates it, wraps tests in
transactions, flushes it and drops it. A writer thread with a connection of
its own would hold locks and connections it needs (and, at exit, write into
the developer's database), so during a test run the writer is not started
unless ``WRITE_DURING_TESTS`` says so. The "user's site" tests run a real
project's suite; these check the rules in-process.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import pytest
from django.db import transaction
from django.test import Client

import agentops
import agentops.testing
from agentops_django import testing
from agentops_django.conf import detect_test_run, get_config
from agentops_django.models import Span, Trace
from agentops_django.writer import DatabaseSpanProcessor


def writers() -> list[Any]:
    return [p for p in agentops.span_processors() if isinstance(p, DatabaseSpanProcessor)]


@pytest.mark.parametrize(
    "argv, env, expected",
    [
        (["manage.py", "test"], {}, True),
        (["manage.py", "test", "shop.tests"], {}, True),
        (["django-admin", "test", "--parallel", "2"], {}, True),
        (["manage.py", "runserver"], {}, False),
        (["celery", "-A", "proj", "worker"], {}, False),
        (["manage.py", "migrate", "test"], {}, False),
        (["gunicorn", "proj.wsgi"], {"PYTEST_VERSION": "8.3.4"}, True),
    ],
)
def test_a_test_run_is_recognised_as_django_debug_toolbar_does(
    monkeypatch: pytest.MonkeyPatch, argv: list[str], env: dict[str, str], expected: bool
) -> None:
    monkeypatch.setattr(sys, "argv", argv)
    monkeypatch.delenv("PYTEST_VERSION", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert detect_test_run() is expected


def test_in_a_test_run_the_writer_is_not_started_and_requests_are_still_traced(
    configure_agentops: Callable[..., None], transactional_db: Any
) -> None:
    configure_agentops(IS_RUNNING_TESTS=True, WRITE_DURING_TESTS=False)
    assert writers() == []
    with testing.captured_spans() as spans:
        assert Client().get("/orders/3/").status_code == 200
    assert spans.one("GET /orders/<int:pk>/").attributes["http.response.status_code"] == 200
    assert not Trace.objects.exists() and not Span.objects.exists()


def test_write_during_tests_starts_the_writer_in_a_test_run(configure_agentops: Callable[..., None]) -> None:
    configure_agentops(IS_RUNNING_TESTS=True, WRITE_DURING_TESTS=True)
    assert len(writers()) == 1
    assert get_config().writes_to_database


def test_outside_a_test_run_the_writer_is_started(configure_agentops: Callable[..., None]) -> None:
    configure_agentops(IS_RUNNING_TESTS=False, WRITE_DURING_TESTS=False)
    assert len(writers()) == 1


def test_changing_the_setting_at_run_time_adds_and_removes_the_writer(
    configure_agentops: Callable[..., None], settings: Any
) -> None:
    """``override_settings``/pytest-django's ``settings`` take effect at once, both ways."""
    configure_agentops(IS_RUNNING_TESTS=True, WRITE_DURING_TESTS=False)
    assert writers() == []
    settings.AGENTOPS = {**settings.AGENTOPS, "WRITE_DURING_TESTS": True}
    assert len(writers()) == 1
    settings.AGENTOPS = {**settings.AGENTOPS, "DATABASE_WRITER": False}
    assert writers() == []
    settings.AGENTOPS = {**settings.AGENTOPS, "DATABASE_WRITER": True, "ENABLED": False}
    assert writers() == []


def test_turning_tracing_off_at_run_time_stops_request_spans(
    configure_agentops: Callable[..., None], settings: Any
) -> None:
    configure_agentops(DATABASE_WRITER=False)
    settings.AGENTOPS = {**settings.AGENTOPS, "ENABLED": False}
    with testing.captured_spans() as spans:
        Client().get("/ping/")
    assert list(spans) == []


@pytest.mark.django_db
def test_store_spans_writes_in_the_tests_transaction_and_its_rollback_removes_them(
    configure_agentops: Callable[..., None],
) -> None:
    """A user's test of code that reads stored traces: rows in, and gone with the test's rollback."""
    configure_agentops(IS_RUNNING_TESTS=True, WRITE_DURING_TESTS=False)
    with testing.captured_spans() as spans:
        Client().get("/orders/5/")
    (request,) = spans
    trace_id = format(request.context.trace_id, "032x")

    class Rollback(Exception):
        pass

    with pytest.raises(Rollback), transaction.atomic():
        assert testing.store_spans(spans) == 1
        stored = Trace.objects.get(trace_id=trace_id)
        assert (stored.name, stored.status, stored.span_count) == ("GET /orders/<int:pk>/", "Success", 1)
        raise Rollback
    assert not Trace.objects.filter(trace_id=trace_id).exists()


@pytest.mark.django_db(transaction=True)
def test_validate_trace_spans_finds_a_trace_other_processes_stored(configure_agentops: Callable[..., None]) -> None:
    """AgentOps' examples end by validating their trace: spans this process never saw are found in the database."""
    import agentops
    from tests.agentops_django.test_exporter import make_span, new_trace_id

    configure_agentops(IS_RUNNING_TESTS=True, WRITE_DURING_TESTS=False)
    trace_id = new_trace_id()
    llm = {"gen_ai.usage.input_tokens": 7, "gen_ai.usage.output_tokens": 3}
    testing.store_spans(
        [make_span(trace_id, 1, name="GET /", kind="request"), make_span(trace_id, 2, 1, kind="llm", attributes=llm)]
    )
    result = agentops.validate_trace_spans(trace_id=format(trace_id, "032x"))
    assert result["span_count"] == 2
    assert result["has_llm_spans"] is True


def test_validate_trace_spans_in_a_test_without_database_access_does_not_touch_the_database(
    configure_agentops: Callable[..., None],
) -> None:
    """A user's test that validates its trace but has no ``db`` fixture: no error, the local record answers."""
    import agentops

    configure_agentops(IS_RUNNING_TESTS=True, WRITE_DURING_TESTS=False)
    with agentops.start_trace("no-db") as trace:
        pass
    result = agentops.validate_trace_spans(trace_id=trace.trace_id, check_llm=False)
    assert result["span_count"] == 1
