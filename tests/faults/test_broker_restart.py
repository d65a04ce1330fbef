"""The broker restarts while tasks run: redelivered tasks keep their trace, traces are not duplicated.

A private Redis (with an append-only file, so a clean restart keeps the
queues and the unacknowledged messages) is restarted while a real prefork
worker runs ``acks_late`` tasks published by a real gunicorn process. Tasks
whose acknowledgement was lost run again; every run must land in the trace of
the request that published it, each trace must have one summary row whose
span count matches its span rows, and spans that arrive late still join it.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from tests.faults import harness

pytestmark = [pytest.mark.faults, pytest.mark.slow]

TASKS = 10


def test_redis_broker_restart_mid_run_keeps_every_run_in_its_trace_without_duplicate_traces(
    stack: Callable[..., Any], persistent_redis: harness.PrivateRedis, fault_log: Callable[..., None]
) -> None:
    s = stack(redis=persistent_redis, celery={**ACKS_LATE, "broker_transport_options": {"visibility_timeout": 5}})
    check_restart(s, lambda: persistent_redis.restart(down_for=2.0), "private Redis (AOF) restarted cleanly", fault_log)


def test_rabbitmq_broker_restart_mid_run_keeps_every_run_in_its_trace_without_duplicate_traces(
    stack: Callable[..., Any], private_rabbit: harness.PrivateRabbit, fault_log: Callable[..., None]
) -> None:
    """The same with a private RabbitMQ node whose broker application is stopped and started again."""
    s = stack(broker=private_rabbit.url, celery=ACKS_LATE)
    check_restart(s, lambda: private_rabbit.restart(down_for=2.0), "private RabbitMQ stop_app/start_app", fault_log)


ACKS_LATE = {"task_acks_late": True, "task_reject_on_worker_lost": True}


def check_restart(s: Any, restart: Callable[[], None], what: str, fault_log: Callable[..., None]) -> None:
    _, port = s.web()
    worker = s.worker(concurrency=2)
    harness.wait_for(lambda: len(worker.children()) == 2, "the prefork children")
    sent = []
    for _ in range(TASKS):
        status, body = harness.http_get(port, "/enqueue/?name=faults.work&args=[1,0,0,1.5]")
        assert status == 200, body[:300]
        sent.append(json.loads(body))
    time.sleep(1.0)  # two tasks are running now
    restarted_at = time.monotonic()
    restart()
    results = {}
    deadline = time.monotonic() + 120
    for item in sent:
        result = s.celery.AsyncResult(item["task_id"])
        harness.wait_for(lambda r=result: r.ready(), f"task {item['task_id']}", max(deadline - time.monotonic(), 1))
        results[item["task_id"]] = (result.state, result.result)
    recovered_at = time.monotonic()

    traces = {item["trace_id"] for item in sent}
    by_task = {item["task_id"]: item["trace_id"] for item in sent}

    def task_rows() -> list[tuple[Any, ...]]:
        return s.sql(
            "SELECT trace_id, attributes->>'celery.task.id', status FROM agentops_django_span "
            "WHERE kind = 'celery.task'"
        )

    harness.wait_for(lambda: len(task_rows()) >= TASKS, "every task span in the database", 60)
    time.sleep(1.0)
    runs = task_rows()
    runs_per_task = Counter(task_id for _, task_id, _ in runs)
    wrong_trace = [(task_id, trace) for trace, task_id, _ in runs if by_task.get(task_id) != trace]
    succeeded = {task_id for _, task_id, status in runs if status == "OK"}
    summaries = s.sql(
        "SELECT t.trace_id, count(*) OVER (PARTITION BY t.trace_id), t.span_count, "
        "(SELECT count(*) FROM agentops_django_span sp WHERE sp.trace_id = t.trace_id), t.status "
        "FROM agentops_django_trace t WHERE t.trace_id = ANY(%s)",
        [list(traces)],
    )
    mismatched = [row for row in summaries if row[1] != 1 or row[2] != row[3]]
    fault_log(
        fault=f"{what} mid-run, down 2 s; acks_late; prefork 2",
        task_states=Counter(state for state, _ in results.values()),
        run_statuses=Counter(status for _, _, status in runs),
        runs=len(runs),
        redelivered=sum(1 for n in runs_per_task.values() if n > 1),
        wrong_trace=wrong_trace,
        trace_rows=len(summaries),
        mismatched_summaries=mismatched,
        recover_s=round(recovered_at - restarted_at, 1),
        worker_alive=worker.alive(),
    )
    # Celery may report FAILURE (ConnectionError) for a run whose result could
    # not be stored while Redis was down; the redelivered run then succeeds.
    assert succeeded == set(by_task), "a task has no successful run in the database"
    assert all(
        result["trace_id"] == by_task[task_id] for task_id, (state, result) in results.items() if state == "SUCCESS"
    )
    assert not wrong_trace, "a (re)delivered task ran outside the trace of its publisher"
    assert len(summaries) == TASKS, "a trace has no summary row, or more than one"
    assert not mismatched, "a trace summary's span count differs from its span rows"
