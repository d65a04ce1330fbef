"""The waterfall's rows as HTML: one line per span, built with ``format_html`` (every value escaped).

Rows are the one part of the trace page rendered outside the template: a
page shows up to 2,000 of them, and the template engine's per-variable cost
would dominate it. Each row says at a glance what the span is (kind badge,
name), how it ended (error, the Celery task state, never ran, orphan), how
long it took (queue wait included) and where it sits on the time axis; it
carries its depth and times for the script's zoom and collapse.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from django.utils.html import escape, format_html
from django.utils.safestring import mark_safe

from agentops import semconv
from agentops_django._usage import span_usage
from agentops_django.admin._page import UNFINISHED_KEY, UNFINISHED_TITLE, format_duration, kind_of, trace_link

#: Where a long span name may wrap: after these separators.
BREAK_AFTER = re.compile(r"([./:])(?=\w)")
#: Deeper spans are drawn at this indentation (the tree lines stay readable).
MAX_INDENT = 24

#: Celery task states worth a badge in the row (SUCCESS is the quiet default): label, CSS modifier, tooltip.
TASK_STATES = {
    "RETRY": ("retry", "warn", "This attempt failed; Celery ran the task again"),
    "FAILURE": ("failure", "error", "The task failed"),
    "REVOKED": ("revoked", "warn", "The task was revoked"),
    "REJECTED": ("rejected", "warn", "The worker rejected the task"),
    "IGNORED": ("ignored", "quiet", "The task asked Celery to ignore its result"),
    "LOST": ("lost", "warn", "The worker never reported the task's outcome"),
}


def _flags(row: Any, span: Any) -> str:
    """The row's badges: error or failure below, the Celery task state, orphan, never ran."""
    state = str(span.get(semconv.CELERY_TASK_STATE) or "").upper()
    if str(span.get(semconv.CELERY_TASK_RETRIED)).lower() in ("true", "1"):
        state = "RETRY"
    flags = ""
    if state in TASK_STATES:
        label, css, title = TASK_STATES[state]
        flags = format_html('<span class="ao-flag ao-flag--{}" title="{}">{}</span>', css, title, label)
    elif row.error:
        flags = mark_safe('<span class="ao-flag ao-flag--error">error</span>')
    if row.contains_error and not row.error:
        flags = format_html(
            '{}<span class="ao-flag ao-flag--contains" title="A span below this one failed">&#9888;</span>', flags
        )
    if row.orphan:
        flags = format_html('{}<span class="ao-flag ao-flag--orphan" title="{}">orphan</span>', flags, row.orphan)
    if span.get(UNFINISHED_KEY):
        flags = format_html(
            '{}<span class="ao-flag ao-flag--error" title="{}">never ran</span>', flags, UNFINISHED_TITLE
        )
    for link in span.get("links") or ():
        url = trace_link(link.get("trace_id")) if isinstance(link, dict) else None
        if url:
            flags = format_html(
                '{}<a class="ao-linked" href="{}" title="Open the linked trace">linked&nbsp;&#8599;</a>', flags, url
            )
    return flags


def row_html(row: Any, selected_id: str) -> str:
    """One waterfall row as HTML, built with ``format_html`` (every value escaped).

    Rows are the one part of the page rendered outside the template: a
    trace page shows up to 2,000 of them, and the template engine's
    per-variable cost would dominate the page. The row carries its place on
    the time axis (``data-b``/``data-e``, milliseconds from the origin, and
    ``data-w`` for a queue wait) and its depth, for the script's zoom and
    collapse.
    """
    span = row.span
    kind = span.get("kind") or ""
    css, badge = kind_of(kind)
    span_id = str(span.get("span_id", ""))
    classes = f"ao-row ao-k-{css}"
    if row.error:
        classes += " ao-error"
    if row.contains_error:
        classes += " ao-contains-error"
    if row.orphan:
        classes += " ao-orphan"
    if row.critical:
        classes += " ao-critical"
    if span_id == selected_id:
        classes += " ao-selected"
    name = span.get("name") or "(unnamed)"
    run_ms = span.get("duration_ms")
    duration = format_duration(run_ms)
    extra = ""
    if kind == "llm":
        usage = span_usage(kind, span)
        tokens = usage.input_tokens + usage.output_tokens
        model = span.get(semconv.GEN_AI_REQUEST_MODEL)
        text = " · ".join(str(part) for part in (model, f"{tokens:,} tok" if tokens else "") if part)
        extra = format_html('<span class="ao-extra">{}</span>', text) if text else ""
    wait = ""
    timing = f"{duration} running"
    shown = duration
    if row.wait_ms:
        # The Duration column counts the queue wait in: it is time the trace spent on this task.
        timing = f"{format_duration(row.wait_ms)} queued + {timing}"
        shown = format_duration(row.wait_ms + (run_ms or 0.0))
        wait = format_html(
            '<span class="ao-wait" style="left:{}%;width:{}%" title="queued {}"></span>',
            f"{row.wait_left_pct:.3f}",
            f"{row.wait_width_pct:.3f}",
            format_duration(row.wait_ms),
        )
    timing += f" \u00b7 self {format_duration(row.self_ms)} \u00b7 starts at +{format_duration(row.offset_ms)}"
    if row.critical:
        timing += " \u00b7 on the critical path"
    toggle = (
        mark_safe('<button type="button" class="ao-toggle" aria-expanded="true" title="Collapse or expand"></button>')
        if row.children
        else ""
    )
    # Long dotted and slashed names may wrap after a separator, not in the middle of a word.
    breakable = mark_safe(BREAK_AFTER.sub(r"\1<wbr>", str(escape(name))))
    return format_html(
        '<li class="{}" data-span-id="{}" data-depth="{}" data-b="{}" data-e="{}" data-w="{}" data-self="{}"'
        ' style="--d:{}" title="{}">'
        '<div class="ao-cell">{}<a class="ao-label" href="?span={}#ao-detail" title="{}">'
        '<span class="ao-badge">{}</span><span class="ao-name">{}</span>{}</a>{}</div>'
        '<span class="ao-dur{}">{}</span>'
        '<span class="ao-track">{}<span class="ao-bar" style="left:{}%;width:{}%"></span></span>'
        "</li>\n",
        classes,
        span_id,
        row.depth,
        f"{row.offset_ms:.3f}",
        f"{row.end_ms:.3f}",
        f"{row.wait_ms:.3f}" if row.wait_ms else "0",
        format_duration(row.self_ms),
        min(row.depth, MAX_INDENT),
        timing,
        toggle,
        quote(span_id, safe=""),
        name,
        badge,
        breakable,
        extra,
        _flags(row, span),
        " ao-dur--queued" if row.wait_ms else "",
        shown,
        wait,
        f"{row.left_pct:.3f}",
        f"{row.width_pct:.3f}",
    )
