"""The database writer through a database outage: the host never waits, and nothing is lost silently.

The writer (:class:`agentops_django.writer.DatabaseSpanProcessor`) runs in
this process on an alias that points at a private PostgreSQL cluster, which
the test stops (``pg_ctl -m immediate``: connections are cut, as in a crash)
and starts again while spans keep ending.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider

from agentops_django.writer import DatabaseSpanProcessor
from tests.faults import harness

pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.allow_internal_errors]


def make_writer(alias: str, **options: Any) -> tuple[DatabaseSpanProcessor, Any]:
    processor = DatabaseSpanProcessor(alias, **options)
    provider = TracerProvider()
    provider.add_span_processor(processor)
    return processor, provider.get_tracer("faults")


def end_spans(tracer: Any, count: int, prefix: str) -> set[str]:
    """End ``count`` one-span traces; return their trace ids."""
    ids = set()
    for i in range(count):
        with tracer.start_as_current_span(f"{prefix}-{i}") as span:
            ids.add(format(span.get_span_context().trace_id, "032x"))
    return ids


def stored(server: harness.PrivatePostgres, dbname: str, trace_ids: set[str]) -> int:
    rows = server.sql(
        "SELECT count(*) FROM agentops_django_span WHERE trace_id = ANY(%s)", [list(trace_ids)], dbname=dbname
    )
    return int(rows[0][0])


@pytest.fixture
def pg_alias(pg_up: harness.PrivatePostgres, db_alias: Callable[..., str], unique: str) -> tuple[str, str]:
    name = f"writer_{unique}"
    pg_up.create_database(name)
    return db_alias(pg_up.django_settings(name)), name


def test_outage_never_blocks_the_host_and_every_span_is_written_or_counted_as_dropped(
    pg_up: harness.PrivatePostgres, pg_alias: tuple[str, str], fault_log: Callable[..., None]
) -> None:
    """Spans ending while the database is down are queued (up to the bound) and written after recovery.

    The queue holds 400 spans. 100 spans are written before the outage; during
    an outage of about 8 seconds (longer than the writer's retries of one
    batch) 300 spans end, fewer than the bound, so all of them must be written
    once the database is back; 200 more beyond the bound may be dropped but
    must be counted. No thread is started per span or per retry, and the
    counters stored in WriterStats match.
    """
    alias, dbname = pg_alias
    processor, tracer = make_writer(alias, queue_size=400, batch_size=50, batch_interval=0.05)
    before = end_spans(tracer, 100, "before")
    assert processor.force_flush(30_000)
    assert stored(pg_up, dbname, before) == 100

    threads_before = threading.active_count()
    pg_up.stop("immediate")
    down_at = time.monotonic()
    during = set()
    peak_threads = threads_before
    # Spread over the outage, so the writer is failing batches all along.
    for _ in range(30):
        during |= end_spans(tracer, 10, "during")
        peak_threads = max(peak_threads, threading.active_count())
        time.sleep(0.25)
    overflow = end_spans(tracer, 200, "overflow")
    peak_threads = max(peak_threads, threading.active_count())
    queued_at_restart = processor.stats()["queued"]
    pg_up.start()
    up_at = time.monotonic()
    # The queue is full at the restart: wait for the writer to drain it, as new spans would be dropped before.
    harness.wait_for(lambda: processor.stats()["queued"] == 0, "the writer to drain its queue after the outage", 90)
    after = end_spans(tracer, 50, "after")
    harness.wait_for(lambda: processor.force_flush(1_000), "the writer to catch up after the outage", 90)
    recovered_at = time.monotonic()

    written_during = stored(pg_up, dbname, during)
    written_overflow = stored(pg_up, dbname, overflow)
    written_after = stored(pg_up, dbname, after)
    stats = processor.stats()
    created = 100 + len(during) + len(overflow) + len(after)
    db_rows = pg_up.sql("SELECT count(*) FROM agentops_django_span", dbname=dbname)[0][0]
    writer_stats = pg_up.sql(
        "SELECT spans_written, spans_dropped, write_errors FROM agentops_django_writerstats", dbname=dbname
    )
    fault_log(
        fault="PostgreSQL stopped (immediate) for ~8 s under span load, in-process writer, queue 400",
        created=created,
        written=stats["written"],
        dropped=stats["dropped"],
        errors=stats["errors"],
        queued_at_restart=queued_at_restart,
        written_during=written_during,
        written_overflow=written_overflow,
        outage_s=round(up_at - down_at, 1),
        recover_s=round(recovered_at - up_at, 1),
        threads=(threads_before, peak_threads),
        writer_stats=writer_stats,
    )
    processor.shutdown()

    assert peak_threads <= threads_before + 1, "threads grew while the database was down"
    assert written_after == 50, "spans after recovery were not all written"
    assert stats["written"] + stats["dropped"] == created, "a span was neither written nor counted as dropped"
    assert db_rows == stats["written"]
    assert writer_stats and tuple(writer_stats[0][:2]) == (stats["written"], stats["dropped"])
    assert written_during == len(during), (
        f"only {written_during} of {len(during)} spans that ended during the outage were written, "
        f"although the queue (400) had room for them: the writer dropped queued batches while waiting"
    )


def test_queue_memory_is_bounded_while_the_database_is_down(
    pg_up: harness.PrivatePostgres, pg_alias: tuple[str, str], fault_log: Callable[..., None]
) -> None:
    """However many spans end during an outage, at most QUEUE_SIZE of them are held in memory."""
    alias, _ = pg_alias
    processor, tracer = make_writer(alias, queue_size=1_000, batch_size=100, batch_interval=0.05)
    end_spans(tracer, 10, "warm")
    assert processor.force_flush(30_000)
    pg_up.stop("immediate")
    try:
        gc.collect()
        for _ in range(20):
            end_spans(tracer, 500, "flood")
        queued = processor.stats()["queued"]
        dropped = processor.stats()["dropped"]
    finally:
        pg_up.start()
    assert processor.force_flush(60_000)
    fault_log(fault="10,000 spans while PostgreSQL is down, queue 1,000", queued_peak=queued, dropped=dropped)
    processor.shutdown()
    assert queued <= 1_000
    assert dropped >= 10_000 - 1_000 - 100 * 3  # at most the queue and the batches in flight escaped the bound


def test_shutdown_while_the_database_is_down_returns_within_its_deadline(
    pg_up: harness.PrivatePostgres, pg_alias: tuple[str, str], fault_log: Callable[..., None]
) -> None:
    """The host's exit never hangs on an unreachable database: shutdown() gives up at its deadline and counts."""
    alias, _ = pg_alias
    processor, tracer = make_writer(alias, queue_size=1_000, batch_size=50, batch_interval=0.05)
    end_spans(tracer, 5, "warm")
    assert processor.force_flush(30_000)
    pg_up.stop("immediate")
    try:
        end_spans(tracer, 300, "stranded")
        started = time.monotonic()
        processor.shutdown(timeout_millis=2_000)
        took = time.monotonic() - started
        thread = processor._thread
        alive = thread is not None and thread.is_alive()
        if alive:
            thread.join(15)
        stats = processor.stats()
    finally:
        pg_up.start()
    fault_log(
        fault="shutdown(2 s) with PostgreSQL down and 300 spans queued",
        shutdown_s=round(took, 2),
        thread_alive_after=alive,
        stats=stats,
    )
    # Generous bound: the deadline plus one connect timeout.
    assert not (thread is not None and thread.is_alive()), "the writer thread never ended"
    assert stats["written"] + stats["dropped"] == 305


