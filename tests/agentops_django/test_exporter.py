"""The database writer: spans stored in batches, trace summaries exact whatever the order or the process."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import random
import threading
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection, connections
from django.db.backends.signals import connection_created
from opentelemetry import context as context_api
from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

import agentops
from agentops_django import writer as writer_package
from agentops_django.models import Span, Trace, WriterStats
from agentops_django.writer import DatabaseSpanProcessor, _store, write_batch

T0 = 1_764_000_000_600_000_000  # ns; spans cross whole seconds
RESOURCE = Resource.create({"service.name": "shop"})
_ids = iter(range(1, 10**9))


def new_trace_id() -> int:
    return random.getrandbits(128) | 1


def make_span(
    trace_id: int,
    span_id: int,
    parent_id: int | None = None,
    *,
    name: str = "work",
    kind: str | None = None,
    start: int = 0,
    end: int = 1,
    error: bool = False,
    remote_parent: bool = False,
    attributes: dict[str, Any] | None = None,
) -> ReadableSpan:
    """A finished span as the SDK hands it to processors; times in ms after T0."""
    attrs = dict(attributes or {})
    if kind is not None:
        attrs["agentops.span.kind"] = kind
    parent = None
    if parent_id is not None:
        parent = SpanContext(trace_id, parent_id, is_remote=remote_parent, trace_flags=TraceFlags(1))
    return ReadableSpan(
        name=name,
        context=SpanContext(trace_id, span_id, is_remote=False, trace_flags=TraceFlags(1)),
        parent=parent,
        resource=RESOURCE,
        attributes=attrs,
        kind=SpanKind.SERVER if kind == "request" else SpanKind.INTERNAL,
        status=Status(StatusCode.ERROR if error else StatusCode.OK),
        start_time=T0 + start * 1_000_000,
        end_time=T0 + end * 1_000_000,
    )


def request_trace(trace_id: int) -> list[ReadableSpan]:
    """A request (root) with an agent, two LLM calls and a failing tool: the spans of one trace."""
    llm = {"gen_ai.usage.input_tokens": 100, "gen_ai.usage.output_tokens": 20, "gen_ai.usage.cost": 0.5}
    return [
        make_span(trace_id, 1, name="GET /orders/<int:pk>/", kind="request", start=0, end=1500,
                  attributes={"agentops.end_state": "Success", "agentops.tags": ("shop", "web")}),
        make_span(trace_id, 2, 1, name="planner.agent", kind="agent", start=5, end=90,
                  attributes={"gen_ai.usage.input_tokens": 999}),  # not an LLM span: never counted
        make_span(trace_id, 3, 2, name="openai.chat", kind="llm", start=10, end=30, attributes=llm),
        make_span(trace_id, 4, 2, name="openai.chat", kind="llm", start=40, end=60, attributes=llm),
        make_span(trace_id, 5, 2, name="search.tool", kind="tool", start=61, end=95, error=True,
                  attributes={"agentops.tool.cost": 0.25}),
    ]  # fmt: skip


def assert_request_summary(trace_id: int) -> None:
    row = Trace.objects.get(trace_id=format(trace_id, "032x"))
    assert row.span_count == 5
    assert row.error_count == 1
    assert (row.input_tokens, row.output_tokens, row.total_tokens) == (200, 40, 240)
    assert row.cost == pytest.approx(1.25)
    assert row.name == "GET /orders/<int:pk>/"
    assert row.kind == "request"
    assert row.status == "Success"
    assert row.root_span_id == format(1, "016x")
    assert row.tags == ["shop", "web"]
    assert row.tags_text == "|shop|web|"
    assert row.service_name == "shop"
    assert row.duration_ms == pytest.approx(1500.0, abs=0.001)
    assert (row.ended_at - row.started_at).total_seconds() == pytest.approx(1.5)
    assert Span.objects.filter(trace_id=row.trace_id).count() == 5


pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def processor() -> Iterator[DatabaseSpanProcessor]:
    """A writer of its own (not installed in agentops), shut down after the test."""
    made = DatabaseSpanProcessor("default", queue_size=1000, batch_size=50, batch_interval=0.01)
    yield made
    made.shutdown()


def test_spans_fed_to_the_processor_land_in_the_database(processor: DatabaseSpanProcessor) -> None:
    trace_id = new_trace_id()
    for span in request_trace(trace_id):
        processor.on_end(span)

    assert processor.force_flush(30_000)
    assert_request_summary(trace_id)
    stored = Span.objects.get(trace_id=format(trace_id, "032x"), span_id=format(3, "016x"))
    assert stored.parent_span_id == format(2, "016x")
    assert stored.kind == "llm"
    assert stored.attributes["gen_ai.usage.input_tokens"] == 100
    assert stored.duration_ms == pytest.approx(20.0)
    assert stored.status == "OK"
    assert stored.service_name == "shop"
    assert processor.stats()["written"] == 5


@pytest.mark.parametrize("seed", range(6))
def test_summary_is_exact_whatever_the_order_and_batching_of_spans(seed: int) -> None:
    rng = random.Random(seed)
    trace_id = new_trace_id()
    spans = request_trace(trace_id)
    rng.shuffle(spans)
    while spans:
        size = rng.randint(1, 3)
        write_batch("default", spans[:size])
        spans = spans[size:]
    assert_request_summary(trace_id)


def test_before_the_root_arrives_the_trace_is_indeterminate_and_named_by_its_first_span() -> None:
    trace_id = new_trace_id()
    spans = request_trace(trace_id)
    write_batch("default", spans[3:])
    row = Trace.objects.get(trace_id=format(trace_id, "032x"))
    assert row.status == "Indeterminate"
    assert row.name == "openai.chat"
    assert row.root_span_id == ""
    write_batch("default", spans[:3])  # the root arrives last, after its children ended
    assert_request_summary(trace_id)


@pytest.mark.parametrize("copy", [True, False], ids=["copy", "values"])
def test_duplicate_spans_are_stored_and_counted_once(copy: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """On PostgreSQL both ways in (COPY with psycopg 3, VALUES with psycopg2) count a span once."""
    if not copy:
        monkeypatch.setattr(_store, "_has_copy", lambda connection: False)
    trace_id = new_trace_id()
    spans = request_trace(trace_id)
    assert write_batch("default", spans + spans[:2]) == 5
    assert write_batch("default", spans) == 0
    assert write_batch("default", list(reversed(spans))) == 0
    assert_request_summary(trace_id)


def test_tokens_count_only_llm_spans_and_cost_adds_llm_and_tool_costs() -> None:
    trace_id = new_trace_id()
    write_batch(
        "default",
        [
            make_span(trace_id, 1, name="run", kind="session", attributes={"gen_ai.usage.input_tokens": 5}),
            make_span(
                trace_id, 2, 1, kind="llm", attributes={"gen_ai.usage.input_tokens": 7, "gen_ai.usage.cost": 1.5}
            ),
            make_span(trace_id, 3, 1, kind="tool", attributes={"agentops.tool.cost": 2.0, "gen_ai.usage.cost": 9.0}),
            make_span(trace_id, 4, 1, kind="agent", attributes={"gen_ai.usage.output_tokens": 50}),
        ],
    )
    row = Trace.objects.get(trace_id=format(trace_id, "032x"))
    assert (row.input_tokens, row.output_tokens, row.total_tokens) == (7, 0, 7)
    assert row.cost == pytest.approx(3.5)
    assert row.kind == "manual"


def test_trace_kind_and_status_come_from_the_root() -> None:
    task_trace, failed = new_trace_id(), new_trace_id()
    write_batch(
        "default",
        [
            make_span(task_trace, 1, name="tasks.send_email", kind="celery.task"),
            make_span(failed, 1, name="nightly", kind="trace", error=True, attributes={"agentops.end_state": "Error"}),
        ],
    )
    assert Trace.objects.get(trace_id=format(task_trace, "032x")).kind == "task"
    row = Trace.objects.get(trace_id=format(failed, "032x"))
    assert (row.kind, row.status, row.error_count) == ("manual", "Error", 1)


def test_a_task_with_a_remote_parent_names_the_trace_until_the_true_root_arrives() -> None:
    trace_id = new_trace_id()
    task = make_span(trace_id, 9, 2, name="tasks.work", kind="celery.task", start=50, end=980, remote_parent=True)
    root = make_span(trace_id, 1, name="POST /work/", kind="request", start=0, end=40)
    publish = make_span(trace_id, 2, 1, name="tasks.work publish", kind="publish", start=10, end=11)
    write_batch("default", [task])
    row = Trace.objects.get(trace_id=format(trace_id, "032x"))
    assert (row.name, row.kind, row.root_span_id) == ("tasks.work", "task", format(9, "016x"))
    write_batch("default", [root, publish])
    write_batch("default", [make_span(trace_id, 10, 9, name="after", start=981, end=1082)])
    row = Trace.objects.get(trace_id=format(trace_id, "032x"))
    assert (row.name, row.kind, row.root_span_id, row.span_count) == ("POST /work/", "request", format(1, "016x"), 4)
    assert row.duration_ms == pytest.approx(1082.0, abs=0.001)


def test_a_full_queue_drops_and_counts_spans_instead_of_waiting() -> None:
    processor = DatabaseSpanProcessor("default", queue_size=2, batch_size=100, batch_interval=60)
    try:
        trace_id = new_trace_id()
        for span in request_trace(trace_id):
            processor.on_end(span)
        assert processor.stats()["dropped"] == 3
        assert processor.stats()["queued"] == 2
        assert agentops.counters()["spans_dropped"] == 3
        assert processor.force_flush(30_000)
        assert Span.objects.filter(trace_id=format(trace_id, "032x")).count() == 2
        stats = WriterStats.objects.get(pid=os.getpid(), process_started_at=processor._process_started_at)
        assert (stats.spans_written, stats.spans_dropped) == (2, 3)
    finally:
        processor.shutdown()


def test_missing_tables_drop_spans_with_a_migrate_hint_once_and_writing_resumes_after_migrate(
    processor: DatabaseSpanProcessor, caplog: pytest.LogCaptureFixture
) -> None:
    """Migrations not applied yet: the log says "run manage.py migrate" (once), not "the queue is full"."""
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE agentops_django_span RENAME TO agentops_django_span_away")
    try:
        lost = new_trace_id()
        for span in request_trace(lost):
            processor.on_end(span)
            assert processor.force_flush(30_000)  # one batch each: five failures, one log line
        assert processor.stats()["dropped"] == 5
        assert processor.stats()["errors"] == 5
        warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
        hints = [w for w in warnings if "run 'python manage.py migrate'" in w]
        assert len(hints) == 1, warnings
    finally:
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE agentops_django_span_away RENAME TO agentops_django_span")
    kept = new_trace_id()
    for span in request_trace(kept):
        processor.on_end(span)
    assert processor.force_flush(30_000)
    assert_request_summary(kept)
    assert not Trace.objects.filter(trace_id=format(lost, "032x")).exists()


def test_a_span_with_text_no_database_can_store_is_stored_with_replacement_characters(
    processor: DatabaseSpanProcessor,
) -> None:
    """NUL characters and lone surrogates (PostgreSQL refuses both) become U+FFFD; the batch is whole."""
    trace_id = new_trace_id()
    spans = request_trace(trace_id)
    odd = make_span(trace_id, 77, 1, name="odd\x00name \ud800", start=1, end=2, attributes={"text": "lone \ud800"})
    for span in [*spans[:2], odd, *spans[2:]]:
        processor.on_end(span)
    assert processor.force_flush(30_000)
    assert processor.stats()["dropped"] == 0
    stored = Span.objects.get(span_id=format(77, "016x"))
    assert stored.name == "odd\ufffdname \ufffd"
    assert stored.attributes["text"] == "lone \ufffd"
    assert Trace.objects.get(trace_id=format(trace_id, "032x")).span_count == 6


@contextlib.contextmanager
def database_locked() -> Iterator[None]:
    """Another connection holds the span table's write lock inside the block."""
    other = connections.create_connection("default")
    other.ensure_connection()
    raw = other.connection
    if other.vendor == "sqlite":
        raw.execute("BEGIN IMMEDIATE")
    else:
        raw.autocommit = False
        raw.execute("LOCK TABLE agentops_django_span IN ACCESS EXCLUSIVE MODE")
    try:
        yield
    finally:
        raw.rollback() if other.vendor != "sqlite" else raw.execute("ROLLBACK")
        other.close()


