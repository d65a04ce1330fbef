"""Many processes write the same traces at once: every trace summary is exactly right.

* One trace whose spans come from 2 web processes (two gunicorn servers,
  trusting the client's ``traceparent``) and 4 worker processes (a prefork
  worker with 4 children), all at the same time.
* 1,000 traces at once, each a request and a task, from the same processes.

A summary row is right when its span count, error count, token totals, start
and end equal what its span rows say, and equal what the views and tasks were
asked to create.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import pytest

from tests.faults import harness

pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.redis]

SHARED_TRACE = "5ca1ab1e5ca1ab1e5ca1ab1e5ca1ab1e"
CLIENT_SPAN = "c0ffeec0ffeec0ff"

#: /work/ query of the shared-trace requests, and what one such request creates.
SHARED_QUERY = "/work/?n=2&tokens=7&errors=1&tasks=2&task_n=1&task_tokens=5&task_errors=1"
SHARED_PER_REQUEST = {"spans": 1 + 2 + 1 + 1 + 2, "errors": 1, "tokens": 7}
SHARED_PER_TASK = {"spans": 1 + 1 + 1 + 1, "errors": 1, "tokens": 5}


def fire(ports: list[int], count: int, path: str, headers: dict[str, str], threads: int = 8) -> list[dict[str, Any]]:
    """``count`` GETs spread over ``ports`` from ``threads`` client threads; the JSON answers."""
    answers: list[dict[str, Any]] = []
    errors: list[str] = []
    lock = threading.Lock()
    counter = iter(range(count))

    def client() -> None:
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            try:
                status, body = harness.http_get(ports[i % len(ports)], path, headers)
            except OSError as exc:
                with lock:
                    errors.append(repr(exc))
                continue
            with lock:
                if status == 200:
                    answers.append(json.loads(body))
                else:
                    errors.append(f"HTTP {status}: {body[:200]!r}")

    pool = [threading.Thread(target=client) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(300)
    assert not errors, errors[:5]
    return answers


SUMMARY_CHECK = """
SELECT t.trace_id, t.span_count, a.spans, t.error_count, a.errors,
       t.input_tokens, a.input_tokens, t.output_tokens, a.output_tokens,
       t.started_at = a.started_at, t.ended_at = a.ended_at
FROM agentops_django_trace t
JOIN (
    SELECT trace_id, count(*) AS spans,
           count(*) FILTER (WHERE status = 'ERROR') AS errors,
           coalesce(sum(CASE WHEN kind = 'llm' THEN (attributes->>'gen_ai.usage.input_tokens')::bigint END), 0)
               AS input_tokens,
           coalesce(sum(CASE WHEN kind = 'llm' THEN (attributes->>'gen_ai.usage.output_tokens')::bigint END), 0)
               AS output_tokens,
           min(started_at) AS started_at, max(ended_at) AS ended_at
    FROM agentops_django_span GROUP BY trace_id
) a ON a.trace_id = t.trace_id
WHERE t.trace_id = ANY(%s)
"""


def wrong_summaries(s: Any, trace_ids: set[str]) -> tuple[int, list[tuple[Any, ...]]]:
    rows = s.sql(SUMMARY_CHECK, [list(trace_ids)])
    wrong = [r for r in rows if r[1] != r[2] or r[3] != r[4] or r[5] != r[6] or r[7] != r[8] or not r[9] or not r[10]]
    return len(rows), wrong


def test_one_trace_from_two_web_and_four_worker_processes_has_an_exact_summary(
    stack: Callable[..., Any], fault_log: Callable[..., None]
) -> None:
    s = stack(agentops={"TRUST_INCOMING_TRACEPARENT": True})
    ports = [s.web(name="web-a")[1], s.web(name="web-b")[1]]
    worker = s.worker(concurrency=4)
    harness.wait_for(lambda: len(worker.children()) == 4, "4 prefork children")
    requests = 40
    answers = fire(ports, requests, SHARED_QUERY, {"traceparent": f"00-{SHARED_TRACE}-{CLIENT_SPAN}-01"})
    assert {a["trace_id"] for a in answers} == {SHARED_TRACE}
    task_ids = [task_id for a in answers for task_id in a["task_ids"]]
    runs = [s.celery.AsyncResult(task_id).get(timeout=120) for task_id in task_ids]
    assert {r["trace_id"] for r in runs} == {SHARED_TRACE}
    worker_pids = {r["pid"] for r in runs}
    expected_spans = requests * SHARED_PER_REQUEST["spans"] + len(task_ids) * SHARED_PER_TASK["spans"]
    harness.wait_for(lambda: s.span_count({SHARED_TRACE}) >= expected_spans, "every span of the shared trace", 90)
    count, wrong = wrong_summaries(s, {SHARED_TRACE})
    row = s.sql(
        "SELECT span_count, error_count, input_tokens, output_tokens, total_tokens FROM agentops_django_trace "
        "WHERE trace_id = %s",
        [SHARED_TRACE],
    )[0]
    expected = (
        expected_spans,
        requests * SHARED_PER_REQUEST["errors"] + len(task_ids) * SHARED_PER_TASK["errors"],
        requests * SHARED_PER_REQUEST["tokens"] + len(task_ids) * SHARED_PER_TASK["tokens"],
    )
    fault_log(
        fault="one traceparent sent to 2 gunicorn servers (40 requests, 8 client threads) + 80 tasks on 4 children",
        worker_processes=len(worker_pids),
        summary=row,
        expected=expected,
        span_rows=s.span_count({SHARED_TRACE}),
        wrong=wrong,
    )
    assert count == 1 and not wrong, wrong
    assert tuple(row[:3]) == expected
    assert row[3] == expected[2] and row[4] == 2 * expected[2]


def test_a_thousand_traces_at_once_each_have_an_exact_summary(
    stack: Callable[..., Any], fault_log: Callable[..., None]
) -> None:
    s = stack()
    ports = [s.web(name="web-a")[1], s.web(name="web-b")[1]]
    worker = s.worker(concurrency=4)
    harness.wait_for(lambda: len(worker.children()) == 4, "4 prefork children")
    answers = fire(ports, 1000, "/work/?n=1&tokens=3&errors=1&tasks=1&task_n=1&task_tokens=2", {}, threads=8)
    traces = {a["trace_id"] for a in answers}
    assert len(traces) == 1000
    for a in answers:
        s.celery.AsyncResult(a["task_ids"][0]).get(timeout=180)
    per_trace = (1 + 1 + 1 + 1 + 1) + (1 + 1 + 1)  # request, tool, llm, error, publish + task, tool, llm
    harness.wait_for(lambda: s.span_count(traces) >= 1000 * per_trace, "the spans of 1,000 traces", 120)
    count, wrong = wrong_summaries(s, traces)
    statuses = s.sql(
        "SELECT status, count(*) FROM agentops_django_trace WHERE trace_id = ANY(%s) GROUP BY status", [list(traces)]
    )
    fault_log(
        fault="1,000 traces at once (2 gunicorn servers, 8 client threads, 4 worker children)",
        summaries=count,
        wrong=len(wrong),
        wrong_examples=wrong[:3],
        statuses=statuses,
        span_rows=s.span_count(traces),
    )
    assert count == 1000
    assert not wrong, wrong[:5]
