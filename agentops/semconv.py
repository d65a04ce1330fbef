"""The vocabulary of agentops spans: span kinds, attribute keys and end states.

OpenTelemetry's own semantic-convention names (``gen_ai.*``, ``http.*``,
``url.*``, ``messaging.*``) are reused wherever one exists; the ``agentops.*``
names are kept from AgentOps so its users find what they know.
"""

from __future__ import annotations

import enum


class SpanKind:
    """Values of :data:`AGENTOPS_SPAN_KIND`, the kind of work a span stands for."""

    SESSION = "session"
    TRACE = "trace"
    AGENT = "agent"
    TOOL = "tool"
    OPERATION = "operation"
    TASK = "task"
    WORKFLOW = "workflow"
    GUARDRAIL = "guardrail"
    LLM = "llm"
    #: A Django request handled by the middleware.
    REQUEST = "request"
    #: A Celery message published by a producer.
    PUBLISH = "publish"
    #: A Celery task run by a worker.
    CELERY_TASK = "celery.task"


class TraceState(enum.StrEnum):
    """How a trace ended. The enum and its string value are interchangeable."""

    SUCCESS = "Success"
    ERROR = "Error"
    INDETERMINATE = "Indeterminate"

    def __str__(self) -> str:
        return self.value


# --- agentops' own attributes -------------------------------------------------
#: The kind of span, one of :class:`SpanKind`.
AGENTOPS_SPAN_KIND = "agentops.span.kind"
#: The name the user gave the decorated entity or trace.
AGENTOPS_ENTITY_NAME = "agentops.entity.name"
#: The version passed to a decorator.
AGENTOPS_ENTITY_VERSION = "agentops.entity.version"
#: JSON of a decorated call's arguments (redacted, size-capped).
AGENTOPS_ENTITY_INPUT = "agentops.entity.input"
#: JSON of a decorated call's return value (redacted, size-capped).
AGENTOPS_ENTITY_OUTPUT = "agentops.entity.output"
#: Tags of a trace, a list of strings.
AGENTOPS_TAGS = "agentops.tags"
#: The end state of a trace, one of :class:`TraceState`.
AGENTOPS_END_STATE = "agentops.end_state"
#: Prefix of the extra keywords given to the legacy ``end_session`` (``end_state_reason``).
AGENTOPS_STATUS_PREFIX = "agentops.status."
#: Set on the root span of a trace started by ``start_trace``/``@trace``.
AGENTOPS_TRACE_NAME = "agentops.trace.name"
#: Prefix of metadata set with ``update_trace_metadata``.
AGENTOPS_METADATA_PREFIX = "agentops.metadata."
#: Cost of one call of a ``@tool(cost=...)``.
AGENTOPS_TOOL_COST = "agentops.tool.cost"
#: Service name resource attribute default.
DEFAULT_SERVICE_NAME = "agentops"

# --- GenAI (OpenTelemetry semantic conventions) -------------------------------
GEN_AI_SYSTEM = "gen_ai.system"
GEN_AI_OPERATION_NAME = "gen_ai.operation.name"
GEN_AI_REQUEST_MODEL = "gen_ai.request.model"
GEN_AI_REQUEST_MAX_TOKENS = "gen_ai.request.max_tokens"
GEN_AI_REQUEST_TEMPERATURE = "gen_ai.request.temperature"
GEN_AI_REQUEST_STREAM = "gen_ai.request.stream"
GEN_AI_RESPONSE_MODEL = "gen_ai.response.model"
GEN_AI_RESPONSE_ID = "gen_ai.response.id"
GEN_AI_RESPONSE_FINISH_REASONS = "gen_ai.response.finish_reasons"
GEN_AI_USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
#: Cost in US dollars of one LLM call, where known.
GEN_AI_USAGE_COST = "gen_ai.usage.cost"
#: JSON list of the request's messages (content capture only).
GEN_AI_INPUT_MESSAGES = "gen_ai.input.messages"
#: JSON list of the response's messages (content capture only).
GEN_AI_OUTPUT_MESSAGES = "gen_ai.output.messages"
ERROR_TYPE = "error.type"
#: A formatted traceback kept on an exception event (OpenTelemetry's name).
EXCEPTION_STACKTRACE = "exception.stacktrace"

# --- HTTP and messaging (OpenTelemetry semantic conventions) ------------------
HTTP_REQUEST_METHOD = "http.request.method"
HTTP_RESPONSE_STATUS_CODE = "http.response.status_code"
HTTP_ROUTE = "http.route"
URL_PATH = "url.path"
URL_QUERY = "url.query"
URL_SCHEME = "url.scheme"
CLIENT_ADDRESS = "client.address"
USER_AGENT_ORIGINAL = "user_agent.original"
MESSAGING_SYSTEM = "messaging.system"
MESSAGING_OPERATION_TYPE = "messaging.operation.type"
MESSAGING_DESTINATION_NAME = "messaging.destination.name"
MESSAGING_MESSAGE_ID = "messaging.message.id"

# --- Celery (agentops_django's task spans; no OpenTelemetry convention covers these) ---
CELERY_TASK_ID = "celery.task.id"
CELERY_TASK_NAME = "celery.task.name"
CELERY_TASK_ROOT_ID = "celery.task.root_id"
CELERY_TASK_PARENT_ID = "celery.task.parent_id"
CELERY_TASK_GROUP = "celery.task.group"
#: The attempt: 0 for the first run, n for the n-th retry.
CELERY_TASK_RETRIES = "celery.task.retries"
#: The outcome: SUCCESS, FAILURE, RETRY, REJECTED, IGNORED.
CELERY_TASK_STATE = "celery.task.state"
#: True for a task run eagerly (``task_always_eager`` or ``Task.apply``).
CELERY_TASK_EAGER = "celery.task.eager"
#: JSON of the task's positional and keyword arguments and of its result (content capture only).
CELERY_TASK_ARGS = "celery.task.args"
CELERY_TASK_KWARGS = "celery.task.kwargs"
CELERY_TASK_RESULT = "celery.task.result"
#: Milliseconds from publish to start, less any countdown/eta, never negative.
CELERY_QUEUE_WAIT_MS = "celery.queue_wait_ms"
#: Name of the event a retried attempt records, with its reason.
CELERY_RETRY_EVENT = "celery.retry"
CELERY_RETRY_REASON = "celery.retry.reason"
#: Attribute of the link from a new trace's task span to its caller.
AGENTOPS_LINK_TYPE = "agentops.link.type"
#: On a publish span: the task will run in a new trace linked to this one (fan-out).
CELERY_NEW_TRACE = "celery.new_trace"


__all__ = [name for name in dir() if name.isupper() or name in {"SpanKind", "TraceState"}]
