"""Retention: delete old traces and their spans in small batches.

Shared by the ``agentops_prune`` management command, the Celery task
:func:`agentops_django.tasks.prune_traces` and the admin's delete action.

Two rules, applied one after the other when both are given:

* by age: traces that started more than ``days`` days ago;
* by count: everything but the ``keep`` newest traces (by start time).

Deletion goes in chunks of ``batch_size`` traces, ordered by primary key, each
chunk in its own short transaction: first the chunk's spans, then its trace
rows, then the spans once more. The writer may still be storing spans of a
trace while it is pruned (spans arrive from any process, in any order); the
second span delete removes those that slipped in between, so a prune never
leaves spans behind without their trace row.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone

from agentops_django.models import Span, Trace

logger = logging.getLogger(__name__)

#: Used when neither the caller nor settings say otherwise.
DEFAULT_RETENTION_DAYS = 30
DEFAULT_BATCH_SIZE = 500


@dataclass(slots=True)
class PruneResult:
    """What a prune deleted (or, in a dry run, would delete)."""

    traces: int = 0
    spans: int = 0
    dry_run: bool = False

    def as_dict(self) -> dict[str, int | bool]:
        return {"traces": self.traces, "spans": self.spans, "dry_run": self.dry_run}


def retention_defaults() -> tuple[int | None, int | None]:
    """``(days, max_traces)`` from ``AGENTOPS["RETENTION_DAYS"]`` and ``["RETENTION_MAX_TRACES"]``.

    Read through :func:`agentops_django.conf.get_config` (which merges the
    user's ``AGENTOPS`` over the documented defaults); should that not know a
    key, the ``AGENTOPS`` setting itself, then :data:`DEFAULT_RETENTION_DAYS`
    and no count limit. ``None`` or ``0`` switches a rule off.
    """
    try:
        from agentops_django.conf import get_config

        config: Any = get_config()
    except ImportError:
        config = None
    user = getattr(settings, "AGENTOPS", None) or {}
    values: dict[str, Any] = {}
    for key, fallback in (("RETENTION_DAYS", DEFAULT_RETENTION_DAYS), ("RETENTION_MAX_TRACES", None)):
        try:
            values[key] = config[key]
        except (KeyError, TypeError):
            values[key] = user.get(key, fallback)
    days, keep = values["RETENTION_DAYS"], values["RETENTION_MAX_TRACES"]
    return (int(days) if days else None, int(keep) if keep else None)


def delete_traces(trace_ids: Iterable[str], *, batch_size: int = DEFAULT_BATCH_SIZE) -> PruneResult:
    """Delete the given traces and all their spans, batch by batch.

    Args:
        trace_ids: 32-hex trace ids.
        batch_size: Traces per transaction.

    Returns:
        How many trace and span rows were deleted.
    """
    result = PruneResult()
    ids = list(dict.fromkeys(trace_ids))
    for start in range(0, len(ids), batch_size):
        result.traces, result.spans = _delete_chunk(ids[start : start + batch_size], result.traces, result.spans)
    return result


def _delete_chunk(chunk: list[str], traces: int, spans: int) -> tuple[int, int]:
    with transaction.atomic():
        spans += Span.objects.filter(trace_id__in=chunk).delete()[0]
        _, per_model = Trace.objects.filter(trace_id__in=chunk).delete()
        traces += per_model.get(Trace._meta.label, 0)
        spans += per_model.get(Span._meta.label, 0)
    # Spans the writer stored while the chunk was being deleted.
    spans += Span.objects.filter(trace_id__in=chunk).delete()[0]
    return traces, spans


def prune(
    *,
    days: int | None = None,
    keep: int | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    dry_run: bool = False,
    now: dt.datetime | None = None,
    progress: Callable[[PruneResult], None] | None = None,
) -> PruneResult:
    """Delete traces older than ``days`` and/or beyond the ``keep`` newest, with their spans.

    Args:
        days: Delete traces that started more than this many days ago; ``None`` skips the rule.
        keep: Keep only this many newest traces; ``None`` skips the rule.
        batch_size: Traces deleted per transaction.
        dry_run: Count what would be deleted, delete nothing.
        now: The current time (tests).
        progress: Called with the running totals after each batch.

    Returns:
        The totals deleted (or that would be, in a dry run).

    Raises:
        ValueError: For a negative ``days`` or ``keep`` or a ``batch_size`` below 1.
    """
    if (days is not None and days < 0) or (keep is not None and keep < 0) or batch_size < 1:
        raise ValueError("days and keep must be >= 0 and batch_size >= 1")
    result = PruneResult(dry_run=dry_run)
    candidates = []
    if days is not None:
        cutoff = (now or timezone.now()) - dt.timedelta(days=days)
        candidates.append(Trace.objects.filter(started_at__lt=cutoff))
    if keep is not None:
        candidates.append(_beyond_newest(keep))
    if dry_run:
        if candidates:
            union = candidates[0]
            for queryset in candidates[1:]:
                union = union | queryset
            totals = union.aggregate(traces=Count("pk"), spans=Sum("span_count"))
            result.traces, result.spans = totals["traces"] or 0, totals["spans"] or 0
        return result
    for queryset in candidates:
        last_pk = 0
        while True:
            chunk = list(queryset.filter(pk__gt=last_pk).order_by("pk").values_list("pk", "trace_id")[:batch_size])
            if not chunk:
                break
            last_pk = chunk[-1][0]
            result.traces, result.spans = _delete_chunk([tid for _, tid in chunk], result.traces, result.spans)
            logger.debug("agentops prune: %d traces, %d spans deleted so far", result.traces, result.spans)
            if progress is not None:
                progress(result)
    return result


def _beyond_newest(keep: int):
    """Traces older than the ``keep``-th newest (ties on start time broken by primary key)."""
    if keep == 0:
        return Trace.objects.all()
    boundary = Trace.objects.order_by("-started_at", "-pk").values_list("started_at", "pk")[keep - 1 : keep]
    row = next(iter(boundary), None)
    if row is None:
        return Trace.objects.none()
    started_at, pk = row
    return Trace.objects.filter(Q(started_at__lt=started_at) | Q(started_at=started_at, pk__lt=pk))
