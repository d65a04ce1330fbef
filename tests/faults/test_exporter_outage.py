"""An OTLP collector that is slow, failing or down never slows the app, and the database copy stays complete.

One gunicorn process exports to a collector stand-in of this test
(``AGENTOPS={"EXPORTERS": ["otlp"]}`` and ``OTEL_EXPORTER_OTLP_ENDPOINT``).
The same requests run with the collector healthy, slow (5 s per export),
answering 500, and down; each request must stay fast (a generous bound: 1 s,
while the collector takes 5 s), every span must still reach the database,
and the process must still exit on SIGTERM.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.faults import harness

pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.redis]

REQUEST_SPANS = 4  # the request and 3 tool spans
REQUESTS = 30
#: The generous bound of one request while the collector takes 5 s.
SLOW_REQUEST = 1.0


def run_requests(port: int) -> tuple[list[float], set[str]]:
    latencies = []
    traces = set()
    for _ in range(REQUESTS):
        started = time.monotonic()
        status, body = harness.http_get(port, "/work/?n=3")
        latencies.append(time.monotonic() - started)
        assert status == 200, body[:300]
        traces.add(json.loads(body)["trace_id"])
    return latencies, traces


def test_collector_slow_failing_or_down_never_slows_requests_and_the_database_copy_is_complete(
    stack: Callable[..., Any], fault_log: Callable[..., None]
) -> None:
    collector = harness.Collector("ok", delay=5.0)
    try:
        s = stack(agentops={"EXPORTERS": ["otlp"]})
        web, port = s.web(
            OTEL_EXPORTER_OTLP_ENDPOINT=collector.endpoint,
            OTEL_BSP_SCHEDULE_DELAY="100",
            OTEL_EXPORTER_OTLP_TIMEOUT="5",
        )
        run_requests(port)  # warm-up: the first requests import lazily-loaded code
        results: dict[str, Any] = {}
        for mode in ("ok", "slow", "error", "down"):
            if mode == "down":
                collector.stop()
            else:
                collector.mode = mode
            received_before = collector.count()
            latencies, traces = run_requests(port)
            harness.wait_for(
                lambda traces=traces: s.span_count(traces) == REQUESTS * REQUEST_SPANS,
                f"the database copy with the collector {mode}",
                60,
            )
            if mode == "ok":
                harness.wait_for(
                    lambda n=received_before: collector.count() > n, "the healthy collector to receive spans"
                )
            results[mode] = {
                "max_s": round(max(latencies), 3),
                "median_s": round(sorted(latencies)[len(latencies) // 2], 4),
                "rows": s.span_count(traces),
                "exports_received": collector.count() - received_before,
            }
        started = time.monotonic()
        web.signal(15)
        code = web.wait(60)
        exit_s = time.monotonic() - started
        fault_log(
            fault="OTLP collector healthy / slow 5 s / HTTP 500 / down; gunicorn 1 worker",
            results=results,
            exit_after_sigterm_s=round(exit_s, 1),
            exit_code=code,
        )
    finally:
        collector.stop()
    for mode, figures in results.items():
        assert figures["max_s"] < SLOW_REQUEST, f"a request took {figures['max_s']} s with the collector {mode}"
        assert figures["rows"] == REQUESTS * REQUEST_SPANS
    assert code is not None, "gunicorn did not exit within 60 s of SIGTERM with the collector down"
