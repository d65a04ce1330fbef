"""What the trace page shows: the waterfall's rows as HTML and one span's details.

Kept apart from :mod:`agentops_django.admin` (the ModelAdmin: permissions,
URLs, views) so each stays readable. Every value a traced application put in a
span is escaped here: rows are built with ``format_html``, details go through
autoescaped templates.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any
from urllib.parse import quote

from django.db.models.fields.json import KT
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from agentops import semconv
from agentops_django._usage import USAGE_KEYS, number, span_usage
from agentops_django.models import Span, Trace, WriterStats

HEX32 = re.compile(r"[0-9a-fA-F]{32}")

#: Shown for an empty value.
DASH = "\u2013"
#: Longer attribute values are collapsed behind a <details>.
COLLAPSE_OVER = 240

#: Span kind → (CSS modifier, label). Anything else is "other" with its own name.
KINDS = {
    "request": ("request", "REQ"),
    "publish": ("publish", "PUB"),
    "celery.task": ("task", "TASK"),
    "task": ("task", "TASK"),
    "agent": ("agent", "AGENT"),
    "tool": ("tool", "TOOL"),
    "llm": ("llm", "LLM"),
    "workflow": ("agent", "FLOW"),
    # A trace root: AgentOps calls its kind "session" ("trace" in spans stored before).
    "session": ("other", "TRACE"),
    "trace": ("other", "TRACE"),
}

#: Flattened into each row of the waterfall query: alias → attribute key.
ROW_ATTRIBUTES = {
    "a_wait": semconv.CELERY_QUEUE_WAIT_MS,
    "a_model": semconv.GEN_AI_REQUEST_MODEL,
    "a_new_trace": semconv.CELERY_NEW_TRACE,
    # What the totals rule reads (agentops_django._usage).
    **{f"a_usage_{n}": key for n, key in enumerate(USAGE_KEYS)},
}
ROW_FIELDS = ("span_id", "parent_span_id", "name", "kind", "status", "started_at", "duration_ms", "links")
#: Deeper spans are drawn at this indentation (the tree lines stay readable).
MAX_INDENT = 24


UNFINISHED_KEY = "unfinished"
UNFINISHED_TITLE = "Published, but no worker ever reported running this task (worker killed, message lost)"


def mark_unfinished_publishes(rows: list[dict[str, Any]], now: dt.datetime, after_seconds: Any) -> int:
    """Mark publish spans whose task never reported back; return how many.

    A task's span is the child of the span that published it, so a publish
    span with no child, older than ``after_seconds``, is a task that never
    finished anywhere (a killed worker, a lost message) — unless the task was
    sent to start a trace of its own (``celery.new_trace``).
    """
    try:
        horizon = now - dt.timedelta(seconds=float(after_seconds))
    except (TypeError, ValueError):
        horizon = now - dt.timedelta(seconds=300)
    parents = {row["parent_span_id"] for row in rows if row["parent_span_id"]}
    count = 0
    for row in rows:
        if (
            row["kind"] == "publish"
            and row["span_id"] not in parents
            and str(row.get("celery.new_trace")).lower() not in ("true", "1")
            and row["ended_at"] < horizon
        ):
            row[UNFINISHED_KEY] = True
            count += 1
    return count


def format_duration(ms: float | None) -> str:
    """A short human duration: ``0.4 ms``, ``12 ms``, ``1.25 s``, ``2 min 03 s``."""
    if ms is None:
        return DASH
    if ms < 1:
        return f"{ms:.2f} ms"
    if ms < 1000:
        return f"{ms:.0f} ms"
    if ms < 60_000:
        return f"{ms / 1000:.2f} s"
    minutes, seconds = divmod(int(ms // 1000), 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def format_cost(cost: float | None, unpriced: int = 0) -> str:
    """A cost for display; with unpriced LLM calls, says what it leaves out ("unknown", never $0)."""
    if unpriced:
        if not cost:
            return "unknown"
        return f"\u2265 {format_cost(cost)} ({unpriced} call{'s' if unpriced != 1 else ''} without a price)"
    if not cost:
        return DASH
    return f"${cost:.4f}" if cost < 1 else f"${cost:,.2f}"


def kind_of(kind: str) -> tuple[str, str]:
    """CSS modifier and badge label of a span kind; unknown kinds get a neutral badge."""
    if kind in KINDS:
        return KINDS[kind]
    return ("other", (kind or "span")[:6].upper())


def trace_link(trace_id: Any) -> str | None:
    """The admin URL of a trace id, or ``None`` for anything but 32 hex digits (never a raw value)."""
    if isinstance(trace_id, str) and HEX32.fullmatch(trace_id):
        return reverse("admin:agentops_django_trace_change", args=[trace_id.lower()])
    return None


# --- list filters --------------------------------------------------------------------------------


def span_rows(trace: Trace) -> list[dict[str, Any]]:
    """The waterfall's one query: light columns plus a few attributes pulled out as text by the database."""
    extracted = [KT(f"attributes__{key}") for key in ROW_ATTRIBUTES.values()]
    names = (*ROW_FIELDS, *ROW_ATTRIBUTES.values())
    # The trace's own database (AGENTOPS["DATABASE_ALIAS"], router or not).
    spans = Span.objects.using(trace._state.db).filter(trace_id=trace.trace_id).order_by("started_at")
    tuples = spans.values_list(*ROW_FIELDS, *extracted)
    rows = [dict(zip(names, values, strict=True)) for values in tuples]
    for row in rows:
        # The end from the duration: half the datetime parsing of a 10,000-span trace.
        row["ended_at"] = row["started_at"] + dt.timedelta(milliseconds=row["duration_ms"] or 0.0)
    return rows