def test_a_lone_span_is_written_within_the_batch_interval_not_the_stats_interval(
    pg_up: harness.PrivatePostgres, pg_alias: tuple[str, str], fault_log: Callable[..., None]
) -> None:
    """Sparse traffic: one span arriving at an idle writer is stored after about BATCH_INTERVAL.

    The writer documents that it waits "at most BATCH_INTERVAL seconds to
    fill a batch". The bound asserted is generous (10 s for an interval of
    0.05 s); an idle writer that sleeps until its 30 s counters timer misses it.
    """
    alias, dbname = pg_alias
    processor, tracer = make_writer(alias, queue_size=1_000, batch_size=100, batch_interval=0.05)
    first = end_spans(tracer, 1, "first")
    harness.wait_for(lambda: stored(pg_up, dbname, first) == 1, "the first span", 60)
    time.sleep(0.5)  # the writer is idle now, its queue empty
    lone = end_spans(tracer, 1, "lone")
    started = time.monotonic()
    try:
        harness.wait_for(lambda: stored(pg_up, dbname, lone) == 1, "a lone span on an idle writer", 10)
    finally:
        fault_log(
            fault="one span on an idle writer (BATCH_INTERVAL 0.05 s)", waited_s=round(time.monotonic() - started, 2)
        )
        processor.shutdown()
