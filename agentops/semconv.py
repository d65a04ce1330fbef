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
#: On a task span: this attempt raised and Celery will run the task again (its exception is recorded).
CELERY_TASK_RETRIED = "celery.task.retried"
#: On a publish span: the task will run in a new trace linked to this one (fan-out).
CELERY_NEW_TRACE = "celery.new_trace"


# --- LLM pricing and shape ------------------------------------------------------
# What an LLM call cost, what its usage was made of, how its stream arrived and
# how it ended. OpenTelemetry's names where it has one; AgentOps' own otherwise.

#: Input tokens read from the provider's prompt cache (part of ``gen_ai.usage.input_tokens``).
GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS = "gen_ai.usage.cache_read.input_tokens"
#: Input tokens written to the provider's prompt cache (part of ``gen_ai.usage.input_tokens``).
GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS = "gen_ai.usage.cache_creation.input_tokens"
#: Output tokens spent on reasoning/thinking (part of ``gen_ai.usage.output_tokens``).
GEN_AI_USAGE_REASONING_OUTPUT_TOKENS = "gen_ai.usage.reasoning.output_tokens"
#: Of the cache writes, those kept for one hour (Anthropic prices them apart).
ANTHROPIC_USAGE_CACHE_CREATION_1H_INPUT_TOKENS = "anthropic.usage.cache_creation.ephemeral_1h_input_tokens"

#: Cost in US dollars of one LLM call (AgentOps' name; also written to :data:`GEN_AI_USAGE_COST`).
GEN_AI_USAGE_TOTAL_COST = "gen_ai.usage.total_cost"
#: The part of the cost paid for input tokens (cached and cache writes included), in US dollars.
GEN_AI_USAGE_INPUT_COST = "gen_ai.usage.input_cost"
#: The part of the cost paid for output tokens (reasoning included), in US dollars.
GEN_AI_USAGE_OUTPUT_COST = "gen_ai.usage.output_cost"
#: Where the price came from: :data:`COST_SOURCE_GENAI_PRICES` or :data:`COST_SOURCE_USER`.
AGENTOPS_COST_SOURCE = "agentops.cost.source"
#: The model the price is for: the price table's id (``gpt-4o-mini`` for ``gpt-4o-mini-2024-07-18``) or the user's key.
AGENTOPS_COST_MODEL = "agentops.cost.model"
#: True on an LLM call whose cost is unknown (never ``$0``): no price, or no usage reported.
AGENTOPS_COST_UNPRICED = "agentops.cost.unpriced"
#: Why the cost is unknown, one of the ``UNPRICED_*`` values.
AGENTOPS_COST_UNPRICED_REASON = "agentops.cost.unpriced_reason"
COST_SOURCE_GENAI_PRICES = "genai-prices"
COST_SOURCE_USER = "user"
#: No price is known for the model (add one with ``agentops.init(prices=...)``).
UNPRICED_UNKNOWN_MODEL = "unknown model"
#: The response carried no token usage (an OpenAI stream without ``stream_options.include_usage``).
UNPRICED_NO_USAGE = "no usage reported"
#: The price table rejected the usage as inconsistent (e.g. more cached tokens than input tokens).
UNPRICED_INVALID_USAGE = "invalid usage"
#: The ``genai-prices`` package is missing, and no price of the user's matched.
UNPRICED_NO_PRICE_TABLE = "no price table"
#: Name of the counter (``agentops.counters()``) of LLM calls recorded with an unknown cost.
COUNTER_UNPRICED_LLM_CALLS = "llm_calls_unpriced"

#: Seconds from the start of a streamed call to its first chunk carrying generated output.
GEN_AI_STREAMING_TIME_TO_FIRST_TOKEN = "gen_ai.streaming.time_to_first_token"
#: Seconds from the first generated output to the stream's last chunk.
GEN_AI_STREAMING_TIME_TO_GENERATE = "gen_ai.streaming.time_to_generate"
#: Chunks (server-sent events) the stream delivered.
GEN_AI_STREAMING_CHUNK_COUNT = "gen_ai.streaming.chunk_count"
#: Output tokens per second of generation (``output_tokens / time_to_generate``), when both are known.
GEN_AI_STREAMING_TOKENS_PER_SECOND = "gen_ai.streaming.tokens_per_second"
#: Seconds from the start of a streamed call to its first chunk of any kind (OpenTelemetry's name).
GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK = "gen_ai.response.time_to_first_chunk"

