"""The demo site: a small research assistant traced with agentops_django.

Importing the package loads the Celery app, as Celery's Django guide asks, so
``@shared_task`` tasks bind to it in every process.
"""

from __future__ import annotations

from demo_project.celery import app as celery_app

__all__ = ["celery_app"]
