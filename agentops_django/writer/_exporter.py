"""The database as an OpenTelemetry ``SpanExporter``: one batch, one transaction, and the retry policy.

:meth:`DatabaseSpanExporter.export` turns a batch into rows
(:mod:`._rows`) and writes it in one transaction (:mod:`._store`) on the
calling thread's own connection (the processor's thread). Database errors
never reach the host:

* an outage (no connection, a lost one; on SQLite a locked or unopenable
  file) holds the batch and retries it with capped backoff for as long as it
  lasts, until the processor's shutdown deadline;
* a connection cut while it sat idle (an idle-session timeout, a pooler, a
  restarted server) is replaced once without a word;
* missing tables (``migrate`` not run) drop the batch with one warning per
  process that says so;
* a value the database refuses (``DataError``) drops only the spans refused
  alone, found by halving the batch;
* anything else is retried ``MAX_ATTEMPTS`` times, then the batch is dropped.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from django.db import DatabaseError, DataError, InterfaceError, OperationalError, ProgrammingError, connections
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from agentops.integrations.scope import count_internal
from agentops_django.writer._record import SpanRecord
from agentops_django.writer._store import _reset_connection, write_batch

logger = logging.getLogger("agentops_django.writer")

#: Tries of one batch before it is dropped (the first try included).
MAX_ATTEMPTS = 5
#: Seconds between tries: doubled each time up to this cap.
MAX_BACKOFF = 5.0


def is_missing_table(exc: Exception) -> bool:
    """Whether ``exc`` says the app's tables do not exist (``migrate`` not run on that database)."""
    if not isinstance(exc, ProgrammingError | OperationalError):
        return False
    message = str(exc).lower()
    return "no such table" in message or ("relation" in message and "does not exist" in message)


def is_outage(exc: Exception, alias: str) -> bool:
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


class DatabaseSpanExporter(SpanExporter):
    """Writes batches of spans to a Django database (PostgreSQL or SQLite).

    Args:
        alias: The Django database alias.

    Attributes:
        written: Spans newly stored (a span delivered twice counts once).
        refused: Spans the database refused alone (dropped; the rest of their batch was stored).
        errors: Failed writes.
        used_at: ``time.monotonic()`` of the last statement that reached the database.
    """

    def __init__(self, alias: str = "default") -> None:
        self.alias = alias
        self._stop = threading.Event()
        self._deadline = float("inf")
        #: Stores this process's identity row before its first batch: ``(row id, "|host|node|")``.
        self.register_process: Callable[[ReadableSpan | SpanRecord], tuple[int, str]] | None = None
        self.reset_counters()

    def reset_counters(self) -> None:
        """Forget the counters (a forked child starts its own)."""
        self.written = 0
        self.refused = 0
        self.errors = 0
        self.used_at = 0.0
        #: This process's identity row, once stored: ``(id, "|host|worker node|")``.
        self.process: tuple[int, str] | None = None
        self._missing_table_logged = False
        self._stop = threading.Event()
        self._deadline = float("inf")

    def interrupt(self, deadline: float) -> None:
        """Stop waiting between retries; give up by ``deadline`` (``time.monotonic()`` seconds)."""
        self._deadline = deadline
        self._stop.set()

    def export(self, spans: Sequence[ReadableSpan | SpanRecord]) -> SpanExportResult:  # type: ignore[override]
        """Store ``spans`` and their traces' summaries, retrying as the policy says.

        Returns:
            SUCCESS once stored (spans refused alone are dropped and counted in
            :attr:`refused`); FAILURE if the batch was given up.
        """
        delay = 0.1
        attempt = 0
        while True:
            attempt += 1
            outage = False
            reused = connections[self.alias].connection is not None
            try:
                if self.process is None and self.register_process is not None and spans:
                    self.process = self.register_process(spans[0])
                self.written += self._write_isolating(spans)
                self.used_at = time.monotonic()
                return SpanExportResult.SUCCESS
            except (DatabaseError, InterfaceError) as exc:
                _reset_connection(self.alias)
                if is_missing_table(exc):
                    self._missing_tables(exc)
                    return SpanExportResult.FAILURE
                outage = is_outage(exc, self.alias)
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
                    len(spans),
                    attempt,
                    MAX_ATTEMPTS,
                    exc,
                )
            stopping = self._stop.is_set()
            if stopping and time.monotonic() + delay >= self._deadline:
                return SpanExportResult.FAILURE
            if attempt >= MAX_ATTEMPTS and not outage:
                return SpanExportResult.FAILURE
            if stopping:
                time.sleep(min(delay, max(self._deadline - time.monotonic(), 0.0)))
            else:
                self._stop.wait(delay)  # interrupt() ends the wait at once
            delay = min(delay * 2, MAX_BACKOFF)

    def _missing_tables(self, exc: Exception) -> None:
        """The app's tables are missing: say how to fix it, once per process."""
        self.errors += 1
        if self._missing_table_logged:
            return
        self._missing_table_logged = True
        option = "" if self.alias == "default" else f" --database {self.alias}"
        logger.warning(
            "agentops_django: the database %r has no agentops_django tables; run 'python manage.py migrate%s'. "
            "Spans are dropped until then (%r)",
            self.alias,
            option,
            exc,
        )

    def _write_isolating(self, batch: Sequence[ReadableSpan | SpanRecord]) -> int:
        """Write the batch; if the database refuses a value, find and drop the refused spans only.

        A ``DataError`` (a value the column or JSON type refuses) would fail
        the batch on every try; halving it stores the good spans (each half
        in its own transaction) and drops only the spans refused alone.
        Other errors go up to the retry loop: halves already committed are
        not counted again when the batch is retried.
        """
        try:
            return write_batch(self.alias, batch, process=self.process)
        except (DataError, UnicodeError, ValueError) as exc:
            # ValueError/UnicodeError: a value the driver cannot even encode.
            _reset_connection(self.alias)
            if len(batch) == 1:
                self.errors += 1
                self.refused += 1
                count_internal("spans_dropped")
                logger.warning("agentops_django: the database refused span %r: %r", batch[0].name, exc)
                return 0
        middle = len(batch) // 2
        return self._write_isolating(batch[:middle]) + self._write_isolating(batch[middle:])

    def close_connection(self) -> None:
        """Close this thread's connection (it reopens on the next write)."""
        if connections[self.alias].connection is not None:
            _reset_connection(self.alias)

    def shutdown(self) -> None:
        """Nothing to release: the connection belongs to the thread that wrote, which closes it."""
