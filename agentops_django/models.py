"""Where traces land: one :class:`Trace` summary row per trace, one :class:`Span` row per span.

The summary columns of :class:`Trace` (span and error counts, token totals,
start, end) are maintained by the database writer at ingest, so the admin
never aggregates spans at read time.
"""

from __future__ import annotations

from django.db import models

from agentops.semconv import TraceState


class TraceStatus(models.TextChoices):
    """A trace's status: the SDK's end states (:class:`agentops.semconv.TraceState`), stored as their values."""

    SUCCESS = TraceState.SUCCESS.value, TraceState.SUCCESS.value
    ERROR = TraceState.ERROR.value, TraceState.ERROR.value
    #: Unfinished: the root span has not arrived (yet, or ever).
    INDETERMINATE = TraceState.INDETERMINATE.value, TraceState.INDETERMINATE.value


class TraceKind(models.TextChoices):
    REQUEST = "request", "Request"
    TASK = "task", "Task"
    MANUAL = "manual", "Manual"


#: One index per sortable summary column (with the primary key the admin adds for a total order).
SORT_INDEXES = [
    models.Index(fields=[f"-{column}", "-id"], name=f"agentops_trace_by_{short}")
    for column, short in (
        ("duration_ms", "duration"),
        ("span_count", "spans"),
        ("error_count", "errors"),
        ("total_tokens", "tokens"),
        ("cost", "cost"),
    )
]


class Trace(models.Model):
    """A trace's summary, upserted by the writer as its spans arrive from any process."""

    trace_id = models.CharField(max_length=32, unique=True)
    name = models.CharField(max_length=255, blank=True, default="")
    status = models.CharField(max_length=16, choices=TraceStatus.choices, default=TraceStatus.INDETERMINATE)
    kind = models.CharField(max_length=16, choices=TraceKind.choices, default=TraceKind.MANUAL)
    root_span_id = models.CharField(max_length=16, blank=True, default="")
    #: How sure the writer is that ``root_span_id`` is the root: 2 no parent,
    #: 1 a request/task whose parent is in another process, 0 not seen yet.
    root_rank = models.PositiveSmallIntegerField(default=0)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.FloatField(null=True, blank=True)
    span_count = models.PositiveIntegerField(default=0)
    error_count = models.PositiveIntegerField(default=0)
    input_tokens = models.PositiveBigIntegerField(default=0)
    output_tokens = models.PositiveBigIntegerField(default=0)
    total_tokens = models.PositiveBigIntegerField(default=0)
    cost = models.FloatField(default=0.0)
    #: LLM calls whose model has no known price: ``cost`` leaves them out. (A plain
    #: IntegerField: adding a CHECK constraint would scan a big table under lock.)
    #: ``db_default``: writers of the previous release (a rolling deploy) and bulk loaders may leave it out.
    unpriced_calls = models.IntegerField(default=0, db_default=0)
    tags = models.JSONField(default=list, blank=True)
    #: "|tag1|tag2|" so the admin can search a tag on any database.
    tags_text = models.CharField(max_length=1024, blank=True, default="")
    service_name = models.CharField(max_length=255, blank=True, default="")
    #: "|host|worker node|" of the processes that stored its spans, so the list can filter by host or worker.
    processes_text = models.CharField(max_length=1024, blank=True, default="", db_default="")
    #: The authenticated user of a request trace (``AGENTOPS["RECORD_USER"]``); empty otherwise.
    user_id = models.CharField(max_length=64, blank=True, default="", db_default="")
    username = models.CharField(max_length=150, blank=True, default="", db_default="")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-started_at"]
        # On PostgreSQL, migration 0004 also adds trigram (pg_trgm) GIN indexes for
        # substring search on UPPER(name), tags_text and processes_text (and on the
        # span table's UPPER(name)) when the extension can be had; they are not
        # declared here because they exist only there.
        indexes = [
            models.Index(fields=["-started_at"], name="agentops_trace_started"),
            models.Index(fields=["status", "-started_at"], name="agentops_trace_status"),
            models.Index(fields=["kind", "-started_at"], name="agentops_trace_kind"),
            models.Index(fields=["name", "-started_at"], name="agentops_trace_name"),
            # Name-prefix search (LIKE 'x%') on PostgreSQL under a non-C collation.
            models.Index(fields=["name"], name="agentops_trace_name_prefix", opclasses=["varchar_pattern_ops"]),
            # The list's sorts (both directions: an index is read backwards too) and the user filter.
            *SORT_INDEXES,
            models.Index(fields=["username", "-started_at"], name="agentops_trace_user"),
        ]

    def __str__(self) -> str:
        return f"{self.name or '(unnamed)'} {self.trace_id}"


