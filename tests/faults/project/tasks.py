"""Tasks the fault suite's workers run."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

from celery import shared_task
from opentelemetry import trace as trace_api

import agentops
from agentops import semconv


def current_ids() -> dict[str, str]:
    context = trace_api.get_current_span().get_span_context()
    return {"trace_id": format(context.trace_id, "032x"), "span_id": format(context.span_id, "016x")}


def make_spans(count: int, tokens: int = 0, errors: int = 0) -> None:
    """``count`` tool spans, then one LLM span with ``tokens`` in and out, ``errors`` failing spans."""
    tracer = agentops.get_tracer()
    for i in range(count):
        with tracer.start_as_current_span(f"step-{i}.tool", attributes={semconv.AGENTOPS_SPAN_KIND: "tool"}):
            pass
    if tokens:
        with tracer.start_as_current_span(
            "call.llm",
            attributes={
                semconv.AGENTOPS_SPAN_KIND: "llm",
                semconv.GEN_AI_USAGE_INPUT_TOKENS: tokens,
                semconv.GEN_AI_USAGE_OUTPUT_TOKENS: tokens,
            },
        ):
            pass
    for i in range(errors):
        with tracer.start_as_current_span(f"bad-{i}.tool") as span:
            span.set_status(trace_api.Status(trace_api.StatusCode.ERROR, "planned"))


@shared_task(name="faults.work")
def work(count: int = 1, tokens: int = 0, errors: int = 0, sleep: float = 0.0) -> dict[str, Any]:
    """Make spans (see :func:`make_spans`), optionally sleep; return where it ran."""
    make_spans(count, tokens, errors)
    if sleep:
        time.sleep(sleep)
    return {**current_ids(), "pid": os.getpid()}


@shared_task(name="faults.suicide")
def suicide(before: int = 3) -> None:
    """Finish ``before`` spans, then SIGKILL the process running the task (a crashed child)."""
    make_spans(before)
    time.sleep(1.5)  # longer than the writer's batch interval: those spans are written
    os.kill(os.getpid(), signal.SIGKILL)


@shared_task(name="faults.echo")
def echo(*args: Any, **kwargs: Any) -> Any:
    """Return what it was given (hostile arguments come back as results too)."""
    return {"args": args, "kwargs": kwargs, **current_ids()}
