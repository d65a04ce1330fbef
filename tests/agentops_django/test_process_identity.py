"""Which process ran it, and for whom: process identity on every stored span, the user on request traces.

The writer stores one row per process (host, pid, role, Celery worker node,
pool child, service) and points each span it stores at it; the trace keeps
``"|host|worker node|"`` of every process that stored its spans. Exporters see
service, host, pid and role as OpenTelemetry resource attributes. A request
of an authenticated user records the user's id and username; an anonymous
one records nothing.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

import agentops
from agentops import semconv
from agentops.semconv import ProcessRole
from agentops_django import _process
from agentops_django.models import Span, Trace, WriterStats
from agentops_django.testing import CapturedSpans
from agentops_django.writer import DatabaseSpanProcessor, write_batch
from tests.agentops_django.test_exporter import make_span, new_trace_id, request_trace

# --- the role a process has ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "role"),
    [
        (["/srv/venv/bin/celery", "-A", "shop", "worker", "-c", "4"], ProcessRole.WORKER),
        (["/usr/lib/python3/site-packages/celery/__main__.py", "-A", "shop", "beat"], ProcessRole.BEAT),
        (["/srv/venv/bin/celery", "-A", "shop", "inspect", "ping"], ProcessRole.COMMAND),
        (["/srv/venv/bin/gunicorn", "shop.wsgi"], ProcessRole.WEB),
        (["manage.py", "runserver", "0.0.0.0:8000"], ProcessRole.WEB),
        (["manage.py", "migrate"], ProcessRole.COMMAND),
        (["/srv/venv/bin/django-admin", "--settings=shop.settings", "agentops_prune"], ProcessRole.COMMAND),
        (["python"], ProcessRole.OTHER),
        ([], ProcessRole.OTHER),
    ],
)
def test_the_role_is_guessed_from_the_command_line(argv: list[str], role: str) -> None:
    assert _process.guess_role(argv) == role


@pytest.fixture
def fresh_identity() -> Iterator[None]:
    _process.reset()
    yield
    _process.reset()


def test_signals_and_request_handlers_tell_the_role(fresh_identity: None, monkeypatch: Any) -> None:
    monkeypatch.setattr("sys.argv", ["python", "script.py"])
    assert _process.role() == ProcessRole.OTHER
    _process.serves_requests()
    assert _process.identity()[semconv.AGENTOPS_PROCESS_ROLE] == ProcessRole.WEB
    _process.reset()
    _process.set_role(ProcessRole.WORKER, worker_node="celery@w1")
    _process.set_role(ProcessRole.WORKER, pool_index=2)  # a prefork child learns its index later
    _process.serves_requests()  # a worker that makes a test client stays a worker
    assert _process.identity() == {
        semconv.HOST_NAME: socket.gethostname(),
        semconv.PROCESS_PID: os.getpid(),
        semconv.AGENTOPS_PROCESS_ROLE: ProcessRole.WORKER,
        semconv.CELERY_WORKER_NODE: "celery@w1",
        semconv.CELERY_WORKER_POOL_INDEX: 2,
    }


# --- resource attributes for exporters -----------------------------------------------------------


def test_exporters_see_service_host_pid_and_role_as_resource_attributes(traced: CapturedSpans) -> None:
    """``service.name`` defaults to the Django project's name (``tests`` of ``tests.settings``), not "agentops"."""
    with agentops.start_trace("resource"):
        pass
    resource = traced[-1].resource.attributes
    assert resource[semconv.SERVICE_NAME] == "tests"
    assert resource[semconv.HOST_NAME] == socket.gethostname()
    assert resource[semconv.PROCESS_PID] == os.getpid()
    assert resource[semconv.AGENTOPS_PROCESS_ROLE] in {ProcessRole.WEB, ProcessRole.OTHER, ProcessRole.COMMAND}


def test_the_service_name_setting_wins_over_the_project_name() -> None:
    assert _process.default_service_name("mysite.settings.production") == "mysite"
    assert _process.default_service_name(None) is None


# --- the writer stores the process once and points every span at it --------------------------------


@pytest.fixture
def processor(transactional_db: Any, fresh_identity: None) -> Iterator[DatabaseSpanProcessor]:
    made = DatabaseSpanProcessor("default", queue_size=1000, batch_size=50, batch_interval=0.01)
    yield made
    made.shutdown()


def test_every_span_the_writer_stores_points_at_its_process(processor: DatabaseSpanProcessor) -> None:
    _process.set_role(ProcessRole.WORKER, worker_node="celery@box", pool_index=3)
    trace_id = new_trace_id()
    for span in request_trace(trace_id):
        processor.on_end(span)
    assert processor.force_flush(30_000)

    process = WriterStats.objects.get(pid=os.getpid(), process_started_at=processor._process_started_at)
    assert (process.host, process.role, process.worker_node, process.pool_index, process.service_name) == (
        socket.gethostname(),
        ProcessRole.WORKER,
        "celery@box",
        3,
        "shop",
    )
    assert process.spans_written == 5
    spans = Span.objects.filter(trace_id=format(trace_id, "032x"))
    assert {span.process_id for span in spans} == {process.pk}
    trace = Trace.objects.get(trace_id=format(trace_id, "032x"))
    assert trace.processes_text == f"|{socket.gethostname()}|celery@box|"


