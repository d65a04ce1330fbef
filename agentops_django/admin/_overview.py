"""The overview page: where the time, the errors and the money go, per route, task and model.

Everything comes from the rollup the writer keeps (:class:`~agentops_django.models.Rollup`,
:class:`~agentops_django.models.RollupBucket`), never from the spans: a window's
whole days are read from the daily rows, the whole hours left from the hourly
rows and its ragged ends from the minute rows, so the rows read grow with the
keys, not with the traffic; the charts read the kind-wide rows only. Percentiles come
from the log-scaled histogram (:mod:`agentops_django._histogram`), within
:data:`~agentops_django._histogram.RELATIVE_ERROR` of the exact values.

Windows are whole minutes: the last hour, day or week up to and including the
current minute, or a custom range. Each is compared with the window of the same
length just before it.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.db.models import IntegerField, Q, Sum
from django.db.models.functions import Cast
from django.urls import reverse
from django.utils import timezone

from agentops_django import _histogram
from agentops_django.admin import _charts
from agentops_django.admin._page import format_cost, format_duration
from agentops_django.models import Rollup, RollupBucket
from agentops_django.routers import database
from agentops_django.writer._rollup import ALL, SUM_COLUMNS

#: The windows offered, in minutes.
WINDOWS = {"1h": ("Last hour", 60), "24h": ("Last day", 1440), "7d": ("Last week", 10080)}
DEFAULT_WINDOW = "24h"
#: A custom window may span at most this many minutes (the rollup's hourly rows keep it cheap).
MAX_CUSTOM_MINUTES = 92 * 1440
KIND_TITLES = {"request": "Requests", "task": "Celery tasks", "llm": "LLM models"}
_SUMS = SUM_COLUMNS


@dataclass(slots=True)
class Window:
    """``[start, end)`` in minutes since the epoch, and how to label it."""

    key: str
    label: str
    start: int
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start

    def previous(self) -> Window:
        return Window("previous", "previous", self.start - self.length, self.start)


def to_datetime(minute: int) -> dt.datetime:
    """A minute since the epoch as an aware UTC datetime."""
    return dt.datetime.fromtimestamp(minute * 60, dt.UTC)


def _minute(value: dt.datetime) -> int:
    if timezone.is_naive(value):
        value = timezone.make_aware(value)
    return math.floor(value.timestamp() / 60)


def window_from(params: Any, now: dt.datetime | None = None) -> Window:
    """The window a query string asks for: ``window=1h|24h|7d``, or ``from``/``to`` (local date-times).

    Anything unreadable falls back to :data:`DEFAULT_WINDOW`.
    """
    end = _minute(now or timezone.now()) + 1  # the current minute included
    start_text, end_text = params.get("from"), params.get("to")
    if start_text:
        try:
            start = _minute(dt.datetime.fromisoformat(start_text))
            custom_end = _minute(dt.datetime.fromisoformat(end_text)) if end_text else end
        except ValueError:
            pass
        else:
            if start < custom_end and custom_end - start <= MAX_CUSTOM_MINUTES:
                return Window("custom", "Custom", start, custom_end)
    key = params.get("window") if params.get("window") in WINDOWS else DEFAULT_WINDOW
    label, length = WINDOWS[key]
    return Window(key, label, end - length, end)


def rows_q(start: int, end: int, periods: tuple[int, ...] = (1440, 60, 1)) -> Q:
    """The rollup rows that add up to ``[start, end)``: whole days from daily rows, whole hours from hourly rows,
    the ragged ends from minute rows (``periods``: the largest first, ending with 1)."""
    period, *smaller = periods
    if not smaller:
        return Q(period=1, minute__gte=start, minute__lt=end)
    first = -(-start // period) * period
    last = end // period * period
    if last - first < period:
        return rows_q(start, end, tuple(smaller))
    where = Q(period=period, minute__gte=first, minute__lt=last)
    if start < first:
        where |= rows_q(start, first, tuple(smaller))
    if last < end:
        where |= rows_q(last, end, tuple(smaller))
    return where


# --- the tables --------------------------------------------------------------------------------


@dataclass(slots=True)
class KeyStats:
    """One route, task or model over one window."""

    kind: str
    name: str
    sums: dict[str, float] = field(default_factory=dict)
    durations: dict[int, int] = field(default_factory=dict)
    waits: dict[int, int] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return int(self.sums.get("count", 0))

    @property
    def error_rate(self) -> float | None:
        return self.sums.get("errors", 0) / self.count if self.count else None

    def p(self, fraction: float) -> float | None:
        return _histogram.percentile(self.durations, fraction)

    def wait_p(self, fraction: float) -> float | None:
        return _histogram.percentile(self.waits, fraction)


def key_stats(window: Window, using: str | None = None) -> dict[tuple[str, str], KeyStats]:
    """Sums and histograms per ``(kind, name)`` over ``window``: two grouped queries on the rollup."""
    db = using or database()
    where = rows_q(window.start, window.end) & ~Q(name=ALL)
    result: dict[tuple[str, str], KeyStats] = {}
    sums = Rollup.objects.using(db).filter(where).values("kind", "name").annotate(**{f"s_{c}": Sum(c) for c in _SUMS})
    for row in sums.order_by():
        result[(row["kind"], row["name"])] = KeyStats(row["kind"], row["name"], {c: row[f"s_{c}"] or 0 for c in _SUMS})
    buckets = (
        RollupBucket.objects.using(db)
        .filter(where)
        .values("kind", "name", "series", "bucket")
        .annotate(n=Sum("count"))
        .order_by()
    )
    for row in buckets:
        stats = result.get((row["kind"], row["name"]))
        if stats is not None:
            target = stats.durations if row["series"] == "d" else stats.waits
            target[row["bucket"]] = row["n"]
    return result


def _change(now: float | None, before: float | None, *, points: bool = False) -> dict[str, str]:
    """``{"text": "+12%", "css": "up"}``: a relative change, or a change in points for rates."""
    if now is None or before is None:
        return {"text": "", "css": ""}
    if points:
        delta = (now - before) * 100
        if abs(delta) < 0.05:
            return {"text": "±0", "css": ""}
        return {"text": f"{delta:+.1f} pt", "css": "up" if delta > 0 else "down"}
    if before == 0:
        return {"text": "new" if now else "", "css": "up" if now else ""}
    delta = (now - before) / before * 100
    if abs(delta) < 0.5:
        return {"text": "±0%", "css": ""}
    return {"text": f"{delta:+.0f}%", "css": "up" if delta > 0 else "down"}


def db_time(minute: int) -> dt.datetime:
    """A minute as the database's datetime columns take it (naive wall-clock time under ``USE_TZ = False``)."""
    value = to_datetime(minute)
    return value if settings.USE_TZ else timezone.make_naive(value)


