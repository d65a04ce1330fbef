"""A database router for keeping traces in a database of their own.

With ``AGENTOPS["DATABASE_ALIAS"]`` naming a second database, add the router
and create the tables there::

    DATABASE_ROUTERS = ["agentops_django.routers.AgentOpsRouter"]

    python manage.py migrate --database traces

The writer, the admin and ``agentops_prune`` use the alias without the router
(they ask :func:`database` explicitly); the router is what makes ``migrate``
put agentops_django's tables in that database and nowhere else, and what
sends any other code's queries on these models there.
"""

from __future__ import annotations

from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections

APP_LABEL = "agentops_django"


def database() -> str:
    """The alias of the database that holds agentops_django's tables.

    ``AGENTOPS["DATABASE_ALIAS"]`` when it names a database of ``DATABASES``;
    otherwise ``"default"`` (a system check reports the unknown alias; the
    admin then shows an empty list rather than an error page).
    """
    from agentops_django.conf import get_config

    alias = get_config().database_alias
    return alias if alias in connections.settings else DEFAULT_DB_ALIAS


def _ours(model: Any) -> bool:
    return model._meta.app_label == APP_LABEL


class AgentOpsRouter:
    """Routes agentops_django's models to ``AGENTOPS["DATABASE_ALIAS"]`` and leaves every other app alone.

    * reads and writes of :class:`~agentops_django.models.Trace`,
      :class:`~agentops_django.models.Span` and
      :class:`~agentops_django.models.WriterStats` go to that alias;
    * their migrations run on that alias only, and (when it is not
      ``default``) no other app's migrations run there;
    * otherwise it has no opinion (``None``), so the next router or
      Django's default decides.
    """

    def db_for_read(self, model: Any, **hints: Any) -> str | None:
        return database() if _ours(model) else None

    def db_for_write(self, model: Any, **hints: Any) -> str | None:
        return database() if _ours(model) else None

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool | None:
        if _ours(obj1) and _ours(obj2):
            return True
        return None

    def allow_migrate(self, db: str, app_label: str, model_name: str | None = None, **hints: Any) -> bool | None:
        traces = database()
        if app_label == APP_LABEL:
            return db == traces
        if db == traces and traces != DEFAULT_DB_ALIAS:
            return False  # the traces database holds traces only
        return None
