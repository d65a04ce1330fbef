"""Celery tasks run in spans that continue their caller's trace: in-process workers on real brokers.

Each test runs against a worker thread of this process (pools solo and
threads) on Redis and on RabbitMQ, with the Redis result backend, and reads
the spans from ``agentops.testing.captured_spans``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from celery import chain, chord, group
from opentelemetry.trace import SpanKind as OTelSpanKind
from opentelemetry.trace import StatusCode

import agentops
from agentops import semconv
from agentops.testing import CapturedSpans
from agentops_django import celery as cs
from tests.agentops_django.celery_fixtures import (
    DEADLINE,
    make_app,
    restore_default_app,
    running_worker,
    traced,
    wait_for,
)
from tests.testapp import tasks

__all__ = ["traced", "wait_for"]

pytestmark = [pytest.mark.django_db(transaction=True)]

WORKERS = [
    pytest.param(("redis", "solo"), marks=pytest.mark.redis, id="redis-solo"),
    pytest.param(("redis", "threads"), marks=pytest.mark.redis, id="redis-threads"),
    pytest.param(("rabbitmq", "solo"), marks=[pytest.mark.rabbitmq, pytest.mark.redis], id="rabbitmq-solo"),
    pytest.param(("rabbitmq", "threads"), marks=[pytest.mark.rabbitmq, pytest.mark.redis], id="rabbitmq-threads"),
]


@pytest.fixture(scope="module", params=WORKERS)
def worker_app(request: pytest.FixtureRequest) -> Iterator[Any]:
    broker, pool = request.param
    app = make_app(broker)
    try:
        with running_worker(app, pool, concurrency=2 if pool == "threads" else 1):
            yield app
    finally:
        restore_default_app()


def hexid(value: int) -> str:
    return format(value, "016x")


def task_spans(spans: CapturedSpans, name: str, count: int, wait: Callable[..., Any]) -> list[Any]:
    """The spans of task ``name``, once ``count`` of them have ended."""
    wait(lambda: len(spans.named(name)) >= count, f"{count} span(s) of {name}")
    return spans.named(name)


def publish_of(spans: CapturedSpans, task_id: str, retries: int = 0) -> Any:
    found = [
        s
        for s in spans
        if s.attributes.get(semconv.CELERY_TASK_ID) == task_id and s.kind is OTelSpanKind.PRODUCER
        if s.attributes.get("agentops.span.kind") == "publish"
    ]
    assert found, f"no publish span for task {task_id}"
    # By start: an in-process worker may retry (and republish) before the
    # first publish's after_task_publish has ended its span.
    found.sort(key=lambda s: s.start_time)
    return found[retries] if len(found) > retries else found[-1]


def run_of(spans: CapturedSpans, task_id: str, wait: Callable[..., Any], retries: int = 0) -> Any:
    def find() -> Any:
        for s in spans:
            if (
                s.kind is OTelSpanKind.CONSUMER
                and s.attributes.get(semconv.CELERY_TASK_ID) == task_id
                and s.attributes.get(semconv.CELERY_TASK_RETRIES) == retries
            ):
                return s
        return None

    return wait(find, f"the span of task {task_id} attempt {retries}")


def test_delay_runs_the_task_in_a_child_of_the_callers_span(worker_app, traced, wait_for):
    """``delay`` from inside a trace: publish span under the caller, task span under the publish span."""
    with agentops.start_trace("caller") as caller:
        result = tasks.add.delay(2, 3)
    assert result.get(timeout=DEADLINE) == 5
    run = run_of(traced, result.id, wait_for)
    publish = publish_of(traced, result.id)
    root = traced.one("caller")

    assert publish.name == "publish testapp.add"
    assert publish.kind is OTelSpanKind.PRODUCER
    assert publish.parent.span_id == root.context.span_id
    assert publish.attributes["messaging.system"] == "celery"
    assert publish.attributes["messaging.message.id"] == result.id
    assert publish.attributes["messaging.destination.name"] == worker_app.conf.task_default_queue
    assert publish.end_time is not None

    assert run.name == "testapp.add"
    assert run.kind is OTelSpanKind.CONSUMER
    assert run.context.trace_id == caller.span.get_span_context().trace_id
    assert run.parent.span_id == publish.context.span_id
    assert run.parent.is_remote
    attributes = run.attributes
    assert attributes["agentops.span.kind"] == "celery.task"
    assert attributes[semconv.CELERY_TASK_NAME] == "testapp.add"
    assert attributes[semconv.CELERY_TASK_ROOT_ID] == result.id
    assert attributes[semconv.CELERY_TASK_RETRIES] == 0
    assert attributes[semconv.CELERY_TASK_STATE] == "SUCCESS"
    assert attributes["messaging.destination.name"] == worker_app.conf.task_default_queue
    assert attributes[semconv.CELERY_QUEUE_WAIT_MS] >= 0
    assert json.loads(attributes[semconv.CELERY_TASK_ARGS]) == [2, 3]
    assert json.loads(attributes[semconv.CELERY_TASK_RESULT]) == 5
    assert attributes["agentops.end_state"] == "Success"
    assert run.status.status_code is StatusCode.OK


def test_apply_async_and_send_task_continue_the_callers_trace(worker_app, traced, wait_for):
    """``apply_async`` and ``send_task`` (by name) carry the context just like ``delay``."""
    with agentops.start_trace("caller") as caller:
        by_apply = tasks.add.apply_async((1, 1))
        by_name = worker_app.send_task("testapp.add", (2, 2))
    assert by_apply.get(timeout=DEADLINE) == 2
    assert by_name.get(timeout=DEADLINE) == 4
    trace_id = caller.span.get_span_context().trace_id
    for result in (by_apply, by_name):
        run = run_of(traced, result.id, wait_for)
        assert run.context.trace_id == trace_id
        assert run.parent.span_id == publish_of(traced, result.id).context.span_id


def test_code_inside_the_task_sees_the_task_span_as_current(worker_app, traced, wait_for):
    """Spans the task makes (its LLM calls, its own traces) land under the task span."""
    with agentops.start_trace("caller") as caller:
        result = tasks.with_trace.delay()
    seen = result.get(timeout=DEADLINE)
    run = run_of(traced, result.id, wait_for)
    inner = wait_for(lambda: traced.named("inner-work"), "the trace started inside the task")[0]
    assert seen["trace_id"] == format(caller.span.get_span_context().trace_id, "032x")
    assert inner.parent.span_id == run.context.span_id
    assert inner.context.trace_id == run.context.trace_id


def test_a_task_enqueued_inside_a_task_stays_in_the_trace(worker_app, traced, wait_for):
    """Nested calls: the inner publish is a child of the outer task span, the inner task of that publish."""
    with agentops.start_trace("caller") as caller:
        result = tasks.nested.delay(4)
    outer_seen = result.get(timeout=DEADLINE)
    outer = run_of(traced, result.id, wait_for)
    inner = run_of(traced, outer_seen["child_id"], wait_for)
    inner_publish = publish_of(traced, outer_seen["child_id"])
    assert outer_seen["span_id"] == hexid(outer.context.span_id)
    assert inner_publish.parent.span_id == outer.context.span_id
    assert inner.parent.span_id == inner_publish.context.span_id
    assert inner.attributes[semconv.CELERY_TASK_PARENT_ID] == result.id
    assert inner.attributes[semconv.CELERY_TASK_ROOT_ID] == result.id
    assert {outer.context.trace_id, inner.context.trace_id} == {caller.span.get_span_context().trace_id}


def test_a_task_without_a_caller_starts_its_own_trace_and_the_next_task_does_not_inherit_it(
    worker_app, traced, wait_for
):
    """Beat, a shell, a cron job: no caller, so each run is a new trace, and task N+1 never joins task N's."""
    with agentops.start_trace("caller") as caller:
        first = tasks.add.delay(1, 2)
    first.get(timeout=DEADLINE)
    lonely = [tasks.whoami.delay(), tasks.whoami.delay()]
    seen = [r.get(timeout=DEADLINE) for r in lonely]
    runs = [run_of(traced, r.id, wait_for) for r in lonely]
    caller_trace = caller.span.get_span_context().trace_id
    for run, where in zip(runs, seen, strict=True):
        assert run.parent is None
        assert run.context.trace_id != caller_trace
        assert where["trace_id"] == format(run.context.trace_id, "032x")
    assert runs[0].context.trace_id != runs[1].context.trace_id
    assert not [s for s in traced if s.kind is OTelSpanKind.PRODUCER and s.context.trace_id != caller_trace]


