"""The database writer: the bounded batch processor in front of the database exporter.

What it adds to :class:`~agentops.integrations.batch.BoundedBatchProcessor`:

* per-process counters (spans written, dropped, write errors) stored in
  :class:`~agentops_django.models.WriterStats` every ``stats_interval``
  seconds when they changed, even while the process is idle, so the admin
  can show drops;
* no connection held while the process is quiet: the writer closes its
  connection after ``idle_close`` seconds without spans, so a test database
  can be dropped and an idle-session timeout or a pooler never cuts it;
* one writer per process, made from the ``AGENTOPS`` setting
  (:func:`get_processor`).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import time

from django.db import DatabaseError, InterfaceError, connections
from opentelemetry.sdk.trace import ReadableSpan

from agentops import semconv
from agentops.integrations.batch import BoundedBatchProcessor
from agentops_django._process import identity
from agentops_django.writer._exporter import DatabaseSpanExporter, is_missing_table
from agentops_django.writer._record import SpanRecord, record
from agentops_django.writer._store import _reset_connection, store_writer_stats

logger = logging.getLogger("agentops_django.writer")

#: Seconds between two stores of the per-process counters.
STATS_INTERVAL = 30.0
#: Seconds without spans after which the writer closes its connection.
IDLE_CLOSE = 2.0

_processor: DatabaseSpanProcessor | None = None
_lock = threading.Lock()


class DatabaseSpanProcessor(BoundedBatchProcessor):
    """Stores every finished span in the database, in batches, off the host's threads.

    Args:
        alias: The Django database alias to write to.
        queue_size: Spans that may wait for the writer; more are dropped.
        batch_size: Spans per write transaction.
        batch_interval: Seconds the writer waits to fill a batch.

    Attributes:
        stats_interval: Seconds between two stores of the counters.
        idle_close: Seconds without spans before the connection is closed.
    """

    exporter: DatabaseSpanExporter

    def __init__(
        self,
        alias: str = "default",
        *,
        queue_size: int = 20_000,
        batch_size: int = 1_000,
        batch_interval: float = 1.0,
    ) -> None:
        self.alias = alias
        self.stats_interval = STATS_INTERVAL
        self.idle_close = IDLE_CLOSE
        super().__init__(
            DatabaseSpanExporter(alias),
            queue_size=queue_size,
            batch_size=batch_size,
            batch_interval=batch_interval,
            name="database writer",
        )

    def _init_process_state(self) -> None:
        super()._init_process_state()
        self.exporter.reset_counters()
        self._stats_stored: tuple[int, int, int] | None = None
        self._stats_at = 0.0
        self._pid = os.getpid()
        self._host = socket.gethostname()[:255]
        self._process_started_at = dt.datetime.now(dt.UTC)
        self._service = ""
        self.exporter.register_process = self._register_process

    @property
    def written(self) -> int:
        """Spans newly stored by this process."""
        return self.exporter.written

    @property
    def errors(self) -> int:
        """Failed writes of this process."""
        return self.exporter.errors

    def counters(self) -> tuple[int, int, int]:
        """``(written, dropped, errors)`` of this process (spans refused alone count as dropped)."""
        exporter = self.exporter
        return (exporter.written, self.dropped + exporter.refused, exporter.errors)

    def stats(self) -> dict[str, int]:
        """This process's counters: spans ``written``, ``dropped``, ``queued``; write ``errors``."""
        written, dropped, errors = self.counters()
        return {"written": written, "dropped": dropped, "queued": super().stats()["queued"], "errors": errors}

    def _queued(self, span: ReadableSpan) -> ReadableSpan:
        # A tuple of plain values, which the host's garbage collector soon stops
        # walking (see agentops_django.writer._record); the exporter takes both.
        return record(span)  # type: ignore[return-value]

    # --- on the writer's thread ------------------------------------------------------
    def _housekeeping(self, now: float, flushed: bool) -> None:
        if flushed or now - self._stats_at >= self.stats_interval:
            self._store_stats()
        if not self._queue and now - self.exporter.used_at >= self.idle_close:
            self.exporter.close_connection()

    def _housekeeping_due(self) -> float:
        due = min(super()._housekeeping_due(), self._stats_at + self.stats_interval)
        if connections[self.alias].connection is not None:
            due = min(due, self.exporter.used_at + self.idle_close)
        return due

    def _thread_ending(self) -> None:
        connections[self.alias].close()

    def _store_stats(self) -> None:
        current = self.counters()
        self._stats_at = time.monotonic()
        if current == self._stats_stored:
            return
        for attempt in (1, 2):
            try:
                row_id = store_writer_stats(
                    self.alias, self._host, self._pid, self._process_started_at, current, self._identity()
                )
                process = self.exporter.process
                if process is not None and process[0] != row_id:
                    # The row was deleted meanwhile (agentops_prune after a long silence): point at the new one.
                    self.exporter.process = (row_id, process[1])
                self.exporter.used_at = time.monotonic()
                break
            except (DatabaseError, InterfaceError) as exc:
                # A connection cut while idle (an outage, a server restart)
                # fails once: try again on a fresh one before giving up.
                _reset_connection(self.alias)
                if is_missing_table(exc):
                    return  # said once already by the span writes, or will be
                if attempt == 2:
                    logger.warning("agentops_django: storing the writer's counters failed: %r", exc)
                    return
        self._stats_stored = current

    def _identity(self) -> tuple[str, str, str, int | None]:
        """``role``, ``service_name``, ``worker_node``, ``pool_index`` of this process, as known now."""
        now = identity()
        return (
            str(now[semconv.AGENTOPS_PROCESS_ROLE]),
            self._service,
            str(now.get(semconv.CELERY_WORKER_NODE, "")),
            now.get(semconv.CELERY_WORKER_POOL_INDEX),
        )

    def _register_process(self, span: ReadableSpan | SpanRecord) -> tuple[int, str]:
        """Store this process's row before its first batch: its id and ``"|host|worker node|"``.

        (Runs on the writer's thread, inside the exporter's retry policy.)
        """
        self._service = record(span).service
        process = self._identity()
        row_id = store_writer_stats(
            self.alias, self._host, self._pid, self._process_started_at, self.counters(), process
        )
        node = process[2]
        self._stats_stored = None  # the counters are stored again on the next round, as before
        labels = [self._host, node] if node else [self._host]
        return row_id, "|" + "|".join(label.replace("|", "/") for label in labels) + "|"


def get_processor() -> DatabaseSpanProcessor:
    """The process's database writer, made from the ``AGENTOPS`` setting on first use.

    A writer that was shut down (for example by ``agentops`` being reset in
    tests) is replaced by a new one.
    """
    global _processor
    with _lock:
        if _processor is None or _processor._stopping:
            from agentops_django.conf import get_config

            config = get_config()
            _processor = DatabaseSpanProcessor(
                config.database_alias,
                queue_size=config.queue_size,
                batch_size=config.batch_size,
                batch_interval=config.batch_interval,
            )
        return _processor
