"""Celery signal handlers without a broker: eager tasks, header parsing, unpaired signals, lost publishes."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from celery import signals
from celery.app.task import Context as RequestContext
from opentelemetry import context as context_api
from opentelemetry import trace as trace_api
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind as OTelSpanKind
from opentelemetry.trace import StatusCode

import agentops
from agentops import semconv
from agentops_django import celery as cs
from agentops_django.celery import _headers, _publish, _state
from tests.agentops_django.celery_fixtures import traced
from tests.testapp import tasks

__all__ = ["traced"]

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.fixture
def eager() -> Iterator[Any]:
    """The test project's app with ``task_always_eager`` on."""
    from tests.celery_app import app

    app.set_current()
    app.conf.update(task_always_eager=True, task_eager_propagates=False)
    try:
        yield app
    finally:
        app.conf.update(task_always_eager=False, task_eager_propagates=False)


def consumer_spans(spans: list[Any]) -> list[Any]:
    return [s for s in spans if s.kind is OTelSpanKind.CONSUMER]


# --- task_always_eager -------------------------------------------------------------
def test_an_eager_task_is_a_child_of_the_current_span(eager, traced):
    """With ``task_always_eager`` (no publish) the task span's parent is the caller's current span."""
    with agentops.start_trace("caller") as caller:
        result = tasks.add.delay(2, 2)
        assert trace_api.get_current_span() is caller.span
    assert result.get() == 4
    run = traced.one("testapp.add")
    assert run.parent.span_id == caller.span.get_span_context().span_id
    assert run.attributes[semconv.CELERY_TASK_EAGER] is True
    assert run.attributes[semconv.CELERY_TASK_STATE] == "SUCCESS"
    assert not [s for s in traced if s.kind is OTelSpanKind.PRODUCER]


def test_eager_tasks_nest_and_restore_the_callers_context(eager, traced):
    """An eager task that calls another: the inner is a child of the outer, the caller's span is current after."""
    with agentops.start_trace("caller") as caller:
        seen = tasks.nested.delay(1).get()
        assert trace_api.get_current_span() is caller.span
    outer = traced.one("testapp.nested")
    inner = traced.one("testapp.add")
    assert seen["span_id"] == format(outer.context.span_id, "016x")
    assert inner.parent.span_id == outer.context.span_id
    assert outer.parent.span_id == caller.span.get_span_context().span_id


def test_an_eager_failure_is_recorded_whether_or_not_it_propagates(eager, traced):
    """``task_eager_propagates`` on or off, the failing task's span is an error with the exception."""
    with agentops.start_trace("caller"):
        tasks.fail.delay("quiet")
        eager.conf.task_eager_propagates = True
        with pytest.raises(ValueError, match="loud"):
            tasks.fail.delay("loud")
    runs = traced.named("testapp.fail")
    assert len(runs) == 2
    for run, message in zip(runs, ("quiet", "loud"), strict=True):
        assert run.status.status_code is StatusCode.ERROR
        assert run.attributes["agentops.end_state"] == "Error"
        (event,) = [e for e in run.events if e.name == "exception"]
        assert event.attributes["exception.message"] == message
        assert "raise ValueError(message)" in event.attributes["exception.stacktrace"]


def test_eager_retries_are_attempts_of_one_trace(eager, traced):
    """An eager task that retries: one span per attempt, all under the caller."""
    with agentops.start_trace("caller") as caller:
        assert tasks.flaky.delay(2).get() == 2
    runs = traced.named("testapp.flaky")
    assert [r.attributes[semconv.CELERY_TASK_RETRIES] for r in runs] == [0, 1, 2]
    assert {r.context.trace_id for r in runs} == {caller.span.get_span_context().trace_id}
    assert [r.attributes[semconv.CELERY_TASK_STATE] for r in runs] == ["RETRY", "RETRY", "SUCCESS"]