def test_a_failing_task_records_the_exception_with_its_traceback(worker_app, traced, wait_for):
    """A failure: exception event with the traceback, status ERROR, end state Error."""
    with agentops.start_trace("caller"):
        result = tasks.fail.delay("kaput")
    with pytest.raises(ValueError, match="kaput"):
        result.get(timeout=DEADLINE)
    run = run_of(traced, result.id, wait_for)
    assert run.status.status_code is StatusCode.ERROR
    assert "kaput" in run.status.description
    assert run.attributes["agentops.end_state"] == "Error"
    assert run.attributes[semconv.CELERY_TASK_STATE] == "FAILURE"
    (event,) = [e for e in run.events if e.name == "exception"]
    assert event.attributes["exception.type"].endswith("ValueError")
    assert "raise ValueError(message)" in event.attributes["exception.stacktrace"]


def test_each_retry_is_a_span_of_the_same_trace(worker_app, traced, wait_for):
    """Retries: one span per attempt, each attempt's republish under the attempt that retried."""
    with agentops.start_trace("caller") as caller:
        result = tasks.flaky.delay(2)
    assert result.get(timeout=DEADLINE) == 2
    attempts = [run_of(traced, result.id, wait_for, retries=n) for n in range(3)]
    trace_id = caller.span.get_span_context().trace_id
    assert {a.context.trace_id for a in attempts} == {trace_id}
    for n, attempt in enumerate(attempts[:2]):
        assert attempt.attributes[semconv.CELERY_TASK_STATE] == "RETRY"
        (event,) = [e for e in attempt.events if e.name == semconv.CELERY_RETRY_EVENT]
        assert f"attempt {n} failed" in event.attributes[semconv.CELERY_RETRY_REASON]
        # A retried attempt failed: an error span with the exception, marked as retried.
        assert attempt.status.status_code is StatusCode.ERROR
        assert attempt.attributes[semconv.CELERY_TASK_RETRIED] is True
        assert attempt.attributes["error.type"] == "RuntimeError"
        republish = publish_of(traced, result.id, retries=n + 1)
        assert republish.parent.span_id == attempt.context.span_id
        assert attempts[n + 1].parent.span_id == republish.context.span_id
    assert attempts[2].attributes[semconv.CELERY_TASK_STATE] == "SUCCESS"