GEN_AI_REQUEST_TOP_P = "gen_ai.request.top_p"
GEN_AI_REQUEST_TOP_K = "gen_ai.request.top_k"
GEN_AI_REQUEST_FREQUENCY_PENALTY = "gen_ai.request.frequency_penalty"
GEN_AI_REQUEST_PRESENCE_PENALTY = "gen_ai.request.presence_penalty"
GEN_AI_REQUEST_SEED = "gen_ai.request.seed"
GEN_AI_REQUEST_STOP_SEQUENCES = "gen_ai.request.stop_sequences"
#: Completions asked for (``n``), recorded when not 1.
GEN_AI_REQUEST_CHOICE_COUNT = "gen_ai.request.choice.count"
#: Embedding encodings asked for (``["float"]``, ``["base64"]``).
GEN_AI_REQUEST_ENCODING_FORMATS = "gen_ai.request.encoding_formats"
#: Length of each embedding vector (asked for, or returned).
GEN_AI_EMBEDDINGS_DIMENSION_COUNT = "gen_ai.embeddings.dimension.count"
#: Names of the tools offered to the model (function tools by name, built-in tools by type).
AGENTOPS_REQUEST_TOOL_NAMES = "agentops.request.tool_names"
#: The ``tool_choice`` asked for, when it is a plain string (``"auto"``, ``"required"``...).
AGENTOPS_REQUEST_TOOL_CHOICE = "agentops.request.tool_choice"
OPENAI_REQUEST_SERVICE_TIER = "openai.request.service_tier"
OPENAI_RESPONSE_SERVICE_TIER = "openai.response.service_tier"
ANTHROPIC_RESPONSE_SERVICE_TIER = "anthropic.response.service_tier"
#: Anthropic's inference speed (``"fast"`` is priced apart).
ANTHROPIC_RESPONSE_SPEED = "anthropic.response.speed"

#: Set (True) when the answer was cut short by a token limit (``length``, ``max_tokens``...).
AGENTOPS_RESPONSE_TRUNCATED = "agentops.response.truncated"
#: Set (True) when the provider filtered or refused the answer (``content_filter``, ``refusal``).
AGENTOPS_RESPONSE_FILTERED = "agentops.response.filtered"
#: Set (True) when the answer ends by calling tools (``tool_calls``, ``tool_use``, a Responses function call).
AGENTOPS_RESPONSE_TOOL_CALLS = "agentops.response.tool_calls"
#: On a span that started inside an LLM call's span: if it is an LLM call too, it is the same call
#: seen by a second instrumentation, and only the outer span counts it (tokens, cost).
AGENTOPS_LLM_INSIDE_CALL = "agentops.llm.inside_call"
#: On an LLM span that records the same call (same ``gen_ai.response.id`` in the same trace) as an
#: earlier one that is not its parent: that span's id. Set by the Django writer; only the earlier counts.
AGENTOPS_LLM_SAME_CALL_AS = "agentops.llm.same_call_as"
#: On an LLM call recorded by another instrumentation: the attribute dialect it was read from
#: (``gen_ai``, ``openllmetry`` or ``openinference``); its canonical ``gen_ai.*`` names were added.
AGENTOPS_LLM_DIALECT = "agentops.llm.dialect"
# --- end of LLM pricing and shape ------------------------------------------------------


# --- AgentOps names ---------------------------------------------------------------------
# The names AgentOps 0.4.21 writes (its ``agentops/semconv`` package), so that data
# recorded here reads the same as theirs. Where one of ours above means the same,
# both are written: ours because agentops_django reads it, AgentOps' for everyone else.

#: How a trace ended, on its root span (AgentOps' name for :data:`AGENTOPS_END_STATE`; same values).
AGENTOPS_SESSION_END_STATE = "agentops.session.end_state"
#: The decorated entity's name (AgentOps' name for :data:`AGENTOPS_ENTITY_NAME`).
OPERATION_NAME = "operation.name"
#: The version given to a decorator, as given (AgentOps' name; :data:`AGENTOPS_ENTITY_VERSION` is its string).
OPERATION_VERSION = "operation.version"
#: JSON of a decorated call's arguments, per kind: ``agentops.tool.input``; ``agentops.entity.input``
#: for the trace kinds (format it with ``entity_kind=``).
AGENTOPS_DECORATOR_INPUT = "agentops.{entity_kind}.input"
#: JSON of a decorated call's return value, per kind, as :data:`AGENTOPS_DECORATOR_INPUT`.
AGENTOPS_DECORATOR_OUTPUT = "agentops.{entity_kind}.output"
#: ``"input"`` or ``"output"``: what a ``@guardrail(spec=...)`` checks (``agentops.guardrail.spec``).
AGENTOPS_DECORATOR_SPEC = "agentops.{entity_kind}.spec"
#: The entity kind whose input/output the trace kinds use in :data:`AGENTOPS_DECORATOR_INPUT`.
ENTITY_KIND_ENTITY = "entity"
#: Prefix of the extra keywords given to the legacy ``end_session`` (AgentOps' name for
#: :data:`AGENTOPS_STATUS_PREFIX`).
AGENTOPS_LEGACY_PREFIX = "agentops.legacy."
#: Prefix of metadata set with ``update_trace_metadata`` (AgentOps' default; was :data:`AGENTOPS_METADATA_PREFIX`).
TRACE_METADATA_PREFIX = "trace.metadata"
#: An error's message (AgentOps' core attribute, next to ``error.type``).
ERROR_MESSAGE = "error.message"
#: The agent an event belongs to (AgentOps' ``agent.id``).
AGENT_ID = "agent.id"
#: AgentOps' constants for end states: ``agentops.SUCCESS`` and friends (``UNSET`` is Indeterminate).
SUCCESS = TraceState.SUCCESS
ERROR = TraceState.ERROR
UNSET = TraceState.INDETERMINATE

