"""Retention at size: batched deletes (``agentops_prune``) against dropping day partitions.

Usage::

    python3 benchmarks/retention.py                       # 1M spans over 30 days, prune 14 days
    python3 benchmarks/retention.py --spans 10000000      # the issue's size, if the machine allows

It starts a private PostgreSQL cluster (``benchmarks/pgcluster.py``) on
127.0.0.1, migrates it, and fills the span table in SQL (``generate_series``)
with ``--spans`` spans in traces of 10, spread evenly over ``--spread-days``
days, with attributes of about 300 bytes (an LLM call's model, tokens, input
and output). Then, while a concurrent writer stores batches of 100 fresh spans
through the real writer (:func:`agentops_django.writer.write_batch`) every
``--writer-interval`` seconds and a sampler watches ``pg_stat_activity`` for
sessions waiting on a lock:

a. ``manage.py agentops_prune --days D`` (the batched deletes of
   :mod:`agentops_django.prune`): total time, each batch's time (a batch is
   one transaction, so its time bounds the row locks it holds), then the
   ``VACUUM`` that makes the space reusable;
b. a prototype (here only, not a migration) of the span table partitioned by
   day (PostgreSQL declarative partitioning), swapped in under the span
   table's name so the same writer writes into it: old days dropped with
   ``DROP TABLE`` and with ``DETACH PARTITION ... CONCURRENTLY`` then ``DROP``,
   and the trace summary rows deleted in batches.

For each it reports the writer's worst and 99th percentile batch latency
during the phase against the baseline before it, and the longest lock wait
seen. Table and index bytes per span are reported for extrapolation. Prints a
JSON line ``{"retention": {...}}``. The cluster is removed at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import multiprocessing
import os
import socket
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
from bootstrap import reexec_in_venv

reexec_in_venv(Path(__file__))  # run as ``python3 benchmarks/retention.py``: in the project's .venv

from benchmarks.pgcluster import PrivateCluster, pg_bin  # noqa: E402

DB_NAME = "agentops_retention"
SPAN = "agentops_django_span"
TRACE = "agentops_django_trace"
PART = "agentops_span_part"
TRACE_COPY = "agentops_trace_copy"

# One trace: a request, an agent, then LLM and tool calls; attributes like the writer stores.
FILL_TRACES_SQL = f"""
INSERT INTO {TRACE} (trace_id, name, status, kind, root_span_id, root_rank, started_at, ended_at, duration_ms,
    span_count, error_count, input_tokens, output_tokens, total_tokens, cost, unpriced_calls, tags, tags_text,
    service_name, updated_at)
SELECT md5(i::text), 'POST /support/ask', 'Success', 'request', substr(md5(i || '-0'), 1, 16), 2, t0,
    t0 + interval '2 seconds', 2000, 10, 0, 1240, 240, 1480, 0.0032, 0, '[]', '', 'support', t0
FROM generate_series(%(first)s::int, %(last)s::int) AS i,
     LATERAL (SELECT %(now)s::timestamptz
                     - make_interval(secs => %(spread)s::float8 * (1 - i::float8 / %(traces)s::float8)) AS t0) AS t
"""
FILL_SPANS_SQL = f"""
INSERT INTO {SPAN} (trace_id, span_id, parent_span_id, name, kind, status, status_message, started_at, ended_at,
    duration_ms, attributes, events, links, service_name, otel_kind)
SELECT md5(i::text), substr(md5(i || '-' || j), 1, 16),
    CASE WHEN j = 0 THEN '' ELSE substr(md5(i || '-0'), 1, 16) END,
    CASE WHEN j = 0 THEN 'POST /support/ask' WHEN j = 1 THEN 'support.agent' WHEN j %% 2 = 0 THEN 'chat gpt-4o-mini'
         ELSE 'lookup_order.tool' END,
    CASE WHEN j = 0 THEN 'request' WHEN j = 1 THEN 'agent' WHEN j %% 2 = 0 THEN 'llm' ELSE 'tool' END,
    'OK', '', t0 + j * interval '150 ms', t0 + j * interval '150 ms' + interval '120 ms', 120,
    jsonb_build_object(
        'agentops.span.kind', CASE WHEN j %% 2 = 0 THEN 'llm' ELSE 'tool' END,
        'gen_ai.system', 'openai', 'gen_ai.request.model', 'gpt-4o-mini',
        'gen_ai.usage.input_tokens', 120 + j, 'gen_ai.usage.output_tokens', 30, 'gen_ai.usage.cost', 0.0004,
        'agentops.entity.input', '{{"role": "user", "content": "Where is my order ' || i || '? Due Monday."}}',
        'agentops.entity.output', 'Order ' || i || ' left the warehouse yesterday; it arrives tomorrow.'),
    '[]', '[]', 'support', 'INTERNAL'
