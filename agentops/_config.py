"""Configuration: ``init()`` keywords, then ``AGENTOPS_*`` variables, then defaults.

Everything is resolved in :func:`resolve`. A value that cannot be used is
logged and replaced by its default: configuration never raises into the host.
:func:`init_options` is the one list of the options ``init()`` and
``configure()`` take, typed: AgentOps 0.4.21's, then agentops-django's own.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import logging
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from agentops import semconv

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import SpanProcessor
    from opentelemetry.sdk.trace.export import SpanExporter

logger = logging.getLogger(__name__)

# Environment variables, one per option.
ENV_API_KEY = "AGENTOPS_API_KEY"
ENV_AUTO_START_SESSION = "AGENTOPS_AUTO_START_SESSION"
ENV_INSTRUMENT_LLM_CALLS = "AGENTOPS_INSTRUMENT_LLM_CALLS"
ENV_DEFAULT_TAGS = "AGENTOPS_DEFAULT_TAGS"
ENV_TRACE_NAME = "AGENTOPS_TRACE_NAME"
ENV_SERVICE_NAME = "AGENTOPS_SERVICE_NAME"
#: ``key=value,key=value`` (as ``OTEL_RESOURCE_ATTRIBUTES``).
ENV_RESOURCE_ATTRIBUTES = "AGENTOPS_RESOURCE_ATTRIBUTES"
ENV_EXPORTERS = "AGENTOPS_EXPORTERS"
ENV_CAPTURE_CONTENT = "AGENTOPS_CAPTURE_CONTENT"
ENV_MAX_PAYLOAD_SIZE = "AGENTOPS_MAX_PAYLOAD_SIZE"
ENV_REDACT_KEYS = "AGENTOPS_REDACT_KEYS"
#: A JSON object of prices, as ``prices=`` takes them.
ENV_PRICES = "AGENTOPS_PRICES"
#: Where an OTLP/HTTP exporter sends spans (AgentOps' variable). Unset: AgentOps' own
#: endpoint with an API key, no such exporter without one.
ENV_EXPORTER_ENDPOINT = "AGENTOPS_EXPORTER_ENDPOINT"
#: AgentOps' API, where an API key is exchanged for a token (AgentOps' variable).
ENV_API_ENDPOINT = "AGENTOPS_API_ENDPOINT"
#: Level of the ``agentops`` logger, a name (``DEBUG``) or a number (AgentOps' variable).
ENV_LOG_LEVEL = "AGENTOPS_LOG_LEVEL"

#: Keys whose values are masked wherever they appear in recorded payloads.
DEFAULT_REDACT_KEYS: tuple[str, ...] = (
    "api_key",
    "apikey",
    "authorization",
    "cookie",
    "password",
    "passwd",
    "secret",
    "token",
    "access_token",
    "refresh_token",
    "client_secret",
    "private_key",
    "set-cookie",
    "x-api-key",
)
#: Exporter names understood by ``exporters=``.
EXPORTER_NAMES = ("console", "memory", "otlp")
#: Options of AgentOps' ``init()``/``configure()`` that are accepted and have no effect here
#: (see :func:`init_options` for why, one by one).
IGNORED_OPTIONS = frozenset(
    {
        "app_url",
        "max_wait_time",
        "export_flush_interval",
        "max_queue_size",
        "auto_init",
        "skip_auto_end_session",
        "env_data_opt_out",
        "fail_safe",
        "log_session_replay_url",
        "prefetch_jwt_token",
    }
)

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


@dataclasses.dataclass(frozen=True)
class Config:
    """The resolved configuration of the SDK.

    Attributes:
        api_key: AgentOps' API key. With one, spans also go to AgentOps'
            service (see :mod:`agentops._service`); without one nothing is
            sent anywhere but the exporters configured.
        auto_start_session: Start a trace named ``trace_name`` at ``init()``.
        instrument_llm_calls: Wrap the OpenAI and Anthropic clients.
        default_tags: Tags added to every trace.
        trace_name: Name of the trace ``init()`` starts.
        service_name: The ``service.name`` resource of a provider agentops creates.
        resource_attributes: More resource attributes of a provider agentops
            creates (it adds ``host.name`` and ``process.pid`` itself), e.g.
            the process's role.
        exporters: Exporter names (see :data:`EXPORTER_NAMES`) or exporter objects.
        capture_content: Record inputs, outputs, prompts and completions.
        max_payload_size: Characters kept of one recorded payload.
        redact_keys: Keys whose values are masked (case-insensitive; ``password``
            also masks ``db_password``). Keys given to ``init()`` or in
            ``AGENTOPS_REDACT_KEYS`` are added to :data:`DEFAULT_REDACT_KEYS`.
        prices: The user's own prices, which win over the price table: model
            name (case-insensitive; a trailing ``*`` matches any ending, e.g.
            ``"ft:gpt-4o-mini:acme:*"``) -> US dollars per unit, in
            genai-prices' keys (``input_mtok``, ``output_mtok``,
            ``cache_read_mtok``, ``cache_write_mtok``: per million tokens).
            ``{"my-llama": {"input_mtok": 0, "output_mtok": 0}}`` prices a
            self-hosted model at zero.
        exporter_endpoint: URL an OTLP/HTTP exporter sends spans to (needs
            the ``otlp`` extra); ``None``: AgentOps' own endpoint with an
            ``api_key``, no such exporter without one.
        api_endpoint: AgentOps' API, where the ``api_key`` is exchanged for
            a token (``init(endpoint=...)``); ``None``: AgentOps' own.
        log_level: Level set on the ``agentops`` logger; ``None`` leaves it alone.
    """

    api_key: str | None = dataclasses.field(default=None, repr=False)
    auto_start_session: bool = True
    instrument_llm_calls: bool = True
    default_tags: tuple[str, ...] = ()
    trace_name: str = "session"
    service_name: str = semconv.DEFAULT_SERVICE_NAME
    resource_attributes: Mapping[str, str | int] = dataclasses.field(default_factory=dict)
    exporters: tuple[Any, ...] = ()
    capture_content: bool = True
    max_payload_size: int = 16_384
    redact_keys: frozenset[str] = frozenset(DEFAULT_REDACT_KEYS)
    exporter_endpoint: str | None = None
    api_endpoint: str | None = None
    log_level: int | None = None
    prices: Mapping[str, Mapping[str, float]] = dataclasses.field(default_factory=dict)


def parse_bool(value: str, name: str, default: bool) -> bool:
    """Parse a boolean strictly: anything but a known spelling keeps the default."""
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    logger.warning("agentops: %s=%r is not a boolean; using %s", name, value, default)
    return default


def _split(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _as_tags(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return _split(value)
    if isinstance(value, Mapping):
        return tuple(f"{k}:{v}" for k, v in value.items())
    if isinstance(value, Iterable):
        return tuple(str(v) for v in value)
    logger.warning("agentops: tags must be a list of strings, not %r; ignored", value)
    return ()


def _env_bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    return default if raw is None else parse_bool(raw, name, default)


def resolve(options: Mapping[str, Any], env: Mapping[str, str] | None = None) -> Config:
    """Resolve ``init()`` keywords over the environment over the defaults.

    Args:
        options: The keywords given to ``init()``; ``None`` values count as unset.
        env: The environment to read (``os.environ`` by default).

    Returns:
        The resolved :class:`Config`. Unknown keywords and unusable values are
        logged and ignored.
    """
    env = os.environ if env is None else env
    defaults = Config()
    given = {key: value for key, value in options.items() if value is not None}
    for key in sorted(set(given) - known_options()):
        logger.warning("agentops: unknown init() option %r ignored", key)
        del given[key]

    values: dict[str, Any] = {}
    values["api_key"] = str(given.get("api_key", env.get(ENV_API_KEY)) or "").strip() or None
    for field, env_name in (
        ("auto_start_session", ENV_AUTO_START_SESSION),
        ("instrument_llm_calls", ENV_INSTRUMENT_LLM_CALLS),
        ("capture_content", ENV_CAPTURE_CONTENT),
    ):
        if field in given:
            value = given[field]
            if isinstance(value, str):  # init(capture_content="false") means False
                value = parse_bool(value, field, getattr(defaults, field))
            values[field] = bool(value)
        else:
            values[field] = _env_bool(env, env_name, getattr(defaults, field))
    # AgentOps' tags= adds to default_tags (each tag once); exporter= and processor= add to exporters.
    tags = _as_tags(given.get("default_tags", env.get(ENV_DEFAULT_TAGS))) + _as_tags(given.get("tags"))
    values["default_tags"] = tuple(dict.fromkeys(tags))
    values["trace_name"] = str(given.get("trace_name") or env.get(ENV_TRACE_NAME) or defaults.trace_name)
    values["service_name"] = str(given.get("service_name") or env.get(ENV_SERVICE_NAME) or defaults.service_name)
    resource = given.get("resource_attributes", env.get(ENV_RESOURCE_ATTRIBUTES))
    if isinstance(resource, str):
        pairs = (item.partition("=") for item in resource.split(","))
        resource = {key.strip(): value.strip() for key, sep, value in pairs if sep and key.strip()}
    values["resource_attributes"] = dict(resource) if isinstance(resource, Mapping) else {}

    exporters = given.get("exporters", env.get(ENV_EXPORTERS, ""))
    if isinstance(exporters, str):
        exporters = _split(exporters)
    elif not isinstance(exporters, Sequence):
        exporters = (exporters,)
    exporters = (*exporters, *(given[key] for key in ("exporter", "processor") if key in given))
    checked: list[Any] = []
    for exporter in exporters:
        if isinstance(exporter, str):
            exporter = exporter.strip().lower()
            if exporter not in EXPORTER_NAMES:
                logger.warning(
                    "agentops: unknown exporter %r ignored (known: %s)",
                    exporter,
                    ", ".join(EXPORTER_NAMES),
                )
                continue
        if not any(exporter is seen or exporter == seen for seen in checked):
            checked.append(exporter)
    values["exporters"] = tuple(checked)

    size = given.get("max_payload_size", env.get(ENV_MAX_PAYLOAD_SIZE))
    try:
        values["max_payload_size"] = defaults.max_payload_size if size is None else int(size)
        if values["max_payload_size"] < 64:
            raise ValueError
    except (TypeError, ValueError):
        logger.warning("agentops: max_payload_size=%r is not an integer >= 64; using default", size)
        values["max_payload_size"] = defaults.max_payload_size

    # Extra keys add to the defaults: asking to mask "ssn" must not unmask "password".
    keys = given.get("redact_keys", env.get(ENV_REDACT_KEYS))
    values["redact_keys"] = defaults.redact_keys | frozenset(k.lower() for k in _as_tags(keys))
    values["prices"] = _as_prices(given.get("prices", env.get(ENV_PRICES)))
    endpoint = str(given.get("exporter_endpoint", env.get(ENV_EXPORTER_ENDPOINT)) or "").strip()
    values["exporter_endpoint"] = endpoint or None
    # ``endpoint`` is AgentOps' name of the option.
    api_endpoint = given.get("endpoint", given.get("api_endpoint", env.get(ENV_API_ENDPOINT)))
    values["api_endpoint"] = str(api_endpoint or "").strip() or None
    values["log_level"] = _as_log_level(given.get("log_level", env.get(ENV_LOG_LEVEL)))
    return Config(**values)


def _as_prices(value: Any) -> dict[str, dict[str, float]]:
    """The user's prices, checked: names lowercased, amounts non-negative numbers; the rest logged and dropped."""
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            logger.warning("agentops: %s is not a JSON object; ignored", ENV_PRICES)
            return {}
    if not isinstance(value, Mapping):
        logger.warning("agentops: prices must map model names to prices, not %r; ignored", value)
        return {}
    prices: dict[str, dict[str, float]] = {}
    for model, price in value.items():
        if not isinstance(model, str) or not model.strip() or not isinstance(price, Mapping):
            logger.warning("agentops: price %r: %r is not a model name and a mapping; ignored", model, price)
            continue
        amounts: dict[str, float] = {}
        for key, amount in price.items():
            numeric = isinstance(amount, int | float | Decimal) and not isinstance(amount, bool)
            number = float(amount) if numeric else -1.0
            if not isinstance(key, str) or not math.isfinite(number) or number < 0:
                logger.warning("agentops: price of %r: %r=%r is not a non-negative number; ignored", model, key, amount)
                continue
            amounts[key] = number
        if amounts:
            prices[model.strip().lower()] = amounts
    return prices