def row_html(row: Any, selected_id: str) -> str:
    """One waterfall row as HTML, built with ``format_html`` (every value escaped).

    Rows are the one part of the page rendered outside the template: a
    trace page shows up to 2,000 of them, and the template engine's
    per-variable cost would dominate the page.
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
    if span_id == selected_id:
        classes += " ao-selected"
    name = span.get("name") or "(unnamed)"
    duration = format_duration(span.get("duration_ms"))
    extra = ""
    if kind == "llm":
        usage = span_usage(kind, span)
        tokens = usage.input_tokens + usage.output_tokens
        model = span.get(semconv.GEN_AI_REQUEST_MODEL)
        text = " · ".join(str(part) for part in (model, f"{tokens:,} tok" if tokens else "") if part)
        extra = format_html('<span class="ao-extra">{}</span>', text) if text else ""
    if row.error:
        flags = mark_safe('<span class="ao-flag ao-flag--error">error</span>')
    elif row.contains_error:
        flags = mark_safe('<span class="ao-flag ao-flag--contains" title="A span below this one failed">&#9888;</span>')
    else:
        flags = ""
    if row.orphan:
        flags = format_html('{}<span class="ao-flag ao-flag--orphan" title="{}">orphan</span>', flags, row.orphan)
    if span.get(UNFINISHED_KEY):
        flags = format_html(
            '{}<span class="ao-flag ao-flag--error" title="{}">never ran</span>', flags, UNFINISHED_TITLE
        )
    links = ""
    for link in span.get("links") or ():
        url = trace_link(link.get("trace_id")) if isinstance(link, dict) else None
        if url:
            links = format_html(
                '{}<a class="ao-linked" href="{}" title="Open the linked trace">linked&nbsp;&#8599;</a>', links, url
            )
    wait = ""
    if row.wait_width_pct:
        wait = format_html(
            '<span class="ao-wait" style="left:{}%;width:{}%" title="queued {}"></span>',
            f"{row.wait_left_pct:.3f}",
            f"{row.wait_width_pct:.3f}",
            format_duration(row.wait_ms),
        )
    return format_html(
        '<li class="{}" data-span-id="{}" style="--d:{}">'
        '<a class="ao-label" href="?span={}#ao-detail" title="{} \u00b7 {} \u00b7 starts at +{}">'
        '<span class="ao-badge">{}</span><span class="ao-name">{}</span>{}{}</a>{}'
        '<span class="ao-dur">{}</span>'
        '<span class="ao-track">{}<span class="ao-bar" style="left:{}%;width:{}%"></span></span></li>\n',
        classes,
        span_id,
        min(row.depth, MAX_INDENT),
        quote(span_id, safe=""),
        name,
        duration,
        format_duration(row.offset_ms),
        badge,
        name,
        extra,
        flags,
        links,
        duration,
        wait,
        f"{row.left_pct:.3f}",
        f"{row.width_pct:.3f}",
    )


def _payload(value: Any) -> dict[str, Any]:
    """A value ready for display: its text (JSON pretty-printed), and whether to collapse it."""
    if isinstance(value, str):
        text = value
        stripped = value.strip()
        if stripped[:1] in "[{" and len(stripped) > 1:
            try:
                text = json.dumps(json.loads(stripped), indent=2, ensure_ascii=False)
            except ValueError:
                pass
    else:
        text = json.dumps(value, indent=2, ensure_ascii=False, default=str)
    long = len(text) > COLLAPSE_OVER or "\n" in text
    return {"text": text, "long": long, "preview": text[:120].replace("\n", " "), "size": len(text)}


def _messages(value: Any) -> list[dict[str, Any]]:
    """``gen_ai.*.messages`` (a JSON string of a list) as role + content pairs; [] if unreadable."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return []
    if not isinstance(value, list):
        return []
    messages = []
    for message in value:
        if isinstance(message, dict):
            role = str(message.get("role", ""))
            content = message.get("content", message.get("parts", ""))
            if not isinstance(content, str):
                content = json.dumps(content, indent=2, ensure_ascii=False, default=str)
        else:
            role, content = "", json.dumps(message, ensure_ascii=False, default=str)
        messages.append({"role": role, "content": content, "long": len(content) > 600, "size": f"{len(content):,}"})
    return messages


