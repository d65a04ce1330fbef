"""Django system checks for the ``AGENTOPS`` setting, the middleware and the writer's database.

Every message is a warning (``agentops_django.W0xx``): the running code falls
back to a safe default for each bad value (the default, or no tracing of what
cannot work), so a tracing setting never stops ``migrate``, ``runserver`` or a
deploy, it only leaves the site less traced. Silence one with
``SILENCED_SYSTEM_CHECKS`` as usual.

* W001 an unknown key (a typo?).
* W002 the middleware is listed more than once.
* W003 the middleware is not first, so earlier middleware runs untraced.
* W004 the writer's database is neither PostgreSQL nor SQLite.
* W005 ``DATABASE_ALIAS`` names a second database that no router sends the app's models to.
* W010 ``AGENTOPS`` is not a dict (ignored: the defaults are used). Was E001.
* W011 a key has the wrong type (its default is used). Was E002.
* W012 ``SAMPLE_RATE`` is outside 0..1 (1.0 is used). Was E003.
* W013 an ``EXCLUDED_PATHS`` entry is not a valid regex (it is skipped). Was E004.
* W014 ``DATABASE_ALIAS`` is not in ``DATABASES`` (nothing is stored). Was E005.
* W015 an ``EXPORTERS`` entry is neither a known name nor an importable path (skipped). Was E006.
* W016 ``SHOULD_TRACE_REQUEST`` cannot be imported (every request is traced). Was E007.
* W017 a size or interval is not positive (its default is used). Was E008.
"""

from __future__ import annotations

import re
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Tags, Warning, register
from django.db import DEFAULT_DB_ALIAS, router
from django.utils.module_loading import import_string

from agentops_django.conf import DEFAULTS, EXPORTER_NAMES, MIDDLEWARE_PATH, ROUTER_PATH

_BOOLS = (
    "ENABLED",
    "EXCLUDE_DEFAULT_PATHS",
    "TRUST_INCOMING_TRACEPARENT",
    "RECORD_HEADERS",
    "DATABASE_WRITER",
    "WRITE_DURING_TESTS",
)
_OPTIONAL_BOOLS = ("CAPTURE_CONTENT", "INSTRUMENT_LLM_CALLS", "IS_RUNNING_TESTS")
_POSITIVE_INTS = ("QUEUE_SIZE", "BATCH_SIZE")
_SUPPORTED_ENGINES = ("postgresql", "postgis", "sqlite3", "spatialite")
_OPTIONAL_POSITIVE_INTS = ("MAX_PAYLOAD_SIZE", "RETENTION_DAYS", "RETENTION_MAX_TRACES", "UNFINISHED_AFTER")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _type_error(key: str, value: Any, expected: str) -> Warning:
    return Warning(
        f"AGENTOPS[{key!r}] must be {expected}, not {value!r}.",
        hint=f"Fix the value in settings.AGENTOPS or remove the key to use the default ({DEFAULTS[key]!r}).",
        id="agentops_django.W011",
    )


