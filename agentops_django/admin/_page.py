"""What the trace page shows: the waterfall's query, one span's details, and how numbers read.

Kept apart from :mod:`agentops_django.admin` (the ModelAdmin: permissions,
URLs, views) so each stays readable; the rows themselves are drawn by
:mod:`agentops_django.admin._rows`. Every value a traced application put in a
span is escaped: details go through autoescaped templates.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from typing import Any

from django.db.models.fields.json import KT
from django.urls import reverse

from agentops import semconv
from agentops_django._usage import USAGE_KEYS, number, span_usage
from agentops_django.models import Span, Trace, WriterStats

HEX32 = re.compile(r"[0-9a-fA-F]{32}")

#: The marks of an LLM span whose call another span counts (agentops_django._usage).
_COUNTED_ELSEWHERE = frozenset({semconv.AGENTOPS_LLM_INSIDE_CALL, semconv.AGENTOPS_LLM_SAME_CALL_AS})
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
    # RETRY for a retried attempt (it also carries celery.task.retried, not fetched: one column fewer).
    "a_state": semconv.CELERY_TASK_STATE,
    # What the totals rule reads (agentops_django._usage).
    **{f"a_usage_{n}": key for n, key in enumerate(USAGE_KEYS)},
}
ROW_FIELDS = ("span_id", "parent_span_id", "name", "kind", "status", "started_at", "duration_ms", "links")

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
    """A short human duration: ``0.40 ms``, ``4.2 ms``, ``12 ms``, ``1.25 s``, ``2 min 03 s``."""
    if ms is None:
        return DASH
    if ms < 1:
        return f"{ms:.2f} ms"
    if ms < 10:
        return f"{ms:.1f} ms"
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
    if cost < 0.0001:
        # Two significant digits, never "$0.0000" for a call that did cost something.
        return f"${cost:.{1 - math.floor(math.log10(cost))}f}" if cost > 0 else f"${cost:.4f}"
    return f"${cost:.4f}" if cost < 1 else f"${cost:,.2f}"


def kind_of(kind: str) -> tuple[str, str]:
    """CSS modifier and badge label of a span kind; unknown kinds get a neutral badge."""
    if kind in KINDS:
        return KINDS[kind]
    return ("other", (kind or "span").upper())


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


def _number_text(key: str, value: int | float) -> str:
    """A number as a person reads it: milliseconds and seconds as durations, costs in dollars, counts grouped."""
    if key.endswith("_ms"):
        return format_duration(float(value))
    if key.endswith((".time_to_first_token", ".time_to_generate", ".time_to_first_chunk")):
        return format_duration(float(value) * 1000)
    if "cost" in key.rsplit(".", 1)[-1]:
        return format_cost(float(value)) if value > 0 else f"${value:g}"
    if isinstance(value, int):
        return f"{value:,}"
    if value.is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    return f"{value:,.4g}" if abs(value) < 1e4 else f"{value:,.1f}"


def _payload(value: Any, key: str = "") -> dict[str, Any]:
    """A value ready for display: its text (JSON pretty-printed, numbers formatted), and whether to collapse it.

    A formatted number keeps the stored value in ``raw`` (shown on hover).
    """
    raw = ""
    if isinstance(value, str):
        text = value
        stripped = value.strip()
        if stripped[:1] in "[{" and len(stripped) > 1:
            try:
                text = json.dumps(json.loads(stripped), indent=2, ensure_ascii=False)
            except ValueError:
                pass
    elif isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        raw = json.dumps(value)
        text = _number_text(key, value)
        if text == raw:
            raw = ""
    else:
        text = json.dumps(value, indent=2, ensure_ascii=False, default=str)
    long = len(text) > COLLAPSE_OVER or "\n" in text
    return {"text": text, "raw": raw, "long": long, "preview": text[:120].replace("\n", " "), "size": len(text)}


def _is_text_part(part: Any) -> bool:
    return isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("content"), str)


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
            if isinstance(content, list) and all(_is_text_part(part) for part in content):
                content = "\n".join(part["content"] for part in content)  # the GenAI conventions' text parts
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


#: What the LLM panel lists as the call's parameters: label → attribute.
LLM_PARAMETERS = (
    ("Temperature", semconv.GEN_AI_REQUEST_TEMPERATURE),
    ("Max tokens", semconv.GEN_AI_REQUEST_MAX_TOKENS),
    ("Top p", semconv.GEN_AI_REQUEST_TOP_P),
    ("Top k", semconv.GEN_AI_REQUEST_TOP_K),
    ("Frequency penalty", semconv.GEN_AI_REQUEST_FREQUENCY_PENALTY),
    ("Presence penalty", semconv.GEN_AI_REQUEST_PRESENCE_PENALTY),
    ("Seed", semconv.GEN_AI_REQUEST_SEED),
    ("Stop", semconv.GEN_AI_REQUEST_STOP_SEQUENCES),
    ("Choices", semconv.GEN_AI_REQUEST_CHOICE_COUNT),
    ("Streamed", semconv.GEN_AI_REQUEST_STREAM),
)


def _finish_reasons(value: Any) -> str:
    """``gen_ai.response.finish_reasons`` (a list, or a JSON string of one) as ``stop, length``."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return value
    if isinstance(value, list | tuple):
        return ", ".join(str(reason) for reason in value)
    return "" if value is None else str(value)


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
                    "attributes": [(k, _payload(v, k)) for k, v in event_attributes.items()],
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
    shown_above: set[str] = set()
    if span.kind == "llm":
        # The call's own usage, even when its enclosing LLM span is the one the totals count.
        inside_call = attributes.get(semconv.AGENTOPS_LLM_INSIDE_CALL) is True
        same_call_as = attributes.get(semconv.AGENTOPS_LLM_SAME_CALL_AS) or ""
        own = {k: v for k, v in attributes.items() if k not in _COUNTED_ELSEWHERE}
        input_tokens, output_tokens, cost, unpriced = span_usage(span.kind, own)
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
            "input_messages": _messages(attributes.get(semconv.GEN_AI_INPUT_MESSAGES)),
            "output_messages": _messages(attributes.get(semconv.GEN_AI_OUTPUT_MESSAGES)),
            "finish_reasons": _finish_reasons(attributes.get(semconv.GEN_AI_RESPONSE_FINISH_REASONS)),
            "parameters": [
                (label, _payload(attributes[key], key)["text"])
                for label, key in LLM_PARAMETERS
                if attributes.get(key) is not None
            ],
            "inside_call": inside_call,
            "same_call_as": same_call_as,
            "dialect": attributes.get(semconv.AGENTOPS_LLM_DIALECT, ""),
        }
        # The messages are shown once, as messages, not again among the attributes.
        if llm["input_messages"]:
            shown_above.add(semconv.GEN_AI_INPUT_MESSAGES)
        if llm["output_messages"]:
            shown_above.add(semconv.GEN_AI_OUTPUT_MESSAGES)
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
        "attributes": [
            (key, _payload(value, key)) for key, value in sorted(attributes.items()) if key not in shown_above
        ],
        "shown_above": len(shown_above),
        "exceptions": exceptions,
        "events": events,
        "links": links,
        "llm": llm,
        "queries": span_queries(attributes),
    }


