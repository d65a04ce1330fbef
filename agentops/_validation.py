"""``validate_trace_spans``: check that a trace was recorded, against what was recorded here.

AgentOps' version asks AgentOps' service for the trace. Here the answer comes
from two places, merged by span id:

* what this process exported: a small, bounded record of the spans of the
  latest traces (names, ids, kinds and token usage, never payloads), kept by a
  span hook;
* the *trace sources* an integration registers with :func:`add_trace_source`,
  which see spans other processes wrote too: ``agentops_django`` can answer
  from its database. The SDK itself never imports Django.

Validation retries as AgentOps' does (``max_retries`` times, ``retry_delay`` apart), since
spans of other processes may still be on their way.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from opentelemetry import trace as trace_api
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import Status

from agentops import semconv
from agentops._guard import capture_internal_exceptions
from agentops._state import flush

logger = logging.getLogger(__name__)

#: Traces whose spans are kept (the oldest is forgotten first).
MAX_TRACES = 256
#: Spans kept per trace (later ones are counted, not kept).
MAX_SPANS_PER_TRACE = 1_000

#: The attributes a span record keeps of an LLM span (what validation and its metrics read);
#: of other spans only the kind (and a tool's cost) is kept.
LLM_ATTRIBUTES = (
    semconv.GEN_AI_SYSTEM,
    semconv.GEN_AI_OPERATION_NAME,
    semconv.GEN_AI_REQUEST_MODEL,
    semconv.GEN_AI_USAGE_INPUT_TOKENS,
    semconv.GEN_AI_USAGE_OUTPUT_TOKENS,
    semconv.GEN_AI_USAGE_COST,
    semconv.GEN_AI_USAGE_TOTAL_COST,
)
_LLM_OPERATIONS = frozenset({"chat", "completion", "text_completion", "generate_content", "embeddings"})

#: A trace source: given a trace id (32 hex digits), span records (see :func:`add_trace_source`), or None.
TraceSource = Callable[[str], Iterable[Mapping[str, Any]] | None]


class ValidationError(Exception):
    """Raised by :func:`validate_trace_spans` when the trace is missing spans (or LLM activity)."""


# Reentrant: a span may end (and be recorded) while a record is being made, e.g. from a finalizer.
_lock = threading.RLock()
#: Per trace id (an int): (span id, parent span id, name, kept attributes, status) of each span.
_traces: collections.OrderedDict[int, list[tuple[int, int | None, str, dict[str, Any], Status]]] = (
    collections.OrderedDict()
)
_sources: list[TraceSource] = []
#: Sources that already hold every span this process ends (a database writer):
#: while there is one, the local record is not kept (it costs every span).
_covering: list[TraceSource] = []


def record_span(span: ReadableSpan) -> None:
    """Keep a small record of ``span`` (a span hook: runs as each span ends, so it stays cheap).

    Ids and the status are kept raw and formatted when read.
    """
    if _covering:
        return
    context = span.get_span_context()
    if context is None:
        return
    trace_id = context.trace_id
    with _lock:
        spans = _traces.get(trace_id)
        if spans is None:
            spans = _traces[trace_id] = []
            while len(_traces) > MAX_TRACES:
                _traces.popitem(last=False)
        elif len(spans) >= MAX_SPANS_PER_TRACE:
            return
    attributes = span.attributes or {}
    kept: dict[str, Any] = {}
    # One lookup for most spans: a missing key costs an exception in OpenTelemetry's mapping.
    kind = attributes.get(semconv.AGENTOPS_SPAN_KIND)
    if kind is not None:
        kept[semconv.AGENTOPS_SPAN_KIND] = kind
    if kind == semconv.SpanKind.LLM or (kind is None and semconv.GEN_AI_OPERATION_NAME in attributes):
        for key in LLM_ATTRIBUTES:
            value = attributes.get(key)
            if value is not None:
                kept[key] = value
    elif kind == semconv.SpanKind.TOOL:
        cost = attributes.get(semconv.AGENTOPS_TOOL_COST)
        if cost is not None:
            kept[semconv.AGENTOPS_TOOL_COST] = cost
    parent = span.parent
    spans.append((context.span_id, parent.span_id if parent is not None else None, span.name, kept, span.status))


def recorded_spans(trace_id: str) -> list[dict[str, Any]]:
    """The span records this process kept for ``trace_id`` (in the order the spans ended).

    Args:
        trace_id: 32 hex digits.

    Returns:
        Span records, as :func:`add_trace_source` describes them.
    """
    try:
        key = int(trace_id, 16)
    except ValueError:
        return []
    with _lock:
        spans = list(_traces.get(key, ()))
    return [
        {
            "trace_id": format(key, "032x"),
            "span_id": format(span_id, "016x"),
            "parent_span_id": format(parent_id, "016x") if parent_id is not None else None,
            "span_name": name,
            "span_attributes": dict(kept),
            "status": status.status_code.name,
        }
        for span_id, parent_id, name, kept, status in spans
    ]


def forget_recorded_spans() -> None:
    """Drop every record (for tests)."""
    with _lock:
        _traces.clear()


def add_trace_source(source: TraceSource, *, covers_this_process: bool = False) -> None:
    """Let :func:`validate_trace_spans` also ask ``source`` for a trace's spans.

    A source is called with the trace id as 32 lowercase hex digits and
    returns span records (or ``None`` when it knows nothing): mappings with
    ``span_id`` and ``parent_span_id`` (16 hex digits, ``None`` for a root),
    ``span_name``, ``span_attributes`` (a mapping; at least
    ``agentops.span.kind`` and the ``gen_ai.usage.*`` counts) and ``status``
    (``"OK"``, ``"ERROR"`` or ``"UNSET"``). Its errors are logged, counted and
    ignored. ``agentops_django`` registers one that reads its database.

    A source that ``covers_this_process`` already receives every span this
    process ends (``agentops_django``'s, while its database writer runs): the
    SDK then keeps no local record of its own, which would cost every span.

    Args:
        source: The callable; adding it twice adds it once (the last flag counts).
        covers_this_process: Whether it sees every span this process ends.
    """
    with _lock:
        if source not in _sources:
            _sources.append(source)
        if covers_this_process and source not in _covering:
            _covering.append(source)
        elif not covers_this_process and source in _covering:
            _covering.remove(source)


def forget_sources() -> None:
    """Forget every trace source (``agentops`` being reset)."""
    with _lock:
        _sources.clear()
        _covering.clear()


def remove_trace_source(source: TraceSource) -> None:
    """Stop asking ``source`` (see :func:`add_trace_source`)."""
    with _lock:
        if source in _sources:
            _sources.remove(source)
        if source in _covering:
            _covering.remove(source)


def _collect(trace_id: str) -> list[dict[str, Any]]:
    spans: dict[str, dict[str, Any]] = {}
    with _lock:
        sources = list(_sources)
    for source in sources:
        with capture_internal_exceptions("trace source"):
            for span in source(trace_id) or ():
                record = dict(span)
                spans.setdefault(str(record.get("span_id")), record)
    for record in recorded_spans(trace_id):
        spans.setdefault(record["span_id"], record)
    return list(spans.values())


def _number(value: Any) -> float:
    try:
        return float(value or 0)
    except (TypeError, ValueError):
        return 0.0


def _is_llm(span: Mapping[str, Any]) -> bool:
    attributes = span.get("span_attributes") or {}
    if attributes.get(semconv.AGENTOPS_SPAN_KIND) == semconv.SpanKind.LLM:
        return True
    return attributes.get(semconv.GEN_AI_OPERATION_NAME) in _LLM_OPERATIONS


def _metrics(spans: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    prompt = completion = 0
    cost = 0.0
    for span in spans:
        attributes = span.get("span_attributes") or {}
        kind = attributes.get(semconv.AGENTOPS_SPAN_KIND)
        if kind == semconv.SpanKind.LLM:
            prompt += int(_number(attributes.get(semconv.GEN_AI_USAGE_INPUT_TOKENS)))
            completion += int(_number(attributes.get(semconv.GEN_AI_USAGE_OUTPUT_TOKENS)))
            cost += _number(attributes.get(semconv.GEN_AI_USAGE_COST, attributes.get(semconv.GEN_AI_USAGE_TOTAL_COST)))
        elif kind == semconv.SpanKind.TOOL:
            cost += _number(attributes.get(semconv.AGENTOPS_TOOL_COST))
    return {
        "total_tokens": prompt + completion,
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_cost": f"{cost:.4f}",
    }


def _trace_id_of(trace_id: str | None, trace_context: Any) -> str:
    if trace_id is not None:
        return str(trace_id).lower()
    span = getattr(trace_context, "span", None) if trace_context is not None else trace_api.get_current_span()
    context = span.get_span_context() if span is not None else None
    if context is None or not context.is_valid:
        raise ValueError("No trace ID found. Provide either trace_id or trace_context parameter.")
    return format(context.trace_id, "032x")


def validate_trace_spans(
    trace_id: str | None = None,
    trace_context: Any = None,
    max_retries: int = 10,
    retry_delay: float = 1.0,
    check_llm: bool = True,
    min_spans: int = 1,
    api_key: str | None = None,
) -> dict[str, Any]:
    """Check that a trace's spans were recorded, as AgentOps' function of the same name.

    The spans are those this process exported (flushed first) and those the
    registered trace sources know (see :func:`add_trace_source`).

    Args:
        trace_id: The trace id (32 hex digits).
        trace_context: A trace from ``start_trace`` (instead of ``trace_id``);
            with neither, the caller's current span's trace.
        max_retries: How many times to look before giving up.
        retry_delay: Seconds between two looks.
        check_llm: Require at least one LLM span.
        min_spans: Require at least this many spans.
        api_key: Accepted for compatibility; not needed.

    Returns:
        A dict with ``trace_id``, ``span_count``, ``spans`` (the span records),
        ``has_llm_spans``, ``llm_span_names`` and ``metrics``
        (``total_tokens``, ``prompt_tokens``, ``completion_tokens``,
        ``total_cost``), as AgentOps returns.

    Raises:
        ValueError: No trace id was given and no span is current.
        ValidationError: Fewer than ``min_spans`` spans, or no LLM span when
            ``check_llm``, after every retry.
    """
    wanted = _trace_id_of(trace_id, trace_context)
    attempts = max(1, int(max_retries))
    spans: list[dict[str, Any]] = []
    for attempt in range(attempts):
        flush(5_000)
        spans = _collect(wanted)
        llm = [str(span.get("span_name")) for span in spans if _is_llm(span)]
        if len(spans) >= min_spans and (llm or not check_llm):
            logger.info("agentops: trace %s has %d span(s)", wanted, len(spans))
            return {
                "trace_id": wanted,
                "span_count": len(spans),
                "spans": spans,
                "has_llm_spans": bool(llm),
                "llm_span_names": llm,
                "metrics": _metrics(spans),
            }
        if attempt < attempts - 1:
            time.sleep(retry_delay)
    if len(spans) >= min_spans:
        raise ValidationError(
            f"No LLM activity detected in trace {wanted}. Found spans: {[s.get('span_name') for s in spans]}"
        )
    raise ValidationError(
        f"Validation failed for trace {wanted} after {attempts} attempts. Expected at least {min_spans} spans"
        + (", including LLM activity" if check_llm else "")
        + f", found {len(spans)}. Please check that tracking is properly configured."
    )


def print_validation_summary(result: Mapping[str, Any]) -> None:
    """Print a short summary of what :func:`validate_trace_spans` returned.

    Args:
        result: Its return value.
    """
    lines = ["", "=" * 50, "AgentOps span validation", "=" * 50]
    if result.get("validation_skipped"):
        lines.append(f"Validation skipped: {result.get('reason', 'unknown reason')}")
        print("\n".join(lines))
        return
    lines.append(f"Found {result.get('span_count', 0)} span(s) in trace {result.get('trace_id', '')}")
    if result.get("has_llm_spans"):
        lines.append(f"Found LLM spans: {', '.join(result.get('llm_span_names') or ())}")
    elif "has_llm_spans" in result:
        lines.append("No LLM activity detected")
    metrics = result.get("metrics")
    if metrics:
        lines += [
            "",
            "Trace metrics:",
            f"   - Total tokens: {metrics.get('total_tokens', 0)}",
            f"   - Prompt tokens: {metrics.get('prompt_tokens', 0)}",
            f"   - Completion tokens: {metrics.get('completion_tokens', 0)}",
            f"   - Total cost: ${metrics.get('total_cost', '0.0000')}",
        ]
    lines += ["", "Validation successful!"]
    print("\n".join(lines))
