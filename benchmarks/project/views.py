"""Views of the benchmark project: trivial, one ORM query, one Celery publish, ``n`` ORM queries."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.http import HttpResponse

from benchmarks.project.celery_app import noop


def ping(request):
    return HttpResponse("pong")


def db(request):
    return HttpResponse(str(User.objects.filter(pk=1).exists()))


def enqueue(request):
    noop.delay()
    return HttpResponse("queued")


def queries(request):
    """``?n=`` ORM queries of one statement (the N+1 pattern): what recording costs per query."""
    n = int(request.GET.get("n", "20"))
    return HttpResponse(str(sum(User.objects.filter(pk=i).exists() for i in range(n))))