def test_a_trace_lists_each_process_that_stored_its_spans_once(transactional_db: Any) -> None:
    trace_id = new_trace_id()
    spans = request_trace(trace_id)
    write_batch("default", spans[:2], process=(1, "|web-1|"))
    write_batch("default", spans[2:3], process=(2, "|box-2|celery@box-2|"))
    write_batch("default", spans[3:4], process=(1, "|web-1|"))  # listed already
    write_batch("default", spans[4:], process=None)  # a writer of the previous release: nothing to add
    trace = Trace.objects.get(trace_id=format(trace_id, "032x"))
    assert trace.processes_text == "|web-1|box-2|celery@box-2|"
    assert trace.span_count == 5


# --- the user of a request -----------------------------------------------------------------------


def _request_attributes(traced: CapturedSpans) -> dict[str, Any]:
    requests = [s for s in traced if (s.attributes or {}).get(semconv.AGENTOPS_SPAN_KIND) == "request"]
    assert len(requests) == 1
    return dict(requests[0].attributes or {})


@pytest.mark.django_db
def test_a_logged_in_request_records_the_user_id_and_username(traced: CapturedSpans) -> None:
    user = User.objects.create_user("alice", password="pw")
    client = Client()
    client.force_login(user)
    assert client.get("/whoami/").status_code == 200
    attributes = _request_attributes(traced)
    assert attributes[semconv.USER_ID] == str(user.pk)
    assert attributes[semconv.USER_NAME] == "alice"


@pytest.mark.django_db
def test_a_user_the_view_never_loaded_is_not_loaded_for_the_trace(traced: CapturedSpans) -> None:
    """Tracing adds no query to a request: an untouched lazy ``request.user`` stays unloaded (and unrecorded)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = Client()
    client.force_login(User.objects.create_user("dora", password="pw"))
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/ping/").status_code == 200
    assert [q["sql"] for q in queries.captured_queries if "auth_user" in q["sql"] or "session" in q["sql"]] == []
    assert semconv.USER_ID not in _request_attributes(traced)


@pytest.mark.django_db
def test_an_anonymous_request_records_no_user(traced: CapturedSpans) -> None:
    assert Client().get("/ping/").status_code == 200
    attributes = _request_attributes(traced)
    assert semconv.USER_ID not in attributes
    assert semconv.USER_NAME not in attributes


@pytest.mark.django_db
def test_record_user_false_records_no_user(configure_agentops: Any) -> None:
    from agentops_django.testing import captured_spans

    configure_agentops(DATABASE_WRITER=False, RECORD_USER=False)
    client = Client()
    client.force_login(User.objects.create_user("bob", password="pw"))
    with captured_spans() as spans:
        assert client.get("/whoami/").status_code == 200
    attributes = _request_attributes(spans)
    assert semconv.USER_NAME not in attributes


@pytest.mark.django_db(transaction=True)
def test_the_trace_row_keeps_the_user_of_its_request(traced: CapturedSpans) -> None:
    client = Client()
    client.force_login(User.objects.create_user("carol", password="pw"))
    client.get("/orders/7/", {"who": "1"})
    client.logout()
    client.get("/orders/8/", {"who": "1"})
    write_batch("default", list(traced))
    rows = {row.name + row.root_span_id: row for row in Trace.objects.filter(name="GET /orders/<int:pk>/")}
    assert sorted((row.username, bool(row.user_id)) for row in rows.values()) == [("", False), ("carol", True)]


def test_a_span_row_without_a_process_is_stored_as_before(transactional_db: Any) -> None:
    trace_id = new_trace_id()
    write_batch("default", [make_span(trace_id, 1, name="alone")])
    assert Span.objects.get(trace_id=format(trace_id, "032x")).process_id is None


@pytest.mark.parametrize("returning", [True, False], ids=["returning", "sqlite-before-3.35"])
def test_the_process_row_id_is_found_with_or_without_returning(
    transactional_db: Any, monkeypatch: Any, returning: bool
) -> None:
    import datetime as dt

    from django.db import connection

    from agentops_django.writer._store import store_writer_stats

    started = dt.datetime.now(dt.UTC)
    with monkeypatch.context() as patch:  # undone before the test database is flushed
        patch.setattr(connection.features, "can_return_columns_from_insert", returning)
        first = store_writer_stats("default", "box", 7, started, (1, 0, 0), ("web", "shop", "", None))
        again = store_writer_stats("default", "box", 7, started, (2, 0, 0), ("web", "shop", "", None))
    row = WriterStats.objects.get()
    assert first == again == row.pk
    assert (row.spans_written, row.role, row.service_name) == (2, "web", "shop")
