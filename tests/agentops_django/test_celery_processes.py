"""Real ``celery worker`` processes (prefork, two children) on Redis and RabbitMQ store their spans in the database.

The test process and the worker process each write their own spans (the
caller's and the publishes here, the tasks' there) with the database writer;
the trace they make together is read back from ``Trace``/``Span`` rows.
Needs a test database both processes can open (``AGENTOPS_TEST_SQLITE_FILE``
or ``AGENTOPS_TEST_DATABASE=postgres``).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest
from celery import chain, chord, group

import agentops
from agentops import semconv
from agentops_django.models import Span, Trace, WriterStats
from tests.agentops_django.celery_fixtures import (
    DEADLINE,
    make_app,
    restore_default_app,
    session_queue,
    wait_for,
    worker_process,
)
from tests.testapp import tasks

__all__ = ["wait_for"]

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

BROKER_PARAMS = [
    pytest.param("redis", marks=pytest.mark.redis, id="redis"),
    pytest.param("rabbitmq", marks=[pytest.mark.rabbitmq, pytest.mark.redis], id="rabbitmq"),
]


@pytest.fixture(scope="module", params=BROKER_PARAMS)
def worker(request: pytest.FixtureRequest, django_db_setup: Any, django_db_blocker: Any) -> Iterator[Any]:
    """A prefork worker process (``-c 2``) on the broker, and the app that talks to it."""
    app = make_app(request.param)
    try:
        with django_db_blocker.unblock(), worker_process(app, request.param):
            yield app
    finally:
        restore_default_app()


def task_rows(task_ids: Iterable[str]) -> dict[str, list[Span]]:
    """The stored spans (publish and run) of each task id."""
    wanted = set(task_ids)
    found: dict[str, list[Span]] = {task_id: [] for task_id in wanted}
    for row in Span.objects.filter(kind__in=["publish", "celery.task"]):
        task_id = row.attributes.get(semconv.CELERY_TASK_ID)
        if task_id in wanted:
            found[task_id].append(row)
    return found


def wait_for_tasks(
    wait: Callable[..., Any], task_ids: Iterable[str], *, runs: int = 1, publishes: int = 1
) -> dict[str, list[Span]]:
    """Poll the database until every task has its publish and run spans stored."""
    task_ids = list(task_ids)

    def complete() -> dict[str, list[Span]] | None:
        rows = task_rows(task_ids)
        for spans in rows.values():
            if (
                sum(s.kind == "celery.task" for s in spans) < runs
                or sum(s.kind == "publish" for s in spans) < publishes
            ):
                return None
        return rows

    return wait(complete, f"the spans of tasks {task_ids} in the database")


def run_row(rows: dict[str, list[Span]], task_id: str, attempt: int = 0) -> Span:
    (row,) = [
        s for s in rows[task_id] if s.kind == "celery.task" and s.attributes.get(semconv.CELERY_TASK_RETRIES) == attempt
    ]
    return row


def publish_row(rows: dict[str, list[Span]], task_id: str, attempt: int = 0) -> Span:
    found = sorted((s for s in rows[task_id] if s.kind == "publish"), key=lambda s: s.started_at)
    return found[attempt]


def assert_one_tree(trace_id: str, root_span_id: str) -> list[Span]:
    """Every stored span of the trace hangs, parent to child, from the root; returns them."""
    spans = list(Span.objects.filter(trace_id=trace_id))
    ids = {s.span_id for s in spans}
    assert root_span_id in ids
    for span in spans:
        if span.span_id != root_span_id:
            assert span.parent_span_id in ids, f"{span.name} has a parent outside the trace"
    return spans


def test_delay_apply_async_and_send_task_from_a_trace_reach_the_worker_process(worker, writer, wait_for):
    """All three ways to enqueue carry the trace to another process; publish and run spans land in one trace."""
    with agentops.start_trace("caller") as caller:
        results = [tasks.add.delay(1, 2), tasks.add.apply_async((2, 3)), worker.send_task("testapp.add", (3, 4))]
    assert [r.get(timeout=DEADLINE) for r in results] == [3, 5, 7]
    rows = wait_for_tasks(wait_for, [r.id for r in results])
    for result in results:
        run, publish = run_row(rows, result.id), publish_row(rows, result.id)
        assert run.trace_id == publish.trace_id == caller.trace_id
        assert publish.parent_span_id == caller.span_id
        assert run.parent_span_id == publish.span_id
        assert run.status == "OK"
        assert run.attributes[semconv.CELERY_TASK_STATE] == "SUCCESS"
        assert run.attributes["messaging.destination.name"] == worker.conf.task_default_queue
        assert run.attributes[semconv.CELERY_QUEUE_WAIT_MS] >= 0
    wait_for(lambda: Trace.objects.filter(trace_id=caller.trace_id, span_count__gte=7).exists(), "the trace summary")
    assert_one_tree(caller.trace_id, caller.span_id)


def test_a_task_enqueued_by_a_task_in_the_worker_stays_in_the_trace(worker, writer, wait_for):
    """Nested calls inside the worker process: the inner publish and run are in the caller's trace."""
    with agentops.start_trace("caller") as caller:
        result = tasks.nested.delay(5)
    child_id = result.get(timeout=DEADLINE)["child_id"]
    rows = wait_for_tasks(wait_for, [result.id, child_id])
    outer = run_row(rows, result.id)
    assert publish_row(rows, child_id).parent_span_id == outer.span_id
    assert run_row(rows, child_id).trace_id == caller.trace_id
    assert_one_tree(caller.trace_id, caller.span_id)


