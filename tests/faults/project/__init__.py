"""A small Django project and Celery app that the fault suite runs in real web and worker processes."""