def test_an_eager_call_can_ask_for_a_new_trace(eager, traced):
    """The per-call fan-out header works for eager tasks too: a new root linked to the current span."""
    with agentops.start_trace("caller") as caller:
        tasks.add.apply_async((1, 1), headers={cs.HEADER_NEW_TRACE: "true"})
    run = traced.one("testapp.add")
    assert run.parent is None
    assert run.context.trace_id != caller.span.get_span_context().trace_id
    assert [link.context.span_id for link in run.links] == [caller.span.get_span_context().span_id]


def test_task_arguments_and_results_are_redacted(eager, traced):
    """Arguments and results are recorded as JSON with secrets masked."""
    tasks.secret.delay(api_key="sk-live", value=3)
    run = traced.one("testapp.secret")
    assert "sk-live" not in run.attributes[semconv.CELERY_TASK_KWARGS]
    assert "hunter2" not in run.attributes[semconv.CELERY_TASK_RESULT]
    assert '"value":3' in run.attributes[semconv.CELERY_TASK_RESULT]


def test_no_content_is_recorded_when_capture_is_off(eager, agentops_init):
    """``capture_content=False``: no arguments or results on the task span."""
    agentops_init(capture_content=False)
    cs.connect()
    with agentops.testing.captured_spans() as spans:
        tasks.add.delay(1, 2)
    attributes = spans.one("testapp.add").attributes
    assert semconv.CELERY_TASK_ARGS not in attributes
    assert semconv.CELERY_TASK_RESULT not in attributes


def test_tasks_run_untouched_before_agentops_is_initialised(eager):
    """The handlers connected but agentops never initialised: tasks work and nothing is recorded."""
    cs.connect()
    assert tasks.add.delay(2, 5).get() == 7
    assert trace_api.get_current_span() is trace_api.INVALID_SPAN


# --- reading the context from task.request --------------------------------------
def caller_of(request: RequestContext) -> trace_api.SpanContext:
    ctx = _headers._propagator.extract(request, context=Context(), getter=_headers._getter)
    return trace_api.get_current_span(ctx).get_span_context()


@pytest.mark.parametrize(
    "request_fields",
    [
        pytest.param({"traceparent": TRACEPARENT}, id="top-level"),
        pytest.param({"headers": {"traceparent": TRACEPARENT}}, id="nested"),
        pytest.param({"traceparent": TRACEPARENT.encode()}, id="bytes"),
        pytest.param({"traceparent": [TRACEPARENT]}, id="list"),
        pytest.param({"headers": {"traceparent": (TRACEPARENT.encode(),)}}, id="nested-tuple-of-bytes"),
    ],
)
def test_the_callers_context_is_read_from_any_header_shape(request_fields):
    """Brokers and Celery versions deliver headers as str, bytes or lists, top level or nested."""
    found = caller_of(RequestContext({"id": "t", **request_fields}))
    assert found.is_valid
    assert format(found.trace_id, "032x") == "0af7651916cd43dd8448eb211c80319c"
    assert found.is_remote


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("garbage", id="malformed"),
        pytest.param(12345, id="number"),
        pytest.param(b"\xff\xfe", id="undecodable-bytes"),
        pytest.param([], id="empty-list"),
        pytest.param("00-00000000000000000000000000000000-b7ad6b7169203331-01", id="zero-trace-id"),
    ],
)
def test_a_malformed_header_gives_no_caller(value):
    """Anything that is not a valid traceparent means no caller, never an error."""
    assert not caller_of(RequestContext({"id": "t", "traceparent": value})).is_valid


def test_a_task_with_a_malformed_header_starts_a_fresh_trace(traced):
    """The worker side: a malformed traceparent makes the task the root of its own trace."""
    task = tasks.add._get_current_object()
    task.push_request(id="m1", traceparent="00-zz-zz-01", delivery_info={}, called_directly=False)
    try:
        signals.task_prerun.send(sender=task, task_id="m1", task=task, args=(1, 2), kwargs={})
        signals.task_postrun.send(
            sender=task, task_id="m1", task=task, args=(1, 2), kwargs={}, retval=3, state="SUCCESS"
        )
    finally:
        task.pop_request()
    run = traced.one("testapp.add")
    assert run.parent is None
    assert run.attributes[semconv.CELERY_TASK_STATE] == "SUCCESS"