def _iso(minute: int) -> str:
    return db_time(minute).isoformat()


def list_url(kind: str, name: str, window: Window) -> str:
    """The trace list filtered to traces named ``name`` of ``kind`` that started in ``window``."""
    params = {
        "kind__exact": kind,
        "name": name,
        "started_at__gte": _iso(window.start),
        "started_at__lt": _iso(window.end),
    }
    return f"{reverse('admin:agentops_django_trace_changelist')}?{urlencode(params)}"


def top_url(kind: str, name: str, window: Window, by: str) -> str:
    """The view that opens the slowest (``by="duration"``) or most expensive (``"cost"``) such trace."""
    params = {"kind": kind, "name": name, "start": window.start, "end": window.end, "by": by}
    return f"{reverse('admin:agentops_django_trace_overview_top')}?{urlencode(params)}"


def table_rows(current: dict, previous: dict, kind: str, window: Window) -> list[dict[str, Any]]:
    """The rows of one table (one kind), busiest first (most expensive first for models)."""
    rows = []
    for (row_kind, name), stats in current.items():
        if row_kind != kind:
            continue
        before = previous.get((kind, name))
        count = stats.count
        p95 = stats.p(0.95)
        cost = stats.sums["cost"]
        trace_kind = "task" if kind == "task" else "request"
        row: dict[str, Any] = {
            "name": name,
            "count": f"{count:,}",
            "count_change": _change(count, before.count if before else 0),
            "error_rate": f"{stats.error_rate * 100:.1f}%" if stats.error_rate is not None else "",
            "has_errors": bool(stats.sums["errors"]),
            "error_change": _change(stats.error_rate, before.error_rate if before else None, points=True),
            "p50": format_duration(stats.p(0.5)),
            "p95": format_duration(p95),
            "p95_change": _change(p95, before.p(0.95) if before else None),
            "p99": format_duration(stats.p(0.99)),
            "wait_p95": format_duration(stats.wait_p(0.95)) if stats.waits else "",
            "tokens": f"{int(stats.sums['input_tokens']):,} / {int(stats.sums['output_tokens']):,}",
            "cost": money(cost, int(stats.sums["unpriced_calls"])),
            "cost_change": _change(cost, before.sums["cost"] if before else 0.0) if cost else _change(None, None),
            "queries": f"{stats.sums['db_queries'] / count:.1f}" if count and stats.sums["db_queries"] else "",
            "repeated": int(stats.sums["repeated_queries"]),
            "sort": (-cost, -count) if kind == "llm" else (-count, name),
        }
        if kind != "llm":
            row["list_url"] = list_url(trace_kind, name, window)
            row["slowest_url"] = top_url(trace_kind, name, window, "duration")
            row["costliest_url"] = top_url(trace_kind, name, window, "cost")
        rows.append(row)
    rows.sort(key=lambda r: r["sort"])
    return rows