def _as_log_level(value: Any) -> int | None:
    """A logging level from a name (``"debug"``) or a number; anything else is logged and ignored."""
    if value is None or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    text = str(value).strip()
    if text.isdigit():
        return int(text)
    level = logging.getLevelName(text.upper())
    if isinstance(level, int):
        return level
    logger.warning("agentops: log_level=%r is not a logging level; ignored", value)
    return None


def init_options(
    api_key: str | None = None,
    *,
    endpoint: str | None = None,
    app_url: str | None = None,
    max_wait_time: int | None = None,
    max_queue_size: int | None = None,
    tags: Sequence[str] | Mapping[str, Any] | None = None,
    default_tags: Sequence[str] | Mapping[str, Any] | str | None = None,
    trace_name: str | None = None,
    instrument_llm_calls: bool | None = None,
    auto_start_session: bool | None = None,
    auto_init: bool | None = None,
    skip_auto_end_session: bool | None = None,
    env_data_opt_out: bool | None = None,
    log_level: str | int | None = None,
    fail_safe: bool | None = None,
    log_session_replay_url: bool | None = None,
    exporter_endpoint: str | None = None,
    export_flush_interval: int | None = None,
    prefetch_jwt_token: bool | None = None,
    exporter: SpanExporter | None = None,
    processor: SpanProcessor | None = None,
    service_name: str | None = None,
    resource_attributes: Mapping[str, str | int] | None = None,
    exporters: Sequence[str | SpanExporter | SpanProcessor] | str | None = None,
    capture_content: bool | None = None,
    max_payload_size: int | None = None,
    redact_keys: Iterable[str] | str | None = None,
    prices: Mapping[str, Mapping[str, float]] | None = None,
) -> None:
    """The options of ``init()`` and ``configure()``: AgentOps 0.4.21's names, then ours.

    This function does nothing; ``init()`` and ``configure()`` take their
    signature from it, so type checkers and ``help()`` know every option,
    while at run time an unknown keyword is warned about and ignored rather
    than raised. ``None`` means "not given": the ``AGENTOPS_*`` variable, an
    earlier call's value or the default applies.

    Args:
        api_key: AgentOps' API key (``AGENTOPS_API_KEY``): with one, spans
            also go to AgentOps' service, as the official SDK sends them.
        endpoint: AgentOps' API, where the key is exchanged for a token
            (``AGENTOPS_API_ENDPOINT``; default ``https://api.agentops.ai``).
        app_url: Ignored: no dashboard link is printed (the Django admin shows the traces).
        max_wait_time: Ignored (exporters flush on their own schedule and at exit).
        max_queue_size: Ignored (each exporter's queue has its own bound).
        tags: AgentOps' deprecated name of ``default_tags``; added to them.
        default_tags: Tags added to every trace (``AGENTOPS_DEFAULT_TAGS``).
        trace_name: Name of the session ``init()`` starts (``AGENTOPS_TRACE_NAME``).
        instrument_llm_calls: Wrap the OpenAI and Anthropic clients.
        auto_start_session: ``init()`` starts a session (a trace) of its own.
        auto_init: Ignored: nothing starts at import here, ever.
        skip_auto_end_session: Ignored: no framework ends sessions by itself here.
        env_data_opt_out: Ignored: no environment data is collected (the resource names
            only the service, host, pid and process role).
        log_level: Level of the ``agentops`` logger (``AGENTOPS_LOG_LEVEL``).
        fail_safe: Ignored: agentops never raises into the host anyway.
        log_session_replay_url: Ignored: no replay URLs are printed.
        exporter_endpoint: URL an OTLP/HTTP exporter sends every span to
            (``AGENTOPS_EXPORTER_ENDPOINT``; needs the ``otlp`` extra). With
            an ``api_key`` it defaults to AgentOps' (``https://otlp.agentops.ai/v1/traces``)
            and carries the key's token.
        export_flush_interval: Ignored, as ``max_wait_time``.
        prefetch_jwt_token: Ignored: the token is fetched in the background
            before the first spans are sent, never on the caller's thread.
        exporter: An OpenTelemetry ``SpanExporter`` that gets every span
            (through a batch processor); added to ``exporters``.
        processor: An OpenTelemetry ``SpanProcessor`` that sees every span;
            added to ``exporters``.
        service_name: ``service.name`` of a provider agentops creates.
        resource_attributes: More resource attributes of a provider agentops creates.
        exporters: ``"console"``, ``"memory"``, ``"otlp"``, exporter or
            processor objects (``AGENTOPS_EXPORTERS``).
        capture_content: Record inputs, outputs, prompts and completions.
        max_payload_size: Characters kept of one recorded payload.
        redact_keys: Keys masked in recorded payloads, added to the defaults.
        prices: The user's own model prices (see :class:`Config`).
    """


def known_options() -> frozenset[str]:
    """Every option name ``init()`` and ``resolve()`` understand (including those they ignore)."""
    return _KNOWN_OPTIONS | {field.name for field in dataclasses.fields(Config)}


_KNOWN_OPTIONS = frozenset(inspect.signature(init_options).parameters)