# --- signals that do not come in pairs ------------------------------------------------
def run_signals(task: Any, task_id: str, traceparent: str | None, *, postrun: bool) -> None:
    fields = {"id": task_id, "delivery_info": {"routing_key": "q"}}
    if traceparent:
        fields["traceparent"] = traceparent
    task.push_request(called_directly=False, **fields)
    try:
        signals.task_prerun.send(sender=task, task_id=task_id, task=task, args=(), kwargs={})
        if postrun:
            signals.task_postrun.send(
                sender=task, task_id=task_id, task=task, args=(), kwargs={}, retval=1, state="SUCCESS"
            )
    finally:
        task.pop_request()


def test_a_task_never_inherits_the_context_of_a_task_whose_postrun_never_came(traced):
    """Task N's postrun lost: task N+1 is not its child, N's span is ended as lost, no context leaks."""
    task = tasks.whoami._get_current_object()
    before = context_api.get_current()
    run_signals(task, "n", TRACEPARENT, postrun=False)
    assert trace_api.get_current_span().is_recording()  # task N's span is current, as it should be mid-task
    run_signals(task, "n-plus-1", None, postrun=True)
    lost, nxt = traced.named("testapp.whoami")
    assert lost.attributes[semconv.CELERY_TASK_ID] == "n"
    assert lost.attributes[semconv.CELERY_TASK_STATE] == "LOST"
    assert lost.attributes["agentops.end_state"] == "Indeterminate"
    assert nxt.attributes[semconv.CELERY_TASK_ID] == "n-plus-1"
    assert nxt.parent is None
    assert nxt.context.trace_id != lost.context.trace_id
    assert context_api.get_current() == before


def test_an_eager_task_whose_postrun_never_came_is_ended_with_its_caller_task(traced):
    """Nested eager tasks: the outer task's end also ends an inner one left open, and restores the context."""
    outer, inner = tasks.nested._get_current_object(), tasks.add._get_current_object()
    before = context_api.get_current()
    outer.push_request(id="outer", is_eager=True, called_directly=False)
    signals.task_prerun.send(sender=outer, task_id="outer", task=outer, args=(), kwargs={})
    inner.push_request(id="inner", is_eager=True, called_directly=False)
    signals.task_prerun.send(sender=inner, task_id="inner", task=inner, args=(), kwargs={})
    inner.pop_request()
    signals.task_postrun.send(sender=outer, task_id="outer", task=outer, args=(), kwargs={}, retval=1, state="SUCCESS")
    outer.pop_request()
    lost = traced.one("testapp.add")
    assert lost.attributes[semconv.CELERY_TASK_STATE] == "LOST"
    assert traced.one("testapp.nested").attributes[semconv.CELERY_TASK_STATE] == "SUCCESS"
    assert context_api.get_current() == before
    cs.close_open_spans()
    assert len(traced) == 2  # nothing else was left open


def test_a_postrun_without_a_prerun_is_ignored(traced):
    """A postrun whose prerun never came (handlers connected mid-task) records nothing and raises nothing."""
    task = tasks.whoami._get_current_object()
    task.push_request(id="orphan", called_directly=False)
    try:
        signals.task_postrun.send(
            sender=task, task_id="orphan", task=task, args=(), kwargs={}, retval=1, state="SUCCESS"
        )
        signals.task_failure.send(sender=task, task_id="orphan", exception=ValueError("x"), einfo=None)
    finally:
        task.pop_request()
    assert traced.named("testapp.whoami") == []


