"""Views used by the Django tests."""

from __future__ import annotations

from django.http import HttpResponse


def ping(request):
    return HttpResponse("pong")