# The legacy events of AgentOps 0.3 (``record(ActionEvent(...))``), recorded as spans.
#: The event type, AgentOps' ``EventType`` value: ``actions``, ``tools``, ``llms``, ``errors``.
AGENTOPS_EVENT_TYPE = "agentops.event.type"
#: The event's id (a UUID) as the user's code sees it.
AGENTOPS_EVENT_ID = "agentops.event.id"
#: Free-form logs given to an event (JSON unless a string).
AGENTOPS_EVENT_LOGS = "agentops.event.logs"
#: The screenshot URL of an ``ActionEvent``.
AGENTOPS_EVENT_SCREENSHOT = "agentops.event.screenshot"
#: The code of an ``ErrorEvent`` (e.g. ``"501"``).
AGENTOPS_ERROR_CODE = "agentops.error.code"
#: The span kind of a recorded ``ErrorEvent`` (its span has status ERROR).
SPAN_KIND_ERROR = "error"
#: The AgentOps project of the API key, on the resource of the spans sent to AgentOps' service.
AGENTOPS_PROJECT_ID = "agentops.project.id"
# --- end of AgentOps names ---------------------------------------------------------------


# --- Process identity (OpenTelemetry resource attributes) ------------------------------
# Which process recorded a span: on the provider's resource, and stored by the writer.
SERVICE_NAME = "service.name"
SERVICE_INSTANCE_ID = "service.instance.id"
HOST_NAME = "host.name"
PROCESS_PID = "process.pid"
#: What the process is for: one of :class:`ProcessRole`.
AGENTOPS_PROCESS_ROLE = "agentops.process.role"
#: The Celery worker's node name (``celery@host``), in a worker's processes.
CELERY_WORKER_NODE = "celery.worker.node"
#: The pool child's index (prefork), in a worker's child processes.
CELERY_WORKER_POOL_INDEX = "celery.worker.pool_index"


#: The authenticated user of a request (OpenTelemetry's ``user.*`` names): id and username.
USER_ID = "user.id"
USER_NAME = "user.name"


class ProcessRole:
    """Values of :data:`AGENTOPS_PROCESS_ROLE`."""

    WEB = "web"
    WORKER = "worker"
    BEAT = "beat"
    COMMAND = "command"
    OTHER = "other"


# --- Database queries of a request or task (agentops_django) -----------------------------
# Recorded on the request/task span through Django's ``connection.execute_wrapper``.
#: Queries the request or task ran (the tracing writer's own never count).
AGENTOPS_DB_QUERY_COUNT = "agentops.db.query_count"
#: Their total time in milliseconds.
AGENTOPS_DB_QUERY_TIME_MS = "agentops.db.query_time_ms"
#: Distinct normalised statements run at least ``REPEATED_QUERY_THRESHOLD`` times (the N+1 pattern).
AGENTOPS_DB_REPEATED_QUERIES = "agentops.db.repeated_queries"
#: JSON list of the top statements: ``[{"sql": normalised, "count": n, "time_ms": t}, ...]``.
AGENTOPS_DB_TOP_QUERIES = "agentops.db.top_queries"
# One span per query (``AGENTOPS["QUERY_SPANS"]``): OpenTelemetry's database names.
#: The database product (``postgresql``, ``sqlite``, ...).
DB_SYSTEM_NAME = "db.system.name"
#: The database's name.
DB_NAMESPACE = "db.namespace"
#: The statement's first keyword (``SELECT``, ``INSERT``, ...).
DB_OPERATION_NAME = "db.operation.name"
#: The normalised statement: no parameter values, literals replaced.
DB_QUERY_TEXT = "db.query.text"


__all__ = [name for name in dir() if name.isupper() or name in {"SpanKind", "TraceState", "ProcessRole"}]
