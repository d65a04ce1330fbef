"""SIGTERM to a web or worker process writes what it has queued before it exits, within a bounded time."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.faults import harness

pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.redis]

REQUEST_SPANS = 5  # request, 3 tools, publish
TASK_SPANS = 2  # task, 1 tool


def test_sigterm_flushes_the_last_requests_and_tasks_and_stores_the_counters(
    stack: Callable[..., Any], fault_log: Callable[..., None]
) -> None:
    """The spans of the last requests and tasks before SIGTERM are in the database after the exit.

    The writers batch for 10 s here, so nothing would be written before the
    signal without the shutdown flush; each process also stores its counters
    (WriterStats), and they add up to the rows.
    """
    s = stack(agentops={"BATCH_INTERVAL": 10.0})
    web, port = s.web(workers=2)
    worker = s.worker(concurrency=2)
    items = []
    for _ in range(20):
        status, body = harness.http_get(port, "/work/?n=3&tasks=1")
        assert status == 200
        items.append(json.loads(body))
    for item in items:
        s.celery.AsyncResult(item["task_ids"][0]).get(timeout=60)
    rows_before = s.span_count()

    started = time.monotonic()
    web.signal(15)
    worker.signal(15)
    web_code = web.wait(45)
    worker_code = worker.wait(45)
    took = time.monotonic() - started
    traces = {item["trace_id"] for item in items}
    rows = s.span_count(traces)
    stats = s.writer_stats()
    fault_log(
        fault="SIGTERM to gunicorn (2 workers) + celery prefork (2) right after 20 requests/tasks, BATCH_INTERVAL 10 s",
        rows_before_sigterm=rows_before,
        rows_after=rows,
        expected=20 * (REQUEST_SPANS + TASK_SPANS),
        exit_s=round(took, 1),
        exit_codes=(web_code, worker_code),
        writer_stats=stats,
    )
    assert web_code is not None and worker_code is not None, "a process did not exit within 45 s of SIGTERM"
    assert rows == 20 * (REQUEST_SPANS + TASK_SPANS), "spans queued at SIGTERM were lost"
    assert sum(row[2] for row in stats) == 0, "spans were dropped at shutdown"
    assert sum(row[1] for row in stats) == s.span_count(), "the stored counters do not add up to the rows"
