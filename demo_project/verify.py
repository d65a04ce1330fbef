"""Reading the demo's traces back from the database: is each one complete, and the summary table.

A trace is complete when it is one tree: exactly one span without a parent
(the root, of the expected kind) and every other span's parent stored too;
every expected Celery task ran as many times as expected (a retried task
twice); the expected number of LLM calls is there; and the trace's summary
row (what the admin's list shows) counts the same spans as are stored.
Reads only the ``agentops_django`` models, as a user's own script would.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from agentops.semconv import SpanKind
from agentops_django.models import Span, Trace
from demo_project.scenario import Expected

#: What :func:`inspect` checks, in words, for the demo's closing line.
CHECKED = (
    "each trace is one tree (a single first span, every other span's parent stored), holds every Celery task "
    "run (a retried task twice) and every LLM call it caused, and the admin's list counts all its spans"
)

#: Attribute keys under which a task span may name its task (checked in order), else its span name is used.
TASK_NAME_KEYS = ("celery.task.name", "celery.task_name", "messaging.celery.task.name")


@dataclasses.dataclass
class Report:
    """What arrived of one expected trace.

    Attributes:
        expected: What should have arrived.
        name: The trace's name from its summary row ("" before it exists).
        spans: Spans stored for it.
        summary_spans: The span count of its summary row.
        tokens: Total tokens of its summary row.
        duration_ms: Its duration from its summary row.
        status: Its status from its summary row.
        missing: What is not (yet) there, in words; empty when complete.
    """

    expected: Expected
    name: str = ""
    spans: int = 0
    summary_spans: int = 0
    tokens: int = 0
    duration_ms: float | None = None
    status: str = ""
    missing: list[str] = dataclasses.field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.missing


def task_name(span: dict[str, Any]) -> str:
    """The Celery task a task span ran, from its attributes or its name."""
    attributes = span.get("attributes") or {}
    for key in TASK_NAME_KEYS:
        value = attributes.get(key)
        if isinstance(value, str) and value:
            return value
    return str(span["name"])


def _runs_of(task: str, task_spans: Iterable[dict[str, Any]]) -> int:
    return sum(1 for span in task_spans if task_name(span) == task or task in str(span["name"]))


def inspect(expected: Expected) -> Report:
    """Read one trace and say what of ``expected`` is missing."""
    report = Report(expected)
    if not expected.trace_id:
        report.missing.append("not stored yet")
        return report
    spans = list(
        Span.objects.filter(trace_id=expected.trace_id).values(
            "span_id", "parent_span_id", "name", "kind", "attributes"
        )
    )
    summary = Trace.objects.filter(trace_id=expected.trace_id).first()
    report.spans = len(spans)
    if summary is not None:
        report.name = summary.name
        report.summary_spans = summary.span_count
        report.tokens = summary.total_tokens
        report.duration_ms = summary.duration_ms
        report.status = summary.status
    missing = report.missing
    if not spans:
        missing.append("no span stored yet")
        return report

    ids = {span["span_id"] for span in spans}
    roots = [span for span in spans if not span["parent_span_id"]]
    orphans = [span for span in spans if span["parent_span_id"] and span["parent_span_id"] not in ids]
    if not roots:
        missing.append(f"its first span, the {expected.root_kind}, is not stored yet")
    elif len(roots) > 1:
        missing.append(f"split into {len(roots)} separate trees, not one")
    elif roots[0]["kind"] != expected.root_kind:
        missing.append(f"starts with a {roots[0]['kind'] or 'plain'} span, not a {expected.root_kind} span")
    if orphans:
        names = ", ".join(sorted({span["name"] for span in orphans}))
        missing.append(f"{plural(len(orphans), 'span')} not joined to the tree yet ({names})")

    task_spans = [span for span in spans if span["kind"] == SpanKind.CELERY_TASK]
    for task, runs in expected.tasks.items():
        seen = _runs_of(task, task_spans)
        if seen < runs:
            short = task.rsplit(".", 1)[-1]
            missing.append(f"task {short} has not run yet" if not seen else f"task {short} ran {seen} of {runs} times")
    llm = sum(1 for span in spans if span["kind"] == SpanKind.LLM)
    if llm < expected.llm_calls:
        missing.append(f"{llm} of {plural(expected.llm_calls, 'LLM call')} stored")
    if summary is None:
        missing.append("not in the admin's list yet")
    elif summary.span_count != len(spans):
        missing.append(f"the admin's list counts {plural(summary.span_count, 'span')}, {len(spans)} stored")
    return report


def find_task_trace(task: str, since: datetime) -> str:
    """The id of the newest trace started since ``since`` in which ``task`` ran ("" if none)."""
    candidates = (
        Span.objects.filter(kind=SpanKind.CELERY_TASK, started_at__gte=since, name__contains=task.rsplit(".", 1)[-1])
        .order_by("-started_at")
        .values_list("trace_id", flat=True)
    )
    return next(iter(candidates), "")


def wait_for(
    expected: list[Expected],
    timeout: float,
    progress: Callable[[list[Report]], None] | None = None,
    interval: float = 0.5,
) -> list[Report]:
    """Poll the database until every expected trace is complete or ``timeout`` seconds pass.

    Args:
        expected: The traces to wait for (their ``trace_id`` may be filled in later by ``progress``).
        timeout: Seconds to wait at most.
        progress: Called with the current reports after every poll.
        interval: Seconds between polls.

    Returns:
        The last reports, one per expected trace.
    """
    end = time.monotonic() + timeout
    while True:
        reports = [inspect(item) for item in expected]
        if progress is not None:
            progress(reports)
        if all(report.complete for report in reports) or time.monotonic() >= end:
            return reports
        time.sleep(interval)


def plural(count: int, noun: str) -> str:
    """``"1 span"``, ``"2 spans"``."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def progress_line(reports: list[Report]) -> str:
    """One short line: how many traces are complete, and what the others still wait for."""
    done = sum(report.complete for report in reports)
    line = f"{done} of {plural(len(reports), 'trace')} complete"
    waiting = [report for report in reports if not report.complete]
    if waiting:
        first, *others = waiting
        line += f"; waiting for {first.expected.label} ({_shorten(first.missing[0], 60)})"
        line += "".join(f", {report.expected.label}" for report in others)
    return line


