"""Views of the fault project."""

from __future__ import annotations

import json
import time

from django.http import HttpRequest, HttpResponse, JsonResponse

from tests.faults.project import tasks


def work(request: HttpRequest) -> JsonResponse:
    """Make ``n`` spans (``tokens``, ``errors`` as in the task) and enqueue ``tasks`` tasks."""
    count = int(request.GET.get("n", "1"))
    tokens = int(request.GET.get("tokens", "0"))
    errors = int(request.GET.get("errors", "0"))
    tasks.make_spans(count, tokens, errors)
    task_ids = []
    for _ in range(int(request.GET.get("tasks", "0"))):
        task_ids.append(
            tasks.work.delay(
                int(request.GET.get("task_n", "1")),
                int(request.GET.get("task_tokens", "0")),
                int(request.GET.get("task_errors", "0")),
            ).id
        )
    return JsonResponse({**tasks.current_ids(), "task_ids": task_ids})


def slow(request: HttpRequest) -> HttpResponse:
    time.sleep(float(request.GET.get("s", "1")))
    return HttpResponse("slept")


def echo_headers(request: HttpRequest) -> HttpResponse:
    return HttpResponse(json.dumps({**tasks.current_ids()}), content_type="application/json")


def enqueue(request: HttpRequest) -> JsonResponse:
    """Publish task ``name`` with JSON ``args`` (and ``new_trace=1`` for a trace of its own) from this request."""
    from celery import current_app

    headers = {"agentops_new_trace": True} if request.GET.get("new_trace") else None
    result = current_app.send_task(request.GET["name"], args=json.loads(request.GET.get("args", "[]")), headers=headers)
    return JsonResponse({**tasks.current_ids(), "task_id": result.id})
