"""The writer under pressure and at rest: what it drops, what it says, what it holds on to.

* Under overflow the spans that name a trace (request, task, trace root) are
  the last to be dropped, and every warning gives the exact count since the
  previous one.
* The admin's counters are stored while the process is idle, not only when
  new traffic arrives.
* A quiet writer holds no database connection; one cut while idle is
  replaced without a warning.
* Spans made in ``multiprocessing`` children (fork) are written before the
  child exits, even when the pool is terminated.
* What waits in the queue is out of the way of the host's garbage collector,
  and is stored exactly as the span itself would be.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connections
from django.db.backends.signals import connection_created
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

import agentops
from agentops_django.models import Span, Trace, WriterStats
from agentops_django.writer import DatabaseSpanProcessor, write_batch
from tests.agentops_django.test_exporter import make_span, new_trace_id

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def make_writer() -> Iterator[Any]:
    made: list[DatabaseSpanProcessor] = []

    def make(**options: Any) -> DatabaseSpanProcessor:
        writer = DatabaseSpanProcessor("default", **options)
        made.append(writer)
        return writer

    yield make
    for writer in made:
        writer.shutdown()


def wait_until(predicate: Any, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def test_a_trace_bigger_than_the_queue_keeps_its_root(make_writer: Any) -> None:
    """50,000 spans in one request: children are dropped, the request span that names the trace is not."""
    writer = make_writer(queue_size=100, batch_size=1000, batch_interval=60)
    trace_id = new_trace_id()
    for n in range(2, 302):
        writer.on_end(make_span(trace_id, n, 1, name="child"))
    root = make_span(trace_id, 1, name="GET /big/", kind="request", attributes={"agentops.end_state": "Success"})
    writer.on_end(root)
    assert writer.stats()["dropped"] == 300 - 95
    assert writer.force_flush(30_000)
    row = Trace.objects.get(trace_id=format(trace_id, "032x"))
    assert (row.name, row.status, row.kind) == ("GET /big/", "Success", "request")
    assert Span.objects.filter(trace_id=row.trace_id).count() == 96


def test_a_task_whose_caller_is_in_another_process_also_keeps_its_place(make_writer: Any) -> None:
    writer = make_writer(queue_size=40, batch_size=1000, batch_interval=60)
    trace_id = new_trace_id()
    for n in range(2, 100):
        writer.on_end(make_span(trace_id, n, 1, name="step"))
    writer.on_end(make_span(trace_id, 1, 999, name="shop.tasks.charge", kind="celery.task", remote_parent=True))
    assert writer.force_flush(30_000)
    assert Span.objects.filter(trace_id=format(trace_id, "032x"), name="shop.tasks.charge").exists()


def test_drop_warnings_give_the_exact_count_of_each_window(
    make_writer: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    writer = make_writer(queue_size=10, batch_size=1000, batch_interval=0.05)
    writer.warn_interval = 0.3
    trace_id = new_trace_id()
    for n in range(2, 32):  # 30 spans at once into a queue of 10
        writer.on_end(make_span(trace_id, n, 1))
    assert writer.stats()["dropped"] == 20

    def reported() -> list[int]:
        pattern = re.compile(r"(\d+) span\(s\) dropped since the last report")
        return [int(m.group(1)) for r in caplog.records if (m := pattern.search(r.getMessage()))]

    # The first drop is reported at once; the rest of the burst by the writer
    # when the window ends, with no new traffic needed.
    assert wait_until(lambda: sum(reported()) == 20, timeout=10), reported()
    assert reported() == [1, 19]


def test_counters_are_stored_while_the_process_is_idle(make_writer: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Drops after the last store reach the admin within a stats interval, without further spans."""
    writer = make_writer(queue_size=2, batch_size=1000, batch_interval=0.05)
    writer.stats_interval = 0.3
    writer.on_end(make_span(new_trace_id(), 1))
    assert writer.force_flush(30_000)
    for _ in range(5):
        writer.on_end(make_span(new_trace_id(), 1))  # 2 queued, 3 dropped

    def stored() -> tuple[int, int]:
        row = WriterStats.objects.filter(pid=os.getpid(), process_started_at=writer._process_started_at).first()
        return (row.spans_written, row.spans_dropped) if row else (0, 0)

    assert wait_until(lambda: stored() == (3, 3), timeout=10), stored()