def _duration(ms: float | None) -> str:
    if ms is None:
        return "-"
    return f"{ms:.0f} ms" if ms < 10_000 else f"{ms / 1000:.1f} s"


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"


def table(reports: list[Report], with_check: bool = True) -> str:
    """The traces as a plain-text table (what was done, spans, tokens, duration, status, check)."""
    header = ["", "what", "spans", "tokens", "duration", "status"] + (["check"] if with_check else [])
    rows = [header]
    for report in reports:
        row = [
            report.expected.label,
            _shorten(report.expected.description or report.name or "?", 48),
            str(report.spans),
            str(report.tokens),
            _duration(report.duration_ms),
            report.status or "-",
        ]
        if with_check:
            row.append("complete" if report.complete else "incomplete: " + "; ".join(report.missing))
        rows.append(row)
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    numeric = {2, 3, 4}
    lines = []
    for index, row in enumerate(rows):
        cells = [cell.rjust(widths[i]) if i in numeric else cell.ljust(widths[i]) for i, cell in enumerate(row)]
        lines.append("  " + "  ".join(cells).rstrip())
        if index == 0:
            lines.append("  " + "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def admin_path(trace_id: str) -> str:
    """The path of a trace's page in the demo's admin (``demo_project/urls.py`` mounts it at ``/admin/``).

    Spelled out, not reversed: reversing would import every admin module just to print a path.
    """
    return f"/admin/agentops_django/trace/{trace_id}/change/"
