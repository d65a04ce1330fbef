"""WSGI entry point of the benchmark project (used by gunicorn and the in-process driver)."""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.project.settings")

from benchmarks.project import tracing

tracing.install()

from django.core.wsgi import get_wsgi_application  # noqa: E402

application = get_wsgi_application()