def _check_types(config: dict[str, Any]) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    for key in _BOOLS:
        if key in config and not isinstance(config[key], bool):
            messages.append(_type_error(key, config[key], "True or False"))
    for key in _OPTIONAL_BOOLS:
        if config.get(key) is not None and not isinstance(config[key], bool):
            messages.append(_type_error(key, config[key], "True, False or None"))
    for key in _POSITIVE_INTS + _OPTIONAL_POSITIVE_INTS:
        if key not in config or (config[key] is None and key in _OPTIONAL_POSITIVE_INTS):
            continue
        if not _is_int(config[key]):
            messages.append(_type_error(key, config[key], "an integer"))
        elif config[key] < 1:
            messages.append(
                Warning(
                    f"AGENTOPS[{key!r}] must be at least 1, not {config[key]!r}.",
                    hint="Use a positive number.",
                    id="agentops_django.W017",
                )
            )
    if "BATCH_INTERVAL" in config:
        value = config["BATCH_INTERVAL"]
        if not _is_number(value):
            messages.append(_type_error("BATCH_INTERVAL", value, "a number of seconds"))
        elif value <= 0:
            messages.append(
                Warning(
                    f"AGENTOPS['BATCH_INTERVAL'] must be more than 0 seconds, not {value!r}.",
                    hint="Use for example 1.0.",
                    id="agentops_django.W017",
                )
            )
    for key in ("SERVICE_NAME",):
        if config.get(key) is not None and not isinstance(config[key], str):
            messages.append(_type_error(key, config[key], "a string or None"))
    for key in ("REDACT_KEYS", "DEFAULT_TAGS"):
        value = config.get(key)
        if value is not None and not (isinstance(value, list | tuple) and all(isinstance(v, str) for v in value)):
            messages.append(_type_error(key, value, "a list of strings or None"))
    if "DATABASE_ALIAS" in config and not isinstance(config["DATABASE_ALIAS"], str):
        messages.append(_type_error("DATABASE_ALIAS", config["DATABASE_ALIAS"], "a database alias (a string)"))
    return messages


def _check_sample_rate(config: dict[str, Any]) -> list[CheckMessage]:
    if "SAMPLE_RATE" not in config:
        return []
    value = config["SAMPLE_RATE"]
    if not _is_number(value):
        return [_type_error("SAMPLE_RATE", value, "a number between 0.0 and 1.0")]
    if not 0.0 <= value <= 1.0:
        return [
            Warning(
                f"AGENTOPS['SAMPLE_RATE'] must be between 0.0 and 1.0, not {value!r}.",
                hint="1.0 traces every request, 0.1 one in ten, 0.0 none.",
                id="agentops_django.W012",
            )
        ]
    return []


def _check_excluded_paths(config: dict[str, Any]) -> list[CheckMessage]:
    if "EXCLUDED_PATHS" not in config:
        return []
    value = config["EXCLUDED_PATHS"]
    if not isinstance(value, list | tuple):
        return [_type_error("EXCLUDED_PATHS", value, "a list of regular expressions")]
    messages: list[CheckMessage] = []
    for pattern in value:
        try:
            re.compile(pattern)
        except (re.error, TypeError) as exc:
            messages.append(
                Warning(
                    f"AGENTOPS['EXCLUDED_PATHS'] entry {pattern!r} is not a valid regular expression: {exc}.",
                    hint="Patterns are matched at the start of request.path_info, e.g. r'^/health/'.",
                    id="agentops_django.W013",
                )
            )
    return messages


def _check_database(config: dict[str, Any]) -> list[CheckMessage]:
    alias = config.get("DATABASE_ALIAS", DEFAULTS["DATABASE_ALIAS"])
    if not isinstance(alias, str) or not config.get("DATABASE_WRITER", True):
        return []
    databases = getattr(settings, "DATABASES", {})
    if alias not in databases:
        return [
            Warning(
                f"AGENTOPS['DATABASE_ALIAS'] is {alias!r}, which is not in DATABASES.",
                hint=f"Use one of {sorted(databases)}.",
                id="agentops_django.W014",
            )
        ]
    engine = str(databases[alias].get("ENGINE", ""))
    if not any(name in engine for name in _SUPPORTED_ENGINES):
        return [
            Warning(
                f"The database writer supports PostgreSQL and SQLite; DATABASES[{alias!r}] uses {engine!r}.",
                hint="Point AGENTOPS['DATABASE_ALIAS'] at a PostgreSQL or SQLite database, "
                "or set AGENTOPS['DATABASE_WRITER'] = False and export with EXPORTERS.",
                id="agentops_django.W004",
            )
        ]
    if alias != DEFAULT_DB_ALIAS:
        from agentops_django.models import Trace

        if router.db_for_write(Trace) != alias:
            return [
                Warning(
                    f"AGENTOPS['DATABASE_ALIAS'] is {alias!r}, but no database router sends agentops_django's "
                    f"models there.",
                    hint=f"Add '{ROUTER_PATH}' to DATABASE_ROUTERS and run "
                    f"'python manage.py migrate --database {alias}'. Without the router the writer, the admin "
                    f"and agentops_prune still use {alias!r}, but 'migrate' also puts every other app's tables "
                    f"there and agentops_django's tables in {DEFAULT_DB_ALIAS!r}.",
                    id="agentops_django.W005",
                )
            ]
    return []


