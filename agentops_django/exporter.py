"""The database writer: a span processor that stores finished spans in batches.

``on_end`` only appends the finished span to a bounded in-memory queue (a
``deque``, checked against ``QUEUE_SIZE``; when full the span is dropped and
counted, never waited for). A daemon thread, started lazily on the first span
of each process, takes up to ``BATCH_SIZE`` spans at a time (waiting at most
``BATCH_INTERVAL`` seconds to fill a batch), turns them into rows
(:mod:`agentops_django._rows`) and writes each batch in one transaction on its
own database connection (:mod:`agentops_django._store`). The writer's queries
run with OpenTelemetry instrumentation suppressed, so they are never traced.

Database errors never reach the host: the batch is kept and retried with
backoff a few times, the connection is closed so the next try opens a fresh
one, then the batch is dropped and counted; the next batch tries again, so
writing resumes by itself when the database is back. Per-process counters are
stored in :class:`~agentops_django.models.WriterStats` so the admin can show
drops.

After ``os.fork()`` (Celery prefork children, gunicorn workers with
``--preload``) the child gets an empty queue and no thread; its own thread
starts on its first span.
"""

from __future__ import annotations

import collections
import datetime as dt
import logging
import multiprocessing.util
import os
import socket
import threading
import time
import weakref
from collections.abc import Sequence

from django.db import DatabaseError, DataError, InterfaceError, OperationalError, ProgrammingError, connections
from opentelemetry import context as context_api
from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor

from agentops.integrations import lifecycle
from agentops.integrations.scope import capture_internal_exceptions, count_internal
from agentops_django._rows import time_format
from agentops_django._store import _adapt, _cursor, _reset_connection, upsert_stats_sql, write_batch

logger = logging.getLogger(__name__)

#: Tries of one batch before it is dropped (the first try included).
MAX_ATTEMPTS = 5
#: Seconds between tries: doubled each time up to this cap.
MAX_BACKOFF = 5.0
#: Seconds between two stores of the per-process counters.
STATS_INTERVAL = 30.0
#: Seconds between two "queue full" warnings of one process.
WARN_INTERVAL = 60.0
#: Seconds ``shutdown()`` waits for the queue to be written.
SHUTDOWN_TIMEOUT = 5.0
#: Seconds without spans after which the writer closes its connection: it
#: holds no connection while the process is quiet (a test database can be
#: dropped, an idle-session timeout or a pooler never cuts it under us).
IDLE_CLOSE = 2.0
#: Share of the queue kept for the spans that name a trace (a request, a task
#: run, a trace root): a flood of child spans cannot push them out.
ROOT_RESERVE = 0.05
#: Seconds a ``multiprocessing`` child (fork) may spend writing its spans as it exits.
CHILD_EXIT_TIMEOUT = 2.0

_processors: weakref.WeakSet[DatabaseSpanProcessor] = weakref.WeakSet()
_processor: DatabaseSpanProcessor | None = None
_lock = threading.Lock()


class _Flush:
    """A marker put in the queue by ``force_flush``: set once everything before it is written."""

    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = threading.Event()


def _is_missing_table(exc: Exception) -> bool:
    """Whether ``exc`` says the app's tables do not exist (``migrate`` not run on that database)."""
    if not isinstance(exc, ProgrammingError | OperationalError):
        return False
    message = str(exc).lower()
    return "no such table" in message or ("relation" in message and "does not exist" in message)


def _names_a_trace(span: ReadableSpan) -> bool:
    """A span that gives a trace its identity: a trace root, or a request/task whose caller is elsewhere."""
    parent = span.parent
    return parent is None or parent.is_remote


def _is_outage(exc: Exception, alias: str) -> bool:
    """Whether ``exc`` means the database is out of reach (retry as long as it takes).

    Lost or refused connections are outages; so, on SQLite, are a locked or
    unopenable file. A missing table or a refused statement is not: it would
    fail the same way forever.
    """
    if isinstance(exc, InterfaceError):
        return True
    if not isinstance(exc, OperationalError):
        return False
    if connections[alias].vendor != "sqlite":
        return True
    message = str(exc).lower()
    return any(word in message for word in ("locked", "busy", "unable to open", "disk i/o"))