class Span(models.Model):
    """One finished span. ``(trace, span_id)`` is unique: a span redelivered is stored once."""

    trace = models.ForeignKey(
        Trace,
        to_field="trace_id",
        on_delete=models.CASCADE,
        related_name="spans",
        # Spans may be written before their trace row commits in another process.
        db_constraint=False,
        # No index of its own (nor its LIKE twin on PostgreSQL): the unique
        # (trace_id, span_id) and (trace_id, started_at) indexes lead with it.
        # (Migration 0004 drops them; docs/scaling.md has their size at scale.)
        db_index=False,
    )
    span_id = models.CharField(max_length=16)
    parent_span_id = models.CharField(max_length=16, blank=True, default="")
    name = models.CharField(max_length=255)
    #: agentops.span.kind (request, celery.task, publish, agent, tool, llm, ...) or the OTel kind.
    kind = models.CharField(max_length=32, blank=True, default="")
    #: OpenTelemetry status code: UNSET, OK or ERROR.
    status = models.CharField(max_length=8, default="UNSET")
    status_message = models.TextField(blank=True, default="")
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField()
    duration_ms = models.FloatField()
    attributes = models.JSONField(default=dict, blank=True)
    events = models.JSONField(default=list, blank=True)
    links = models.JSONField(default=list, blank=True)
    service_name = models.CharField(max_length=255, blank=True, default="")
    #: The OpenTelemetry span kind (INTERNAL, SERVER, CLIENT, PRODUCER, CONSUMER), so exports need not guess it.
    otel_kind = models.CharField(max_length=16, blank=True, default="", db_default="")
    #: The process that ended the span (its writer stored it): host, pid, role, worker.
    #: No constraint and no index: process rows are pruned apart from spans, and only looked up by id.
    process = models.ForeignKey(
        "WriterStats",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="+",
    )

    class Meta:
        ordering = ["started_at"]
        constraints = [
            models.UniqueConstraint(fields=["trace", "span_id"], name="agentops_span_unique"),
        ]
        indexes = [
            models.Index(fields=["trace", "started_at"], name="agentops_span_trace_start"),
        ]

    def __str__(self) -> str:
        return f"{self.name} {self.span_id}"


class WriterStats(models.Model):
    """One process that stores spans: its identity, and its writer's counters so drops are visible in the admin."""

    host = models.CharField(max_length=255)
    pid = models.PositiveIntegerField()
    process_started_at = models.DateTimeField()
    #: web, worker, beat, command or other (:class:`agentops.semconv.ProcessRole`).
    role = models.CharField(max_length=16, blank=True, default="", db_default="")
    service_name = models.CharField(max_length=255, blank=True, default="", db_default="")
    #: The Celery worker's node name (``celery@host``) in a worker's processes.
    worker_node = models.CharField(max_length=255, blank=True, default="", db_default="")
    #: The prefork pool child's index.
    pool_index = models.IntegerField(null=True, blank=True)
    spans_written = models.PositiveBigIntegerField(default=0)
    spans_dropped = models.PositiveBigIntegerField(default=0)
    write_errors = models.PositiveBigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "writer stats"
        constraints = [
            models.UniqueConstraint(fields=["host", "pid", "process_started_at"], name="agentops_writerstats_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.host}:{self.pid}"

    @property
    def label(self) -> str:
        """How the admin names the process: ``role host pid N`` and the worker and pool child if any."""
        parts = [self.role or "process", f"{self.host} pid {self.pid}"]
        if self.worker_node:
            parts.append(self.worker_node + (f" #{self.pool_index}" if self.pool_index is not None else ""))
        return " · ".join(parts)

class Rollup(models.Model):
    """Per minute (and per hour) and per key: what the overview page adds up, kept by the writer.

    One row per ``(period, minute, kind, name)``: ``period`` is 1 for a
    minute's row, 60 for an hour's and 1440 for a (UTC) day's (``minute`` is
    then its first minute), so long windows read few rows. ``minute`` counts
    minutes since the Unix epoch (UTC). ``kind`` is ``request`` (name: method
    and route), ``task`` (the Celery task's name) or ``llm`` (the model); the
    name ``""`` adds up every name of the kind (for the charts). The writer adds
    each batch's counts in the batch's transaction, so the rows are exact
    across processes, like the trace summaries.
    """

    period = models.PositiveSmallIntegerField()
    minute = models.IntegerField()
    kind = models.CharField(max_length=16)
    name = models.CharField(max_length=255)
    count = models.BigIntegerField(default=0)
    errors = models.BigIntegerField(default=0)
    duration_ms = models.FloatField(default=0.0)
    input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    cost = models.FloatField(default=0.0)
    unpriced_calls = models.BigIntegerField(default=0)
    #: Database queries of the requests/tasks, their time, and how many ran a statement repeatedly (N+1).
    db_queries = models.BigIntegerField(default=0)
    db_time_ms = models.FloatField(default=0.0)
    repeated_queries = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["period", "minute", "kind", "name"], name="agentops_rollup_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.name} @{self.minute}/{self.period}"


class RollupBucket(models.Model):
    """One non-empty bucket of a :class:`Rollup` key's duration (``d``) or queue-wait (``q``) histogram.

    Buckets are :mod:`agentops_django._histogram`'s, the same for every
    process, so counts add up exactly.
    """

    period = models.PositiveSmallIntegerField()
    minute = models.IntegerField()
    kind = models.CharField(max_length=16)
    name = models.CharField(max_length=255)
    series = models.CharField(max_length=1)
    bucket = models.SmallIntegerField()
    count = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["period", "minute", "kind", "name", "series", "bucket"], name="agentops_rollupbucket_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.name} @{self.minute}/{self.period} {self.series}{self.bucket}"
