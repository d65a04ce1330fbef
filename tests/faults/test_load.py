"""A bounded load test: 2,000 requests from a second process against gunicorn (2 workers) and a real worker.

It prints requests served, tasks run, spans created, written and dropped,
and the peak memory of every process, and checks that every span was either
written or counted as dropped (the per-process WriterStats rows, stored at
each process's exit). The writers' queue is kept small (200) so that drops
happen and their counting is tested too.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.faults import harness

pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.redis]

REQUESTS = 2_000
PATH = "/work/?n=3&tasks=1&task_n=2"
REQUEST_SPANS = 1 + 3 + 1  # request, tools, publish
TASK_SPANS = 1 + 2  # task, tools


def test_load_every_span_is_written_or_counted_as_dropped(
    stack: Callable[..., Any], procs: Callable[..., Any], workdir: Path, fault_log: Callable[..., None]
) -> None:
    s = stack(agentops={"QUEUE_SIZE": 200, "BATCH_SIZE": 100, "BATCH_INTERVAL": 0.2})
    web, port = s.web(workers=2)
    worker = s.worker(concurrency=2)
    harness.wait_for(lambda: len(worker.children()) == 2 and len(web.children()) == 2, "the web and worker children")
    out = workdir / "load.json"
    client = procs(
        "raw",
        [sys.executable, "-m", "tests.faults.loadclient", str(port), str(REQUESTS), "8", PATH, str(out)],
        {},
        "loadclient",
    )
    code = client.wait(600)
    assert code == 0, client.output()
    summary = json.loads(out.read_text())
    results = [s.celery.AsyncResult(task_id) for task_id in summary["task_ids"]]
    for result in results:
        result.get(timeout=300)
    children = {"web": web.children(), "worker": worker.children()}
    peaks = {f"{kind}:{pid}": harness.hwm_kib(pid) for kind, pids in children.items() for pid in pids}
    web.signal(15)
    worker.signal(15)
    exits = (web.wait(60), worker.wait(60))
    stats = s.writer_stats()
    created = summary["served"] * REQUEST_SPANS + len(results) * TASK_SPANS
    written = sum(row[1] for row in stats)
    dropped = sum(row[2] for row in stats)
    rows = s.span_count()
    figures = {
        "requests_served": summary["served"],
        "requests_failed": summary["failed_count"],
        "tasks_run": len(results),
        "spans_created": created,
        "spans_written": written,
        "spans_dropped": dropped,
        "span_rows": rows,
        "client_seconds": summary["seconds"],
        "peak_rss_kib": {**peaks, "loadclient": summary["peak_rss_kib"]},
        "writer_stats": stats,
        "exit_codes": exits,
    }
    print("LOAD", json.dumps(figures, indent=1))
    fault_log(
        fault="load: 2,000 requests (8 threads, 2nd process), gunicorn 2 workers, prefork 2, QUEUE_SIZE 200", **figures
    )
    assert summary["served"] == REQUESTS and summary["failed_count"] == 0
    assert None not in exits, "a process did not exit within 60 s of SIGTERM"
    assert rows == written, "rows differ from the written counters"
    assert written + dropped == created, "spans were lost without being counted"
