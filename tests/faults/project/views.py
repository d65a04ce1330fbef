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
        task_ids.append(tasks.work.delay(int(request.GET.get("task_n", "1"))).id)
    return JsonResponse({**tasks.current_ids(), "task_ids": task_ids})


def slow(request: HttpRequest) -> HttpResponse:
    time.sleep(float(request.GET.get("s", "1")))
    return HttpResponse("slept")


def echo_headers(request: HttpRequest) -> HttpResponse:
    return HttpResponse(json.dumps({**tasks.current_ids()}), content_type="application/json")