def _check_exporters(config: dict[str, Any]) -> list[CheckMessage]:
    value = config.get("EXPORTERS", [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple):
        return [_type_error("EXPORTERS", value, "a list")]
    messages: list[CheckMessage] = []
    for entry in value:
        if not isinstance(entry, str) or entry.lower() in EXPORTER_NAMES:
            continue
        try:
            import_string(entry)
        except Exception:  # ImportError, or an error raised while importing the module
            messages.append(
                Warning(
                    f"AGENTOPS['EXPORTERS'] entry {entry!r} is not a known exporter nor an importable dotted path.",
                    hint=f"Use one of {', '.join(EXPORTER_NAMES)} or the dotted path of an exporter class.",
                    id="agentops_django.W015",
                )
            )
    return messages


def _check_callable(config: dict[str, Any]) -> list[CheckMessage]:
    value = config.get("SHOULD_TRACE_REQUEST")
    if value is None or callable(value):
        return []
    try:
        import_string(value)
    except Exception:  # ImportError, or AttributeError/TypeError for a value that is no path at all
        return [
            Warning(
                f"AGENTOPS['SHOULD_TRACE_REQUEST'] = {value!r} cannot be imported.",
                hint="Give the dotted path of a function that takes the request and returns True to trace it.",
                id="agentops_django.W016",
            )
        ]
    return []


def _check_unknown(config: dict[str, Any]) -> list[CheckMessage]:
    return [
        Warning(
            f"AGENTOPS has an unknown key {key!r}; it is ignored.",
            hint=f"Known keys: {', '.join(sorted(DEFAULTS))}.",
            id="agentops_django.W001",
        )
        for key in sorted(set(config) - set(DEFAULTS))
    ]


def _check_middleware() -> list[CheckMessage]:
    middleware = list(getattr(settings, "MIDDLEWARE", None) or [])
    count = middleware.count(MIDDLEWARE_PATH)
    if count > 1:
        return [
            Warning(
                f"{MIDDLEWARE_PATH} is listed {count} times in MIDDLEWARE.",
                hint="List it once, first; or leave it out and agentops_django puts it first by itself.",
                id="agentops_django.W002",
            )
        ]
    if count == 1 and middleware[0] != MIDDLEWARE_PATH:
        return [
            Warning(
                f"{MIDDLEWARE_PATH} is not the first entry of MIDDLEWARE.",
                hint="Middleware before it runs outside the request's trace and its errors are not recorded; "
                "move it first, or leave it out and agentops_django puts it first by itself.",
                id="agentops_django.W003",
            )
        ]
    return []


@register(Tags.compatibility)
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Check ``settings.AGENTOPS`` and the middleware's place.

    Returns:
        The problems found, as Django check messages.
    """
    value = getattr(settings, "AGENTOPS", {})
    if not isinstance(value, dict):
        return [
            Warning(
                f"settings.AGENTOPS must be a dict, not {type(value).__name__}.",
                hint='For example AGENTOPS = {"SAMPLE_RATE": 0.5}.',
                id="agentops_django.W010",
            )
        ]
    messages: list[CheckMessage] = []
    for check in (
        _check_unknown,
        _check_types,
        _check_sample_rate,
        _check_excluded_paths,
        _check_database,
        _check_exporters,
        _check_callable,
    ):
        messages.extend(check(value))
    messages.extend(_check_middleware())
    return messages
