"""Database writer throughput: synthetic finished spans through ``DatabaseSpanProcessor``.

Usage::

    .venv/bin/python benchmarks/writer.py                  # SQLite and PostgreSQL, 1 and 4 processes
    .venv/bin/python benchmarks/writer.py --spans 20000 --backend sqlite --processes 1

Each run builds the spans first (traces of 10 spans: a request, an agent, LLM
and tool calls, with attributes like real ones), then times from the first
``on_end`` until ``force_flush`` returns, and prints stored spans per second.
With several processes, each forked child writes its share through the
writer it inherits (as Celery prefork children do); the time is the wall time
until the last child has flushed. PostgreSQL runs use a scratch database
(``--pg-name``, created if missing) on 127.0.0.1:5432; SQLite runs a file in
the temporary directory.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
from bootstrap import reexec_in_venv

reexec_in_venv(Path(__file__))  # run as ``python3 benchmarks/writer.py``: in the project's .venv


def configure(backend: str, pg_name: str) -> None:
    import django
    from django.conf import settings

    if backend == "postgres":
        database = {"ENGINE": "django.db.backends.postgresql", "NAME": pg_name, "USER": "postgres", "HOST": "127.0.0.1"}
        _create_pg_database(pg_name)
    else:
        path = os.path.join(tempfile.gettempdir(), f"agentops-bench-{os.getpid()}.sqlite3")
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(path + suffix):
                os.remove(path + suffix)
        database = {"ENGINE": "django.db.backends.sqlite3", "NAME": path, "OPTIONS": {"timeout": 60}}
    settings.configure(
        DATABASES={"default": database},
        INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "agentops_django"],
        USE_TZ=True,
        AGENTOPS={"ENABLED": False},  # the benchmark drives the processor itself
    )
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    if backend == "postgres":
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE agentops_django_span, agentops_django_trace, agentops_django_writerstats")


def _create_pg_database(name: str) -> None:
    import psycopg

    with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def make_spans(count: int, seed: int) -> list:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

    rng = random.Random(seed)
    resource = Resource.create({"service.name": "bench"})
    flags = TraceFlags(1)
    ok = Status(StatusCode.OK)
    start = time.time_ns()
    spans = []
    while len(spans) < count:
        trace_id = rng.getrandbits(128) | 1
        root = SpanContext(trace_id, rng.getrandbits(64) | 1, False, flags)
        agent = SpanContext(trace_id, rng.getrandbits(64) | 1, False, flags)
        for i in range(8):
            kind = "llm" if i % 2 else "tool"
            attributes = {
                "agentops.span.kind": kind,
                "gen_ai.request.model": "gpt-4o-mini",
                "gen_ai.usage.input_tokens": 120 + i,
                "gen_ai.usage.output_tokens": 30,
                "gen_ai.usage.cost": 0.0004,
                "agentops.entity.input": '{"query": "where is my order 1234?"}',
            }
            context = SpanContext(trace_id, rng.getrandbits(64) | 1, False, flags)
            spans.append(
                ReadableSpan(
                    f"step{i}.{kind}", context, agent, resource, attributes, kind=SpanKind.INTERNAL, status=ok,
                    start_time=start + i * 1000, end_time=start + i * 1000 + 900,
                )
            )  # fmt: skip
        spans.append(
            ReadableSpan("planner.agent", agent, root, resource, {"agentops.span.kind": "agent"}, status=ok,
                         start_time=start, end_time=start + 10_000)
        )  # fmt: skip
        spans.append(
            ReadableSpan(
                "GET /orders/<int:pk>/", root, None, resource,
                {"agentops.span.kind": "request", "http.request.method": "GET", "url.path": "/orders/1/",
                 "http.response.status_code": 200, "agentops.end_state": "Success"},
                kind=SpanKind.SERVER, status=ok, start_time=start, end_time=start + 11_000,
            )
        )  # fmt: skip
    return spans[:count]


def feed(spans: list) -> tuple[int, float]:
    from agentops_django.writer import get_processor

    processor = get_processor()
    begin = time.perf_counter()
    for span in spans:
        processor.on_end(span)
    if not processor.force_flush(600_000):
        raise SystemExit("flush did not finish")
    elapsed = time.perf_counter() - begin
    stats = processor.stats()
    if stats["dropped"] or stats["errors"]:
        print(f"  warning: {stats}", file=sys.stderr)
    return stats["written"], elapsed


def server_cpu_seconds() -> float:
    """CPU time of the PostgreSQL backends serving the benchmark database (same machine only)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return 0.0
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        pids = [row[0] for row in cursor.fetchall()]
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _child(spans: list, barrier: multiprocessing.synchronize.Barrier) -> None:
    code = 1
    try:
        barrier.wait()
        written, _ = feed(spans)
        code = 0 if written == len(spans) else 2
    finally:
        os._exit(code)


