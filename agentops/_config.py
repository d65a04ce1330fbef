"""Configuration: ``init()`` keywords, then ``AGENTOPS_*`` variables, then defaults.

Everything is resolved in :func:`resolve`. A value that cannot be used is
logged and replaced by its default: configuration never raises into the host.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from agentops import semconv

logger = logging.getLogger(__name__)

# Environment variables, one per option.
ENV_API_KEY = "AGENTOPS_API_KEY"
ENV_AUTO_START_SESSION = "AGENTOPS_AUTO_START_SESSION"
ENV_INSTRUMENT_LLM_CALLS = "AGENTOPS_INSTRUMENT_LLM_CALLS"
ENV_DEFAULT_TAGS = "AGENTOPS_DEFAULT_TAGS"
ENV_TRACE_NAME = "AGENTOPS_TRACE_NAME"
ENV_SERVICE_NAME = "AGENTOPS_SERVICE_NAME"
ENV_EXPORTERS = "AGENTOPS_EXPORTERS"
ENV_CAPTURE_CONTENT = "AGENTOPS_CAPTURE_CONTENT"
ENV_MAX_PAYLOAD_SIZE = "AGENTOPS_MAX_PAYLOAD_SIZE"
ENV_REDACT_KEYS = "AGENTOPS_REDACT_KEYS"

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

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


@dataclasses.dataclass(frozen=True)
class Config:
    """The resolved configuration of the SDK.

    Attributes:
        api_key: Optional; kept for compatibility, never needed to start.
        auto_start_session: Start a trace named ``trace_name`` at ``init()``.
        instrument_llm_calls: Wrap the OpenAI and Anthropic clients.
        default_tags: Tags added to every trace.
        trace_name: Name of the trace ``init()`` starts.
        service_name: The ``service.name`` resource of a provider agentops creates.
        exporters: Exporter names (see :data:`EXPORTER_NAMES`) or exporter objects.
        capture_content: Record inputs, outputs, prompts and completions.
        max_payload_size: Characters kept of one recorded payload.
        redact_keys: Keys whose values are masked (case-insensitive; ``password``
            also masks ``db_password``). Keys given to ``init()`` or in
            ``AGENTOPS_REDACT_KEYS`` are added to :data:`DEFAULT_REDACT_KEYS`.
    """

    api_key: str | None = None
    auto_start_session: bool = True
    instrument_llm_calls: bool = True
    default_tags: tuple[str, ...] = ()
    trace_name: str = "session"
    service_name: str = semconv.DEFAULT_SERVICE_NAME
    exporters: tuple[Any, ...] = ()
    capture_content: bool = True
    max_payload_size: int = 16_384
    redact_keys: frozenset[str] = frozenset(DEFAULT_REDACT_KEYS)


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
    known = {field.name for field in dataclasses.fields(Config)}
    given = {key: value for key, value in options.items() if value is not None}
    for key in sorted(set(given) - known):
        logger.warning("agentops: unknown init() option %r ignored", key)
        del given[key]

    values: dict[str, Any] = {}
    values["api_key"] = given.get("api_key", env.get(ENV_API_KEY) or None)
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
    values["default_tags"] = _as_tags(given.get("default_tags", env.get(ENV_DEFAULT_TAGS)))
    values["trace_name"] = str(given.get("trace_name") or env.get(ENV_TRACE_NAME) or defaults.trace_name)
    values["service_name"] = str(given.get("service_name") or env.get(ENV_SERVICE_NAME) or defaults.service_name)

    exporters = given.get("exporters", env.get(ENV_EXPORTERS, ""))
    if isinstance(exporters, str):
        exporters = _split(exporters)
    elif not isinstance(exporters, Sequence):
        exporters = (exporters,)
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
    return Config(**values)