def test_a_publish_that_fails_still_ends_its_span(traced, monkeypatch):
    """The broker refuses the message (no ``after_task_publish``): the producer span is ended later, as an error."""
    from celery import Celery

    dead = Celery("dead", broker="redis://127.0.0.1:1/0", set_as_current=False)
    dead.conf.broker_connection_retry = False
    dead.conf.broker_transport_options = {"max_retries": 0}

    def refused_publish() -> None:
        with agentops.start_trace("caller"), pytest.raises(Exception):  # noqa: B017 - whatever kombu raises
            dead.send_task("testapp.add", (1, 2), retry=False)

    refused_publish()
    assert traced.named("publish testapp.add") == []
    # The next publish in the same thread ends it.
    refused_publish()
    (span,) = traced.named("publish testapp.add")
    assert span.status.status_code is StatusCode.ERROR
    # Another thread's publishes end it once it is older than the timeout.
    monkeypatch.setattr(_publish, "PENDING_PUBLISH_TIMEOUT", 0.0)
    monkeypatch.setattr(_state._registry, "next_sweep", 0.0)
    worker = threading.Thread(target=refused_publish)
    worker.start()
    worker.join()
    assert len(traced.named("publish testapp.add")) == 2
    # And a worker child ends whatever is still pending before it exits.
    signals.worker_process_shutdown.send(sender=None, pid=0, exitcode=0)
    assert len(traced.named("publish testapp.add")) == 3


def test_a_worker_child_closes_open_spans_before_it_exits(traced):
    """``worker_process_shutdown`` ends what is still open (a task killed mid-run) and flushes."""
    task = tasks.whoami._get_current_object()
    run_signals(task, "killed", TRACEPARENT, postrun=False)
    signals.worker_process_shutdown.send(sender=None, pid=0, exitcode=0)
    (span,) = traced.named("testapp.whoami")
    assert span.attributes[semconv.CELERY_TASK_STATE] == "LOST"
    assert trace_api.get_current_span() is trace_api.INVALID_SPAN


def test_a_process_that_exits_after_a_refused_publish_still_exports_its_span(tmp_path):
    """A web process whose last publish raised: the producer span is ended and exported when it exits."""
    import subprocess
    import sys
    from pathlib import Path

    script = tmp_path / "refused.py"
    script.write_text(
        "import agentops\n"
        "from celery import Celery\n"
        "from agentops_django import celery as celery_signals\n"
        "agentops.init(auto_start_session=False, instrument_llm_calls=False, exporters=['console'])\n"
        "celery_signals.connect()\n"
        "app = Celery('dead', broker='redis://127.0.0.1:1/0', set_as_current=False)\n"
        "app.conf.broker_connection_retry = False\n"
        "app.conf.broker_transport_options = {'max_retries': 0}\n"
        "with agentops.start_trace('caller'):\n"
        "    try:\n"
        "        app.send_task('testapp.add', (1, 2), retry=False)\n"
        "    except Exception:\n"
        "        pass\n"
    )
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, str(script)], cwd=root, capture_output=True, text=True, timeout=60, check=True
    )
    assert '"name": "publish testapp.add"' in done.stdout
    assert '"status_code": "ERROR"' in done.stdout


def test_a_trace_left_open_inside_a_task_ends_with_the_task(eager, traced):
    """Like a view's, a task's forgotten trace is ended (Indeterminate) and not kept by a long-lived worker."""
    trace_id = tasks.forgets_a_trace.delay().get()
    assert agentops.active_traces() == []
    inside = traced.one("inside-task")
    assert format(inside.context.trace_id, "032x") == trace_id
    assert inside.attributes["agentops.end_state"] == "Indeterminate"
    run = traced.one("testapp.forgets_a_trace")
    assert inside.end_time <= run.end_time


def test_turning_tracing_off_at_run_time_stops_task_spans(eager, traced, settings):
    """``AGENTOPS["ENABLED"] = False`` set at run time (``override_settings``) stops Celery spans too."""
    settings.AGENTOPS = {**settings.AGENTOPS, "ENABLED": False}
    with agentops.start_trace("caller"):
        assert tasks.add.delay(1, 1).get() == 2
    assert traced.named("testapp.add") == []
    assert not [s for s in traced if s.kind is OTelSpanKind.PRODUCER]