def test_a_retry_keeps_the_trace_headers_and_the_callers_custom_headers(worker_app, traced, wait_for):
    """The context is written at the top level and in the nested headers, and a retry keeps user headers."""
    with agentops.start_trace("caller"):
        result = tasks.headers_seen.apply_async((True,), headers={"x-custom": "kept"})
    seen = result.get(timeout=DEADLINE)
    final = run_of(traced, result.id, wait_for, retries=1)
    republish = publish_of(traced, result.id, retries=1)
    expected = f"00-{final.context.trace_id:032x}-{republish.context.span_id:016x}-"
    assert seen["retries"] == 1
    assert seen["top"].startswith(expected)
    assert seen["nested"] == seen["top"]
    assert seen["custom"] == "kept"


def test_countdown_is_not_counted_as_queue_wait(worker_app, traced, wait_for):
    """``celery.queue_wait_ms`` is the wait past the countdown, never the countdown itself."""
    with agentops.start_trace("caller"):
        result = tasks.add.apply_async((1, 2), countdown=0.5)
    assert result.get(timeout=DEADLINE) == 3
    run = run_of(traced, result.id, wait_for)
    publish = publish_of(traced, result.id)
    waited_ms = (run.start_time - publish.start_time) / 1e6
    # Counted from publish it would be about waited_ms; counted from the due time, ~500 ms less.
    assert 0 <= run.attributes[semconv.CELERY_QUEUE_WAIT_MS] <= max(0.0, waited_ms - 400)


def test_chain_group_and_chord_are_one_trace(worker_app, traced, wait_for):
    """Canvas: every step of a chain, every member of a group, a chord and its callback join the caller's trace."""
    with agentops.start_trace("caller") as caller:
        chained = chain(tasks.add.s(1, 2), tasks.add.s(3), tasks.add.s(4)).delay()
        grouped = group(tasks.add.s(i, i) for i in range(3)).delay()
        chorded = chord(tasks.add.s(i, 1) for i in range(3))(tasks.tsum.s())
    assert chained.get(timeout=DEADLINE) == 10
    assert grouped.get(timeout=DEADLINE) == [0, 2, 4]
    assert chorded.get(timeout=DEADLINE) == 6
    trace_id = caller.span.get_span_context().trace_id
    callback = run_of(traced, chorded.id, wait_for)
    assert callback.name == "testapp.tsum"
    wait_for(lambda: len(traced.named("testapp.add")) >= 9, "the chain, group and chord header tasks")
    runs = [s for s in traced if s.kind is OTelSpanKind.CONSUMER]
    assert {s.context.trace_id for s in runs} == {trace_id}
    by_id = {s.context.span_id: s for s in traced}
    for run in runs:
        publish = by_id[run.parent.span_id]
        assert publish.kind is OTelSpanKind.PRODUCER
        assert publish.attributes[semconv.CELERY_TASK_ID] == run.attributes[semconv.CELERY_TASK_ID]
        assert publish.parent.span_id in by_id  # the caller or a task span
    # Chain steps 2 and 3 are published by the step before them.
    step_ids = []
    node = chained
    while node is not None:
        step_ids.append(node.id)
        node = node.parent
    first, second, third = [run_of(traced, i, wait_for) for i in reversed(step_ids)]
    assert publish_of(traced, second.attributes[semconv.CELERY_TASK_ID]).parent.span_id == first.context.span_id
    assert publish_of(traced, third.attributes[semconv.CELERY_TASK_ID]).parent.span_id == second.context.span_id
    members = [run_of(traced, r.id, wait_for) for r in grouped.results]
    assert len({m.attributes[semconv.CELERY_TASK_GROUP] for m in members}) == 1
    header_span_ids = {run_of(traced, r.id, wait_for).context.span_id for r in chorded.parent.results}
    assert publish_of(traced, chorded.id).parent.span_id in header_span_ids


