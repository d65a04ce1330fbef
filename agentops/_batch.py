"""A bounded batch span processor that never blocks the host and honours its deadlines.

Why not OpenTelemetry's ``BatchSpanProcessor``:

* its ``force_flush`` does not honour its timeout
  (https://github.com/open-telemetry/opentelemetry-python/issues/4568), so a
  flush at the end of a request, a task or the process can hang the host on a
  slow exporter;
* when its queue is full it drops the *oldest* span, which under a flood of
  child spans pushes out the span that names a trace. Here the spans that
  name a trace (a root, or a request/task whose caller is in another
  process) keep a reserved share of the queue, and only then are spans
  dropped, newest first, counted, and reported in at most one warning per
  window with the exact count since the previous one.

``on_end`` only appends to a ``deque`` (checked against ``queue_size``); a
daemon thread, started on the first span of each process, hands the exporter
batches of up to ``batch_size`` spans, waiting at most ``batch_interval``
seconds to fill one. ``force_flush`` and ``shutdown`` return by their
deadlines whatever the exporter does. After ``os.fork()`` the child starts
with an empty queue and no thread; a ``multiprocessing`` child (which ends
with ``os._exit()``, skipping ``atexit``) exports what it made when it exits
normally.

Subclasses adjust three hooks: :meth:`_thread_context` (what the export
thread runs in), :meth:`_housekeeping` and :meth:`_housekeeping_due` (work
between batches, e.g. storing counters or closing an idle connection).
"""

from __future__ import annotations

import collections
import logging
import multiprocessing.util
import threading
import time
import weakref
from collections.abc import Sequence

from opentelemetry import context as context_api
from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from agentops._guard import capture_internal_exceptions
from agentops._guard import count as count_internal
from agentops._lifecycle import EXIT_SHUTDOWN, FORK_INTEGRATIONS, on_exit, on_fork_child

logger = logging.getLogger("agentops")

#: Seconds between two "spans dropped" warnings of one processor.
WARN_INTERVAL = 60.0
#: Share of the queue kept for the spans that name a trace.
ROOT_RESERVE = 0.05
#: Seconds ``shutdown()`` waits by default.
SHUTDOWN_TIMEOUT = 5.0
#: Seconds a ``multiprocessing`` child (fork) may spend exporting as it exits.
CHILD_EXIT_TIMEOUT = 2.0

_processors: weakref.WeakSet[BoundedBatchProcessor] = weakref.WeakSet()


class _Flush:
    """A marker put in the queue by ``force_flush``: set once everything before it is exported."""

    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = threading.Event()


def names_a_trace(span: ReadableSpan) -> bool:
    """A span that gives a trace its identity: a trace root, or a request/task whose caller is elsewhere."""
    parent = span.parent
    return parent is None or parent.is_remote