def test_flush_and_shutdown_return_at_their_deadline_while_the_database_hangs() -> None:
    processor = DatabaseSpanProcessor("default", batch_interval=0.01)
    trace_id = new_trace_id()
    with database_locked():
        processor.on_end(make_span(trace_id, 1))
        assert processor.force_flush(200) is False
        processor.shutdown(timeout_millis=200)  # returns although the writer still waits for the lock
        assert processor._thread.is_alive()
    processor._thread.join(60)  # once the lock is gone the writer finishes what it had
    assert Span.objects.filter(trace_id=format(trace_id, "032x")).count() == 1


def test_the_writers_own_queries_run_with_instrumentation_suppressed(processor: DatabaseSpanProcessor) -> None:
    seen: list[Any] = []

    def record(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        seen.append((threading.current_thread().name, context_api.get_value(_SUPPRESS_INSTRUMENTATION_KEY)))
        return execute(sql, params, many, context)

    def on_connect(sender: Any, connection: Any, **kwargs: Any) -> None:
        if threading.current_thread().name == "agentops database writer":
            connection.execute_wrappers.append(record)

    connection_created.connect(on_connect)
    try:
        processor.on_end(make_span(new_trace_id(), 1))
        assert processor.force_flush(30_000)
    finally:
        connection_created.disconnect(on_connect)
    assert seen, "the writer ran queries on a connection of its own thread"
    assert all(flag is True for _, flag in seen)


def test_writer_stats_are_stored_per_process(processor: DatabaseSpanProcessor) -> None:
    processor.on_end(make_span(new_trace_id(), 1))
    assert processor.force_flush(30_000)
    stats = WriterStats.objects.get(pid=os.getpid(), process_started_at=processor._process_started_at)
    assert (stats.spans_written, stats.spans_dropped, stats.write_errors) == (1, 0, 0)


def _write_share(spans: list[ReadableSpan]) -> None:
    """In a forked child: write one share of the spans through the inherited writer."""
    code = 1
    try:
        processor = writer_package.get_processor()
        fresh = processor.stats() == {"written": 0, "dropped": 0, "queued": 0, "errors": 0}
        for span in spans:
            processor.on_end(span)
        code = 0 if fresh and processor.force_flush(60_000) and processor.stats()["dropped"] == 0 else 2
    finally:
        os._exit(code)


@pytest.mark.slow
def test_spans_of_the_same_traces_from_four_processes_at_once_give_exact_summaries(
    writer: DatabaseSpanProcessor,
) -> None:
    """Forked children (as Celery prefork) write interleaved spans of the same traces, with duplicates."""
    trace_ids = [new_trace_id() for _ in range(20)]
    spans = [span for trace_id in trace_ids for span in request_trace(trace_id)]
    random.Random(7).shuffle(spans)
    writer.on_end(make_span(new_trace_id(), 1))  # the parent's thread runs before the fork
    assert writer.force_flush(30_000)
    connections.close_all()
    shares = [spans[i::4] for i in range(4)]
    shares[0] = shares[0] + shares[1][:5]  # a redelivered span is counted once
    context = multiprocessing.get_context("fork")
    children = [context.Process(target=_write_share, args=(share,)) for share in shares]
    for child in children:
        child.start()
    for child in children:
        child.join(120)
    assert [child.exitcode for child in children] == [0, 0, 0, 0]
    for trace_id in trace_ids:
        assert_request_summary(trace_id)


def test_a_request_to_a_live_server_stores_its_trace(writer: DatabaseSpanProcessor, live_server: Any) -> None:
    with urllib.request.urlopen(f"{live_server.url}/orders/42/?q=1", timeout=30) as response:
        assert response.status == 200
    assert writer.force_flush(30_000)
    row = Trace.objects.get(name="GET /orders/<int:pk>/")
    assert (row.kind, row.status, row.span_count) == ("request", "Success", 1)
    span = Span.objects.get(trace_id=row.trace_id)
    assert span.kind == "request"
    assert span.attributes["url.path"] == "/orders/42/"
    assert span.attributes["http.response.status_code"] == 200


def test_a_trace_of_one_llm_call_counts_its_tokens_cost_and_error() -> None:
    trace_id = new_trace_id()
    usage = {"gen_ai.usage.input_tokens": 11, "gen_ai.usage.output_tokens": 4, "gen_ai.usage.cost": 0.25}
    write_batch("default", [make_span(trace_id, 1, name="openai.chat", kind="llm", error=True, attributes=usage)])
    row = Trace.objects.get(trace_id=format(trace_id, "032x"))
    assert (row.span_count, row.error_count, row.input_tokens, row.output_tokens, row.total_tokens) == (1, 1, 11, 4, 15)
    assert row.cost == pytest.approx(0.25)
    assert (row.name, row.status, row.kind) == ("openai.chat", "Error", "manual")


def test_a_lone_span_is_written_without_any_flush(processor: DatabaseSpanProcessor) -> None:
    """A quiet site's spans do not wait for the next flush or the stats interval (30 s)."""
    processor.on_end(make_span(new_trace_id(), 1))
    assert processor.force_flush(30_000)  # the writer thread now idles on an empty queue
    trace_id = format(new_trace_id(), "032x")
    processor.on_end(make_span(int(trace_id, 16), 1))
    for _ in range(200):  # up to 10 s; the batch interval is 0.01 s
        if Span.objects.filter(trace_id=trace_id).exists():
            break
        time.sleep(0.05)
    assert Span.objects.filter(trace_id=trace_id).exists()
