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
from html import escape
from typing import Any
from urllib.parse import quote

from django.utils.html import format_html
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
    """One waterfall row as HTML; every value that comes from a span is escaped.

    Rows are the one part of the page rendered outside the template: a
    trace page shows up to 2,000 of them, and the template engine's
    per-variable cost would dominate the page (so would ``format_html``'s,
    which escapes our own numbers too: here only span values are escaped,
    with the standard library's ``html.escape``, which escapes the same five
    characters as Django's). The row carries its place on the time axis
    (``data-b``/``data-e``, milliseconds from the origin, ``data-w`` for a
    queue wait), its depth and its self time, for the script's zoom, collapse
    and details panel; the script adds the collapse toggles.
    """
    span = row.span
    kind = span.get("kind") or ""
    css, badge = kind_of(kind)
    span_id = escape(str(span.get("span_id", "")))
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
    name = escape(str(span.get("name") or "(unnamed)"))
    run_ms = span.get("duration_ms")
    duration = format_duration(run_ms)
    extra = ""
    if kind == "llm":
        usage = span_usage(kind, span)
        tokens = usage.input_tokens + usage.output_tokens
        model = span.get(semconv.GEN_AI_REQUEST_MODEL)
        text = " · ".join(str(part) for part in (model, f"{tokens:,} tok" if tokens else "") if part)
        extra = f'<span class="ao-extra">{escape(text)}</span>' if text else ""
    wait = wait_ms = ""
    timing = f"{duration} running"
    shown = duration
    dur_css = "ao-dur"
    if row.wait_ms:
        # The Duration column counts the queue wait in: it is time the trace spent on this task.
        queued = format_duration(row.wait_ms)
        timing = f"{queued} queued + {timing}"
        shown = format_duration(row.wait_ms + (run_ms or 0.0))
        dur_css = "ao-dur ao-dur--queued"
        wait_ms = f' data-w="{row.wait_ms:.3f}"'
        wait = (
            f'<span class="ao-wait" style="left:{row.wait_left_pct:.3f}%;width:{row.wait_width_pct:.3f}%"'
            f' title="queued {queued}"></span>'
        )
    self_time = format_duration(row.self_ms)
    timing += f" \u00b7 self {self_time} \u00b7 at +{format_duration(row.offset_ms)}"
    if row.critical:
        timing += " \u00b7 on the critical path"
    # Long dotted and slashed names may wrap after a separator, not in the middle of a word.
    breakable = BREAK_AFTER.sub(r"\1<wbr>", name)
    return (
        f'<li class="{classes}" data-span-id="{span_id}" data-depth="{row.depth}" data-b="{row.offset_ms:.3f}"'
        f' data-e="{row.end_ms:.3f}"{wait_ms} data-self="{self_time}"'
        f' style="--d:{min(row.depth, MAX_INDENT)}" title="{timing}">'
        f'<div class="ao-cell"><a class="ao-label" href="?span={quote(span_id, safe="")}#ao-detail" title="{name}">'
        f'<span class="ao-badge">{escape(badge)}</span><span class="ao-name">{breakable}</span>{extra}</a>'
        f"{_flags(row, span)}</div>"
        f'<span class="{dur_css}">{shown}</span>'
        f'<span class="ao-track">{wait}<span class="ao-bar"'
        f' style="left:{row.left_pct:.3f}%;width:{row.width_pct:.3f}%"></span></span></li>\n'
    )
