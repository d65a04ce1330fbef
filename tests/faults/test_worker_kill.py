"""A prefork child killed mid-task, and children recycled by ``max_tasks_per_child``: nothing finished is lost.

* SIGKILL: the spans the child finished before it died (and that a batch
  interval had time to pass for) are in the database; the killed task is not
  shown as a success; its trace exists and stays ``Indeterminate`` (its task
  span never ended, so the root never arrives).
* Recycling: a child that exits after its ``max_tasks_per_child`` writes its
  queue first, even when the writer's batch interval has not passed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.faults import harness

pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.redis]


def enqueue(port: int, name: str, args: list[Any], new_trace: bool = False) -> dict[str, Any]:
    path = f"/enqueue/?name={name}&args={json.dumps(args)}" + ("&new_trace=1" if new_trace else "")
    status, body = harness.http_get(port, path.replace(" ", ""))
    assert status == 200, body[:300]
    return json.loads(body)


def trace_row(s: Any, trace_id: str) -> tuple[Any, ...] | None:
    rows = s.sql("SELECT status, span_count, name FROM agentops_django_trace WHERE trace_id = %s", [trace_id])
    return rows[0] if rows else None


@pytest.mark.parametrize("new_trace", [False, True], ids=["child-of-request", "own-trace"])
def test_sigkill_of_a_prefork_child_mid_task_keeps_finished_spans_and_never_shows_success(
    stack: Callable[..., Any], fault_log: Callable[..., None], new_trace: bool
) -> None:
    s = stack()
    _, port = s.web()
    worker = s.worker(concurrency=1)
    harness.wait_for(lambda: worker.children(), "the prefork child")
    sent = enqueue(port, "faults.suicide", [3], new_trace=new_trace)
    result = s.celery.AsyncResult(sent["task_id"])
    harness.wait_for(lambda: result.ready(), "the parent to report the killed task", 60)
    state = result.state

    # The task's own trace: the request's, or (new_trace) the one the task started.
    def tool_rows() -> list[tuple[Any, ...]]:
        return s.sql("SELECT trace_id, parent_span_id FROM agentops_django_span WHERE name LIKE 'step-%%.tool'")

    try:
        harness.wait_for(lambda: len(tool_rows()) == 3, "the 3 spans the child finished before it died", 20)
    except AssertionError:
        pass
    tools = tool_rows()
    task_trace = tools[0][0] if tools else None
    task_spans = s.sql(
        "SELECT status, attributes::text FROM agentops_django_span "
        "WHERE name = 'faults.suicide' AND kind = 'celery.task'"
    )
    publish = s.sql("SELECT trace_id FROM agentops_django_span WHERE kind = 'publish'")
    request_trace = trace_row(s, sent["trace_id"])
    own_trace = trace_row(s, task_trace) if task_trace else None
    fault_log(
        fault=f"SIGKILL of the prefork child mid-task ({'own trace' if new_trace else 'child of the request'})",
        celery_state=state,
        tool_spans_stored=len(tools),
        task_span_rows=task_spans,
        publish_rows=len(publish),
        request_trace=request_trace,
        task_trace=own_trace,
        worker_alive=worker.alive(),
    )
    assert state == "FAILURE", "Celery itself should report the lost task"
    assert worker.alive(), "the worker died with its child"
    assert len(publish) == 1, "the publish span (the proof the task was sent) is missing"
    assert all(status != "OK" for status, _ in task_spans), "the killed task is stored as a success"
    assert len(tools) == 3, "spans finished in the child before it was killed were lost"
    if new_trace:
        assert own_trace is not None and own_trace[0] == "Indeterminate", own_trace
    else:
        assert task_trace == sent["trace_id"]


def test_max_tasks_per_child_recycling_writes_each_childs_queue_before_it_exits(
    stack: Callable[..., Any], fault_log: Callable[..., None]
) -> None:
    """Children exit after 2 tasks each; a 10 s batch interval means only their exit flush can write in time."""
    s = stack(agentops={"BATCH_INTERVAL": 10.0}, celery={"worker_max_tasks_per_child": 2})
    worker = s.worker(concurrency=1)
    first_child = harness.wait_for(lambda: worker.children(), "the prefork child")[0]
    ids = []
    for _ in range(6):
        ids.append(s.celery.send_task("faults.work", args=[1]).id)
    results = [s.celery.AsyncResult(task_id).get(timeout=60) for task_id in ids]
    pids = sorted({r["pid"] for r in results})
    traces = {r["trace_id"] for r in results}
    started = time.monotonic()
    try:
        harness.wait_for(lambda: s.span_count(traces) == 12, "the spans of recycled children", 8)
    except AssertionError:
        pass
    stored = s.span_count(traces)
    stats = s.writer_stats()
    fault_log(
        fault="worker_max_tasks_per_child=2, 6 tasks, BATCH_INTERVAL 10 s",
        child_pids=pids,
        first_child=first_child,
        stored=stored,
        expected=12,
        waited_s=round(time.monotonic() - started, 1),
        writer_stats=stats,
    )
    assert len(pids) >= 3, "the children were not recycled"
    assert stored >= 8, "recycled children lost the spans they had queued"
    assert {row[0] for row in stats} >= set(pids[:2]), "a recycled child did not store its counters"