class DatabaseSpanProcessor(SpanProcessor):
    """Stores every finished span in the database, in batches, off the host's threads.

    Args:
        alias: The Django database alias to write to.
        queue_size: Spans that may wait for the writer; more are dropped.
        batch_size: Spans per write transaction.
        batch_interval: Seconds the writer waits to fill a batch.
    """

    def __init__(
        self,
        alias: str = "default",
        *,
        queue_size: int = 20_000,
        batch_size: int = 1_000,
        batch_interval: float = 1.0,
    ) -> None:
        self.alias = alias
        self.queue_size = queue_size
        self.batch_size = batch_size
        self.batch_interval = batch_interval
        self._init_process_state()
        _processors.add(self)
        # A multiprocessing child (Pool worker, Process) ends with os._exit(),
        # which skips atexit: write its spans from multiprocessing's own exit hook.
        multiprocessing.util.register_after_fork(self, DatabaseSpanProcessor._in_multiprocessing_child)

    @property
    def _soft_limit(self) -> int:
        return self.queue_size - int(self.queue_size * ROOT_RESERVE)

    def _init_process_state(self) -> None:
        """(Re)create everything that belongs to one process: queue, thread, counters."""
        self._queue: collections.deque[ReadableSpan | _Flush] = collections.deque()
        self._wake = threading.Event()
        #: Set by shutdown(): ends a retry's backoff wait at once.
        self._stop_event = threading.Event()
        self._start_lock = threading.Lock()
        self._count_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        # A writer shut down before a fork stays shut down in the child.
        self._stopping = getattr(self, "_stopping", False)
        self._stopped = getattr(self, "_stopped", False)
        self._stop_deadline = float("inf")
        self.written = 0
        self.dropped = 0
        self.errors = 0
        #: Drops not yet in a log line: every warning gives the exact count since the previous one.
        self._unreported = 0
        self._stats_stored: tuple[int, int, int] | None = None
        self._stats_at = 0.0
        self._warned_at = float("-inf")
        self._used_at = 0.0
        self._missing_table_logged = False
        self._pid = os.getpid()
        self._host = socket.gethostname()[:255]
        self._process_started_at = dt.datetime.now(dt.UTC)

    # --- the host's side: never blocks, never raises ----------------------------
    def on_end(self, span: ReadableSpan) -> None:
        """Queue the span for the writer; drop and count it if the queue is full."""
        if self._stopping:
            return
        queue = self._queue
        if len(queue) >= self._soft_limit and (len(queue) >= self.queue_size or not _names_a_trace(span)):
            self._drop(1)
            return
        queue.append(span)
        if self._thread is None:
            self._start_thread()
        elif len(queue) == 1 or len(queue) == self.batch_size:
            # The first span after an idle spell starts the batch interval's clock;
            # without it the thread sleeps until its stats interval (30 s).
            self._wake.set()

    def _drop(self, count: int) -> None:
        with self._count_lock:  # host threads drop concurrently; the admin shows this number
            self.dropped += count
            self._unreported += count
        count_internal("spans_dropped", count)
        if time.monotonic() - self._warned_at >= WARN_INTERVAL:
            self._report_drops()

    def _report_drops(self) -> None:
        """Log the drops since the last warning (at most one warning per ``WARN_INTERVAL``)."""
        with self._count_lock:
            count, self._unreported = self._unreported, 0
            if not count:
                return
            self._warned_at = time.monotonic()
            total = self.dropped
        logger.warning(
            "agentops_django: %d span(s) dropped since the last report (%d in this process so far): "
            "the database writer's queue was full or the database failed",
            count,
            total,
        )

    def _start_thread(self) -> None:
        with self._start_lock:
            if self._thread is not None and self._thread.is_alive():
                return
            thread = threading.Thread(target=self._run, name="agentops-db-writer", daemon=True)
            thread.start()
            self._thread = thread

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Wait until every span queued before the call is written (or dropped).

        Returns:
            True if that happened within ``timeout_millis``.
        """
        if self._stopped or (self._thread is None and not self._queue):
            return not self._queue
        marker = _Flush()
        self._queue.append(marker)
        if self._thread is None or not self._thread.is_alive():
            self._thread = None
            self._start_thread()
        self._wake.set()
        return marker.done.wait(max(timeout_millis, 0) / 1000)

    def shutdown(self, timeout_millis: int = int(SHUTDOWN_TIMEOUT * 1000)) -> None:
        """Write what is queued (within the deadline), store the counters, stop the thread."""
        if self._stopping:
            return
        self._stop_deadline = time.monotonic() + timeout_millis / 1000
        self._stopping = True
        self._stop_event.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(max(timeout_millis, 0) / 1000)
        self._stopped = True

    def stats(self) -> dict[str, int]:
        """This process's counters: spans ``written``, ``dropped``, ``queued``; write ``errors``."""
        return {
            "written": self.written,
            "dropped": self.dropped,
            "queued": sum(1 for item in list(self._queue) if not isinstance(item, _Flush)),
            "errors": self.errors,
        }

    # --- the writer thread -------------------------------------------------------
    def _run(self) -> None:
        # The writer's own queries must not become spans of any instrumentation.
        context_api.attach(context_api.set_value(_SUPPRESS_INSTRUMENTATION_KEY, True))
        try:
            while True:
                batch, markers = self._next_batch()
                if batch:
                    with capture_internal_exceptions("database writer"):
                        try:
                            self._write_with_retries(batch)
                        except Exception:
                            # Whatever failed, the batch is gone: count it, never lose it silently.
                            self._drop(len(batch))
                            raise
                now = time.monotonic()
                if markers or now - self._stats_at >= STATS_INTERVAL or self._stopping:
                    with capture_internal_exceptions("database writer stats"):
                        self._store_stats()
                for marker in markers:
                    marker.done.set()
                if self._unreported and now - self._warned_at >= WARN_INTERVAL:
                    self._report_drops()
                if not self._queue and now - self._used_at >= IDLE_CLOSE:
                    self._close_idle_connection()
                if self._stopping and not self._queue:
                    break
                if self._stopping and time.monotonic() >= self._stop_deadline:
                    left = list(self._queue)
                    self._queue.clear()
                    self._drop(sum(1 for item in left if not isinstance(item, _Flush)))
                    for item in left:
                        if isinstance(item, _Flush):
                            item.done.set()
                    break
        finally:
            with capture_internal_exceptions("database writer close"):
                connections[self.alias].close()

    def _next_batch(self) -> tuple[list[ReadableSpan], list[_Flush]]:
        """Wait for a full batch, the interval, a flush or the stop; take up to ``batch_size``."""
        queue = self._queue
        deadline: float | None = None
        while True:
            size = len(queue)
            if size >= self.batch_size or self._stopping:
                break
            if size:
                if any(isinstance(item, _Flush) for item in list(queue)):
                    break
                now = time.monotonic()
                if deadline is None:
                    deadline = now + self.batch_interval
                if now >= deadline:
                    break
                timeout = deadline - now
            else:
                deadline = None
                # Idle: wake for the housekeeping (stats, drop report, closing the connection).
                timeout = self._housekeeping_due() - time.monotonic()
                if timeout <= 0:
                    break
            self._wake.wait(timeout)
            self._wake.clear()
        batch: list[ReadableSpan] = []
        markers: list[_Flush] = []
        while queue and len(batch) < self.batch_size:
            item = queue.popleft()
            if isinstance(item, _Flush):
                markers.append(item)
                if not queue or not isinstance(queue[0], _Flush):
                    break  # write what came before the marker, then release it
            else:
                batch.append(item)
        return batch, markers

    def _housekeeping_due(self) -> float:
        due = self._stats_at + STATS_INTERVAL
        if self._unreported:
            due = min(due, self._warned_at + WARN_INTERVAL)
        if connections[self.alias].connection is not None:
            due = min(due, self._used_at + IDLE_CLOSE)
        return due

    def _close_idle_connection(self) -> None:
        if connections[self.alias].connection is not None:
            with capture_internal_exceptions("database writer idle close"):
                _reset_connection(self.alias)

    def _write_with_retries(self, batch: Sequence[ReadableSpan]) -> None:
        # An outage (OperationalError/InterfaceError: no connection, or a lost
        # one) does not use up MAX_ATTEMPTS: the batch is held and retried with
        # capped backoff while on_end keeps queueing up to QUEUE_SIZE (and drops
        # and counts beyond it), so what ended during an outage is written after
        # it, up to the bound. Other errors get MAX_ATTEMPTS; shutdown's deadline wins.
        delay = 0.1
        attempt = 0
        while True:
            attempt += 1
            outage = False
            reused = connections[self.alias].connection is not None
            try:
                self.written += self._write_isolating(batch)
                self._used_at = time.monotonic()
                return
            except (DatabaseError, InterfaceError) as exc:
                _reset_connection(self.alias)
                if _is_missing_table(exc):
                    self._missing_tables(exc, len(batch))
                    return
                outage = _is_outage(exc, self.alias)
                if outage and reused and attempt == 1:
                    # A connection cut while it was idle (idle-session timeout, a
                    # pooler or proxy, a server restart): try once more on a fresh
                    # one before calling it a failure.
                    logger.debug("agentops_django: reconnecting after %r", exc)
                    continue
                self.errors += 1
                count_internal("writer_errors")
                # One warning per batch; the retries of an outage would flood the log.
                logger.log(
                    logging.WARNING if attempt == 1 else logging.DEBUG,
                    "agentops_django: writing %d span(s) failed (try %d of %d): %r",
                    len(batch),
                    attempt,
                    MAX_ATTEMPTS,
                    exc,
                )
            if self._stopping and time.monotonic() + delay >= self._stop_deadline:
                break
            if attempt >= MAX_ATTEMPTS and not outage:
                break
            if self._stopping:
                time.sleep(min(delay, max(self._stop_deadline - time.monotonic(), 0.0)))
            else:
                self._stop_event.wait(delay)  # shutdown() ends the wait at once
            delay = min(delay * 2, MAX_BACKOFF)
        self._drop(len(batch))

    def _missing_tables(self, exc: Exception, count: int) -> None:
        """The app's tables are missing: say how to fix it (once per process), drop the batch."""
        self.errors += 1
        if not self._missing_table_logged:
            self._missing_table_logged = True
            option = "" if self.alias == "default" else f" --database {self.alias}"
            logger.warning(
                "agentops_django: the database %r has no agentops_django tables; run 'python manage.py migrate%s'. "
                "Spans are dropped until then (%r)",
                self.alias,
                option,
                exc,
            )
        with self._count_lock:
            self.dropped += count
        count_internal("spans_dropped", count)

    def _write_isolating(self, batch: Sequence[ReadableSpan]) -> int:
        """Write the batch; if the database refuses a value, find and drop the refused spans only.

        A ``DataError`` (a value the column or JSON type refuses) would fail
        the batch on every try; halving it stores the good spans (each half
        in its own transaction) and drops only the spans refused alone.
        Other errors go up to the retry loop: halves already committed are
        not counted again when the batch is retried.
        """
        try:
            return write_batch(self.alias, batch)
        except (DataError, UnicodeError, ValueError) as exc:
            # ValueError/UnicodeError: a value the driver cannot even encode.
            _reset_connection(self.alias)
            if len(batch) == 1:
                self.errors += 1
                logger.warning("agentops_django: the database refused span %r: %r", batch[0].name, exc)
                self._drop(1)
                return 0
        middle = len(batch) // 2
        return self._write_isolating(batch[:middle]) + self._write_isolating(batch[middle:])

    def _store_stats(self) -> None:
        current = (self.written, self.dropped, self.errors)
        self._stats_at = time.monotonic()
        if current == self._stats_stored:
            return
        connection = connections[self.alias]
        sqlite = time_format(connection.vendor)
        now = dt.datetime.now(dt.UTC)
        params = [
            self._host,
            self._pid,
            _adapt(self._process_started_at, sqlite),
            *current,
            _adapt(now, sqlite),
        ]
        for attempt in (1, 2):
            try:
                with _cursor(connections[self.alias]) as cursor:
                    cursor.execute(upsert_stats_sql(), params)
                self._used_at = time.monotonic()
                break
            except (DatabaseError, InterfaceError) as exc:
                # A connection cut while idle (an outage, a server restart)
                # fails once: try again on a fresh one before giving up.
                _reset_connection(self.alias)
                if _is_missing_table(exc):
                    return  # said once already by the span writes, or will be
                if attempt == 2:
                    logger.warning("agentops_django: storing the writer's counters failed: %r", exc)
                    return
        self._stats_stored = current


    # --- multiprocessing children ---------------------------------------------------
    def _in_multiprocessing_child(self) -> None:
        """Run in a ``multiprocessing`` child (fork) before its target: write its spans as it exits.

        Such a child ends with ``os._exit()``, which skips ``atexit``; its
        normal end (a ``Process`` returning, ``Pool.close()`` then ``join()``)
        runs multiprocessing's finalizers, so the writer is shut down there.
        ``Pool.terminate()`` (and leaving a ``with Pool()`` block) kills the
        workers with SIGTERM at once: what they had not written yet is lost.
        """
        multiprocessing.util.Finalize(self, self._exit_child, exitpriority=100)

    def _exit_child(self) -> None:
        with capture_internal_exceptions("multiprocessing child exit"):
            self.shutdown(int(CHILD_EXIT_TIMEOUT * 1000))


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


def _after_fork_in_child() -> None:
    # The parent's queue is the parent's to write; its thread does not exist here.
    for processor in list(_processors):
        processor._init_process_state()


def _at_exit() -> None:
    for processor in list(_processors):
        with capture_internal_exceptions("database writer exit"):
            processor.shutdown()


lifecycle.on_fork_child(_after_fork_in_child, lifecycle.FORK_INTEGRATIONS)
# After the SDK ended open traces and flushed: what those ends produced is written.
lifecycle.on_exit(_at_exit, lifecycle.EXIT_SHUTDOWN)
