"""LLM calls recorded by other instrumentations, read as agentops' own, and priced the same way.

For consumers of spans (the Django writer, a custom exporter):
:func:`foreign_llm_attributes` recognises an LLM-call span from another
instrumentation (OpenTelemetry's GenAI conventions, OpenLLMetry, OpenInference)
and gives its canonical ``gen_ai.*`` attributes and cost; :func:`cost_attributes`
prices any call's attributes like agentops' own LLM spans. Spans that start
inside an LLM call's span carry ``agentops.llm.inside_call`` (set by agentops'
span processor when they start), so a call wrapped by two instrumentations is
counted once.
"""

from __future__ import annotations

from agentops._genai import (
    CALL_OPERATIONS,
    dialect_of,
    foreign_llm_attributes,
    is_llm_call,
    mark_inside_llm_call,
    provider_id,
)
from agentops._pricing import cost_attributes

__all__ = [
    "CALL_OPERATIONS",
    "cost_attributes",
    "dialect_of",
    "foreign_llm_attributes",
    "is_llm_call",
    "mark_inside_llm_call",
    "provider_id",
]