def query_rows(current: dict, limit: int = 10) -> list[dict[str, Any]]:
    """Routes and tasks by database queries per run, with their N+1 suspects (runs repeating a statement)."""
    rows = []
    for (kind, name), stats in current.items():
        queries = stats.sums["db_queries"]
        if kind == "llm" or not stats.count or not (queries or stats.sums["repeated_queries"]):
            continue
        rows.append(
            {
                "kind": kind,
                "name": name,
                "per_run": queries / stats.count,
                "per_run_text": f"{queries / stats.count:.1f}",
                "time": format_duration(stats.sums["db_time_ms"] / stats.count),
                "repeated": int(stats.sums["repeated_queries"]),
                "count": f"{stats.count:,}",
            }
        )
    rows.sort(key=lambda r: (-r["repeated"], -r["per_run"]))
    return rows[:limit]


# --- the charts ----------------------------------------------------------------------------------


def slot_minutes(length: int) -> int:
    """Minutes per chart point: up to ~170 points, hourly or coarser beyond twelve hours."""
    if length <= 180:
        return 1
    if length <= 720:
        return 5
    return 60 * max(1, math.ceil(length / 60 / 168))


def charts(window: Window, using: str | None = None) -> list[Any]:
    """Requests and tasks per minute, their p95, errors and cost over ``window``, as SVG."""
    db = using or database()
    step = slot_minutes(window.length)
    # The kind-wide rows only; periods that fit whole in a slot.
    where = rows_q(window.start, window.end, (60, 1) if step % 60 == 0 else (1,)) & Q(name=ALL)
    slot = Cast(Cast("minute", IntegerField()) / step, IntegerField())
    first = window.start // step
    slots = (window.end - 1) // step - first + 1
    per_slot: dict[str, list[float]] = defaultdict(lambda: [0.0] * slots)
    sums = (
        Rollup.objects.using(db)
        .filter(where)
        .annotate(slot=slot)
        .values("slot", "kind")
        .annotate(n=Sum("count"), e=Sum("errors"), c=Sum("cost"))
        .order_by()
    )
    for row in sums:
        index = row["slot"] - first
        if 0 <= index < slots:
            per_slot[f"{row['kind']}:n"][index] += row["n"] or 0
            per_slot["errors"][index] += row["e"] or 0
            per_slot["cost"][index] += row["c"] or 0.0
    histograms: dict[tuple[str, int], dict[int, int]] = defaultdict(dict)
    buckets = (
        RollupBucket.objects.using(db)
        .filter(where, series="d", kind__in=("request", "task"))
        .annotate(slot=slot)
        .values("slot", "kind", "bucket")
        .annotate(n=Sum("count"))
        .order_by()
    )
    for row in buckets:
        histograms[(row["kind"], row["slot"] - first)][row["bucket"]] = row["n"]
    labels = [_slot_label((first + i) * step, step) for i in range(slots)]

    def rate(kind: str) -> list[float | None]:
        return [v / step for v in per_slot[f"{kind}:n"]]

    def p95(kind: str) -> list[float | None]:
        return [_histogram.percentile(histograms.get((kind, i), {}), 0.95) for i in range(slots)]

    unit = "per minute"
    return [
        _charts.chart(
            f"Runs {unit}",
            [
                _charts.Series("requests", "ao-c-request", rate("request")),
                _charts.Series("tasks", "ao-c-task", rate("task")),
            ],
            labels,
            lambda v: f"{v:,.3g}",
        ),
        _charts.chart(
            "p95 duration",
            [
                _charts.Series("requests", "ao-c-request", p95("request")),
                _charts.Series("tasks", "ao-c-task", p95("task")),
            ],
            labels,
            format_duration,
        ),
        _charts.chart(
            "Errors", [_charts.Series("failed spans", "ao-c-error", per_slot["errors"], bars=True)], labels, _count
        ),
        _charts.chart(
            "LLM cost", [_charts.Series("US dollars", "ao-c-llm", per_slot["cost"], bars=True)], labels, _dollars
        ),
    ]


def _count(value: float) -> str:
    return f"{value:,.0f}"


def _dollars(value: float) -> str:
    """US dollars with three significant digits below a cent (LLM calls cost fractions of one)."""
    if value and abs(value) < 0.01:
        return f"${value:.3g}" if abs(value) >= 1e-4 else f"${value:.6f}".rstrip("0")
    return f"${value:,.2f}"


def money(cost: float, unpriced: int = 0) -> str:
    """A cost for the tables: like the trace list's, but small amounts keep their digits."""
    if not cost:
        return format_cost(cost, unpriced)
    text = _dollars(cost)
    return f"\u2265 {text} (+{unpriced} unpriced)" if unpriced else text


def _slot_label(minute: int, step: int) -> str:
    local = timezone.localtime(to_datetime(minute)) if settings.USE_TZ else timezone.make_naive(to_datetime(minute))
    return local.strftime("%H:%M" if step < 60 else "%d %b %H:%M")
