"""Retention: delete old traces and their spans in small batches.

Shared by the ``agentops_prune`` management command, the Celery task
:func:`agentops_django.tasks.prune_traces` and the admin's delete action.
Everything runs on the database of ``AGENTOPS["DATABASE_ALIAS"]``
(:func:`agentops_django.routers.database`), with or without a router.

Two rules, applied one after the other when both are given:

* by age: traces that started more than ``days`` days ago;
* by count: everything but the ``keep`` newest traces (by start time).

Deletion goes in chunks of ``batch_size`` traces, ordered by primary key, each
chunk in its own short transaction: first the chunk's spans, then its trace
rows, then the spans once more. The writer may still be storing spans of a
trace while it is pruned (spans arrive from any process, in any order); the
second span delete removes those that slipped in between, so a prune never
leaves spans behind without their trace row.

A prune also deletes the writer's per-process counters
(:class:`~agentops_django.models.WriterStats`) that were not updated for the
same number of days (``RETENTION_DAYS`` when only a count rule is given, and
never less than a day): every process that ever wrote a span has a row, and
recycled workers and cron commands would otherwise add rows forever. A
process still running but idle that long loses its row until its counters
change again, when the writer stores them anew.

A prune also deletes the overview's rollup (:class:`~agentops_django.models.Rollup`
and its histogram buckets) older than ``ROLLUP_RETENTION_DAYS`` (90 by
default): it is small (a row per minute and per hour for each route, task and
model), so the overview can look further back than the traces are kept.
Rollup rows are deleted a day of minutes at a time, each in its own statement.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone

from agentops_django.conf import DEFAULTS
from agentops_django.models import Rollup, RollupBucket, Span, Trace, WriterStats
from agentops_django.routers import database

logger = logging.getLogger(__name__)

#: Used when neither the caller nor settings say otherwise.
DEFAULT_RETENTION_DAYS: int = DEFAULTS["RETENTION_DAYS"]
DEFAULT_BATCH_SIZE = 500


@dataclass(slots=True)
class PruneResult:
    """What a prune deleted (or, in a dry run, would delete)."""

    traces: int = 0
    spans: int = 0
    dry_run: bool = False
    #: Rows of :class:`~agentops_django.models.WriterStats` of processes silent for too long.
    writer_stats: int = 0
    #: Rows of the overview's rollup (with their histogram buckets) past ``ROLLUP_RETENTION_DAYS``.
    rollup_rows: int = 0

    def as_dict(self) -> dict[str, int | bool]:
        return {
            "traces": self.traces,
            "spans": self.spans,
            "writer_stats": self.writer_stats,
            "rollup_rows": self.rollup_rows,
            "dry_run": self.dry_run,
        }


def retention_defaults() -> tuple[int | None, int | None]:
    """``(days, max_traces)`` from ``AGENTOPS["RETENTION_DAYS"]`` and ``["RETENTION_MAX_TRACES"]``.

    ``None`` switches a rule off; a refused value has its default (see
    :data:`agentops_django.conf.OPTIONS`).
    """
    from agentops_django.conf import get_config

    config = get_config()
    return (config.retention_days or None, config.retention_max_traces or None)


def writer_stats_days(days: int | None) -> int:
    """Days after which a process's writer counters are deleted, for a prune by ``days``.

    ``days`` itself when given, else ``RETENTION_DAYS``, else
    :data:`DEFAULT_RETENTION_DAYS`; at least 1, so the counters of processes
    that wrote today always stay.
    """
    if days is None:
        days = retention_defaults()[0] or DEFAULT_RETENTION_DAYS
    return max(days, 1)


def delete_traces(
    trace_ids: Iterable[str], *, batch_size: int = DEFAULT_BATCH_SIZE, using: str | None = None
) -> PruneResult:
    """Delete the given traces and all their spans, batch by batch.

    Args:
        trace_ids: 32-hex trace ids.
        batch_size: Traces per transaction.
        using: The database alias; default ``AGENTOPS["DATABASE_ALIAS"]``.

    Returns:
        How many trace and span rows were deleted.
    """
    db = using or database()
    result = PruneResult()
    ids = list(dict.fromkeys(trace_ids))
    for start in range(0, len(ids), batch_size):
        result.traces, result.spans = _delete_chunk(db, ids[start : start + batch_size], result.traces, result.spans)
    return result


def _delete_chunk(db: str, chunk: list[str], traces: int, spans: int) -> tuple[int, int]:
    with transaction.atomic(using=db):
        spans += Span.objects.using(db).filter(trace_id__in=chunk).delete()[0]
        _, per_model = Trace.objects.using(db).filter(trace_id__in=chunk).delete()
        traces += per_model.get(Trace._meta.label, 0)
        spans += per_model.get(Span._meta.label, 0)
    # Spans the writer stored while the chunk was being deleted.
    spans += Span.objects.using(db).filter(trace_id__in=chunk).delete()[0]
    return traces, spans


def prune_writer_stats(
    days: int, *, dry_run: bool = False, now: dt.datetime | None = None, using: str | None = None
) -> int:
    """Delete the writer counters of processes that have not updated them for ``days`` days.

    Args:
        days: Rows whose ``updated_at`` is older than this many days go.
        dry_run: Count them, delete nothing.
        now: The current time (tests).
        using: The database alias; default ``AGENTOPS["DATABASE_ALIAS"]``.

    Returns:
        How many rows were deleted (or would be).
    """
    cutoff = (now or timezone.now()) - dt.timedelta(days=days)
    stale = WriterStats.objects.using(using or database()).filter(updated_at__lt=cutoff)
    if dry_run:
        return stale.count()
    return stale.delete()[0]


def prune_rollup(
    days: int | None, *, dry_run: bool = False, now: dt.datetime | None = None, using: str | None = None
) -> int:
    """Delete the overview's rollup rows (and histogram buckets) of minutes older than ``days`` days.

    Args:
        days: Rows of minutes before this many days ago go; ``None`` keeps them all.
        dry_run: Count them, delete nothing.
        now: The current time (tests).
        using: The database alias; default ``AGENTOPS["DATABASE_ALIAS"]``.

    Returns:
        How many rollup rows (not counting their buckets) were deleted (or would be).
    """
    if days is None:
        return 0
    db = using or database()
    cutoff = int((now or timezone.now()).timestamp() // 60) - days * 1440
    old = Rollup.objects.using(db).filter(minute__lt=cutoff)
    if dry_run:
        return old.count()
    first = old.order_by("minute").values_list("minute", flat=True).first()
    deleted = 0
    # A day of minutes per statement: short transactions beside a writer that keeps adding.
    for start in range(cutoff if first is None else first, cutoff, 1440):
        end = min(start + 1440, cutoff)
        RollupBucket.objects.using(db).filter(minute__gte=start, minute__lt=end).delete()
        deleted += Rollup.objects.using(db).filter(minute__gte=start, minute__lt=end).delete()[0]
    return deleted


def rollup_retention_days() -> int | None:
    """``AGENTOPS["ROLLUP_RETENTION_DAYS"]`` (None: keep the rollup for ever)."""
    from agentops_django.conf import get_config

    return get_config().rollup_retention_days


def prune(
    *,
    days: int | None = None,
    keep: int | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    dry_run: bool = False,
    now: dt.datetime | None = None,
    progress: Callable[[PruneResult], None] | None = None,
    using: str | None = None,
    stats_days: int | None = None,
    rollup_days: int | bool | None = True,
) -> PruneResult:
    """Delete traces older than ``days`` and/or beyond the ``keep`` newest, with their spans.

    Also deletes the writer counters of processes silent for ``stats_days``
    days (see the module docstring).

    Args:
        days: Delete traces that started more than this many days ago; ``None`` skips the rule.
        keep: Keep only this many newest traces; ``None`` skips the rule.
        batch_size: Traces deleted per transaction.
        dry_run: Count what would be deleted, delete nothing.
        now: The current time (tests).
        progress: Called with the running totals after each batch.
        using: The database alias; default ``AGENTOPS["DATABASE_ALIAS"]``.
        stats_days: Writer counters not updated for this many days go;
            default :func:`writer_stats_days` of ``days``.
        rollup_days: Overview rollup rows older than this many days go;
            True (default): ``ROLLUP_RETENTION_DAYS``; None: none.

    Returns:
        The totals deleted (or that would be, in a dry run).

    Raises:
        ValueError: For a negative ``days`` or ``keep`` or a ``batch_size`` below 1.
    """
    if (days is not None and days < 0) or (keep is not None and keep < 0) or batch_size < 1:
        raise ValueError("days and keep must be >= 0 and batch_size >= 1")
    db = using or database()
    result = PruneResult(dry_run=dry_run)
    if rollup_days is True:
        rollup_days = rollup_retention_days()
    result.rollup_rows = prune_rollup(rollup_days or None, dry_run=dry_run, now=now, using=db)
    result.writer_stats = prune_writer_stats(
        stats_days if stats_days is not None else writer_stats_days(days), dry_run=dry_run, now=now, using=db
    )
    candidates = []
    if days is not None:
        cutoff = (now or timezone.now()) - dt.timedelta(days=days)
        candidates.append(Trace.objects.using(db).filter(started_at__lt=cutoff))
    if keep is not None:
        candidates.append(_beyond_newest(keep, db))
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
            result.traces, result.spans = _delete_chunk(db, [tid for _, tid in chunk], result.traces, result.spans)
            logger.debug("agentops prune: %d traces, %d spans deleted so far", result.traces, result.spans)
            if progress is not None:
                progress(result)
    return result


def _beyond_newest(keep: int, db: str):
    """Traces older than the ``keep``-th newest (ties on start time broken by primary key)."""
    traces = Trace.objects.using(db)
    if keep == 0:
        return traces.all()
    boundary = traces.order_by("-started_at", "-pk").values_list("started_at", "pk")[keep - 1 : keep]
    row = next(iter(boundary), None)
    if row is None:
        return traces.none()
    started_at, pk = row
    return traces.filter(Q(started_at__lt=started_at) | Q(started_at=started_at, pk__lt=pk))
