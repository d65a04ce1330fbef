"""Celery tasks of the test project, found by ``app.autodiscover_tasks()``."""

from __future__ import annotations

import time
from typing import Any

from celery import shared_task
from opentelemetry import trace as trace_api

import agentops


def _here() -> dict[str, str]:
    """The trace and span ids current inside the task."""
    context = trace_api.get_current_span().get_span_context()
    return {"trace_id": format(context.trace_id, "032x"), "span_id": format(context.span_id, "016x")}


@shared_task(name="testapp.add")
def add(x: int, y: int) -> int:
    return x + y


@shared_task(name="testapp.tsum")
def tsum(values: list[int]) -> int:
    """A chord callback: the sum of the header's results."""
    return sum(values)


@shared_task(name="testapp.whoami")
def whoami(*args: Any, **kwargs: Any) -> dict[str, str]:
    """Where the task runs: the trace and span current inside it."""
    return _here()


@shared_task(name="testapp.nested")
def nested(x: int) -> dict[str, str]:
    """Enqueue another task from inside a task; returns the child's id and where this ran."""
    child = add.delay(x, 1)
    return {**_here(), "child_id": child.id}


@shared_task(name="testapp.with_trace")
def with_trace() -> dict[str, str]:
    """Start a trace inside a task: inside a task it must be a child, not a new root."""
    with agentops.start_trace("inner-work"):
        return _here()


@shared_task(name="testapp.fail")
def fail(message: str = "boom") -> None:
    raise ValueError(message)


@shared_task(name="testapp.flaky", bind=True, max_retries=5)
def flaky(self: Any, succeed_on: int) -> int:
    """Fail with a retry until attempt ``succeed_on`` (0 is the first attempt)."""
    if self.request.retries < succeed_on:
        raise self.retry(exc=RuntimeError(f"attempt {self.request.retries} failed"), countdown=0.05)
    return self.request.retries


@shared_task(name="testapp.fan_out_child", agentops_new_trace=True)
def fan_out_child(i: int) -> dict[str, str]:
    """A task that always starts a new trace linked to its caller."""
    return _here()


@shared_task(name="testapp.sleep")
def sleep(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@shared_task(name="testapp.secret")
def secret(api_key: str, value: int) -> dict[str, Any]:
    return {"password": "hunter2", "value": value}


@shared_task(name="testapp.headers_seen", bind=True, max_retries=2)
def headers_seen(self: Any, retry_once: bool = False) -> dict[str, Any]:
    """What the worker sees of the trace headers (top level and nested), after an optional retry."""
    if retry_once and self.request.retries == 0:
        raise self.retry(countdown=0.05)
    nested = self.request.headers or {}
    return {
        "top": getattr(self.request, "traceparent", None),
        "nested": nested.get("traceparent"),
        "custom": nested.get("x-custom", getattr(self.request, "x-custom", None)),
        "retries": self.request.retries,
        **_here(),
    }


@shared_task(name="testapp.forgets_a_trace")
def forgets_a_trace() -> str:
    """Start a trace and never end it (the task's end must end it)."""
    return agentops.start_trace("inside-task").trace_id


@shared_task(name="testapp.n_plus_one")
def n_plus_one() -> int:
    """One query for the users, then one per user for its groups (the N+1 pattern)."""
    from django.contrib.auth.models import User

    return sum(len(list(user.groups.all())) for user in User.objects.order_by("pk"))