def test_chain_group_and_chord_in_worker_processes_are_one_trace(worker, writer, wait_for):
    """Canvas across processes: chain steps, group members, chord header and callback, one tree."""
    with agentops.start_trace("caller") as caller:
        chained = chain(tasks.add.s(1, 2), tasks.add.s(3), tasks.add.s(4)).delay()
        grouped = group(tasks.add.s(i, i) for i in range(3)).delay()
        chorded = chord(tasks.add.s(i, 1) for i in range(3))(tasks.tsum.s())
    assert chained.get(timeout=DEADLINE) == 10
    assert grouped.get(timeout=DEADLINE) == [0, 2, 4]
    assert chorded.get(timeout=DEADLINE) == 6
    ids = [chained.id, chained.parent.id, chained.parent.parent.id, chorded.id]
    ids += [r.id for r in grouped.results] + [r.id for r in chorded.parent.results]
    rows = wait_for_tasks(wait_for, ids)
    assert {s.trace_id for spans in rows.values() for s in spans} == {caller.trace_id}
    header_runs = {run_row(rows, r.id).span_id for r in chorded.parent.results}
    assert publish_row(rows, chorded.id).parent_span_id in header_runs
    assert publish_row(rows, chained.id).parent_span_id == run_row(rows, chained.parent.id).span_id
    assert_one_tree(caller.trace_id, caller.span_id)


def test_retries_in_a_worker_process_are_spans_of_one_trace(worker, writer, wait_for):
    """Each attempt is stored as its own span, under the publish of the attempt before it."""
    with agentops.start_trace("caller") as caller:
        result = tasks.flaky.delay(2)
    assert result.get(timeout=DEADLINE) == 2
    rows = wait_for_tasks(wait_for, [result.id], runs=3, publishes=3)
    attempts = [run_row(rows, result.id, n) for n in range(3)]
    assert [a.attributes[semconv.CELERY_TASK_STATE] for a in attempts] == ["RETRY", "RETRY", "SUCCESS"]
    # A retried attempt failed: its exception is recorded next to the retry.
    assert [e["name"] for e in attempts[0].events] == [semconv.CELERY_RETRY_EVENT, "exception"]
    assert [a.status for a in attempts] == ["ERROR", "ERROR", "OK"]
    for n in range(2):
        republish = publish_row(rows, result.id, n + 1)
        assert republish.parent_span_id == attempts[n].span_id
        assert attempts[n + 1].parent_span_id == republish.span_id
    assert_one_tree(caller.trace_id, caller.span_id)


def test_a_failure_in_a_worker_process_is_stored_with_its_traceback(worker, writer, wait_for):
    """The failing task's row: status ERROR, the exception event with the worker's traceback."""
    with agentops.start_trace("caller") as caller:
        result = tasks.fail.delay("far away")
    with pytest.raises(ValueError, match="far away"):
        result.get(timeout=DEADLINE)
    run = run_row(wait_for_tasks(wait_for, [result.id]), result.id)
    assert run.trace_id == caller.trace_id
    assert run.status == "ERROR"
    (event,) = [e for e in run.events if e["name"] == "exception"]
    assert "raise ValueError(message)" in event["attributes"]["exception.stacktrace"]
    assert run.attributes["agentops.end_state"] == "Error"


