"""The database goes down while a real gunicorn web process and a real Celery worker serve traffic.

The host app must not notice: every request answers normally and every task
returns its normal result while the private PostgreSQL is stopped. After it
starts again, what was queued meanwhile is written (the queue bound is far
above this test's volume), nothing is lost without being counted, threads do
not grow, and both processes exit promptly on SIGTERM.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.faults import harness

pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.redis]

#: Spans one /work/?n=3&tasks=1 request creates: the request, 3 tool spans, the publish span.
REQUEST_SPANS = 5
#: Spans of one faults.work(1) task: the task span and one tool span.
TASK_SPANS = 2


def get_json(port: int, path: str) -> dict[str, Any]:
    status, body = harness.http_get(port, path)
    assert status == 200, body[:500]
    return json.loads(body)


def test_requests_and_tasks_succeed_while_the_database_is_down_and_spans_arrive_after_recovery(
    stack: Callable[..., Any], fault_log: Callable[..., None]
) -> None:
    s = stack()
    web, port = s.web()
    worker = s.worker(concurrency=2)

    # Before: the pipeline works end to end.
    warm = [get_json(port, "/work/?n=3&tasks=1") for _ in range(3)]
    for item in warm:
        assert s.celery.AsyncResult(item["task_ids"][0]).get(timeout=60)["trace_id"] == item["trace_id"]
    warm_traces = {item["trace_id"] for item in warm}
    harness.wait_for(
        lambda: s.span_count(warm_traces) == 3 * (REQUEST_SPANS + TASK_SPANS), "the warm-up spans in the database"
    )
    web_pid = harness.wait_for(lambda: web.children() and web.children()[0], "gunicorn's worker")
    worker_children = harness.wait_for(lambda: worker.children(), "the prefork children")
    watched = [web_pid, *worker_children]
    threads_before = {pid: harness.thread_count(pid) for pid in watched}
    rss_before = {pid: harness.rss_kib(pid) for pid in watched}

    # The outage: the private cluster is cut at once, as in a crash.
    s.pg.stop("immediate")
    down_at = time.monotonic()
    during = []
    peak_threads = dict(threads_before)
    for _ in range(40):
        item = get_json(port, "/work/?n=3&tasks=1")
        during.append(item)
        for pid in watched:
            peak_threads[pid] = max(peak_threads[pid], harness.thread_count(pid))
        time.sleep(0.1)
    results = [s.celery.AsyncResult(item["task_ids"][0]).get(timeout=60) for item in during]
    assert [r["trace_id"] for r in results] == [item["trace_id"] for item in during], "a task lost its trace"
    # Stay down a little longer than one batch's retries.
    while time.monotonic() - down_at < 8:
        time.sleep(0.2)
    rss_down = {pid: harness.rss_kib(pid) for pid in watched}
    s.pg.start()
    up_at = time.monotonic()

    after = [get_json(port, "/work/?n=3&tasks=1") for _ in range(3)]
    for item in after:
        s.celery.AsyncResult(item["task_ids"][0]).get(timeout=60)
    after_traces = {item["trace_id"] for item in after}
    harness.wait_for(
        lambda: s.span_count(after_traces) == 3 * (REQUEST_SPANS + TASK_SPANS),
        "the spans of requests after recovery",
        90,
    )
    recovered_at = time.monotonic()
    during_traces = {item["trace_id"] for item in during}
    written_during = s.span_count(during_traces)

    # Shutdown: both processes exit promptly and store their counters.
    web.signal(15)
    worker.signal(15)
    web_code = web.wait(40)
    worker_code = worker.wait(40)
    stats = s.writer_stats()
    created = (3 + len(during) + 3) * (REQUEST_SPANS + TASK_SPANS)
    written = sum(row[1] for row in stats)
    dropped = sum(row[2] for row in stats)
    fault_log(
        fault="private PostgreSQL stopped (immediate) ~8 s; gunicorn (1 worker) + celery prefork (2)",
        requests_ok=len(during),
        tasks_ok=len(results),
        created=created,
        rows=s.span_count(),
        stats_written=written,
        stats_dropped=dropped,
        writer_stats=stats,
        written_during=written_during,
        expected_during=len(during) * (REQUEST_SPANS + TASK_SPANS),
        recover_s=round(recovered_at - up_at, 1),
        threads_before=threads_before,
        threads_peak=peak_threads,
        rss_before=rss_before,
        rss_down=rss_down,
        exit_codes=(web_code, worker_code),
    )
    for pid in watched:
        assert peak_threads[pid] <= threads_before[pid] + 1, f"threads of {pid} grew while the database was down"
        # Generous: 40 requests' spans are a few hundred KiB at most.
        assert rss_down[pid] - rss_before[pid] < 50_000, f"memory of {pid} grew while the database was down"
    assert web_code is not None, "gunicorn did not exit within 40 s of SIGTERM"
    assert worker_code is not None, "the Celery worker did not exit within 40 s of SIGTERM"
    assert s.span_count() == written, "the rows stored differ from the processes' written counters"
    assert written + dropped == created, "spans were lost without being counted as dropped"
    assert written_during == len(during) * (REQUEST_SPANS + TASK_SPANS), (
        "spans queued during the outage were dropped although the queue had room for them"
    )


def test_sigterm_while_the_database_is_down_exits_within_the_shutdown_deadline(
    stack: Callable[..., Any], fault_log: Callable[..., None]
) -> None:
    """A web or worker process told to stop during an outage exits in bounded time, its queue dropped."""
    s = stack()
    web, port = s.web()
    worker = s.worker(concurrency=2)
    first = get_json(port, "/work/?n=3&tasks=1")
    s.celery.AsyncResult(first["task_ids"][0]).get(timeout=60)
    s.pg.stop("immediate")
    try:
        items = [get_json(port, "/work/?n=3&tasks=1") for _ in range(10)]
        for item in items:
            s.celery.AsyncResult(item["task_ids"][0]).get(timeout=60)
        started = time.monotonic()
        web.signal(15)
        worker.signal(15)
        codes = (web.wait(60), worker.wait(60))
        took = time.monotonic() - started
    finally:
        s.pg.start()
    fault_log(fault="SIGTERM to gunicorn + celery prefork while PostgreSQL is down", exit_s=round(took, 1), codes=codes)
    assert None not in codes, "a process hung on exit while the database was down"
