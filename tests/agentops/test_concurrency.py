"""Specification of concurrency: many traces at once never mix.

Each job below runs in its own trace and records its number on every span it
makes; afterwards every span must sit in the trace of the job that made it,
under the right parent. Threads come from a small pool, so a thread that is
reused must not carry the previous job's trace into the next one.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

from opentelemetry import context as context_api
from opentelemetry import trace as trace_api

import agentops
from agentops import semconv
from agentops._traces import context_with_scope
from agentops.testing import CapturedSpans

JOBS = 200


@agentops.tool
def lookup(job: int) -> int:
    with trace_api.get_tracer("other.library").start_as_current_span("foreign") as span:
        span.set_attribute("job", job)
    return job


@agentops.task
def chunks(job: int) -> Iterator[int]:
    for i in range(3):
        yield job * 10 + i


@agentops.agent
def work(job: int) -> list[int]:
    lookup(job)
    return list(chunks(job))


@agentops.tool
async def alookup(job: int) -> int:
    await asyncio.sleep(0)
    with trace_api.get_tracer("other.library").start_as_current_span("foreign") as span:
        span.set_attribute("job", job)
    return job


@agentops.agent
async def awork(job: int) -> int:
    await asyncio.sleep(0)
    return await alookup(job)


def job_of(span) -> int:
    """The job number a span recorded (argument, attribute or trace metadata)."""
    if "job" in span.attributes:
        return span.attributes["job"]
    if "trace.metadata.job" in span.attributes:
        return span.attributes["trace.metadata.job"]
    kind = span.attributes[semconv.AGENTOPS_SPAN_KIND]
    entity_kind = semconv.ENTITY_KIND_ENTITY if kind == semconv.SpanKind.SESSION else kind
    return json.loads(span.attributes[semconv.AGENTOPS_DECORATOR_INPUT.format(entity_kind=entity_kind)])["job"]


def assert_no_mixing(spans: CapturedSpans, per_trace: int) -> None:
    """Every trace holds exactly one job's spans, each under a parent of that trace."""
    by_trace: dict[int, list] = defaultdict(list)
    for span in spans:
        by_trace[span.context.trace_id].append(span)
    assert len(by_trace) == JOBS
    for trace_spans in by_trace.values():
        assert len(trace_spans) == per_trace
        assert len({job_of(span) for span in trace_spans}) == 1
        ids = {span.context.span_id for span in trace_spans}
        roots = [span for span in trace_spans if span.parent is None]
        assert len(roots) == 1
        assert all(span.parent.span_id in ids for span in trace_spans if span.parent is not None)
    assert agentops.active_traces() == []


def test_traces_in_200_jobs_on_a_thread_pool_never_mix(spans: CapturedSpans) -> None:
    barrier = threading.Barrier(8)

    def job(i: int) -> None:
        if i < 8:
            barrier.wait(10)  # the first jobs really run at the same time
        with agentops.start_trace(f"job-{i}"):
            agentops.update_trace_metadata({"job": i})
            work(i)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(job, range(JOBS)))
    # root, work.agent, lookup.tool, foreign, chunks.task
    assert_no_mixing(spans, per_trace=5)


def test_traces_in_200_asyncio_tasks_never_mix(spans: CapturedSpans) -> None:
    async def job(i: int) -> None:
        with agentops.start_trace(f"job-{i}"):
            agentops.update_trace_metadata({"job": i})
            await asyncio.sleep(0)
            await awork(i)

    async def main() -> None:
        await asyncio.gather(*(job(i) for i in range(JOBS)))

    asyncio.run(main())
    # root, awork.agent, alookup.tool, foreign
    assert_no_mixing(spans, per_trace=4)


def test_trace_decorated_jobs_in_threads_and_tasks_never_mix(spans: CapturedSpans) -> None:
    @agentops.trace
    def threaded(job: int) -> None:
        work(job)

    @agentops.trace
    async def tasked(job: int) -> None:
        await awork(job)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(threaded, range(JOBS // 2)))

    async def main() -> None:
        await asyncio.gather(*(tasked(i) for i in range(JOBS // 2, JOBS)))

    asyncio.run(main())
    by_trace: dict[int, set[int]] = defaultdict(set)
    for span in spans:
        by_trace[span.context.trace_id].add(job_of(span))
    assert len(by_trace) == JOBS
    assert all(len(jobs) == 1 for jobs in by_trace.values())


def test_end_trace_without_argument_in_200_concurrent_requests_ends_only_each_requests_traces(
    spans: CapturedSpans,
) -> None:
    """Each request ends "everything" of its own; no other request loses a trace."""
    workers = 8
    barrier = threading.Barrier(workers)
    lost: list[int] = []

    def request(i: int) -> None:
        span = agentops.get_tracer().start_span(f"request-{i}", context=context_api.Context())
        span.set_attribute("job", i)
        token = context_api.attach(context_with_scope(span, "request"))
        try:
            own = agentops.start_trace(f"inner-{i}")
            own.span.set_attribute("job", i)
            if i < workers:
                barrier.wait(10)
            work(i)
            if own.ended:
                lost.append(i)
            agentops.end_trace()
            assert own.ended
        finally:
            context_api.detach(token)
            span.end()

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(request, range(JOBS)))
    assert lost == []
    # request root, inner trace, work.agent, lookup.tool, foreign, chunks.task
    assert_no_mixing(spans, per_trace=6)
