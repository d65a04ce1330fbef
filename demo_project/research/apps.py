"""App configuration of the research assistant."""

from __future__ import annotations

from django.apps import AppConfig


class ResearchConfig(AppConfig):
    name = "demo_project.research"
    label = "research"
    verbose_name = "Research assistant"
    default_auto_field = "django.db.models.BigAutoField"
