"""LLM-call spans made by other instrumentations: recognising them, reading them, counting them once.

Other libraries emit their own OpenTelemetry spans for LLM calls, each in an
attribute dialect of its own: the current GenAI semantic conventions
(``gen_ai.operation.name``, ``gen_ai.input.messages``..., as OpenLLMetry's
current releases, Pydantic AI and the Anthropic client write them), OpenLLMetry's older
``gen_ai.prompt.N.*``/``llm.*`` names and OpenInference's ``llm.*`` names.
Spans reach agentops' exporters whoever made them (agentops joins the global
provider); :func:`foreign_llm_attributes` tells whether one is an LLM call and
gives what it lacks of the canonical view agentops' own LLM spans carry:
system, models, ``gen_ai.usage.*`` tokens, messages, finish reasons and the
cost (priced like agentops' own calls).

When two instrumentations wrap one call (agentops' wrapper and another, or the
client library's own span), their spans nest. :func:`mark_inside_llm_call`
runs when a span starts: a span whose parent is an LLM call gets
``agentops.llm.inside_call``, and an LLM span with that mark adds nothing to the
totals (the outer span counts the call), whichever instrumentation is outside.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from opentelemetry import trace as trace_api
from opentelemetry.context import Context

from agentops import semconv

#: ``gen_ai.operation.name`` values that are one call of a model (not an agent run or a tool).
CALL_OPERATIONS = frozenset({"chat", "text_completion", "generate_content", "completion", "embeddings"})
#: OpenInference's ``openinference.span.kind`` values of a model call.
OPENINFERENCE_CALL_KINDS = frozenset({"LLM", "EMBEDDING"})
#: OpenLLMetry's older ``llm.request.type`` values of a model call.
OPENLLMETRY_CALL_TYPES = frozenset({"chat", "completion", "embedding"})

DIALECT_GEN_AI = "gen_ai"
DIALECT_OPENLLMETRY = "openllmetry"
DIALECT_OPENINFERENCE = "openinference"

_OPERATION = semconv.GEN_AI_OPERATION_NAME
_OPENINFERENCE_KIND = "openinference.span.kind"
_OPENLLMETRY_TYPE = "llm.request.type"
_LLM = semconv.SpanKind.LLM
_KIND = semconv.AGENTOPS_SPAN_KIND
_INSIDE = semconv.AGENTOPS_LLM_INSIDE_CALL

# Each canonical key with the names other dialects give it, in order of preference.
_SYNONYMS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (semconv.GEN_AI_SYSTEM, ("gen_ai.provider.name", "llm.system", "llm.provider", "llm.vendor")),
    (semconv.GEN_AI_REQUEST_MODEL, ("llm.request.model", "llm.model_name", semconv.GEN_AI_RESPONSE_MODEL)),
    (semconv.GEN_AI_RESPONSE_MODEL, ("llm.response.model",)),
    (
        semconv.GEN_AI_USAGE_INPUT_TOKENS,
        ("gen_ai.usage.prompt_tokens", "llm.usage.prompt_tokens", "llm.token_count.prompt"),
    ),
    (
        semconv.GEN_AI_USAGE_OUTPUT_TOKENS,
        ("gen_ai.usage.completion_tokens", "llm.usage.completion_tokens", "llm.token_count.completion"),
    ),
    (
        semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
        (
            "gen_ai.usage.cache_read_input_tokens",
            "gen_ai.usage.details.cache_read_tokens",
            "llm.token_count.prompt_details.cache_read",
        ),
    ),
    (
        semconv.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS,
        (
            "gen_ai.usage.cache_write.input_tokens",
            "gen_ai.usage.cache_creation_input_tokens",
            "gen_ai.usage.details.cache_write_tokens",
            "llm.token_count.prompt_details.cache_write",
        ),
    ),
    (
        semconv.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
        (
            "gen_ai.usage.reasoning_tokens",
            "gen_ai.usage.details.reasoning_tokens",
            "llm.token_count.completion_details.reasoning",
        ),
    ),
)
# Indexed messages: (canonical key, attribute prefix, role and content suffixes) per dialect.
_INDEXED_MESSAGES = (
    (semconv.GEN_AI_INPUT_MESSAGES, "gen_ai.prompt.", ".role", ".content"),
    (semconv.GEN_AI_OUTPUT_MESSAGES, "gen_ai.completion.", ".role", ".content"),
    (semconv.GEN_AI_INPUT_MESSAGES, "llm.input_messages.", ".message.role", ".message.content"),
    (semconv.GEN_AI_OUTPUT_MESSAGES, "llm.output_messages.", ".message.role", ".message.content"),
)
#: genai-prices' provider ids for the ``gen_ai.system`` values that differ from them.
_PROVIDERS = {"azure.ai.openai": "azure", "az.ai.openai": "azure", "aws.bedrock": "aws", "gcp.gemini": "google"}


def dialect_of(attributes: Mapping[str, Any]) -> str | None:
    """The dialect in which a span without ``agentops.span.kind`` says it is an LLM call, or None.

    Cheap for the spans that are not: at most three dictionary lookups.
    """
    if attributes.get(_OPERATION) in CALL_OPERATIONS:
        return DIALECT_GEN_AI
    if attributes.get(_OPENINFERENCE_KIND) in OPENINFERENCE_CALL_KINDS:
        return DIALECT_OPENINFERENCE
    if attributes.get(_OPENLLMETRY_TYPE) in OPENLLMETRY_CALL_TYPES:
        return DIALECT_OPENLLMETRY
    return None


def is_llm_call(attributes: Mapping[str, Any]) -> bool:
    """Whether a span's attributes say it is one LLM call, agentops' own or another instrumentation's."""
    kind = attributes.get(_KIND)
    if kind is not None:
        return bool(kind == _LLM)
    return dialect_of(attributes) is not None or "llm.system" in attributes