class BoundedBatchProcessor(SpanProcessor):
    """Exports finished spans in batches from a thread of its own; never blocks, never raises.

    Attributes:
        warn_interval: Seconds between two "spans dropped" warnings (default :data:`WARN_INTERVAL`).

    Args:
        exporter: Any OpenTelemetry ``SpanExporter``. Its ``export`` runs on
            the processor's thread only. If it has an ``interrupt(deadline)``
            method, ``shutdown`` calls it so that a retry loop inside the
            exporter can stop by the deadline (``time.monotonic()`` seconds).
        queue_size: Spans that may wait; more are dropped and counted.
        batch_size: Spans per ``export`` call.
        batch_interval: Seconds the thread waits to fill a batch.
        name: What the log and the thread call it.
    """

    def __init__(
        self,
        exporter: SpanExporter,
        *,
        queue_size: int = 20_000,
        batch_size: int = 1_000,
        batch_interval: float = 1.0,
        name: str = "span exporter",
    ) -> None:
        self.exporter = exporter
        self.queue_size = queue_size
        self.batch_size = batch_size
        self.batch_interval = batch_interval
        self.name = name
        self.warn_interval = WARN_INTERVAL
        self._init_process_state()
        _processors.add(self)
        multiprocessing.util.register_after_fork(self, BoundedBatchProcessor._in_multiprocessing_child)

    @property
    def _soft_limit(self) -> int:
        return self.queue_size - int(self.queue_size * ROOT_RESERVE)

    def _init_process_state(self) -> None:
        """(Re)create everything that belongs to one process: queue, thread, counters."""
        self._queue: collections.deque[ReadableSpan | _Flush] = collections.deque()
        self._wake = threading.Event()
        self._start_lock = threading.Lock()
        self._count_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        # A processor shut down before a fork stays shut down in the child.
        self._stopping = getattr(self, "_stopping", False)
        self._stopped = getattr(self, "_stopped", False)
        self._stop_deadline = float("inf")
        self.exported = 0
        self.dropped = 0
        #: Drops not yet in a log line: every warning gives the exact count since the previous one.
        self._unreported = 0
        self._warned_at = float("-inf")

    # --- the host's side: never blocks, never raises ----------------------------
    def on_end(self, span: ReadableSpan) -> None:
        """Queue the span; drop and count it if the queue is full."""
        if self._stopping:
            return
        queue = self._queue
        if len(queue) >= self._soft_limit and (len(queue) >= self.queue_size or not names_a_trace(span)):
            self._drop(1)
            return
        queue.append(self._queued(span))
        if self._thread is None:
            self._start_thread()
        elif len(queue) == 1 or len(queue) == self.batch_size:
            # The first span after an idle spell starts the batch interval's clock.
            self._wake.set()

    def _queued(self, span: ReadableSpan) -> ReadableSpan:
        """What the queue keeps of a finished span until ``export``: the span itself here.

        (Runs on the thread that ended the span: a subclass may keep a
        lighter copy of what its exporter reads.)
        """
        return span

    def _drop(self, count: int) -> None:
        with self._count_lock:  # host threads drop concurrently
            self.dropped += count
            self._unreported += count
        count_internal("spans_dropped", count)
        if time.monotonic() - self._warned_at >= self.warn_interval:
            self._report_drops()

    def _report_drops(self) -> None:
        """Log the drops since the last warning (at most one warning per ``warn_interval``)."""
        with self._count_lock:
            count, self._unreported = self._unreported, 0
            if not count:
                return
            self._warned_at = time.monotonic()
            total = self.dropped
        logger.warning(
            "agentops: %s: %d span(s) dropped since the last report (%d in this process so far): "
            "the queue was full or the export failed",
            self.name,
            count,
            total,
        )

    def _start_thread(self) -> None:
        with self._start_lock:
            if self._thread is not None and self._thread.is_alive():
                return
            thread = threading.Thread(target=self._run, name=f"agentops {self.name}", daemon=True)
            thread.start()
            self._thread = thread

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Wait until every span queued before the call is exported (or dropped).

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
        """Export what is queued (within the deadline), stop the thread, shut the exporter down."""
        if self._stopping:
            return
        self._stop_deadline = time.monotonic() + timeout_millis / 1000
        self._stopping = True
        interrupt = getattr(self.exporter, "interrupt", None)
        if interrupt is not None:
            with capture_internal_exceptions(f"{self.name} interrupt"):
                interrupt(self._stop_deadline)
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(max(timeout_millis, 0) / 1000)
        self._stopped = True
        with capture_internal_exceptions(f"{self.name} shutdown"):
            self.exporter.shutdown()

    def stats(self) -> dict[str, int]:
        """This process's counters: spans ``exported``, ``dropped``, ``queued``."""
        return {
            "exported": self.exported,
            "dropped": self.dropped,
            "queued": sum(1 for item in list(self._queue) if not isinstance(item, _Flush)),
        }

    # --- the processor's thread ----------------------------------------------------
    def _thread_context(self) -> context_api.Context:
        """The context the thread runs in: instrumentation suppressed, so exports are never traced."""
        return context_api.set_value(_SUPPRESS_INSTRUMENTATION_KEY, True)

    def _housekeeping(self, now: float, flushed: bool) -> None:
        """Between batches and when idle: a subclass's periodic work (nothing here)."""

    def _housekeeping_due(self) -> float:
        """When :meth:`_housekeeping` next wants to run (``time.monotonic()``), even if idle."""
        due = float("inf")
        if self._unreported:
            due = self._warned_at + self.warn_interval
        return due

    def _thread_ending(self) -> None:
        """Called on the thread as it ends (a subclass releases what the thread held)."""

    def _export(self, batch: Sequence[ReadableSpan]) -> None:
        with capture_internal_exceptions(f"{self.name} export"):
            result = SpanExportResult.FAILURE
            try:
                result = self.exporter.export(batch)
            finally:
                if result is SpanExportResult.SUCCESS:
                    self.exported += len(batch)
                else:
                    # Whatever failed, the batch is gone: count it, never lose it silently.
                    self._drop(len(batch))

    def _run(self) -> None:
        context_api.attach(self._thread_context())
        try:
            while True:
                batch, markers = self._next_batch()
                if batch:
                    self._export(batch)
                now = time.monotonic()
                with capture_internal_exceptions(f"{self.name} housekeeping"):
                    self._housekeeping(now, bool(markers) or self._stopping)
                for marker in markers:
                    marker.done.set()
                if self._unreported and now - self._warned_at >= self.warn_interval:
                    self._report_drops()
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
            with capture_internal_exceptions(f"{self.name} thread end"):
                self._thread_ending()

    def _next_batch(self) -> tuple[list[ReadableSpan], list[_Flush]]:
        """Wait for a full batch, the interval, a flush, the stop or housekeeping; take up to ``batch_size``."""
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
                timeout = self._housekeeping_due() - time.monotonic()
                if timeout <= 0:
                    break
            self._wake.wait(None if timeout == float("inf") else timeout)
            self._wake.clear()
        batch: list[ReadableSpan] = []
        markers: list[_Flush] = []
        while queue and len(batch) < self.batch_size:
            item = queue.popleft()
            if isinstance(item, _Flush):
                markers.append(item)
                if not queue or not isinstance(queue[0], _Flush):
                    break  # export what came before the marker, then release it
            else:
                batch.append(item)
        return batch, markers

    # --- multiprocessing children ---------------------------------------------------
    def _in_multiprocessing_child(self) -> None:
        """Run in a ``multiprocessing`` child (fork) before its target: export its spans as it exits.

        Such a child ends with ``os._exit()``, which skips ``atexit``. Its
        normal end (a ``Process`` returning, ``Pool.close()`` then ``join()``)
        runs multiprocessing's finalizers, so the processor is shut down
        there. ``Pool.terminate()`` (and leaving a ``with Pool()`` block)
        kills the workers with SIGTERM at once: what they had not exported is lost.
        """
        multiprocessing.util.Finalize(self, self._exit_child, exitpriority=100)

    def _exit_child(self) -> None:
        with capture_internal_exceptions(f"{self.name} multiprocessing child exit"):
            self.shutdown(int(CHILD_EXIT_TIMEOUT * 1000))


def _after_fork_in_child() -> None:
    # The parent's queue is the parent's to export; its thread does not exist here.
    for processor in list(_processors):
        processor._init_process_state()


def _at_exit() -> None:
    for processor in list(_processors):
        with capture_internal_exceptions("batch processor exit"):
            processor.shutdown()


on_fork_child(_after_fork_in_child, FORK_INTEGRATIONS)
on_exit(_at_exit, EXIT_SHUTDOWN)
