"""The trace picture: a span tree laid out as a waterfall, built from span rows in pure Python.

The admin's trace page loads a trace's spans with one query and hands the rows
(plain dicts) to :func:`build_waterfall`. Everything here is O(n) in the number
of spans apart from sorting siblings by start time, and it is written for the
garbage real systems produce:

* a parent that is missing (never arrived, or not yet): the span is an
  *orphan*, attached under the trace's root span when there is one, otherwise
  shown at the top level, and marked either way;
* a span naming itself as its parent, or parents forming a cycle: the cycle is
  broken at its earliest span, which is shown at the top level and marked;
* clock skew between processes (a child starting before its parent) and
  children that outlive their parent: the time axis spans the earliest start
  and the latest end of all spans, so every bar stays on the axis;
* the same span id twice (a redelivered span): the first row wins.

Besides the geometry, each row gets the two answers to "where did the time
go": its *self time* (its own duration less the time covered by its
children) and whether it lies on the trace's *critical path* (see
:func:`_critical_path`).

No Django imports: the module works on dicts and datetimes only.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from agentops import semconv
from agentops_django._usage import LLM, TOOL, USAGE_KEYS, number, span_usage

logger = logging.getLogger(__name__)

#: The one span kind whose token usage counts in a trace's totals.
LLM_KIND = LLM
#: Tools priced with ``@tool(cost=...)`` add that price to the cost total.
TOOL_KIND = TOOL

ORPHAN_MISSING_PARENT = "parent span {parent} has not arrived"
ORPHAN_SELF_PARENT = "names itself as its parent"
ORPHAN_CYCLE = "its parents form a cycle"

#: Smallest bar width, in percent of the axis, so zero-length spans stay visible.
MIN_BAR_PCT = 0.15


@dataclass(slots=True)
class Row:
    """One span as one line of the waterfall."""

    span: Mapping[str, Any]
    depth: int
    span_id: str = ""
    #: Bar position and width on the time axis, in percent.
    left_pct: float = 0.0
    width_pct: float = 0.0
    #: Queue wait drawn before the bar (Celery tasks), in percent; 0 when none.
    wait_left_pct: float = 0.0
    wait_width_pct: float = 0.0
    wait_ms: float | None = None
    #: The span itself failed (status ERROR).
    error: bool = False
    #: Some descendant failed.
    contains_error: bool = False
    #: Why the span is not where its parent_span_id says, or "" when it is.
    orphan: str = ""
    #: The span ends after its parent ends.
    outlives_parent: bool = False
    #: Offset of the start from the axis origin, in milliseconds.
    offset_ms: float = 0.0
    children: int = 0
    parent_id: str = ""
    #: Start and end on the axis, in milliseconds from its origin (the script zooms with them).
    end_ms: float = 0.0
    #: The span's duration less the time its children cover (clipped to the span).
    self_ms: float = 0.0
    #: The span lies on the critical path: the chain of work the trace's end waited for.
    critical: bool = False


@dataclass(slots=True)
class Totals:
    """Tokens and cost of a trace by :data:`TOTALS_RULE`."""

    llm_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    #: LLM calls without a known price (``cost`` leaves them out).
    unpriced: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(slots=True)
class Waterfall:
    """A whole trace laid out: rows in tree order and the time axis."""

    rows: list[Row] = field(default_factory=list)
    #: The axis origin (earliest start, queue waits included) and its length.
    start: dt.datetime | None = None
    total_ms: float = 0.0
    totals: Totals = field(default_factory=Totals)
    orphans: int = 0
    errors: int = 0
    #: Queue wait before the first span started (a trace whose root is a queued task), in ms.
    queued_before_ms: float = 0.0

    def ticks(self, count: int = 4) -> list[tuple[float, float]]:
        """Axis labels: ``(percent, milliseconds)`` pairs from 0 to the end."""
        return [(100.0 * i / count, self.total_ms * i / count) for i in range(count + 1)]


def _ms(delta: dt.timedelta) -> float:
    return delta.total_seconds() * 1000.0


def _attr(span: Mapping[str, Any], key: str) -> Any:
    """An attribute of a span row: a flattened column first, else the attributes dict."""
    if key in span:
        return span[key]
    attributes = span.get("attributes")
    if isinstance(attributes, Mapping):
        return attributes.get(key)
    return None


def totals_of(spans: Iterable[Mapping[str, Any]]) -> Totals:
    """Roll up tokens and cost by :data:`TOTALS_RULE`.

    Args:
        spans: Span rows with ``kind`` and either an ``attributes`` dict or the
            ``gen_ai.usage.*`` keys flattened into the row.

    Returns:
        The totals.
    """
    totals = Totals()
    for span in spans:
        kind = span.get("kind")
        if kind == LLM_KIND:
            totals.llm_calls += 1
        elif kind != TOOL_KIND:
            continue
        usage = span_usage(kind, {key: _attr(span, key) for key in USAGE_KEYS})
        totals.input_tokens += usage.input_tokens
        totals.output_tokens += usage.output_tokens
        totals.cost += usage.cost
        totals.unpriced += usage.unpriced
    return totals


def build_waterfall(
    spans: Iterable[Mapping[str, Any]],
    *,
    root_span_id: str = "",
) -> Waterfall:
    """Arrange span rows as a tree in depth-first order, each placed on the trace's time axis.

    Args:
        spans: Rows with at least ``span_id``, ``parent_span_id``,
            ``started_at`` and ``ended_at`` (aware datetimes), ``status`` and
            ``kind``; ``celery.queue_wait_ms`` (flattened or in
            ``attributes``) draws a queue wait before the bar.
        root_span_id: The trace's root span id as the writer recorded it;
            orphans are attached under it when it is present.

    Returns:
        The waterfall: rows with depth, bar geometry and error marks.
    """
    by_id: dict[str, Mapping[str, Any]] = {}
    for span in spans:
        span_id = str(span.get("span_id") or "")
        if span_id and span_id not in by_id:
            by_id[span_id] = span
    waterfall = Waterfall(totals=totals_of(by_id.values()))
    if not by_id:
        return waterfall

    # Times as float milliseconds from the first row's start: one datetime subtraction per span.
    reference = next(iter(by_id.values()))["started_at"]
    begin: dict[str, float] = {}
    end: dict[str, float] = {}
    for span_id, span in by_id.items():
        begin[span_id] = start_ms = (span["started_at"] - reference).total_seconds() * 1000.0
        finish = span.get("ended_at")
        end[span_id] = max(start_ms, (finish - reference).total_seconds() * 1000.0 if finish else start_ms)
    # In start order (the database's order already, so sorting is linear), siblings come out sorted.
    by_start = sorted(by_id, key=lambda span_id: (begin[span_id], span_id))
    rank = {span_id: i for i, span_id in enumerate(by_start)}

    children: dict[str, list[str]] = {}
    tops: list[str] = []
    orphan_reason: dict[str, str] = {}
    for span_id in by_start:
        parent = str(by_id[span_id].get("parent_span_id") or "")
        if not parent:
            tops.append(span_id)
        elif parent == span_id:
            orphan_reason[span_id] = ORPHAN_SELF_PARENT
        elif parent not in by_id:
            orphan_reason[span_id] = ORPHAN_MISSING_PARENT.format(parent=parent)
        else:
            children.setdefault(parent, []).append(span_id)

    # Orphans go under the root span when the trace has a single one, else to the top level.
    if root_span_id in by_id and not by_id[root_span_id].get("parent_span_id"):
        root = root_span_id
    elif len(tops) == 1:
        root = tops[0]
    else:
        root = ""
    if orphan_reason:
        adopters = children.setdefault(root, []) if root else tops
        adopters.extend(orphan_reason)
        adopters.sort(key=rank.__getitem__)

    # Iterative depth-first walk (a 10,000-deep chain must not hit the recursion limit).
    order: list[Row] = []
    visited: set[str] = set()

    def walk(top: str) -> None:
        stack: list[tuple[str, int, str]] = [(top, 0, "")]
        while stack:
            span_id, depth, parent = stack.pop()
            if span_id in visited:
                continue
            visited.add(span_id)
            order.append(
                Row(
                    span=by_id[span_id],
                    depth=depth,
                    span_id=span_id,
                    orphan=orphan_reason.get(span_id, ""),
                    parent_id=parent,
                )
            )
            kids = children.get(span_id)
            if kids:
                stack.extend((kid, depth + 1, span_id) for kid in reversed(kids) if kid not in visited)

    for top in tops:
        walk(top)
    if len(visited) < len(by_id):
        # What is left hangs off a cycle: break each at its earliest span.
        for span_id in by_start:
            if span_id not in visited:
                orphan_reason[span_id] = ORPHAN_CYCLE
                walk(span_id)

    _place(waterfall, order, begin, end, reference)
    _self_times(order, children, begin, end)
    _critical_path(order, tops, children, begin, end)
    waterfall.rows = order
    waterfall.orphans = sum(1 for row in order if row.orphan)
    return waterfall


def _place(
    waterfall: Waterfall,
    order: list[Row],
    begin: Mapping[str, float],
    end: Mapping[str, float],
    reference: dt.datetime,
) -> None:
    """Fill the time axis, bar geometry and error marks of the rows, in place."""
    waits: dict[str, float] = {}
    axis_start = min(begin.values())
    axis_end = max(end.values())
    for row in order:
        wait = number(_attr(row.span, semconv.CELERY_QUEUE_WAIT_MS))
        if wait is not None and wait > 0:
            span_id = row.span_id
            waits[span_id] = wait
            axis_start = min(axis_start, begin[span_id] - wait)
    total_ms = axis_end - axis_start
    waterfall.queued_before_ms = min(begin.values()) - axis_start
    total = max(total_ms, 1e-3)
    waterfall.start = reference + dt.timedelta(milliseconds=axis_start)
    waterfall.total_ms = total_ms
    scale = 100.0 / total

    index = {row.span_id: row for row in order}
    for row in order:
        span_id = row.span_id
        row.offset_ms = begin[span_id] - axis_start
        row.end_ms = end[span_id] - axis_start
        row.width_pct = max(MIN_BAR_PCT, min(100.0, (end[span_id] - begin[span_id]) * scale))
        # A bar of the minimum width at the very end is nudged left to stay on the axis.
        row.left_pct = max(0.0, min(row.offset_ms * scale, 100.0 - row.width_pct))
        wait = waits.get(span_id)
        if wait is not None:
            row.wait_ms = wait
            row.wait_width_pct = min(row.left_pct, wait * scale)
            row.wait_left_pct = row.left_pct - row.wait_width_pct
        row.error = str(row.span.get("status", "")).upper() == "ERROR"
        parent = index.get(row.parent_id)
        if parent is not None:
            parent.children += 1
            if not row.orphan and end[span_id] > end[parent.span_id]:
                row.outlives_parent = True
    # Children come after their parents in depth-first order: walk back to mark ancestors.
    for row in reversed(order):
        if row.error or row.contains_error:
            parent = index.get(row.parent_id)
            if parent is not None:
                parent.contains_error = True
    waterfall.errors = sum(1 for row in order if row.error)


def _self_times(
    order: list[Row],
    children: Mapping[str, list[str]],
    begin: Mapping[str, float],
    end: Mapping[str, float],
) -> None:
    """Set each row's self time: its duration less the union of its children's intervals within it."""
    for row in order:
        start, finish = begin[row.span_id], end[row.span_id]
        covered = 0.0
        # Children are in start order: one sweep merges their overlapping intervals.
        reach = start
        for kid in children.get(row.span_id, ()):
            lo, hi = max(begin[kid], reach), min(end[kid], finish)
            if hi > lo:
                covered += hi - lo
                reach = hi
        row.self_ms = max(0.0, finish - start - covered)


def _critical_path(
    order: list[Row],
    tops: list[str],
    children: Mapping[str, list[str]],
    begin: Mapping[str, float],
    end: Mapping[str, float],
) -> None:
    """Mark the rows on the critical path, the chain of spans the trace's last moment waited for.

    Walking back from a span's latest end (its own or any descendant's, so a
    Celery task that outlives the request that sent it counts): the child whose
    subtree ends last is on the path; before that child started, the child
    that ended last before then; and so on, into each chosen child alike. A
    Celery task's queue wait belongs to it (a task waits in the queue for its
    turn, which is time the trace spent on it).
    """
    index = {row.span_id: row for row in order}
    wait = {row.span_id: row.wait_ms or 0.0 for row in order if row.wait_ms}
    # Latest end of each subtree: children come after parents, so one backwards pass.
    reach = dict(end)
    for row in reversed(order):
        parent = row.parent_id
        if parent and reach[row.span_id] > reach[parent]:
            reach[parent] = reach[row.span_id]

    def chosen(candidates: Iterable[str], frontier: float) -> list[str]:
        path = []
        for span_id in sorted(candidates, key=lambda s: (reach[s], begin[s]), reverse=True):
            start = begin[span_id] - wait.get(span_id, 0.0)
            if start < frontier:
                path.append(span_id)
                frontier = start
        return path

    stack = chosen((top for top in tops if top in index), float("inf"))
    seen: set[str] = set()
    while stack:
        span_id = stack.pop()
        if span_id in seen:
            continue
        seen.add(span_id)
        index[span_id].critical = True
        stack.extend(chosen(children.get(span_id, ()), reach[span_id]))
