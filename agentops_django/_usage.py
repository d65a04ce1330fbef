"""The totals rule: what one span adds to its trace's tokens and cost, and the one number parser.

Used by the writer (trace summaries, hence the trace list) and by the trace
page alike, so the list and the page can never disagree. Framework-free: it
reads a span's attributes as a mapping, whether an SDK span's or a stored row's.

The rule: tokens are the sums over spans of kind ``llm`` only
(``gen_ai.usage.input_tokens``, ``gen_ai.usage.output_tokens``); cost adds
those spans' ``gen_ai.usage.total_cost`` (``gen_ai.usage.cost`` for spans
written before pricing) and the price of each tool call
(``agentops.tool.cost``). Agent, task and request spans never add their own,
so no call is counted twice. LLM calls marked ``agentops.cost.unpriced`` are
counted, so a total can say it leaves them out. An LLM span marked
``agentops.llm.inside_call`` (or ``agentops.llm.same_call_as``) adds nothing:
it is a second instrumentation's record of a call its enclosing LLM span (or
an earlier span with the same response id) already counts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, NamedTuple

from agentops import semconv

LLM = semconv.SpanKind.LLM
TOOL = semconv.SpanKind.TOOL
INSIDE_CALL = semconv.AGENTOPS_LLM_INSIDE_CALL
SAME_CALL_AS = semconv.AGENTOPS_LLM_SAME_CALL_AS
# True on a span; "true" when a database extracted it from stored JSON.
_TRUE = (True, "true")

#: The rule, in words, for the trace page.
TOTALS_RULE = (
    "Tokens are the sums over spans of kind \u201cllm\u201d only "
    f"({semconv.GEN_AI_USAGE_INPUT_TOKENS}, {semconv.GEN_AI_USAGE_OUTPUT_TOKENS}); cost adds those spans' "
    f"{semconv.GEN_AI_USAGE_TOTAL_COST} and the price of each tool call ({semconv.AGENTOPS_TOOL_COST}). "
    "Agent, task and request spans never add their own, nor does a second instrumentation's record of a call "
    "(an LLM span inside another LLM call's span, or with the response id of an earlier one), "
    "so no call is counted twice. "
    "Calls whose model has no known price are counted as unpriced, not as $0."
)


def number(value: Any) -> float | None:
    """A finite number from an attribute value: an int, a float or a numeric string.

    Booleans, NaN, infinities, ``None`` and anything else give ``None``: an
    attribute no exporter or instrumentation should have sent counts as absent.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return float(value)
    try:
        result = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return result if math.isfinite(result) else None


class Usage(NamedTuple):
    """What one span adds to its trace's totals."""

    input_tokens: int
    output_tokens: int
    cost: float
    #: 1 for an LLM call whose price is unknown (its cost is then not 0 but missing).
    unpriced: int = 0


NOTHING = Usage(0, 0, 0.0)
#: The attributes :func:`span_usage` reads.
USAGE_KEYS = (
    semconv.GEN_AI_USAGE_INPUT_TOKENS,
    semconv.GEN_AI_USAGE_OUTPUT_TOKENS,
    semconv.GEN_AI_USAGE_TOTAL_COST,
    semconv.GEN_AI_USAGE_COST,
    semconv.AGENTOPS_COST_UNPRICED,
    semconv.AGENTOPS_TOOL_COST,
    semconv.AGENTOPS_LLM_INSIDE_CALL,
    semconv.AGENTOPS_LLM_SAME_CALL_AS,
)


def _tokens(value: Any) -> int:
    found = number(value)
    return int(found) if found is not None and found > 0 else 0


def span_usage(kind: Any, attributes: Mapping[str, Any]) -> Usage:
    """Tokens and cost ``attributes`` add to the trace, for a span of ``kind`` (``agentops.span.kind``)."""
    if kind == LLM:
        if attributes.get(INSIDE_CALL) in _TRUE or attributes.get(SAME_CALL_AS):  # another span counts this call
            return NOTHING
        cost = number(attributes.get(semconv.GEN_AI_USAGE_TOTAL_COST))
        if cost is None:  # spans stored before pricing, or from another instrumentation
            cost = number(attributes.get(semconv.GEN_AI_USAGE_COST))
        return Usage(
            _tokens(attributes.get(semconv.GEN_AI_USAGE_INPUT_TOKENS)),
            _tokens(attributes.get(semconv.GEN_AI_USAGE_OUTPUT_TOKENS)),
            cost if cost is not None and cost > 0 else 0.0,
            1 if attributes.get(semconv.AGENTOPS_COST_UNPRICED) in _TRUE else 0,
        )
    if kind == TOOL:
        cost = number(attributes.get(semconv.AGENTOPS_TOOL_COST))
        return Usage(0, 0, cost) if cost is not None and cost > 0 else NOTHING
    return NOTHING
