"""agentops_django: traces of every Django request and Celery task, stored in the project's database.

Add ``"agentops_django"`` to ``INSTALLED_APPS`` and run ``migrate``; the rest is
wired in :meth:`agentops_django.apps.AgentOpsConfig.ready`. This module imports
nothing from Django, so importing it never touches settings.
"""

from __future__ import annotations

__all__: list[str] = []
