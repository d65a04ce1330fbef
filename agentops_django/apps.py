"""The app's configuration: everything is wired in :meth:`AgentOpsConfig.ready`."""

from __future__ import annotations

from django.apps import AppConfig


class AgentOpsConfig(AppConfig):
    """``agentops_django``: traces of requests and Celery tasks, stored in the database."""

    name = "agentops_django"
    verbose_name = "AgentOps traces"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Register the checks and run :func:`agentops_django._wiring.setup` (once per process).

        Raises:
            ImproperlyConfigured: If the ``agentops`` package Python finds is
                not this project's (the official AgentOps SDK, which shares the
                import name, was installed over it): nothing could work, and
                the message says how to fix it.
        """
        _require_our_agentops()
        from agentops_django import (
            _wiring,
            checks,  # noqa: F401 - registers the system checks
        )

        _wiring.setup()


def _require_our_agentops() -> None:
    from django.core.exceptions import ImproperlyConfigured

    try:
        import agentops
    except ImportError as exc:  # ours raises PackageConflictError (an ImportError) with the fix
        raise ImproperlyConfigured(str(exc)) from exc
    if getattr(agentops, "__distribution__", None) != "agentops-django":
        raise ImproperlyConfigured(
            f"agentops_django needs agentops-django's own 'agentops' package, but Python imports another one "
            f"from {getattr(agentops, '__file__', '?')} (the official AgentOps SDK installs a package of the "
            "same name). Run `pip uninstall -y agentops agentops-django`, then `pip install agentops-django`."
        )