def _indexed_messages(attributes: Mapping[str, Any], prefix: str, role_key: str, content_key: str) -> str | None:
    messages = []
    for index in range(1000):
        role = attributes.get(f"{prefix}{index}{role_key}")
        content = attributes.get(f"{prefix}{index}{content_key}")
        if role is None and content is None:
            break
        messages.append({"role": str(role or ""), "content": content if content is not None else ""})
    return json.dumps(messages, ensure_ascii=False, default=str) if messages else None


def _invocation_model(parameters: Any) -> str | None:
    """The model OpenInference's ``llm.invocation_parameters`` (JSON) names: all a failed call records of it."""
    if not isinstance(parameters, str) or '"model"' not in parameters:
        return None
    try:
        model = json.loads(parameters).get("model")
    except (ValueError, AttributeError):
        return None
    return model if isinstance(model, str) else None


def _finish_reasons(attributes: Mapping[str, Any]) -> list[str]:
    reason = attributes.get("llm.finish_reason")
    if isinstance(reason, str):
        return [reason]
    reasons = []
    for index in range(100):
        reason = attributes.get(f"gen_ai.completion.{index}.finish_reason")
        if reason is None:
            break
        reasons.append(str(reason))
    return reasons


def provider_id(system: Any) -> str:
    """genai-prices' provider id for a ``gen_ai.system``/``gen_ai.provider.name`` value."""
    name = str(system or "").lower()
    return _PROVIDERS.get(name, name)


def foreign_llm_attributes(
    attributes: Mapping[str, Any], start_time_ns: int | None = None, failed: bool = False
) -> dict[str, Any] | None:
    """What a span from another instrumentation needs to read as one of agentops' LLM spans.

    Args:
        attributes: The span's attributes.
        start_time_ns: When the call started (epoch ns), to pick the price in force then.
        failed: The span ended in error: then it is priced only for the usage it reported.

    Returns:
        None for a span agentops made itself (it has ``agentops.span.kind``)
        and for spans that are no LLM call. Otherwise the attributes to add
        (never replacing the span's own): the canonical names of its system,
        models, tokens, messages and finish reasons, ``agentops.llm.dialect``
        and, unless the span already has a cost or is marked
        ``agentops.llm.inside_call``, the cost attributes (or the unpriced
        marker) as agentops' own calls get them. Raises what genai-prices
        raises unexpectedly; callers run it inside the guard.
    """
    if _KIND in attributes:
        return None
    dialect = dialect_of(attributes)
    if dialect is None:
        if "llm.system" not in attributes:  # OpenInference sets the span kind late; the system at start
            return None
        dialect = DIALECT_OPENINFERENCE
    added: dict[str, Any] = {semconv.AGENTOPS_LLM_DIALECT: dialect}
    for canonical, names in _SYNONYMS:
        if canonical in attributes:
            continue
        for name in names:
            value = attributes.get(name)
            if value is not None:
                added[canonical] = value
                break
    if semconv.GEN_AI_REQUEST_MODEL not in attributes and semconv.GEN_AI_REQUEST_MODEL not in added:
        model = _invocation_model(attributes.get("llm.invocation_parameters"))
        if model:
            added[semconv.GEN_AI_REQUEST_MODEL] = model
    for canonical, prefix, role_key, content_key in _INDEXED_MESSAGES:
        if canonical not in attributes and canonical not in added:
            messages = _indexed_messages(attributes, prefix, role_key, content_key)
            if messages is not None:
                added[canonical] = messages
    if semconv.GEN_AI_RESPONSE_FINISH_REASONS not in attributes:
        reasons = _finish_reasons(attributes)
        if reasons:
            added[semconv.GEN_AI_RESPONSE_FINISH_REASONS] = reasons
    reported = semconv.GEN_AI_USAGE_INPUT_TOKENS in attributes or semconv.GEN_AI_USAGE_INPUT_TOKENS in added
    if (
        attributes.get(_INSIDE) is not True
        and (reported or not failed)
        and semconv.GEN_AI_USAGE_TOTAL_COST not in attributes
        and semconv.GEN_AI_USAGE_COST not in attributes
    ):
        from agentops import _pricing  # here: _pricing needs _state, whose dispatcher uses this module

        merged = {**attributes, **added}
        added.update(_pricing.cost_attributes(provider_id(merged.get(semconv.GEN_AI_SYSTEM)), merged, start_time_ns))
    return added


def mark_inside_llm_call(span: Any, parent_context: Context | None) -> None:
    """Mark ``span`` with ``agentops.llm.inside_call`` if it starts inside an LLM call's span.

    Run from the span processor's ``on_start``, where the span is still
    writable and its parent is known. Costs nothing for a root span; else
    one context lookup and, for a parent that is not an LLM call, a few
    dictionary lookups.
    """
    parent_ids = getattr(span, "parent", None)
    if parent_ids is None or parent_ids.is_remote:  # a root, or a parent in another process: nothing to read
        return
    parent = trace_api.get_current_span(parent_context)
    attributes = getattr(parent, "_attributes", None)
    attributes = getattr(attributes, "_dict", attributes)  # the SDK's BoundedAttributes keeps a plain dict
    if not attributes or not parent.is_recording():
        return
    if is_llm_call(attributes):
        span.set_attribute(_INSIDE, True)
