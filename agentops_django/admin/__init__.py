"""The admin for traces: a fast, read-only list and a trace page drawn as a waterfall.

The list reads only the summary columns of :class:`~agentops_django.models.Trace`
that the writer maintains at ingest; every filter, search and the default
ordering is served by an index, and the paginator never counts the table (see
:mod:`agentops_django.admin._paginator`). The change view is replaced by the trace
picture (:mod:`agentops_django.admin._tree`); ``…/otlp.json`` exports the trace.

Nothing here can change a trace. Deleting needs the delete permission and goes
through :func:`agentops_django.prune.delete_traces` (batched, spans first).

Every query names the database of ``AGENTOPS["DATABASE_ALIAS"]``
(:func:`agentops_django.routers.database`), so traces kept in a second
database show without a router. Under ``USE_TZ = False`` times are naive
wall-clock times of ``TIME_ZONE``, shown as they are.

The writer counters above the list add up the rows of processes that reported
in the last :data:`WRITER_STATS_WINDOW` (a day): every process that ever wrote
has a row, and a long-gone process's counters say nothing about now. The
per-process page lists them all until ``agentops_prune`` deletes the stale
ones.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any
from urllib.parse import urlencode

from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Sum
from django.http import Http404, JsonResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from agentops_django import prune
from agentops_django._usage import TOTALS_RULE
from agentops_django.admin import _otlp as otlp_json
from agentops_django.admin import _overview_page
from agentops_django.admin._page import (
    DASH,
    HEX32,
    format_cost,
    format_duration,
    mark_unfinished_publishes,
    span_detail,
    span_rows,
)
from agentops_django.admin._paginator import EstimatedCountPaginator
from agentops_django.admin._rows import row_html
from agentops_django.admin._search import ProcessFilter, SearchPaginator, search_filter
from agentops_django.admin._tree import build_waterfall
from agentops_django.conf import get_config
from agentops_django.models import Span, Trace, TraceStatus, WriterStats
from agentops_django.routers import database

logger = logging.getLogger(__name__)

#: Span rows drawn per page of the waterfall.
ROWS_PER_PAGE = 2000
#: The name filter offers the names of this many most recent traces.
RECENT_NAMES_WINDOW = 1000
#: Hosts and workers named per trace in the list (the rest are counted).
PROCESSES_SHOWN = 3
#: The writer counters above the list add up processes that reported within this window.
WRITER_STATS_WINDOW = dt.timedelta(days=1)


def _aware(value: dt.datetime) -> dt.datetime:
    """``value`` with a time zone: a naive time (``USE_TZ = False``) is in ``TIME_ZONE``."""
    return value if timezone.is_aware(value) else timezone.make_aware(value)


class RecentFilter(admin.SimpleListFilter):
    """Traces started in the last hour, day or week (the started_at index, no date scan)."""

    title = "started"
    parameter_name = "recent"
    WINDOWS = {"1h": dt.timedelta(hours=1), "24h": dt.timedelta(days=1), "7d": dt.timedelta(days=7)}

    def lookups(self, request, model_admin):
        return [("1h", "Last hour"), ("24h", "Last day"), ("7d", "Last week")]

    def queryset(self, request, queryset):
        window = self.WINDOWS.get(self.value() or "")
        if window is None:
            return queryset
        return queryset.filter(started_at__gte=timezone.now() - window)


class FailedSpansFilter(admin.SimpleListFilter):
    """Traces with a failed span anywhere (a failed or retried task, an LLM error), whatever the root's status.

    A request whose background task failed is a Success at its root; this
    finds it. (Newest first, the started_at index serves the filter.)
    """

    title = "failed spans"
    parameter_name = "failed_spans"

    def lookups(self, request, model_admin):
        return [("yes", "Has a failed span"), ("no", "No failed span")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(error_count__gt=0)
        if self.value() == "no":
            return queryset.filter(error_count=0)
        return queryset


class NameFilter(admin.SimpleListFilter):
    """Trace names seen among the most recent traces: a bounded index read, never DISTINCT over the table."""

    title = "name"
    parameter_name = "name"

    def lookups(self, request, model_admin):
        recent = Trace.objects.using(database()).order_by("-started_at").values_list("name", flat=True)
        recent = recent[:RECENT_NAMES_WINDOW]
        names = sorted({name for name in recent if name})[:50]
        current = self.value()
        if current and current not in names:
            names.append(current)
        return [(name, name) for name in names]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(name=self.value())
        return queryset


# --- the list ------------------------------------------------------------------------------------


class TraceChangeList(ChangeList):
    """The admin's change list, plus what our pagination template needs."""

    def _get_deterministic_ordering(self, ordering):
        """A sort by one column, ties broken by the primary key in the same direction: one index serves it.

        The admin would add the default ``-started_at`` after the chosen
        column; ``(column, started_at, id)`` has no index, so ties (many, for
        errors or tokens) would be sorted in full. The id grows as traces are
        stored, so it orders ties much as the start time would.
        """
        ordering = [field for field in ordering if isinstance(field, str)]
        if not ordering:
            return ["-started_at", "-pk"]
        first = ordering[0]
        descending = first.startswith("-")
        return [first, "-pk" if descending else "pk"]

    def get_results(self, request):
        super().get_results(request)
        self.count_prefix = getattr(self.paginator, "approximate", "")
        self.result_count_display = f"{self.result_count:,}"
        if self.multi_page:
            self.page_range = list(self.paginator.get_elided_page_range(self.page_num, on_each_side=2, on_ends=1))
        else:
            self.page_range = []


