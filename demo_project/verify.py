"""Reading the demo's traces back from the database: is each one whole, and the summary table.

A trace is whole when it has exactly one root span of the expected kind,
every span's parent is in the trace, every expected Celery task ran as many
times as expected (a retried task twice), the expected number of LLM calls
is there, and the trace's summary row counts the same spans as are stored.
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
        missing: What is not (yet) there, in words; empty when whole.
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
    def whole(self) -> bool:
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
        report.missing.append("no trace yet")
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
        missing.append("no spans yet")
        return report

    ids = {span["span_id"] for span in spans}
    roots = [span for span in spans if not span["parent_span_id"]]
    orphans = [span for span in spans if span["parent_span_id"] and span["parent_span_id"] not in ids]
    if not roots:
        missing.append("no root span yet")
    elif len(roots) > 1:
        missing.append(f"{len(roots)} root spans, not 1")
    elif roots[0]["kind"] != expected.root_kind:
        missing.append(f"root is a {roots[0]['kind'] or 'span'} span, not a {expected.root_kind} span")
    if orphans:
        missing.append(
            f"{len(orphans)} span(s) whose parent is missing ({', '.join(sorted({s['name'] for s in orphans}))})"
        )

    task_spans = [span for span in spans if span["kind"] == SpanKind.CELERY_TASK]
    for task, runs in expected.tasks.items():
        seen = _runs_of(task, task_spans)
        if seen < runs:
            missing.append(f"{task.rsplit('.', 1)[-1]} {seen}/{runs}")
    llm = sum(1 for span in spans if span["kind"] == SpanKind.LLM)
    if llm < expected.llm_calls:
        missing.append(f"LLM calls {llm}/{expected.llm_calls}")
    if summary is None:
        missing.append("no trace summary row")
    elif summary.span_count != len(spans):
        missing.append(f"summary counts {summary.span_count} spans, {len(spans)} stored")
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
    """Poll the database until every expected trace is whole or ``timeout`` seconds pass.

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
        if all(report.whole for report in reports) or time.monotonic() >= end:
            return reports
        time.sleep(interval)


def progress_line(reports: list[Report]) -> str:
    """One line: each trace's span count, and what it still waits for."""
    parts = []
    for report in reports:
        state = "whole" if report.whole else "waiting: " + report.missing[0]
        parts.append(f"{report.expected.label}: {report.spans} spans, {state}")
    return " | ".join(parts)


def _duration(ms: float | None) -> str:
    if ms is None:
        return "-"
    return f"{ms:.0f} ms" if ms < 10_000 else f"{ms / 1000:.1f} s"


def table(reports: list[Report], with_check: bool = True) -> str:
    """The traces as a plain-text table (name, spans, tokens, duration, status)."""
    header = ["", "trace", "spans", "tokens", "duration", "status"] + (["check"] if with_check else [])
    rows = [header]
    for report in reports:
        row = [
            report.expected.label,
            report.name or report.expected.trace_id[:16] or "?",
            str(report.spans),
            str(report.tokens),
            _duration(report.duration_ms),
            report.status or "-",
        ]
        if with_check:
            row.append("whole" if report.whole else "INCOMPLETE: " + "; ".join(report.missing))
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
