"""The ``AGENTOPS`` setting: one dict merged over the documented defaults below.

Read it with :func:`get_config`; the result is cached and the cache is cleared
when a test changes ``AGENTOPS`` (or a setting the defaults depend on) with
``override_settings``. A value that cannot be used falls back to its default
here and is reported by the system checks (:mod:`agentops_django.checks`), so
a typo never stops the site.

Keys (all optional)::

    AGENTOPS = {
        "ENABLED": True,              # False: no SDK, no middleware, no writer
        "SAMPLE_RATE": 1.0,           # share of requests traced, 0.0 .. 1.0
        "EXCLUDED_PATHS": [],         # anchored regexes matched on request.path_info
        "EXCLUDE_DEFAULT_PATHS": True,  # also skip STATIC_URL, MEDIA_URL and the admin's agentops pages
        "TRUST_INCOMING_TRACEPARENT": False,  # continue a W3C traceparent sent by the client
        "SHOULD_TRACE_REQUEST": None,  # dotted path of a callable(request) -> bool
        "RECORD_HEADERS": False,      # record request headers (Authorization/Cookie redacted)
        "CAPTURE_CONTENT": None,      # None: the SDK's default / AGENTOPS_CAPTURE_CONTENT
        "REDACT_KEYS": None,          # list of keys masked in payloads; None: the SDK's list
        "MAX_PAYLOAD_SIZE": None,     # characters kept of one payload; None: the SDK's default
        "SERVICE_NAME": None,         # service.name of the provider agentops creates
        "DEFAULT_TAGS": None,         # tags added to every manual trace
        "INSTRUMENT_LLM_CALLS": None,  # wrap the OpenAI/Anthropic clients; None: the SDK's default
        "EXPORTERS": [],              # extra exporters: "otlp", "console", or dotted paths
        "DATABASE_WRITER": True,      # store spans in the database (the admin reads them)
        "DATABASE_ALIAS": "default",  # the database the writer uses (see agentops_django.routers)
        "IS_RUNNING_TESTS": None,     # None: detected (``manage.py test``, pytest); True/False to say so
        "WRITE_DURING_TESTS": False,  # while tests run, spans stay in memory unless this is True
        "QUEUE_SIZE": 20_000,         # spans waiting for the writer; more are dropped and counted
        "BATCH_SIZE": 1_000,          # spans per write transaction
        "BATCH_INTERVAL": 1.0,        # seconds the writer waits to fill a batch
        "RETENTION_DAYS": 14,         # prune command: delete traces (and writer stats) older than this
        "RETENTION_MAX_TRACES": 100_000,  # prune command: keep at most this many traces
        "UNFINISHED_AFTER": 300,      # seconds after which a published task that never reported back is unfinished
    }
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import re
import sys
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)

DEFAULTS: dict[str, Any] = {
    "ENABLED": True,
    "SAMPLE_RATE": 1.0,
    "EXCLUDED_PATHS": [],
    "EXCLUDE_DEFAULT_PATHS": True,
    "TRUST_INCOMING_TRACEPARENT": False,
    "SHOULD_TRACE_REQUEST": None,
    "RECORD_HEADERS": False,
    "CAPTURE_CONTENT": None,
    "REDACT_KEYS": None,
    "MAX_PAYLOAD_SIZE": None,
    "SERVICE_NAME": None,
    "DEFAULT_TAGS": None,
    "INSTRUMENT_LLM_CALLS": None,
    "EXPORTERS": [],
    "DATABASE_WRITER": True,
    "DATABASE_ALIAS": "default",
    "IS_RUNNING_TESTS": None,
    "WRITE_DURING_TESTS": False,
    "QUEUE_SIZE": 20_000,
    "BATCH_SIZE": 1_000,
    "BATCH_INTERVAL": 1.0,
    "RETENTION_DAYS": 14,
    "RETENTION_MAX_TRACES": 100_000,
    "UNFINISHED_AFTER": 300,
}

#: The dotted path of the middleware, as it appears in ``settings.MIDDLEWARE``.
MIDDLEWARE_PATH = "agentops_django.middleware.AgentOpsMiddleware"
#: The dotted path of the router that sends the app's models to ``DATABASE_ALIAS``.
ROUTER_PATH = "agentops_django.routers.AgentOpsRouter"
#: Exporter names the SDK understands; anything else must be a dotted path.
EXPORTER_NAMES = ("otlp", "console", "memory")
#: The admin's own pages (any admin prefix): never traced.
ADMIN_PAGES_PATTERN = r"/(?:.+/)?agentops_django/"
#: Settings that, when changed, invalidate the cached configuration.
_WATCHED = frozenset({"AGENTOPS", "STATIC_URL", "MEDIA_URL", "DATABASES"})


@dataclasses.dataclass(frozen=True)
class AgentOpsSettings:
    """The resolved ``AGENTOPS`` setting (see the module docstring for each key).

    Attributes:
        raw: The user's dict merged over :data:`DEFAULTS`, unchanged.
        excluded: One compiled regex of every excluded path, or ``None``.
        should_trace: The imported ``SHOULD_TRACE_REQUEST`` callable, or ``None``.
    """

    raw: dict[str, Any]
    enabled: bool
    sample_rate: float
    excluded: re.Pattern[str] | None
    trust_traceparent: bool
    should_trace: Callable[[Any], bool] | None
    record_headers: bool
    database_writer: bool
    database_alias: str
    running_tests: bool
    write_during_tests: bool
    queue_size: int
    batch_size: int
    batch_interval: float

    def __getitem__(self, key: str) -> Any:
        return self.raw[key]

    @property
    def writes_to_database(self) -> bool:
        """Whether finished spans go to the database writer in this process.

        While a test suite runs they do not (unless ``WRITE_DURING_TESTS``):
        the writer's own connection would hold locks Django's test database
        needs, outlive the test database, and escape the tests' rollbacks.
        """
        return self.enabled and self.database_writer and (self.write_during_tests or not self.running_tests)


def detect_test_run() -> bool:
    """Whether this process runs a test suite: ``manage.py test`` or pytest.

    The same rule as django-debug-toolbar's ``IS_RUNNING_TESTS``: Django's
    runner is ``test`` as the first argument of ``manage.py``/``django-admin``;
    pytest (8.2 and later) sets ``PYTEST_VERSION`` for the whole session.
    """
    return sys.argv[1:2] == ["test"] or "PYTEST_VERSION" in os.environ


def user_settings() -> dict[str, Any]:
    """The ``AGENTOPS`` setting as the user wrote it (``{}`` if absent or not a dict)."""
    value = getattr(settings, "AGENTOPS", None)
    return dict(value) if isinstance(value, dict) else {}


def default_excluded_paths() -> list[str]:
    """The built-in exclusions: static files, media files and the admin's agentops pages."""
    patterns = [ADMIN_PAGES_PATTERN]
    for name in ("STATIC_URL", "MEDIA_URL"):
        url = getattr(settings, name, None)
        if not url:
            continue
        path = urlsplit(str(url)).path
        if not path or path == "/":
            continue  # serving static files from the root would exclude everything
        if not path.startswith("/"):
            path = "/" + path
        patterns.append(re.escape(path))
    return patterns


