"""The demo's Celery app, set up the way Celery's "First steps with Django" guide does it.

Every ``CELERY_*`` Django setting configures it; tasks are found in the
installed apps' ``tasks`` modules. Nothing here is agentops-specific: the
``agentops_django`` app wires Celery's signals by itself.
"""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo_project.settings")

app = Celery("demo_project")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