FROM generate_series(%(first)s::int, %(last)s::int) AS i CROSS JOIN generate_series(0, 9) AS j,
     LATERAL (SELECT %(now)s::timestamptz
                     - make_interval(secs => %(spread)s::float8 * (1 - i::float8 / %(traces)s::float8)) AS t0) AS t
"""


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def configure(cluster: PrivateCluster) -> None:
    import django
    from django.conf import settings

    settings.configure(
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.postgresql",
                "NAME": DB_NAME,
                "USER": "postgres",
                "HOST": cluster.host,
                "PORT": str(cluster.port),
            }
        },
        INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "agentops_django"],
        USE_TZ=True,
        AGENTOPS={"ENABLED": False},  # the benchmark calls the writer itself
    )
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def fill(conn: Any, spans: int, spread_days: int, now: dt.datetime) -> float:
    traces = max(spans // 10, 1)
    step = 20_000
    began = time.perf_counter()
    params = {"now": now, "spread": spread_days * 86400, "traces": traces}
    for first in range(0, traces, step):
        last = min(first + step, traces) - 1
        conn.execute(FILL_TRACES_SQL, {**params, "first": first, "last": last})
        conn.execute(FILL_SPANS_SQL, {**params, "first": first, "last": last})
        if first // step % 10 == 0:
            log(f"  filled {(last + 1) * 10:,} spans")
    conn.execute(f"VACUUM ANALYZE {SPAN}")
    conn.execute(f"VACUUM ANALYZE {TRACE}")
    return time.perf_counter() - began


def sizes(conn: Any, spans: int) -> dict[str, Any]:
    """Bytes of the span and trace tables and each of their indexes, total and per span."""
    out: dict[str, Any] = {}
    for table in (SPAN, TRACE):
        heap = conn.execute("SELECT pg_table_size(%s::regclass)", [table]).fetchone()[0]
        indexes = conn.execute(
            "SELECT indexrelid::regclass::text, pg_relation_size(indexrelid) FROM pg_index "
            "WHERE indrelid = %s::regclass",
            [table],
        ).fetchall()
        out[table] = {
            "table_bytes": heap,
            "indexes": dict(indexes),
            "total_bytes": heap + sum(size for _, size in indexes),
        }
    out["attributes_avg_bytes"] = conn.execute(f"SELECT avg(pg_column_size(attributes))::int FROM {SPAN}").fetchone()[0]
    out["bytes_per_span"] = round((out[SPAN]["total_bytes"] + out[TRACE]["total_bytes"]) / spans)
    return out


# -- the concurrent writer and the lock sampler ------------------------------------------


def _writer(stop: Any, results: Any, interval: float) -> None:
    """In a child process: store 100 fresh spans per batch through the real writer; (start, seconds) of each."""
    from agentops_django.writer import write_batch
    from benchmarks.writer import make_spans

    samples: list[tuple[float, float]] = []
    seed = 1
    try:
        while not stop.is_set():
            spans = make_spans(100, seed=seed)
            seed += 1
            at, began = time.time(), time.perf_counter()
            try:
                write_batch("default", spans)
            except Exception as exc:  # a failed batch is a finding, not a crash of the benchmark
                samples.append((at, -1.0))
                log(f"  writer batch failed: {exc!r}")
            else:
                samples.append((at, time.perf_counter() - began))
            time.sleep(interval)
    finally:
        results.send(samples)


class Writer:
    """The concurrent writer process; :meth:`stop` returns its ``(time, latency)`` samples."""

    def __init__(self, interval: float) -> None:
        from django.db import connections

        connections.close_all()  # the child opens its own
        context = multiprocessing.get_context("fork")
        self.stop_event = context.Event()
        self.receive, send = context.Pipe(duplex=False)
        self.proc = context.Process(target=_writer, args=(self.stop_event, send, interval), daemon=True)
        self.proc.start()

    def stop(self) -> list[tuple[float, float]]:
        self.stop_event.set()
        samples = self.receive.recv() if self.receive.poll(60) else []
        self.proc.join(30)
        return samples


class LockSampler(threading.Thread):
    """Samples ``pg_stat_activity`` every 20 ms for sessions waiting on a lock; keeps the longest waits."""

    def __init__(self, cluster: PrivateCluster) -> None:
        super().__init__(daemon=True)
        self.cluster = cluster
        self.halt = threading.Event()
        self.waits: list[tuple[float, float, str]] = []

    def run(self) -> None:
        with self.cluster.connect(DB_NAME) as conn:
            while not self.halt.is_set():
                rows = conn.execute(
                    "SELECT extract(epoch FROM clock_timestamp() - query_start), left(query, 80) "
                    "FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
                ).fetchall()
                now = time.time()
                self.waits.extend((now, float(seconds), query) for seconds, query in rows)
                time.sleep(0.02)

    def longest(self, start: float, end: float) -> dict[str, Any]:
        inside = [(seconds, query) for at, seconds, query in self.waits if start <= at <= end]
        if not inside:
            return {"longest_lock_wait_s": 0.0, "waiting_statement": None}
        seconds, query = max(inside)
        return {"longest_lock_wait_s": round(seconds, 3), "waiting_statement": query}


def latency(samples: list[tuple[float, float]], start: float, end: float) -> dict[str, Any]:
    inside = [lat for at, lat in samples if start <= at <= end]  # batches that started in the window
    ok = sorted(lat for lat in inside if lat >= 0)
    if not ok:
        return {"batches": 0, "failed": len(inside)}
    return {
        "batches": len(ok),
        "failed": len(inside) - len(ok),
        "median_ms": round(statistics.median(ok) * 1000, 1),
        "p99_ms": round(ok[min(len(ok) - 1, int(len(ok) * 0.99))] * 1000, 1),
        "max_ms": round(ok[-1] * 1000, 1),
    }


# -- (a) batched deletes ------------------------------------------------------------------


class BatchClock:
    """A stdout for ``agentops_prune -v2``: it writes one line per batch; we keep the times."""

    def __init__(self) -> None:
        self.times = [time.perf_counter()]

    def write(self, text: str) -> None:
        if "deleted" in text and text.lstrip().startswith("..."):
            self.times.append(time.perf_counter())
        elif text.strip():
            self.summary = text.strip()

    def flush(self) -> None:
        pass


def batched_prune(days: int, batch_size: int) -> dict[str, Any]:
    from django.core.management import call_command

    clock = BatchClock()
    began = time.perf_counter()
    call_command("agentops_prune", days=days, batch_size=batch_size, verbosity=2, stdout=clock)
    total = time.perf_counter() - began
    batches = [b - a for a, b in zip(clock.times, clock.times[1:], strict=False)]
    return {
        "seconds": round(total, 1),
        "batches": len(batches),
        "batch_median_s": round(statistics.median(batches), 3) if batches else None,
        "batch_max_s": round(max(batches), 3) if batches else None,
        "output": getattr(clock, "summary", ""),
    }


# -- (b) partitions by day ----------------------------------------------------------------


def day_start(at: dt.datetime) -> dt.datetime:
    return at.replace(hour=0, minute=0, second=0, microsecond=0)


def build_partitioned(conn: Any, now: dt.datetime, spread_days: int) -> tuple[float, list[tuple[str, dt.datetime]]]:
    """A copy of the span table, partitioned by day on ``started_at``; returns (seconds, partitions)."""
    began = time.perf_counter()
    conn.execute(f"CREATE SEQUENCE {PART}_id_seq")
    conn.execute(f"CREATE TABLE {PART} (LIKE {SPAN} INCLUDING DEFAULTS) PARTITION BY RANGE (started_at)")
    conn.execute(f"ALTER TABLE {PART} ALTER COLUMN id SET DEFAULT nextval('{PART}_id_seq')")
    partitions = []
    first = day_start(now) - dt.timedelta(days=spread_days + 1)
    for offset in range(spread_days + 4):
        lower = first + dt.timedelta(days=offset)
        name = f"{PART}_{lower:%Y%m%d}"
        conn.execute(
            f"CREATE TABLE {name} PARTITION OF {PART} "
            f"FOR VALUES FROM ('{lower.isoformat()}') TO ('{(lower + dt.timedelta(days=1)).isoformat()}')"
        )
        partitions.append((name, lower))
    # The span table's indexes; a unique constraint must include the partition key.
    conn.execute(f"CREATE INDEX {PART}_trace_start ON {PART} (trace_id, started_at)")
    conn.execute(f"ALTER TABLE {PART} ADD CONSTRAINT {PART}_unique UNIQUE (trace_id, span_id, started_at)")
    conn.execute(f"ALTER TABLE {PART} ADD PRIMARY KEY (id, started_at)")
    conn.execute(f"INSERT INTO {PART} SELECT * FROM {SPAN}")
    conn.execute(f"SELECT setval('{PART}_id_seq', (SELECT max(id) FROM {PART}))")
    conn.execute(f"VACUUM ANALYZE {PART}")
    # And a copy of the trace summaries, so (b) deletes the same trace rows that (a) did.
    conn.execute(f"CREATE TABLE {TRACE_COPY} (LIKE {TRACE} INCLUDING ALL)")
    conn.execute(f"INSERT INTO {TRACE_COPY} SELECT * FROM {TRACE}")
    conn.execute(f"SELECT setval(pg_get_serial_sequence('{TRACE_COPY}', 'id'), (SELECT max(id) FROM {TRACE_COPY}))")
    conn.execute(f"VACUUM ANALYZE {TRACE_COPY}")
    return time.perf_counter() - began, partitions


def drop_partitions(conn: Any, partitions: list[tuple[str, dt.datetime]], cutoff: dt.datetime) -> dict[str, Any]:
    """Drop the day partitions wholly before ``cutoff``: half directly, half detached concurrently first."""
    old = [(name, lower) for name, lower in partitions if lower + dt.timedelta(days=1) <= cutoff]
    direct, concurrent = old[::2], old[1::2]
    timings: dict[str, list[float]] = {"drop_table": [], "detach_concurrently": [], "drop_detached": []}
    windows: dict[str, tuple[float, float]] = {}
    start = time.time()
    for name, _ in direct:
        began = time.perf_counter()
        conn.execute(f"DROP TABLE {name}")  # ACCESS EXCLUSIVE on the parent, for an instant
        timings["drop_table"].append(time.perf_counter() - began)
    windows["drop_table"] = (start, time.time())
    start = time.time()
    for name, _ in concurrent:
        began = time.perf_counter()
        conn.execute(f"ALTER TABLE {SPAN} DETACH PARTITION {name} CONCURRENTLY")
        timings["detach_concurrently"].append(time.perf_counter() - began)
        began = time.perf_counter()
        conn.execute(f"DROP TABLE {name}")
        timings["drop_detached"].append(time.perf_counter() - began)
    windows["detach_concurrently"] = (start, time.time())
    out: dict[str, Any] = {"partitions_dropped": len(old), "windows": windows}
    for key, values in timings.items():
        if values:
            out[f"{key}_max_s"] = round(max(values), 3)
            out[f"{key}_median_s"] = round(statistics.median(values), 3)
    return out


def delete_traces_in_batches(conn: Any, cutoff: dt.datetime, batch: int) -> dict[str, Any]:
    """The trace summary rows before ``cutoff``, deleted ``batch`` at a time (their spans are gone with their days)."""
    times = []
    deleted = 0
    began = time.perf_counter()
    while True:
        start = time.perf_counter()
        count = conn.execute(
            f"DELETE FROM {TRACE} WHERE id IN (SELECT id FROM {TRACE} WHERE started_at < %s ORDER BY id LIMIT %s)",
            [cutoff, batch],
        ).rowcount
        times.append(time.perf_counter() - start)
        deleted += count
        if count < batch:
            break
    return {
        "traces": deleted,
        "seconds": round(time.perf_counter() - began, 1),
        "batch_max_s": round(max(times), 3),
        "batches": len(times),
    }


# -- the run ------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
    cluster = PrivateCluster("127.0.0.1", free_port(), {"maintenance_work_mem": "256MB"})
    writer: Writer | None = None
    sampler: LockSampler | None = None
    try:
        cluster.start()
        cluster.create_database(DB_NAME)
        configure(cluster)
        now = dt.datetime.now(dt.UTC)
        result: dict[str, Any] = {"spans": args.spans, "spread_days": args.spread_days, "prune_days": args.days}
        with cluster.connect(DB_NAME) as conn:
            log(f"filling {args.spans:,} spans over {args.spread_days} days")
            result["fill_seconds"] = round(fill(conn, args.spans, args.spread_days, now), 1)
            result["sizes"] = sizes(conn, args.spans)
            log(f"  {result['fill_seconds']} s; {result['sizes']['bytes_per_span']} bytes per span with its indexes")
            log("building the day-partitioned copy")
            seconds, partitions = build_partitioned(conn, now, args.spread_days)
            result["partitioned_copy_seconds"] = round(seconds, 1)

        sampler = LockSampler(cluster)
        sampler.start()
        writer = Writer(args.writer_interval)
        time.sleep(args.baseline)
        baseline = (time.time() - args.baseline, time.time())

        log(f"(a) agentops_prune --days {args.days} --batch-size {args.batch_size}")
        start = time.time()
        batched = batched_prune(args.days, args.batch_size)
        batched["window"] = (start, time.time())
        log(f"  {batched}")
        with cluster.connect(DB_NAME) as conn:
            start = time.time()
            began = time.perf_counter()
            conn.execute(f"VACUUM {SPAN}")
            conn.execute(f"VACUUM {TRACE}")
            batched["vacuum_seconds"] = round(time.perf_counter() - began, 1)
            batched["vacuum_window"] = (start, time.time())
            time.sleep(1)
            # Swap the partitioned copy in under the span table's name: the same writer now writes into it.
            with conn.transaction():  # at once: the writer never sees a table missing
                conn.execute(f"ALTER TABLE {SPAN} RENAME TO agentops_span_plain")
                conn.execute(f"ALTER TABLE {PART} RENAME TO {SPAN}")
                conn.execute(f"ALTER TABLE {TRACE} RENAME TO agentops_trace_pruned")
                conn.execute(f"ALTER TABLE {TRACE_COPY} RENAME TO {TRACE}")
            began = time.perf_counter()
            conn.execute("DROP TABLE agentops_span_plain")
            result["drop_plain_table_seconds"] = round(time.perf_counter() - began, 2)
            time.sleep(args.baseline)
            cutoff = day_start(now) - dt.timedelta(days=args.days)
            log(f"(b) dropping the day partitions before {cutoff:%Y-%m-%d}")
            partitioned = drop_partitions(conn, partitions, cutoff)
            start = time.time()
            partitioned["traces"] = delete_traces_in_batches(conn, cutoff, 5000)
            partitioned["windows"]["trace_deletes"] = (start, time.time())
            log(f"  {partitioned}")
        time.sleep(1)
        samples = writer.stop()
        writer = None
        sampler.halt.set()
        sampler.join(5)

        result["writer_baseline"] = latency(samples, *baseline)
        batched["writer"] = latency(samples, *batched["window"])
        batched["writer_during_vacuum"] = latency(samples, *batched["vacuum_window"])
        batched.update(sampler.longest(*batched["window"]))
        for key, window in partitioned["windows"].items():
            partitioned[f"writer_{key}"] = latency(samples, *window)
            partitioned[f"{key}_lock"] = sampler.longest(*window)
        for entry in (batched, partitioned):
            for key in [k for k in entry if k.endswith("window") or k == "windows"]:
                del entry[key]
        result["batched_deletes"] = batched
        result["day_partitions"] = partitioned
        return result
    finally:
        if writer is not None:
            with contextlib.suppress(Exception):
                writer.stop()
        if sampler is not None:
            sampler.halt.set()
        from django.db import connections

        with contextlib.suppress(Exception):
            connections.close_all()
        cluster.destroy()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=1_000_000, help="spans to fill (traces of 10)")
    parser.add_argument("--spread-days", type=int, default=30, help="days the spans are spread over")
    parser.add_argument("--days", type=int, default=14, help="retention: delete what is older than this")
    parser.add_argument("--batch-size", type=int, default=500, help="agentops_prune --batch-size")
    parser.add_argument("--writer-interval", type=float, default=0.05, help="seconds between the writer's batches")
    parser.add_argument("--baseline", type=float, default=5.0, help="seconds of writer-only load before each phase")
    args = parser.parse_args()
    if pg_bin() is None:
        print("retention: skipped, PostgreSQL's initdb was not found (set AGENTOPS_PG_BIN)", file=sys.stderr)
        return 0
    if os.geteuid() == 0 and not Path("/usr/sbin/runuser").exists() and not Path("/sbin/runuser").exists():
        print("retention: skipped, running as root needs runuser to start PostgreSQL as its own user")
        return 0
    result = run(args)
    print(json.dumps({"retention": result}, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
