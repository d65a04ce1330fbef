"""The fault project's app: loads the Celery app in every process, so web processes publish to it."""

from __future__ import annotations

from django.apps import AppConfig


class FaultsProjectConfig(AppConfig):
    name = "tests.faults.project"
    label = "faults_project"

    def ready(self) -> None:
        from tests.faults.project import celery_app  # noqa: F401 - becomes the current Celery app
