"""Celery task of agentops_django: :func:`prune_traces`, for ``celery beat``.

Importable only where Celery is installed (nothing imports it at start-up;
Celery's ``autodiscover_tasks`` finds it). Schedule it like any task::

    app.conf.beat_schedule = {
        "agentops-prune": {"task": "agentops_django.tasks.prune_traces", "schedule": 3600.0},
    }
"""

from __future__ import annotations

import logging

try:
    from celery import shared_task
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("agentops_django.tasks needs Celery: pip install 'agentops-django[celery]'") from exc

logger = logging.getLogger(__name__)


@shared_task(name="agentops_django.tasks.prune_traces", ignore_result=False)
def prune_traces(days: int | None = None, keep: int | None = None, batch_size: int | None = None) -> dict:
    """Delete old traces and their spans, by age and/or count (see :func:`agentops_django.prune.prune`).

    Args:
        days: Delete traces older than this many days; default ``AGENTOPS["RETENTION_DAYS"]``.
        keep: Keep only this many newest traces; default ``AGENTOPS["RETENTION_MAX_TRACES"]``.
        batch_size: Traces deleted per transaction.

    Returns:
        ``{"traces": n, "spans": m, "dry_run": False}``.
    """
    from agentops_django import prune

    if days is None and keep is None:
        days, keep = prune.retention_defaults()
    if days is None and keep is None:
        return prune.PruneResult().as_dict()
    result = prune.prune(days=days, keep=keep, batch_size=batch_size or prune.DEFAULT_BATCH_SIZE)
    logger.info("agentops prune: deleted %d traces and %d spans", result.traces, result.spans)
    return result.as_dict()
