"""The SDK alone: µs per span, with agentops and with the bare OpenTelemetry SDK.

``python benchmarks/sdk_bench.py --mode floor|agentops --n N [--llm-url URL]``
prints one JSON line of medians (µs). Both modes end spans into a
``BatchSpanProcessor`` whose exporter discards, so the difference is what
agentops adds per span. ``floor`` measures a bare SDK span and an
uninstrumented OpenAI call; ``agentops`` measures ``start_trace``/``end_trace``,
an ``@agentops.tool`` call inside a trace, and an instrumented OpenAI call.
The OpenAI calls go to the stand-in server on loopback.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult


class DiscardExporter(SpanExporter):
    """An exporter that drops what it is given."""

    def export(self, spans: Any) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def median_us(func: Callable[[], Any], n: int, warmup: int = 100) -> float:
    """The median time of ``func()`` over ``n`` calls, in µs."""
    for _ in range(min(warmup, n)):
        func()
    gc.collect()
    clock = time.perf_counter_ns
    timings = []
    for _ in range(n):
        t0 = clock()
        func()
        timings.append(clock() - t0)
    return statistics.median(timings) / 1000


def llm_call(url: str) -> Callable[[], Any]:
    import openai

    client = openai.OpenAI(base_url=url, api_key="bench", max_retries=0)

    def call() -> Any:
        return client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hello there"}], max_tokens=8
        )

    return call


def floor(n: int, llm_url: str | None) -> dict[str, float]:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(DiscardExporter()))
    trace.set_tracer_provider(provider)
    tracer = trace.get_tracer("bench")

    def span() -> None:
        tracer.start_span("bench").end()

    def current_span() -> None:
        with tracer.start_as_current_span("bench"):
            pass

    result = {"span": median_us(span, n), "current_span": median_us(current_span, n)}
    if llm_url:
        result["llm_call"] = median_us(llm_call(llm_url), max(n // 20, 50), warmup=20)
    provider.shutdown()
    return result


def with_agentops(n: int, llm_url: str | None) -> dict[str, float]:
    import agentops

    agentops.init(auto_start_session=False, exporters=[BatchSpanProcessor(DiscardExporter())])

    def trace_pair() -> None:
        agentops.end_trace(agentops.start_trace("bench"))

    @agentops.tool
    def lookup(query: str) -> str:
        return query

    result = {"start_end_trace": median_us(trace_pair, n)}
    outer = agentops.start_trace("outer")
    result["tool_call"] = median_us(lambda: lookup("weather"), n)
    if llm_url:
        result["llm_call"] = median_us(llm_call(llm_url), max(n // 20, 50), warmup=20)
    agentops.end_trace(outer)
    agentops.flush(10_000)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("floor", "agentops"), required=True)
    parser.add_argument("--n", type=int, default=5_000)
    parser.add_argument("--llm-url", default=None)
    args = parser.parse_args()
    result = (floor if args.mode == "floor" else with_agentops)(args.n, args.llm_url)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