def run(count: int, processes: int, options: list[str]) -> None:
    import resource

    from django.db import connections

    from agentops_django.writer import _processor as exporter

    spans = make_spans(count, seed=processes)
    stored_before = stored_spans()
    cpu_before = time.process_time()
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    server = 0.0
    if processes == 1:
        written, elapsed = feed(spans)
        server = server_cpu_seconds()  # the writer's connection is still open
    else:
        connections.close_all()
        context = multiprocessing.get_context("fork")
        barrier = context.Barrier(processes + 1)
        children = [context.Process(target=_child, args=(spans[i::processes], barrier)) for i in range(processes)]
        for child in children:
            child.start()
        barrier.wait()
        begin = time.perf_counter()
        for child in children:
            child.join()
        elapsed = time.perf_counter() - begin
        if any(child.exitcode for child in children):
            raise SystemExit(f"a child failed: {[c.exitcode for c in children]}")
        written = count
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    client = time.process_time() - cpu_before
    client += (children.ru_utime + children.ru_stime) - (children_before.ru_utime + children_before.ru_stime)
    if exporter._processor is not None:
        exporter._processor.shutdown()
    exporter._processor = None  # a fresh writer for the next run
    stored = stored_spans() - stored_before
    print(f"  {processes} process(es): {written} spans in {elapsed:.2f} s = {written / elapsed:,.0f} spans/s")
    if stored != count:
        print(f"    LOST: {count - stored} of {count} spans are not in the database")
    line = f"    writer CPU {client / written * 1e6:.1f} us/span"
    if server:
        line += f", database server CPU {server / written * 1e6:.1f} us/span"
        line += " (the two overlap: the server stores one part of a batch while the writer converts the next rows)"
    print(line)
    figures = {
        "backend": connections["default"].vendor,
        "processes": processes,
        "spans": count,
        "stored": stored,
        "spans_per_s": round(written / elapsed),
        "writer_cpu_us": round(client / written * 1e6, 1),
        "server_cpu_us": round(server / written * 1e6, 1) if server else None,
        "features": options,
    }
    print(json.dumps({"writer": figures}))


def stored_spans() -> int:
    from agentops_django.models import Span

    return Span.objects.count()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=100_000)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--processes", default="1,4", help="comma-separated process counts")
    parser.add_argument("--pg-name", default="agentops_bench_writer")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument(
        "--no-rollup", action="store_true", help="skip the overview's rollup (to measure what it costs the writer)"
    )
    parser.add_argument(
        "--no-span-search-index",
        action="store_true",
        help="PostgreSQL: drop the span-name search's trigram index first (to measure what it costs the database)",
    )
    parser.add_argument(
        "--no-identity",
        action="store_true",
        help="store no process identity with the spans (to measure what it costs the writer)",
    )
    args = parser.parse_args()
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    if len(backends) > 1:
        # Django is configured once per process: run each backend in its own.
        for backend in backends:
            argv, skip = [], False
            for a in sys.argv[1:]:  # every form of --backend: "--backend X" and "--backend=X"
                if skip or a.startswith("--backend"):
                    skip = a == "--backend"
                    continue
                argv.append(a)
            code = os.spawnv(os.P_WAIT, sys.executable, [sys.executable, __file__, *argv, f"--backend={backend}"])
            if code:
                raise SystemExit(code)
        return
    configure(backends[0], args.pg_name)
    if args.no_span_search_index and backends[0] == "postgres":
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("DROP INDEX IF EXISTS agentops_span_name_trgm")
    if args.no_rollup:
        from agentops_django.writer import _rollup

        _rollup.write = lambda *args, **kwargs: None
        _rollup.aggregate = lambda rows: ([], [])
    from django.conf import settings

    settings.AGENTOPS = {
        "ENABLED": False,
        # Room for every span: the last 5% of a queue is kept for the spans that name a trace.
        "QUEUE_SIZE": int(args.spans / 0.95) + 1,
        "BATCH_SIZE": args.batch_size or 1_000,
        "BATCH_INTERVAL": 0.05,
    }
    from agentops_django.conf import get_config

    get_config.cache_clear()
    print(f"{backends[0]}: {args.spans} spans, batch size {get_config().batch_size}")
    if args.no_identity:
        from agentops_django.writer import _processor

        original = _processor.DatabaseSpanProcessor._init_process_state

        def without_identity(self: Any) -> None:
            original(self)
            self.exporter.register_process = None  # spans stored with no process row

        _processor.DatabaseSpanProcessor._init_process_state = without_identity  # type: ignore[method-assign]
    for processes in (int(p) for p in args.processes.split(",")):
        options = [o for o in ("rollup", "identity", "span_search_index") if not getattr(args, f"no_{o}")]
        run(args.spans, processes, options=options)


if __name__ == "__main__":
    main()