def test_a_quiet_writer_closes_its_connection_and_opens_a_new_one_for_the_next_batch(
    make_writer: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[int] = []

    def count(sender: Any, connection: Any, **kwargs: Any) -> None:
        if threading.current_thread().name == "agentops database writer":
            opened.append(id(connection))

    connection_created.connect(count)
    try:
        writer = make_writer(batch_interval=0.01)
        writer.idle_close = 0.2
        writer.on_end(make_span(new_trace_id(), 1))
        assert writer.force_flush(30_000)
        assert len(opened) == 1
        assert wait_until(lambda: writer._thread is not None and _writer_connection_closed(writer), timeout=5)
        writer.on_end(make_span(new_trace_id(), 1))
        assert writer.force_flush(30_000)
        assert len(opened) == 2
        assert writer.stats()["written"] == 2 and writer.stats()["errors"] == 0
    finally:
        connection_created.disconnect(count)


def _writer_connection_closed(writer: DatabaseSpanProcessor) -> bool:
    """The writer has been idle past ``IDLE_CLOSE`` (its thread-local connection is out of reach here)."""
    return time.monotonic() - writer.exporter.used_at >= writer.idle_close + 0.2


def _traced_work_in_a_pool() -> None:
    context = multiprocessing.get_context("fork")
    pool = context.Pool(2)
    try:
        assert pool.map(_child_work, range(4)) == [0, 1, 4, 9]
    finally:
        pool.close()
        pool.join()


def _traced_work_in_a_process() -> None:
    process = multiprocessing.get_context("fork").Process(target=_child_work, args=(5,))
    process.start()
    process.join(60)
    assert process.exitcode == 0


@agentops.tool(name="square")
def _child_work(n: int) -> int:
    return n * n


def test_spans_made_in_multiprocessing_pool_workers_are_written_before_they_exit(
    writer: DatabaseSpanProcessor,
) -> None:
    """Pool workers end with os._exit() (no atexit): their spans are written, as children of the caller's trace."""
    connections.close_all()  # children must not share the parent's connection
    with agentops.start_trace("fan-out") as trace:
        _traced_work_in_a_pool()
    assert writer.force_flush(30_000)
    squares = Span.objects.filter(trace_id=trace.trace_id, name="square.tool")
    assert squares.count() == 4
    assert set(squares.values_list("parent_span_id", flat=True)) == {trace.span_id}
    assert Trace.objects.get(trace_id=trace.trace_id).span_count == 5


def test_spans_made_in_a_forked_process_are_written_before_it_exits(writer: DatabaseSpanProcessor) -> None:
    connections.close_all()
    with agentops.start_trace("fan-out") as trace:
        _traced_work_in_a_process()
    assert writer.force_flush(30_000)
    assert Span.objects.filter(trace_id=trace.trace_id, name="square.tool", parent_span_id=trace.span_id).count() == 1


def _sdk_span() -> ReadableSpan:
    """A span ended by the SDK itself, with attributes of every kind, an event and an error."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with provider.get_tracer("test").start_as_current_span("GET /orders/<int:pk>/") as span:
        span.set_attributes(
            {"agentops.span.kind": "request", "http.response.status_code": 500, "ratio": 0.5,
             "cached": False, "tags": ("a", "b"), "url.path": "/orders/1/"}
        )  # fmt: skip
        span.add_event("retry", {"attempt": 2})
        span.set_status(StatusCode.ERROR, "boom")
    provider.shutdown()
    (finished,) = exporter.get_finished_spans()
    return finished


def _tracked_objects(root: Any, shared: Any) -> int:
    """Objects the garbage collector tracks that ``root`` alone keeps alive (not those reachable from ``shared``)."""
    seen = {id(o) for o in _reachable(shared)}
    return sum(1 for o in _reachable(root) if id(o) not in seen and gc.is_tracked(o))


def _reachable(root: Any) -> list[Any]:
    found, stack, seen = [], [root], set()
    while stack:
        item = stack.pop()
        if id(item) in seen or isinstance(item, type):
            continue
        seen.add(id(item))
        found.append(item)
        stack.extend(gc.get_referents(item))
    return found


def test_a_queued_span_is_a_few_plain_values_not_a_dozen_objects_for_the_garbage_collector(make_writer: Any) -> None:
    # A queued SDK span is a dozen tracked objects that age into the collector's
    # oldest generation while they wait, and bring the host's full collections closer.
    span = _sdk_span()
    shared = (span.resource, span.instrumentation_scope, span.kind, span.status.status_code)
    writer = make_writer(batch_interval=60)
    writer.on_end(span)
    (queued,) = list(writer._queue)
    in_span, in_record = _tracked_objects(span, shared), _tracked_objects(queued, shared)
    # The record, its attribute dict and tuple value, its events' tuples and attribute dict.
    assert in_record <= 6
    assert in_span >= 2 * in_record, (in_span, in_record)


def test_a_queued_span_is_stored_exactly_as_the_span_itself(make_writer: Any) -> None:
    span = _sdk_span()
    writer = make_writer(batch_interval=60)
    writer.on_end(span)
    assert writer.force_flush(10_000)
    queued = Span.objects.get()
    fields = ["name", "kind", "otel_kind", "status", "status_message", "started_at", "ended_at", "duration_ms",
              "attributes", "events", "links", "service_name", "parent_span_id"]  # fmt: skip
    from_queue = {f: getattr(queued, f) for f in fields}
    Span.objects.all().delete()
    Trace.objects.all().delete()
    write_batch("default", [span])
    direct = Span.objects.get()
    assert from_queue == {f: getattr(direct, f) for f in fields}
    assert from_queue["status"] == "ERROR" and from_queue["status_message"] == "boom"
    assert from_queue["attributes"]["tags"] == ["a", "b"]
    assert [e["name"] for e in from_queue["events"]] == ["retry"]
