"""The ``AGENTOPS`` setting: one dict, each key declared once in :data:`OPTIONS`.

Read it with :func:`get_config`; the result is cached and the cache is cleared
when a test changes ``AGENTOPS`` (or a setting the defaults depend on) with
``override_settings``. A value that cannot be used falls back to its default
here and is reported by the system checks (:mod:`agentops_django.checks`), so
a typo never stops the site.

Every key, its default, what it accepts and what it does is declared once,
in :data:`OPTIONS`: the system checks report what it refuses, and a test
keeps the README's table equal to it.
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


@dataclasses.dataclass(frozen=True)
class Option:
    """One key of the ``AGENTOPS`` setting: its default, what it accepts, what it does.

    The one description of the setting: :func:`get_config` falls back to the
    default for a value :meth:`problems` refuses, the system checks report
    those problems, and a test holds the README's table to it.

    Attributes:
        key: The key in ``AGENTOPS``.
        default: Used when the key is absent or its value is refused.
        kind: ``bool``, ``optional_bool``, ``int``, ``optional_int``, ``number``,
            ``optional_str``, ``alias``, ``strings`` (list of strings or None),
            ``regexes``, ``exporters`` or ``callable``.
        doc: One line for the README and the docstring.
        low: Smallest accepted number (inclusive).
        high: Largest accepted number (inclusive).
    """

    key: str
    default: Any
    kind: str
    doc: str
    low: float | None = None
    high: float | None = None

    def problems(self, value: Any) -> list[tuple[str, str, str]]:
        """What is wrong with ``value``, as ``(check id, message, hint)``; empty if it is usable."""
        kind, key = self.kind, self.key

        def wrong(expected: str) -> list[tuple[str, str, str]]:
            return [
                (
                    "W011",
                    f"AGENTOPS[{key!r}] must be {expected}, not {value!r}.",
                    f"Fix the value in settings.AGENTOPS or remove the key to use the default ({self.default!r}).",
                )
            ]

        if kind == "bool":
            return [] if isinstance(value, bool) else wrong("True or False")
        if kind == "optional_bool":
            return [] if value is None or isinstance(value, bool) else wrong("True, False or None")
        if kind in ("int", "optional_int", "number"):
            if value is None and kind == "optional_int":
                return []
            integer = kind != "number"
            ok_type = isinstance(value, int if integer else int | float) and not isinstance(value, bool)
            if not ok_type:
                return wrong("an integer" if integer else "a number")
            if key == "SAMPLE_RATE" and not self.low <= value <= self.high:  # type: ignore[operator]
                return [
                    (
                        "W012",
                        f"AGENTOPS['SAMPLE_RATE'] must be between 0.0 and 1.0, not {value!r}.",
                        "1.0 traces every request, 0.1 one in ten, 0.0 none.",
                    )
                ]
            if (self.low is not None and value < self.low) or (self.high is not None and value > self.high):
                bound = "more than 0" if self.low == 0.001 else f"at least {self.low:g}"
                return [("W017", f"AGENTOPS[{key!r}] must be {bound}, not {value!r}.", "Use a positive number.")]
            return []
        if kind == "optional_str":
            return [] if value is None or isinstance(value, str) else wrong("a string or None")
        if kind == "alias":
            return [] if isinstance(value, str) else wrong("a database alias (a string)")
        if kind == "strings":
            if value is None or (isinstance(value, list | tuple) and all(isinstance(v, str) for v in value)):
                return []
            return wrong("a list of strings or None")
        if kind == "regexes":
            if not isinstance(value, list | tuple):
                return wrong("a list of regular expressions")
            found = []
            for pattern in value:
                try:
                    re.compile(pattern)
                except (re.error, TypeError) as exc:
                    found.append(
                        (
                            "W013",
                            f"AGENTOPS['EXCLUDED_PATHS'] entry {pattern!r} is not a valid regular expression: {exc}.",
                            "Patterns are matched at the start of request.path_info, e.g. r'^/health/'.",
                        )
                    )
            return found
        if kind == "exporters":
            entries = [value] if isinstance(value, str) else value
            if not isinstance(entries, list | tuple):
                return wrong("a list")
            found = []
            for entry in entries:
                if not isinstance(entry, str) or entry.lower() in EXPORTER_NAMES:
                    continue
                try:
                    import_string(entry)
                except Exception:  # ImportError, or an error raised while importing the module
                    found.append(
                        (
                            "W015",
                            f"AGENTOPS['EXPORTERS'] entry {entry!r} is not a known exporter nor an importable path.",
                            f"Use one of {', '.join(EXPORTER_NAMES)} or the dotted path of an exporter class.",
                        )
                    )
            return found
        if kind == "callable":
            if value is None or callable(value):
                return []
            try:
                import_string(value)
            except Exception:  # ImportError, or AttributeError/TypeError for a value that is no path at all
                return [
                    (
                        "W016",
                        f"AGENTOPS[{key!r}] = {value!r} cannot be imported.",
                        "Give the dotted path of a function that takes the request and returns True to trace it.",
                    )
                ]
            return []
        raise ValueError(f"unknown option kind {kind!r}")  # pragma: no cover - a mistake in OPTIONS


#: Every key of ``AGENTOPS``, in the order the README lists them.
OPTIONS: tuple[Option, ...] = (
    Option("ENABLED", True, "bool", "False: no SDK, no middleware, no writer"),
    Option("SAMPLE_RATE", 1.0, "number", "share of requests traced, 0.0 .. 1.0", low=0.0, high=1.0),
    Option("EXCLUDED_PATHS", [], "regexes", "anchored regexes matched on request.path_info"),
    Option("EXCLUDE_DEFAULT_PATHS", True, "bool", "also skip the admin, STATIC_URL, MEDIA_URL, /favicon.ico"),
    Option("TRUST_INCOMING_TRACEPARENT", False, "bool", "continue a W3C traceparent sent by the client"),
    Option("SHOULD_TRACE_REQUEST", None, "callable", "dotted path of a callable(request) -> bool"),
    Option("RECORD_HEADERS", False, "bool", "record request headers (Authorization/Cookie redacted)"),
    Option("RECORD_USER", True, "bool", "record the user the request loaded: id and username (never anonymous)"),
    Option("CAPTURE_CONTENT", None, "optional_bool", "None: the SDK's default (on) / AGENTOPS_CAPTURE_CONTENT"),
    Option("REDACT_KEYS", None, "strings", "keys masked in payloads; None: the SDK's list"),
    Option("MAX_PAYLOAD_SIZE", None, "optional_int", "characters kept of one payload; None: the SDK's default", low=1),
    Option("SERVICE_NAME", None, "optional_str", "service.name; None: the project's name (mysite.settings: mysite)"),
    Option("DEFAULT_TAGS", None, "strings", "tags added to every manual trace"),
    Option("INSTRUMENT_LLM_CALLS", None, "optional_bool", "wrap the OpenAI/Anthropic clients; None: the SDK's default"),
    Option("EXPORTERS", [], "exporters", 'extra exporters: "otlp", "console", or dotted paths'),
    Option("DATABASE_WRITER", True, "bool", "store spans in the database (the admin reads them)"),
    Option("DATABASE_ALIAS", "default", "alias", "the database the writer, the admin and the prune use"),
    Option("IS_RUNNING_TESTS", None, "optional_bool", "None: detected (manage.py test, pytest); True/False"),
    Option("WRITE_DURING_TESTS", False, "bool", "while tests run, spans stay in memory unless this is True"),
    Option("QUEUE_SIZE", 20_000, "int", "spans waiting for the writer; more are dropped and counted", low=1),
    Option("BATCH_SIZE", 1_000, "int", "spans per write transaction", low=1),
    Option("BATCH_INTERVAL", 1.0, "number", "seconds the writer waits to fill a batch", low=0.001),
    Option("RETENTION_DAYS", 14, "optional_int", "agentops_prune: delete older traces (None or 0: never)", low=0),
    Option("RETENTION_MAX_TRACES", 100_000, "optional_int", "agentops_prune: keep this many traces at most", low=0),
    Option("UNFINISHED_AFTER", 300, "optional_int", "seconds before a silent task counts as unfinished", low=1),
    Option("RECORD_QUERIES", True, "bool", "count each request's and task's SQL queries, their time, N+1 suspects"),
    Option("REPEATED_QUERY_THRESHOLD", 5, "int", "runs of one normalised statement that make an N+1 suspect", low=2),
    Option("QUERY_SPANS", False, "bool", "also a span per SQL query (no parameter values)"),
    Option("MAX_QUERY_SPANS", 100, "int", "query spans per request or task at most", low=1),
    Option(
        "ROLLUP_RETENTION_DAYS",
        90,
        "optional_int",
        "agentops_prune: delete older overview rollups (None or 0: never)",
        low=0,
    ),
)
OPTIONS_BY_KEY = {option.key: option for option in OPTIONS}
DEFAULTS: dict[str, Any] = {option.key: option.default for option in OPTIONS}

#: The dotted path of the middleware, as it appears in ``settings.MIDDLEWARE``.
MIDDLEWARE_PATH = "agentops_django.middleware.AgentOpsMiddleware"
#: The dotted path of the router that sends the app's models to ``DATABASE_ALIAS``.
ROUTER_PATH = "agentops_django.routers.AgentOpsRouter"
#: Exporter names the SDK understands; anything else must be a dotted path.
EXPORTER_NAMES = ("console", "memory", "otlp")
#: The admin's own pages (any admin prefix): never traced.
ADMIN_PAGES_PATTERN = r"/(?:.+/)?agentops_django/"
#: Settings that, when changed, invalidate the cached configuration.
_WATCHED = frozenset({"AGENTOPS", "STATIC_URL", "MEDIA_URL", "DATABASES"})


@dataclasses.dataclass(frozen=True)
class AgentOpsSettings:
    """The resolved ``AGENTOPS`` setting: one typed field per key of :data:`OPTIONS`.

    A refused value has been replaced by its default (and logged; the system
    checks report it). Besides the keys:

    Attributes:
        excluded: One compiled regex of every excluded path, or ``None``.
        should_trace: The imported ``SHOULD_TRACE_REQUEST`` callable, or ``None``.
        running_tests: ``IS_RUNNING_TESTS`` resolved (detected when ``None``).
    """

    enabled: bool
    sample_rate: float
    excluded_paths: tuple[str, ...]
    exclude_default_paths: bool
    trust_traceparent: bool
    should_trace: Callable[[Any], bool] | None
    record_headers: bool
    record_user: bool
    capture_content: bool | None
    redact_keys: tuple[str, ...] | None
    max_payload_size: int | None
    service_name: str | None
    default_tags: tuple[str, ...] | None
    instrument_llm_calls: bool | None
    exporters: tuple[Any, ...]
    database_writer: bool
    database_alias: str
    running_tests: bool
    write_during_tests: bool
    queue_size: int
    batch_size: int
    batch_interval: float
    retention_days: int | None
    retention_max_traces: int | None
    unfinished_after: int | None
    record_queries: bool
    repeated_query_threshold: int
    query_spans: bool
    max_query_spans: int
    excluded: re.Pattern[str] | None
    #: ``ROLLUP_RETENTION_DAYS``: days the overview's rollup is kept (None: for ever).
    rollup_retention_days: int | None = None

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
    """The built-in exclusions: static and media files, ``/favicon.ico`` and the admin's agentops pages.

    (The rest of the Django admin is excluded by the middleware, which finds
    the admin's URL once the URLconf is loaded.)
    """
    patterns = [ADMIN_PAGES_PATTERN, r"/favicon\.ico$"]
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


def _value(user: dict[str, Any], option: Option) -> Any:
    """The user's value for ``option``, or its default if absent or refused (per entry for lists)."""
    if option.key not in user:
        return option.default
    value = user[option.key]
    if option.kind in ("regexes", "exporters") and isinstance(value, str):
        value = [value]
    problems = option.problems(value)
    if not problems:
        return value
    if option.kind in ("regexes", "exporters") and isinstance(value, list | tuple):
        # Keep the entries the option accepts on their own; drop (and say) the others.
        logger.warning("agentops_django: %s Ignored.", " ".join(message for _, message, _ in problems))
        return [entry for entry in value if not option.problems([entry])]
    logger.warning("agentops_django: AGENTOPS[%r]=%r is not usable; using %r", option.key, value, option.default)
    return option.default


def _compile_excluded(defaults: bool, user: tuple[str, ...]) -> re.Pattern[str] | None:
    patterns = list(default_excluded_paths()) if defaults else []
    patterns += [f"(?:{pattern})" for pattern in user]
    if not patterns:
        return None
    return re.compile("|".join(patterns))


def _callable(value: Any) -> Callable[[Any], bool] | None:
    if value is None or callable(value):
        return value  # type: ignore[no-any-return]
    return import_string(value)  # type: ignore[no-any-return]  # importable: the option checked it


@functools.cache
def get_config() -> AgentOpsSettings:
    """The resolved ``AGENTOPS`` setting, cached until the setting changes.

    Returns:
        An :class:`AgentOpsSettings`.
    """
    user = user_settings()
    v = {option.key: _value(user, option) for option in OPTIONS}

    def strings(value: Any) -> tuple[str, ...] | None:
        return None if value is None else tuple(value)

    excluded_paths = tuple(v["EXCLUDED_PATHS"])
    return AgentOpsSettings(
        enabled=v["ENABLED"],
        sample_rate=float(v["SAMPLE_RATE"]),
        excluded_paths=excluded_paths,
        exclude_default_paths=v["EXCLUDE_DEFAULT_PATHS"],
        trust_traceparent=v["TRUST_INCOMING_TRACEPARENT"],
        should_trace=_callable(v["SHOULD_TRACE_REQUEST"]),
        record_headers=v["RECORD_HEADERS"],
        record_user=v["RECORD_USER"],
        capture_content=v["CAPTURE_CONTENT"],
        redact_keys=strings(v["REDACT_KEYS"]),
        max_payload_size=v["MAX_PAYLOAD_SIZE"],
        service_name=v["SERVICE_NAME"],
        default_tags=strings(v["DEFAULT_TAGS"]),
        instrument_llm_calls=v["INSTRUMENT_LLM_CALLS"],
        exporters=tuple(v["EXPORTERS"]),
        database_writer=v["DATABASE_WRITER"],
        database_alias=v["DATABASE_ALIAS"],
        running_tests=detect_test_run() if v["IS_RUNNING_TESTS"] is None else v["IS_RUNNING_TESTS"],
        write_during_tests=v["WRITE_DURING_TESTS"],
        queue_size=v["QUEUE_SIZE"],
        batch_size=v["BATCH_SIZE"],
        batch_interval=float(v["BATCH_INTERVAL"]),
        retention_days=v["RETENTION_DAYS"],
        retention_max_traces=v["RETENTION_MAX_TRACES"],
        rollup_retention_days=v["ROLLUP_RETENTION_DAYS"] or None,
        unfinished_after=v["UNFINISHED_AFTER"],
        record_queries=v["RECORD_QUERIES"],
        repeated_query_threshold=v["REPEATED_QUERY_THRESHOLD"],
        query_spans=v["QUERY_SPANS"],
        max_query_spans=v["MAX_QUERY_SPANS"],
        excluded=_compile_excluded(v["EXCLUDE_DEFAULT_PATHS"], excluded_paths),
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
