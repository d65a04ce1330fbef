"""Views of the benchmark project: trivial, one ORM query, one Celery publish."""

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