@admin.register(Trace)
class TraceAdmin(admin.ModelAdmin):
    """Read-only traces: list with summaries, a waterfall per trace, OTLP JSON export."""

    list_display = (
        "display_name",
        "root_kind",
        "status_badge",
        # Who and where before the numbers: with the app list and the filters open
        # the numbers scroll sideways first.
        "user",
        "processes",
        "started",
        "duration",
        "span_total",  # not "spans": the admin would sort by the reverse relation of that name
        "errors",
        "tokens",
        "cost_display",
    )
    list_display_links = ("display_name",)
    list_filter = ("status", FailedSpansFilter, "kind", RecentFilter, NameFilter, ProcessFilter)
    search_fields = ("trace_id",)  # shows the box; get_search_results does the work
    search_help_text = (
        "A trace id (or its first 6+ hex digits), part of a name, tag:NAME, user:NAME, "
        "host:NAME, worker:NAME or span:part of a span's name."
    )
    ordering = ("-started_at",)
    # Each sort is served by an index (Trace.Meta.indexes).
    sortable_by = ("started", "duration", "span_total", "errors", "tokens", "cost_display")
    list_per_page = 50
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    paginator = EstimatedCountPaginator
    change_list_template = "agentops_django/trace_change_list.html"

    class Media:
        css = {"all": ("agentops_django/trace.css", "agentops_django/list.css")}

    # --- columns ---

    @admin.display(description="Name", ordering="name")
    def display_name(self, obj: Trace) -> str:
        return obj.name or "(unnamed)"

    @admin.display(description="Root")
    def root_kind(self, obj: Trace) -> str:
        return format_html('<span class="ao-rootkind ao-rootkind--{}">{}</span>', obj.kind, obj.get_kind_display())

    @admin.display(description="Status")
    def status_badge(self, obj: Trace) -> str:
        return format_html(
            '<span class="ao-status ao-status--{}">{}</span>', str(obj.status).lower(), obj.get_status_display()
        )

    @admin.display(description="Started", ordering="started_at")
    def started(self, obj: Trace) -> str:
        # Under USE_TZ = False the stored time is the wall-clock time already.
        local = timezone.localtime(obj.started_at) if timezone.is_aware(obj.started_at) else obj.started_at
        return format_html(
            '<time datetime="{}" title="{}">{}</time>',
            _aware(obj.started_at).isoformat(),
            local.isoformat(sep=" ", timespec="milliseconds"),
            local.strftime("%Y-%m-%d %H:%M:%S"),
        )

    @admin.display(description="Duration", ordering="duration_ms")
    def duration(self, obj: Trace) -> str:
        return format_duration(obj.duration_ms)

    @admin.display(description="Spans", ordering="span_count")
    def span_total(self, obj: Trace) -> str:
        return f"{obj.span_count:,}"

    @admin.display(description="Errors", ordering="error_count")
    def errors(self, obj: Trace) -> str:
        if not obj.error_count:
            return "0"
        return format_html('<span class="ao-err-text">{}</span>', f"{obj.error_count:,}")

    @admin.display(description="Tokens", ordering="total_tokens")
    def tokens(self, obj: Trace) -> str:
        if not obj.total_tokens:
            return DASH
        return format_html(
            '<span title="{} in / {} out">{}</span>',
            f"{obj.input_tokens:,}",
            f"{obj.output_tokens:,}",
            f"{obj.total_tokens:,}",
        )

    @admin.display(description="Cost", ordering="cost")
    def cost_display(self, obj: Trace) -> str:
        return format_cost(obj.cost, obj.unpriced_calls)

    @admin.display(description="User")
    def user(self, obj: Trace) -> str:
        if not obj.username and not obj.user_id:
            return DASH
        name = obj.username or f"#{obj.user_id}"
        if not obj.username:
            return name
        return format_html(
            '<a class="ao-user" href="?{}" title="user id {}">{}</a>',
            urlencode({"q": f"user:{name}"}),
            obj.user_id,
            name,
        )

    @admin.display(description="Hosts / workers")
    def processes(self, obj: Trace) -> str:
        # (A label may be stored twice: a process adds its labels unless all of them are listed already.)
        labels = list(dict.fromkeys(label for label in obj.processes_text.split("|") if label))
        if not labels:
            return DASH
        # A worker node (celery@host) names its host already.
        nodes = {label.partition("@")[2] for label in labels if "@" in label}
        shown = [label for label in labels if label not in nodes]
        links = format_html_join(
            "",
            '<a class="ao-proc" href="?{}" title="{}">{}</a>',
            ((urlencode({"process": label}), label, label) for label in shown[:PROCESSES_SHOWN]),
        )
        if len(shown) > PROCESSES_SHOWN:
            return format_html('{}<span class="ao-quiet">+{} more</span>', links, len(shown) - PROCESSES_SHOWN)
        return links

    @admin.display(description=mark_safe('<input type="checkbox" id="action-toggle">'))
    def action_checkbox(self, obj: Trace) -> str:
        """The row's action checkbox, as the admin draws it, without a widget render per row."""
        return format_html(
            '<input type="checkbox" name="_selected_action" value="{}" class="action-select" '
            'aria-label="Select this object for an action - {}">',
            obj.pk,
            str(obj),
        )

    # --- permissions: read-only, delete only with the permission ---

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    # --- the list ---

    def get_queryset(self, request):
        return super().get_queryset(request).using(database())

    def get_changelist(self, request, **kwargs):
        return TraceChangeList

    def get_paginator(self, request, queryset, per_page, orphans=0, allow_empty_first_page=True):
        if request.GET.get("q", "").strip() or request.GET.get(ProcessFilter.parameter_name):
            return SearchPaginator(queryset, per_page, orphans, allow_empty_first_page)
        return super().get_paginator(request, queryset, per_page, orphans, allow_empty_first_page)

    def get_search_results(self, request, queryset, search_term):
        if not search_term.strip():
            return queryset, False
        return queryset.filter(search_filter(search_term)), False

    def changelist_view(self, request, extra_context=None):
        recent = WriterStats.objects.using(database()).filter(updated_at__gte=timezone.now() - WRITER_STATS_WINDOW)
        stats = recent.aggregate(
            processes=Count("pk"),
            written=Sum("spans_written"),
            dropped=Sum("spans_dropped"),
            errors=Sum("write_errors"),
        )
        stats_admin = self.admin_site._registry.get(WriterStats)
        context = {
            "title": "Traces",
            "writer_processes": stats["processes"],
            "writer_written": f"{stats['written'] or 0:,}",
            "writer_dropped": f"{stats['dropped'] or 0:,}" if stats["dropped"] else 0,
            "writer_errors": f"{stats['errors'] or 0:,}" if stats["errors"] else 0,
            "writer_stats_url": (
                reverse("admin:agentops_django_writerstats_changelist")
                if stats_admin is not None and stats_admin.has_view_permission(request)
                else ""
            ),
            **(extra_context or {}),
        }
        return super().changelist_view(request, extra_context=context)

    # --- one trace ---

    def get_object(self, request, object_id, from_field=None):
        """A trace by primary key, or by its 32-hex trace id (what span links carry)."""
        if from_field is None and isinstance(object_id, str) and HEX32.fullmatch(object_id):
            return self.get_queryset(request).filter(trace_id=object_id.lower()).first()
        return super().get_object(request, object_id, from_field)

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        wrap = self.admin_site.admin_view
        return [
            path("overview/", wrap(self.overview_view), name=f"{info[0]}_{info[1]}_overview"),
            path("overview/top/", wrap(self.overview_top_view), name=f"{info[0]}_{info[1]}_overview_top"),
            path("<path:object_id>/otlp.json", wrap(self.otlp_view), name=f"{info[0]}_{info[1]}_otlp"),
            path("<path:object_id>/span/<str:span_id>/", wrap(self.span_view), name=f"{info[0]}_{info[1]}_span"),
            *super().get_urls(),
        ]

    def overview_view(self, request):
        return _overview_page.overview_view(self, request)

    def overview_top_view(self, request):
        return _overview_page.top_view(self, request)

    def _trace_or_404(self, request, object_id) -> Trace:
        trace = self.get_object(request, object_id)
        if trace is None:
            raise Http404("No such trace")
        if not self.has_view_permission(request, trace):
            raise PermissionDenied
        return trace

    def change_view(self, request, object_id, form_url="", extra_context=None):
        """The trace page: summary, waterfall, and the selected span's details."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        trace = self._trace_or_404(request, object_id)
        rows = span_rows(trace)
        unfinished = mark_unfinished_publishes(rows, timezone.now(), get_config().unfinished_after)
        waterfall = build_waterfall(rows, root_span_id=trace.root_span_id)
        try:
            offset = max(0, int(request.GET.get("offset", 0)))
        except ValueError:
            offset = 0
        shown = waterfall.rows[offset : offset + ROWS_PER_PAGE]
        selected_id = request.GET.get("span", "")
        change_url = reverse("admin:agentops_django_trace_change", args=[trace.pk])
        # The span URL without its last part, completed per row (reverse() per row costs too much).
        span_url = reverse("admin:agentops_django_trace_span", args=[trace.pk, "0" * 16])[: -len("0" * 16) - 1]
        selected = None
        if selected_id:
            selected = self._span_detail(trace, selected_id, waterfall.start)
            row = next((row for row in waterfall.rows if row.span_id == selected_id), None)
            if selected is not None and row is not None:
                selected["self_time"] = format_duration(row.self_ms)
        more = len(waterfall.rows) - offset - len(shown)
        context = {
            **self.admin_site.each_context(request),
            "title": trace.name or "(unnamed trace)",
            "subtitle": None,
            "opts": self.opts,
            "app_label": self.opts.app_label,
            "original": trace,
            "trace": trace,
            "waterfall": waterfall,
            "rows_html": mark_safe("".join(row_html(row, selected_id) for row in shown)),
            "row_count": len(shown),
            "span_url": span_url,
            "ticks": [(f"{pct:.2f}", format_duration(ms) if ms else "0") for pct, ms in waterfall.ticks()],
            "total_ms": f"{waterfall.total_ms:.3f}",
            "offset": offset,
            "first_shown": offset + 1,
            "last_shown": offset + len(shown),
            "more": more,
            "next_url": "?" + urlencode({"offset": offset + ROWS_PER_PAGE}) if more > 0 else "",
            "prev_url": "?" + urlencode({"offset": max(0, offset - ROWS_PER_PAGE)}) if offset else "",
            "totals": waterfall.totals,
            "tokens": {
                "total": f"{waterfall.totals.total_tokens:,}",
                "input": f"{waterfall.totals.input_tokens:,}",
                "output": f"{waterfall.totals.output_tokens:,}",
            },
            "totals_rule": TOTALS_RULE,
            "unfinished": unfinished,
            "status": TraceStatus.INDETERMINATE if unfinished else trace.status,
            "duration": format_duration(trace.duration_ms if trace.duration_ms is not None else waterfall.total_ms),
            # The stored duration runs from the first span's start; a queued root task waited before it.
            "queued_before": format_duration(waterfall.queued_before_ms) if waterfall.queued_before_ms > 0 else "",
            "total_cost": format_cost(waterfall.totals.cost, waterfall.totals.unpriced),
            "selected": selected,
            "change_url": change_url,
            "otlp_url": reverse("admin:agentops_django_trace_otlp", args=[trace.pk]),
            "has_delete_permission": self.has_delete_permission(request, trace),
            "delete_url": reverse("admin:agentops_django_trace_delete", args=[trace.pk]),
            "is_popup": False,
            "to_field": None,
            **(extra_context or {}),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "agentops_django/trace_detail.html", context)

    def span_view(self, request, object_id, span_id):
        """One span's details as an HTML fragment, for the trace page's script."""
        trace = self._trace_or_404(request, object_id)
        detail = self._span_detail(trace, span_id, trace.started_at)
        if detail is None:
            raise Http404("No such span")
        return TemplateResponse(request, "agentops_django/span_detail.html", {"selected": detail})

    def otlp_view(self, request, object_id):
        """The whole trace as an OTLP JSON download."""
        trace = self._trace_or_404(request, object_id)
        rows = Span.objects.using(trace._state.db).filter(trace_id=trace.trace_id).order_by("started_at")
        spans = list(rows.values())
        for span in spans:
            span["started_at"], span["ended_at"] = _aware(span["started_at"]), _aware(span["ended_at"])
        response = JsonResponse(otlp_json.trace_document(trace.trace_id, spans))
        response["Content-Disposition"] = f'attachment; filename="trace-{trace.trace_id}.otlp.json"'
        return response

    def _span_detail(self, trace: Trace, span_id: str, origin: dt.datetime | None) -> dict[str, Any] | None:
        span = Span.objects.using(trace._state.db).filter(trace_id=trace.trace_id, span_id=span_id).first()
        if span is None:
            return None
        if origin is not None and not timezone.is_aware(origin):
            # USE_TZ = False: event times are stored aware; compare like with like.
            origin = _aware(origin)
            span.started_at, span.ended_at = _aware(span.started_at), _aware(span.ended_at)
        return span_detail(span, origin)

    # --- deleting ---

    def get_deleted_objects(self, objs, request):
        """Summarise instead of listing every span (a trace may have thousands)."""
        objs = list(objs)
        spans = sum(obj.span_count for obj in objs)
        names = [str(obj) for obj in objs[:100]]
        if len(objs) > 100:
            names.append(f"… and {len(objs) - 100} more traces")
        perms_needed = set() if self.has_delete_permission(request) else {self.opts.verbose_name}
        return names, {"traces": len(objs), "spans (about)": spans}, perms_needed, []

    def delete_model(self, request, obj):
        prune.delete_traces([obj.trace_id], using=obj._state.db)

    def delete_queryset(self, request, queryset):
        prune.delete_traces(queryset.values_list("trace_id", flat=True), using=queryset.db)


@admin.register(WriterStats)
class WriterStatsAdmin(admin.ModelAdmin):
    """The database writer's counters per process, read-only: dropped spans show here."""

    list_display = (
        "host",
        "pid",
        "process_started_at",
        "spans_written",
        "spans_dropped",
        "write_errors",
        "updated_at",
    )
    ordering = ("-updated_at",)
    show_facets = admin.ShowFacets.NEVER

    def get_queryset(self, request):
        return super().get_queryset(request).using(database())

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
