"""Views of the Celery tests: a request that enqueues a chain, a group and a chord."""

from __future__ import annotations

from celery import chain, chord, group
from django.http import HttpRequest, JsonResponse
from django.urls import path
from opentelemetry import trace as trace_api

from tests.testapp import tasks


def canvas(request: HttpRequest) -> JsonResponse:
    """Enqueue a chain, a group and a chord; answer with the request's trace id and the task ids."""
    chained = chain(tasks.add.s(1, 2), tasks.add.s(3), tasks.add.s(4)).delay()
    grouped = group(tasks.add.s(i, i) for i in range(3)).delay()
    chorded = chord(tasks.add.s(i, 1) for i in range(3))(tasks.tsum.s())
    chain_ids = []
    node = chained
    while node is not None:
        chain_ids.append(node.id)
        node = node.parent
    context = trace_api.get_current_span().get_span_context()
    return JsonResponse(
        {
            "trace_id": format(context.trace_id, "032x"),
            "chain": chain_ids[::-1],
            "group": [r.id for r in grouped.results],
            "chord_header": [r.id for r in chorded.parent.results],
            "chord_callback": chorded.id,
        }
    )


urlpatterns = [
    path("canvas/", canvas, name="celery-canvas"),
]
