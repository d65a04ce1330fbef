"""Wiring at start-up: the SDK, the database writer, the middleware, Celery's signals."""

from __future__ import annotations

import logging

from django.apps import AppConfig

logger = logging.getLogger("agentops_django")

MIDDLEWARE_PATH = "agentops_django.middleware.AgentOpsMiddleware"


class AgentOpsConfig(AppConfig):
    name = "agentops_django"
    verbose_name = "AgentOps traces"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from agentops_django import (
            checks,  # noqa: F401 - registers the system checks
            setup,
        )

        setup.setup()