def _number(raw: dict[str, Any], key: str, kind: type, low: float, high: float | None = None) -> Any:
    value = raw[key]
    ok = isinstance(value, int | float) and not isinstance(value, bool) and value >= low
    if ok and high is not None:
        ok = value <= high
    if not ok:
        logger.warning("agentops_django: AGENTOPS[%r]=%r is not usable; using %r", key, value, DEFAULTS[key])
        value = DEFAULTS[key]
    return kind(value)


def _compile_excluded(raw: dict[str, Any]) -> re.Pattern[str] | None:
    patterns = list(default_excluded_paths()) if raw["EXCLUDE_DEFAULT_PATHS"] else []
    user = raw["EXCLUDED_PATHS"]
    if isinstance(user, str):
        user = [user]
    for pattern in user if isinstance(user, list | tuple) else []:
        try:
            re.compile(pattern)
        except (re.error, TypeError):
            logger.warning("agentops_django: excluded path %r is not a regex; ignored", pattern)
            continue
        patterns.append(f"(?:{pattern})")
    if not patterns:
        return None
    return re.compile("|".join(patterns))


def _callable(raw: dict[str, Any], key: str) -> Callable[[Any], bool] | None:
    value = raw[key]
    if value is None or callable(value):
        return value
    try:
        return import_string(value)
    except Exception:  # ImportError, or AttributeError/TypeError for a value that is no path at all
        logger.warning("agentops_django: AGENTOPS[%r]=%r cannot be imported; ignored", key, value)
        return None


@functools.cache
def get_config() -> AgentOpsSettings:
    """The resolved ``AGENTOPS`` setting, cached until the setting changes.

    Returns:
        An :class:`AgentOpsSettings`; ``config["KEY"]`` gives any merged raw value.
    """
    raw = {**DEFAULTS, **user_settings()}
    return AgentOpsSettings(
        raw=raw,
        enabled=bool(raw["ENABLED"]),
        sample_rate=_number(raw, "SAMPLE_RATE", float, 0.0, 1.0),
        excluded=_compile_excluded(raw),
        trust_traceparent=bool(raw["TRUST_INCOMING_TRACEPARENT"]),
        should_trace=_callable(raw, "SHOULD_TRACE_REQUEST"),
        record_headers=bool(raw["RECORD_HEADERS"]),
        database_writer=bool(raw["DATABASE_WRITER"]),
        database_alias=raw["DATABASE_ALIAS"] if isinstance(raw["DATABASE_ALIAS"], str) else "default",
        running_tests=detect_test_run() if raw["IS_RUNNING_TESTS"] is None else bool(raw["IS_RUNNING_TESTS"]),
        write_during_tests=bool(raw["WRITE_DURING_TESTS"]),
        queue_size=_number(raw, "QUEUE_SIZE", int, 1),
        batch_size=_number(raw, "BATCH_SIZE", int, 1),
        batch_interval=_number(raw, "BATCH_INTERVAL", float, 0.001),
    )


def resolve_exporters(values: Any) -> list[Any]:
    """Turn ``EXPORTERS`` into what ``agentops.init(exporters=...)`` accepts.

    Names the SDK knows pass through; a dotted path is imported and, if it is
    a class or factory, called without arguments to make the exporter or span
    processor. Entries that cannot be used are logged and skipped.
    """
    if isinstance(values, str):
        values = [values]
    result: list[Any] = []
    for value in values if isinstance(values, list | tuple) else []:
        if not isinstance(value, str) or value.lower() in EXPORTER_NAMES:
            result.append(value)
            continue
        try:
            target = import_string(value)
            result.append(target() if callable(target) else target)
        except Exception:
            logger.warning("agentops_django: exporter %r cannot be created; skipped", value, exc_info=True)
    return result


@receiver(setting_changed)
def _clear_cache(*, setting: str, **kwargs: Any) -> None:
    if setting in _WATCHED:
        get_config.cache_clear()
