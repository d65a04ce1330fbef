"""The app's configuration: everything is wired in :meth:`AgentOpsConfig.ready`."""

from __future__ import annotations

from django.apps import AppConfig


class AgentOpsConfig(AppConfig):
    """``agentops_django``: traces of requests and Celery tasks, stored in the database."""

    name = "agentops_django"
    verbose_name = "AgentOps traces"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Register the checks and run :func:`agentops_django._wiring.setup` (once per process)."""
        from agentops_django import (
            _wiring,
            checks,  # noqa: F401 - registers the system checks
        )

        _wiring.setup()
