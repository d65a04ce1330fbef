"""The project package: Celery's app is loaded with Django (Celery's "First steps with Django")."""

from .celery import app as celery_app

__all__ = ("celery_app",)