def test_eta_in_a_worker_process_is_not_counted_as_queue_wait(worker, writer, wait_for):
    """A task due later: its queue wait counts from the eta, not from the publish."""
    eta = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=0.5)
    with agentops.start_trace("caller"):
        result = tasks.add.apply_async((1, 1), eta=eta)
    assert result.get(timeout=DEADLINE) == 2
    rows = wait_for_tasks(wait_for, [result.id])
    run, publish = run_row(rows, result.id), publish_row(rows, result.id)
    waited_ms = (run.started_at - publish.started_at).total_seconds() * 1000
    # Counted from publish it would be about waited_ms; counted from the eta, ~500 ms less.
    assert 0 <= run.attributes[semconv.CELERY_QUEUE_WAIT_MS] <= max(0.0, waited_ms - 400)


def test_a_request_that_enqueues_a_canvas_is_one_trace(worker, writer, live_server, wait_for):
    """A real HTTP request whose view enqueues a chain, a group and a chord: exactly one trace, one tree."""
    with urllib.request.urlopen(f"{live_server.url}/celery/canvas/", timeout=DEADLINE) as response:
        body = json.loads(response.read())
    ids = body["chain"] + body["group"] + body["chord_header"] + [body["chord_callback"]]
    rows = wait_for_tasks(wait_for, ids)
    trace_id = body["trace_id"]
    assert {s.trace_id for spans in rows.values() for s in spans} == {trace_id}
    trace = wait_for(
        lambda: Trace.objects.filter(trace_id=trace_id, span_count__gte=21).first(), "the request's trace summary"
    )
    spans = assert_one_tree(trace_id, trace.root_span_id)
    (root,) = [s for s in spans if s.span_id == trace.root_span_id]
    assert root.kind == "request"
    assert root.parent_span_id == ""
    assert sum(s.kind == "celery.task" for s in spans) == 10
    assert sum(s.kind == "publish" for s in spans) == 10
    assert trace.kind == "request"


@pytest.mark.redis
def test_children_that_exit_after_each_task_still_store_their_spans(writer, wait_for, django_db_blocker):
    """``--max-tasks-per-child=1``: each child flushes its spans before it exits."""
    app = make_app("redis")
    try:
        with worker_process(app, "redis", concurrency=1, extra=("--max-tasks-per-child=1",)):
            with agentops.start_trace("caller") as caller:
                results = [tasks.add.delay(i, i) for i in range(3)]
            assert [r.get(timeout=DEADLINE) for r in results] == [0, 2, 4]
            rows = wait_for_tasks(wait_for, [r.id for r in results])
    finally:
        restore_default_app()
    assert {run_row(rows, r.id).trace_id for r in results} == {caller.trace_id}


def test_each_stored_span_names_its_process_the_worker_child_or_the_caller(writer, wait_for, django_db_blocker):
    """Spans point at their process's row: a task's at its prefork child (role, node, pool index), the caller's here.

    (A worker of its own: the rows of a module-wide worker's processes are
    emptied with the tables between tests.)
    """
    app = make_app("redis")
    own_queue = f"{session_queue()}-own"  # so that the module's worker cannot take the task
    try:
        with worker_process(app, "redis", concurrency=2, queue=own_queue):
            with agentops.start_trace("caller") as caller:
                result = tasks.add.apply_async((2, 2), queue=own_queue)
            assert result.get(timeout=DEADLINE) == 4
            rows = wait_for_tasks(wait_for, [result.id])
    finally:
        restore_default_app()
    run, publish = run_row(rows, result.id), publish_row(rows, result.id)
    child = WriterStats.objects.get(pk=run.process_id)
    assert child.role == semconv.ProcessRole.WORKER
    assert child.worker_node.startswith("agentops-test-")
    assert child.worker_node.endswith("@127.0.0.1")
    assert child.pool_index in (1, 2)  # -c 2: billiard numbers the children from 1
    assert child.pid != os.getpid()
    assert child.service_name == "tests"
    # The caller's spans point at this process's row, not the child's. (Its role and node
    # are whatever earlier tests made it, and its row may have been emptied with the
    # tables by an earlier test: the writer registers a process once.)
    assert publish.process_id is not None and publish.process_id != child.pk
    here = WriterStats.objects.filter(pk=publish.process_id).first()
    if here is None:
        here = WriterStats.objects.filter(pid=os.getpid()).first()
    assert here is None or here.pid == os.getpid()
    node = f"|{child.worker_node}|"
    trace = wait_for(
        lambda: Trace.objects.filter(trace_id=caller.trace_id, processes_text__contains=node).first(),
        "the worker in the trace's processes",
    )
    assert f"|{socket.gethostname()}|" in trace.processes_text
