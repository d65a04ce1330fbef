"""The overview's two views: the page (``…/trace/overview/``) and the jump to a window's slowest or costliest trace.

The numbers come from :mod:`agentops_django.admin._overview` (the rollup),
the charts from :mod:`agentops_django.admin._charts`.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone

from agentops_django import _histogram
from agentops_django.admin._overview import (
    KIND_TITLES,
    WINDOWS,
    charts,
    db_time,
    key_stats,
    query_rows,
    table_rows,
    to_datetime,
    window_from,
)
from agentops_django.models import Trace
from agentops_django.routers import database


def overview_view(model_admin: Any, request: Any) -> Any:
    """The overview page (``…/trace/overview/``)."""
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    window = window_from(request.GET)
    current = key_stats(window)
    previous = key_stats(window.previous())
    tables = [
        {"kind": kind, "title": title, "rows": table_rows(current, previous, kind, window)}
        for kind, title in KIND_TITLES.items()
    ]
    local = timezone.localtime if settings.USE_TZ else timezone.make_naive
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        "title": "Overview",
        "window": window,
        "windows": [(key, label) for key, (label, _) in WINDOWS.items()],
        "window_from": local(to_datetime(window.start)).strftime("%Y-%m-%dT%H:%M"),
        "window_to": local(to_datetime(window.end)).strftime("%Y-%m-%dT%H:%M"),
        "window_text": " to ".join(
            local(to_datetime(minute)).strftime("%Y-%m-%d %H:%M") for minute in (window.start, window.end)
        ),
        "tables": tables,
        "query_rows": query_rows(current),
        "charts": charts(window),
        "error_bound": f"{_histogram.RELATIVE_ERROR * 100:.1f}%",
        "list_url": reverse("admin:agentops_django_trace_changelist"),
    }
    return TemplateResponse(request, "agentops_django/overview.html", context)


def top_view(model_admin: Any, request: Any) -> Any:
    """Open the slowest or most expensive trace of a name and kind in a window (one indexed query)."""
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    try:
        start, end = int(request.GET["start"]), int(request.GET["end"])
        kind, name, by = request.GET["kind"], request.GET["name"], request.GET.get("by", "duration")
    except (KeyError, ValueError) as exc:
        raise Http404("Bad overview link") from exc
    order = "-cost" if by == "cost" else "-duration_ms"
    found = (
        Trace.objects.using(database())
        .filter(name=name, kind=kind, started_at__gte=db_time(start), started_at__lt=db_time(end))
        .exclude(**{order[1:] + "__isnull": True})
        .order_by(order, "-started_at")
        .values_list("pk", flat=True)
        .first()
    )
    if found is None:
        raise Http404("No such trace in this window")
    return HttpResponseRedirect(reverse("admin:agentops_django_trace_change", args=[found]))