def test_fan_out_per_call_starts_a_new_trace_linked_to_the_caller(worker_app, traced, wait_for):
    """``headers={"agentops_new_trace": True}``: the task is the root of a new trace with a link back."""
    with agentops.start_trace("caller") as caller:
        result = tasks.whoami.apply_async(headers={cs.HEADER_NEW_TRACE: True})
    seen = result.get(timeout=DEADLINE)
    run = run_of(traced, result.id, wait_for)
    publish = publish_of(traced, result.id)
    assert run.parent is None
    assert run.context.trace_id != caller.span.get_span_context().trace_id
    assert seen["trace_id"] == format(run.context.trace_id, "032x")
    (link,) = run.links
    assert link.context.span_id == publish.context.span_id
    assert link.context.trace_id == caller.span.get_span_context().trace_id
    # The caller's trace must not wait for a task that runs elsewhere (see the admin's "never ran").
    assert publish.attributes[semconv.CELERY_NEW_TRACE] is True


def test_fan_out_per_task_starts_a_new_trace_linked_to_the_caller(worker_app, traced, wait_for):
    """``@app.task(agentops_new_trace=True)``: every call of the task starts a new, linked trace."""
    with agentops.start_trace("caller") as caller:
        results = group(tasks.fan_out_child.s(i) for i in range(3)).delay()
    results.get(timeout=DEADLINE)
    runs = [run_of(traced, r.id, wait_for) for r in results.results]
    caller_trace = caller.span.get_span_context().trace_id
    assert len({r.context.trace_id for r in runs} | {caller_trace}) == 4
    for run in runs:
        assert run.parent is None
        assert [link.context.trace_id for link in run.links] == [caller_trace]
    assert all(publish_of(traced, r.id).attributes[semconv.CELERY_NEW_TRACE] is True for r in results.results)


def test_retries_of_a_new_trace_task_stay_in_the_new_trace(worker_app, traced, wait_for):
    """The fan-out header travels with the retry's message, but the next attempt joins the trace the first started."""
    with agentops.start_trace("caller") as caller:
        result = tasks.flaky.apply_async((1,), headers={cs.HEADER_NEW_TRACE: True})
    assert result.get(timeout=DEADLINE) == 1
    first, second = (run_of(traced, result.id, wait_for, retries=n) for n in range(2))
    assert first.parent is None
    assert first.context.trace_id != caller.span.get_span_context().trace_id
    assert second.context.trace_id == first.context.trace_id
    assert publish_of(traced, result.id, retries=1).parent.span_id == first.context.span_id


def test_every_beat_run_is_a_new_trace(worker_app, traced, wait_for):
    """Celery beat publishes with no caller: each run of a periodic task is the root of its own trace."""
    from celery.beat import ScheduleEntry, Scheduler

    scheduler = Scheduler(worker_app, lazy=True)
    entry = ScheduleEntry(name="every-minute", task="testapp.whoami", schedule=60.0, app=worker_app)
    results = [scheduler.apply_async(entry) for _ in range(2)]
    seen = [r.get(timeout=DEADLINE) for r in results]
    runs = [run_of(traced, r.id, wait_for) for r in results]
    assert [run.parent for run in runs] == [None, None]
    assert runs[0].context.trace_id != runs[1].context.trace_id
    assert [s["trace_id"] for s in seen] == [format(run.context.trace_id, "032x") for run in runs]
