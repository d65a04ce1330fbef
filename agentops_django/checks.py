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
* W006 the official AgentOps SDK (same import name, ``agentops``) is installed next to agentops-django.
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

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Tags, Warning, register
from django.db import DEFAULT_DB_ALIAS, router

from agentops_django.conf import DEFAULTS, MIDDLEWARE_PATH, OPTIONS, ROUTER_PATH

#: ``DATABASES`` engines the writer supports (checked by name: loading a backend may fail).
_SUPPORTED_ENGINES = ("postgresql", "postgis", "sqlite3", "spatialite")


def _check_agentops_package() -> list[CheckMessage]:
    from agentops.integrations.environment import FIX, find_conflict

    problem = find_conflict()
    if problem is None:
        return []
    return [Warning(problem.replace(FIX, "").strip(), hint=FIX, id="agentops_django.W006")]


def _check_values(config: dict[str, Any]) -> list[CheckMessage]:
    """One message per problem :class:`~agentops_django.conf.Option` finds in a value given."""
    return [
        Warning(message, hint=hint, id=f"agentops_django.{check_id}")
        for option in OPTIONS
        if option.key in config
        for check_id, message, hint in option.problems(config[option.key])
    ]


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
    for check in (_check_unknown, _check_values, _check_database):
        messages.extend(check(value))
    messages.extend(_check_agentops_package())
    messages.extend(_check_middleware())
    return messages