def span_queries(attributes: dict[str, Any]) -> dict[str, Any] | None:
    """The SQL a request or task ran (``agentops.db.*``), for the detail panel; ``None`` if not recorded.

    The recorder lists repeated statements first, so the first
    ``repeated_queries`` of the top statements are the N+1 suspects.
    """
    count = number(attributes.get(semconv.AGENTOPS_DB_QUERY_COUNT))
    if count is None:
        return None
    repeated = int(number(attributes.get(semconv.AGENTOPS_DB_REPEATED_QUERIES)) or 0)
    try:
        top = json.loads(attributes.get(semconv.AGENTOPS_DB_TOP_QUERIES) or "[]")
    except (TypeError, ValueError):
        top = []
    statements = []
    for index, entry in enumerate(top if isinstance(top, list) else []):
        if isinstance(entry, dict):
            statements.append(
                {
                    "sql": _payload(str(entry.get("sql", ""))),
                    "count": f"{int(number(entry.get('count')) or 0):,}",
                    "time": format_duration(number(entry.get("time_ms"))),
                    "suspect": index < repeated,
                }
            )
    return {
        "count": f"{int(count):,}",
        "time": format_duration(number(attributes.get(semconv.AGENTOPS_DB_QUERY_TIME_MS)) or 0.0),
        "repeated": repeated,
        "statements": statements,
    }