def _offset(value: Any, origin: dt.datetime | None) -> str:
    if origin is None or not isinstance(value, str | int | float):
        return ""
    if isinstance(value, str):
        try:
            when = dt.datetime.fromisoformat(value)
        except ValueError:
            return ""
    else:
        when = dt.datetime.fromtimestamp(value / 1e9, tz=dt.UTC)
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return "+" + format_duration((when - origin).total_seconds() * 1000)


def process_label(span: Span) -> str:
    """The process that ended the span: role, host, pid, worker node and pool child; ``""`` if not recorded."""
    if span.process_id is None:
        return ""
    process = WriterStats.objects.using(span._state.db).filter(pk=span.process_id).first()
    return process.label if process is not None else f"process #{span.process_id} (its record was pruned)"


def span_detail(span: Span, origin: dt.datetime | None) -> dict[str, Any]:
    """Everything the detail panel shows about one span, prepared for autoescaped templates."""
    attributes = span.attributes if isinstance(span.attributes, dict) else {}
    css, badge = kind_of(span.kind)
    exceptions, events = [], []
    for event in span.events if isinstance(span.events, list) else []:
        if not isinstance(event, dict):
            continue
        given = event.get("attributes")
        event_attributes: dict[str, Any] = given if isinstance(given, dict) else {}
        when = _offset(event.get("timestamp", event.get("time_unix_nano", event.get("time"))), origin)
        if event.get("name") == "exception":
            exceptions.append(
                {
                    "type": event_attributes.get("exception.type", ""),
                    "message": event_attributes.get("exception.message", ""),
                    "stacktrace": event_attributes.get("exception.stacktrace", ""),
                    "when": when,
                }
            )
        else:
            events.append(
                {
                    "name": event.get("name", ""),
                    "when": when,
                    "attributes": [(k, _payload(v)) for k, v in event_attributes.items()],
                }
            )
    links = []
    for link in span.links if isinstance(span.links, list) else []:
        if isinstance(link, dict):
            links.append(
                {
                    "trace_id": str(link.get("trace_id", "")),
                    "span_id": str(link.get("span_id", "")),
                    "url": trace_link(link.get("trace_id")),
                }
            )
    llm = None
    if span.kind == "llm":
        input_tokens, output_tokens, cost, unpriced = span_usage(span.kind, attributes)
        first_token = number(attributes.get(semconv.GEN_AI_STREAMING_TIME_TO_FIRST_TOKEN))
        llm = {
            "system": attributes.get("gen_ai.system", ""),
            "model": attributes.get("gen_ai.request.model", ""),
            "response_model": attributes.get("gen_ai.response.model", ""),
            "input_tokens": f"{input_tokens:,}",
            "output_tokens": f"{output_tokens:,}",
            "total_tokens": f"{input_tokens + output_tokens:,}",
            "cost": format_cost(cost, unpriced),
            "unpriced_reason": attributes.get(semconv.AGENTOPS_COST_UNPRICED_REASON, "") if unpriced else "",
            "time_to_first_token": format_duration(first_token * 1000) if first_token is not None else "",
            "input_messages": _messages(attributes.get("gen_ai.input.messages")),
            "output_messages": _messages(attributes.get("gen_ai.output.messages")),
        }
    wait = attributes.get("celery.queue_wait_ms")
    return {
        "span_id": span.span_id,
        "parent_span_id": span.parent_span_id,
        "name": span.name,
        "kind": span.kind,
        "kind_css": css,
        "badge": badge,
        "status": span.status,
        "error": span.status == "ERROR",
        "status_message": span.status_message,
        "service_name": span.service_name,
        "process": process_label(span),
        "started_at": span.started_at,
        "offset": "+" + format_duration((span.started_at - origin).total_seconds() * 1000) if origin else "",
        "duration": format_duration(span.duration_ms),
        "queue_wait": format_duration(number(wait) or 0.0) if wait is not None else "",
        "task_id": attributes.get("celery.task.id", ""),
        "attributes": [(key, _payload(value)) for key, value in sorted(attributes.items())],
        "exceptions": exceptions,
        "events": events,
        "links": links,
        "llm": llm,
    }
