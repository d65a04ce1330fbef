"""How fast the trace admin renders on a big table: ``python -m benchmarks.admin [--traces N]``.

Creates a PostgreSQL database (``agentops_bench_admin`` on 127.0.0.1:5432 by
default), migrates it, loads ``--traces`` traces of ten spans each with COPY,
plus one trace of ``--big-trace`` spans, and the overview's rollup of those
traces (made by the writer's own aggregation and upsert, one transaction per
chunk, as the writer does per batch), runs ANALYZE, then requests admin
pages through Django's test client as a logged-in superuser and prints the
median time of ``--repeat`` requests per page. The database is dropped at the
end unless ``--keep`` is given.

A script, not a test: it takes minutes and most of a CPU at a million traces.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import random
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
from bootstrap import reexec_in_venv

reexec_in_venv(Path(__file__))  # run as ``python3 benchmarks/admin.py``: in the project's .venv

DB_NAME = "agentops_bench_admin"
#: Days the loaded traces spread over, newest now (``--days``).
SPREAD_DAYS = [30.0]
SPANS_PER_TRACE = 10
NAMES = [f"GET /api/items/{i}/" for i in range(20)] + [f"shop.tasks.job_{i}" for i in range(20)]
NAMES += [f"POST /api/chat/{i}/" for i in range(10)] + ["POST /inquiries/", "shop.tasks.summarise_chord"]
#: Request traces with a logged-in user (of this many users), hosts and Celery workers.
USERS = 5_000
HOSTS = 4
WORKERS = 8

urlpatterns: list = []


def configure(host: str, port: int, name: str) -> None:
    """Minimal Django settings for the admin on the benchmark database; tracing off."""
    from django.conf import settings

    settings.configure(
        DEBUG=False,
        SECRET_KEY="bench-admin-not-secret",
        ALLOWED_HOSTS=["*"],
        USE_TZ=True,
        TIME_ZONE="UTC",
        ROOT_URLCONF=__name__,
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        INSTALLED_APPS=[
            "django.contrib.admin",
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.sessions",
            "django.contrib.messages",
            "django.contrib.staticfiles",
            "agentops_django",
        ],
        MIDDLEWARE=[
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
            "django.contrib.messages.middleware.MessageMiddleware",
        ],
        TEMPLATES=[
            {
                "BACKEND": "django.template.backends.django.DjangoTemplates",
                "APP_DIRS": True,
                "OPTIONS": {
                    "context_processors": [
                        "django.template.context_processors.request",
                        "django.contrib.auth.context_processors.auth",
                        "django.contrib.messages.context_processors.messages",
                    ]
                },
            }
        ],
        STATIC_URL="/static/",
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.postgresql",
                "NAME": name,
                "USER": "postgres",
                "HOST": host,
                "PORT": str(port),
            }
        },
        AGENTOPS={"ENABLED": False, "DATABASE_WRITER": False},
    )
    import django

    django.setup()
    from django.contrib import admin
    from django.urls import path

    urlpatterns.append(path("admin/", admin.site.urls))


def recreate_database(host: str, port: int, name: str, drop_only: bool = False) -> None:
    import psycopg

    with psycopg.connect(host=host, port=port, user="postgres", dbname="postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not drop_only:
            conn.execute(f'CREATE DATABASE "{name}"')


def _ts(value: dt.datetime) -> str:
    return value.isoformat()


def trace_lines(count: int, now: dt.datetime, rng: random.Random) -> Iterator[tuple[str, list[str]]]:
    """Text-format COPY lines: each trace's row and its ten span rows, newest first."""
    step = dt.timedelta(days=SPREAD_DAYS[0]) / max(count, 1)
    for i in range(count):
        started = now - step * i - dt.timedelta(seconds=1)
        trace_id = f"{rng.getrandbits(128):032x}"
        error = rng.random() < 0.04
        kind = "request" if i % 3 else "task"
        name = rng.choice(NAMES)
        spans = []
        ids = [f"{rng.getrandbits(64):016x}" for _ in range(SPANS_PER_TRACE)]
        # request → publish → task → agent → (llm, tool, llm, tool, llm, tool)
        parents = ["", ids[0], ids[1], ids[2], ids[3], ids[3], ids[3], ids[3], ids[3], ids[3]]
        kinds = ["request", "publish", "celery.task", "agent", "llm", "tool", "llm", "tool", "llm", "tool"]
        offset = 0.0
        input_tokens = output_tokens = 0
        for j in range(SPANS_PER_TRACE):
            duration = 5.0 + (j * 7) % 40
            begin = started + dt.timedelta(milliseconds=offset)
            end = begin + dt.timedelta(milliseconds=duration)
            attributes: dict = {}
            if kinds[j] == "llm":
                tin, tout = 200 + j * 10, 40 + j
                input_tokens += tin
                output_tokens += tout
                attributes = {
                    "gen_ai.request.model": "gpt-4o-mini",
                    "gen_ai.usage.input_tokens": tin,
                    "gen_ai.usage.output_tokens": tout,
                }
            elif kinds[j] == "celery.task":
                attributes = {"celery.queue_wait_ms": 12.5, "celery.task.id": f"task-{i}"}
            status = "ERROR" if error and j == 9 else "UNSET"
            spans.append(
                "\t".join(
                    [
                        trace_id,
                        ids[j],
                        parents[j],
                        f"{kinds[j]} {j}",
                        kinds[j],
                        status,
                        "",
                        _ts(begin),
                        _ts(end),
                        str(duration),
                        json.dumps(attributes),
                        "[]",
                        "[]",
                        "bench",
                    ]
                )
            )
            offset += 3.0
        total = offset + 40
        tags = "|bench|" if i % 10 else "|bench|vip|"
        web = f"web-{i % HOSTS}"
        worker = f"worker-{rng.randrange(WORKERS)}"
        processes = f"|{web}|{worker}|celery@{worker}|" if kind == "request" else f"|{worker}|celery@{worker}|"
        user = rng.randrange(USERS) if kind == "request" and rng.random() < 0.7 else None
        trace = "\t".join(
            [
                trace_id,
                name,
                "Error" if error else "Success",
                kind,
                ids[0],
                "2",
                _ts(started),
                _ts(started + dt.timedelta(milliseconds=total)),
                str(total),
                str(SPANS_PER_TRACE),
                "1" if error else "0",
                str(input_tokens),
                str(output_tokens),
                str(input_tokens + output_tokens),
                f"{(input_tokens * 0.15 + output_tokens * 0.6) / 1e6:.8f}",
                json.dumps(tags.strip("|").split("|")),
                tags,
                "bench",
                processes,
                "" if user is None else str(user),
                "" if user is None else f"user_{user}",
                _ts(now),
            ]
        )
        yield trace, spans


TRACE_COLUMNS = (
    "trace_id, name, status, kind, root_span_id, root_rank, started_at, ended_at, duration_ms, span_count, "
    "error_count, input_tokens, output_tokens, total_tokens, cost, tags, tags_text, service_name, "
    "processes_text, user_id, username, updated_at"
)
SPAN_COLUMNS = (
    "trace_id, span_id, parent_span_id, name, kind, status, status_message, started_at, ended_at, duration_ms, "
    "attributes, events, links, service_name"
)


def load(count: int, big: int, host: str, port: int, name: str) -> str:
    """COPY the traces and spans in; returns the trace id of the big trace."""
    import psycopg

    rng = random.Random(42)
    now = dt.datetime.now(dt.UTC)
    chunk = 20_000
    with psycopg.connect(host=host, port=port, user="postgres", dbname=name) as conn:
        done = 0
        lines = trace_lines(count, now, rng)
        while done < count:
            traces, spans = io.StringIO(), io.StringIO()
            for _ in range(min(chunk, count - done)):
                trace, span_rows = next(lines)
                traces.write(trace + "\n")
                spans.write("\n".join(span_rows) + "\n")
                done += 1
            with conn.cursor() as cursor:
                with cursor.copy(f"COPY agentops_django_trace ({TRACE_COLUMNS}) FROM STDIN") as copy:
                    copy.write(traces.getvalue())
                with cursor.copy(f"COPY agentops_django_span ({SPAN_COLUMNS}) FROM STDIN") as copy:
                    copy.write(spans.getvalue())
            conn.commit()
            print(f"\r  loaded {done:,} traces", end="", file=sys.stderr, flush=True)
        print(file=sys.stderr)
        big_id = f"{rng.getrandbits(128):032x}"
        started = now - dt.timedelta(minutes=1)
        root = f"{rng.getrandbits(64):016x}"
        spans = io.StringIO()
        ids = [root]
        for j in range(big):
            span_id = root if j == 0 else f"{rng.getrandbits(64):016x}"
            if j:
                ids.append(span_id)
            # A bushy tree: each span's parent is one of the 200 before it.
            parent = "" if j == 0 else ids[max(0, j - 1 - rng.randrange(min(j, 200)))]
            kind = ("llm", "tool", "agent", "celery.task", "publish")[j % 5]
            begin = started + dt.timedelta(milliseconds=j * 2)
            attributes = {"gen_ai.usage.input_tokens": 100, "gen_ai.usage.output_tokens": 20} if kind == "llm" else {}
            spans.write(
                "\t".join(
                    [
                        big_id,
                        span_id,
                        parent,
                        f"{kind} step {j}",
                        "request" if j == 0 else kind,
                        "UNSET",
                        "",
                        _ts(begin),
                        _ts(begin + dt.timedelta(milliseconds=5)),
                        "5.0",
                        json.dumps(attributes),
                        "[]",
                        "[]",
                        "bench",
                    ]
                )
                + "\n"
            )
        with conn.cursor() as cursor:
            with cursor.copy(f"COPY agentops_django_span ({SPAN_COLUMNS}) FROM STDIN") as copy:
                copy.write(spans.getvalue())
            cursor.execute(
                f"INSERT INTO agentops_django_trace ({TRACE_COLUMNS}) VALUES "
                "(%s, 'big trace', 'Success', 'request', %s, 2, %s, %s, %s, %s, 0, 0, 0, 0, 0, '[]', '', 'bench', "
                "'|web-0|', '', '', %s)",
                [big_id, root, started, started + dt.timedelta(milliseconds=big * 2 + 5), big * 2 + 5.0, big, now],
            )
        conn.commit()
        conn.execute("ANALYZE agentops_django_trace")
        conn.execute("ANALYZE agentops_django_span")
        conn.commit()
    return big_id


ROUTES = [f"GET /api/items/{i}/" for i in range(20)] + [f"POST /api/chat/{i}/" for i in range(10)]
TASKS = [f"shop.tasks.job_{i}" for i in range(20)]
MODELS = ["gpt-4o-mini", "gpt-4o", "claude-3-5-haiku-latest"]


def rollup_spans(count: int, now: dt.datetime, rng: random.Random) -> Iterator[list]:
    """Per trace of the load: its request, its task and three LLM calls, as the SDK hands them to the writer."""
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.trace import SpanContext, Status, StatusCode, TraceFlags

    step = dt.timedelta(days=SPREAD_DAYS[0]) / max(count, 1)
    ok, failed = Status(StatusCode.OK), Status(StatusCode.ERROR)
    for i in range(count):
        start = int((now - step * i - dt.timedelta(seconds=1)).timestamp() * 1e9)
        trace_id = rng.getrandbits(128) | 1
        spans = []
        route = rng.choice(ROUTES)
        for j, (kind, attributes) in enumerate(
            [
                ("request", {"http.route": route.split(" ")[1], "http.request.method": route.split(" ")[0],
                             "agentops.db.query_count": rng.randrange(1, 60),
                             "agentops.db.query_time_ms": rng.uniform(0.5, 40),
                             "agentops.db.repeated_queries": rng.choice((0, 0, 0, 2))}),
                ("celery.task", {"celery.task.name": rng.choice(TASKS), "celery.queue_wait_ms": rng.expovariate(0.05)}),
                *[("llm", {"gen_ai.request.model": rng.choice(MODELS), "gen_ai.usage.input_tokens": 400,
                           "gen_ai.usage.output_tokens": 90, "gen_ai.usage.total_cost": 0.0001})] * 3,
            ]
        ):  # fmt: skip
            duration = int(rng.lognormvariate(3.5 + j, 1.0) * 1e6)
            spans.append(
                ReadableSpan(
                    name=route if kind == "request" else kind,
                    context=SpanContext(trace_id, j + 1, is_remote=False, trace_flags=TraceFlags(1)),
                    attributes={"agentops.span.kind": kind, **attributes},
                    status=failed if rng.random() < 0.04 else ok,
                    start_time=start,
                    end_time=start + duration,
                )
            )
        yield spans


def load_rollup(count: int) -> None:
    """The overview's rollup of ``count`` traces, written by the writer's own code (per chunk: one transaction)."""
    from django.db import connection, transaction

    from agentops_django.writer import _rollup, _rows

    rng = random.Random(7)
    now = dt.datetime.now(dt.UTC)
    spans = rollup_spans(count, now, rng)
    done = 0
    while done < count:
        batch = [span for _ in range(min(1000, count - done)) for span in next(spans)]
        done += len(batch) // 5
        rows = _rows.convert(batch, False)
        with transaction.atomic(), connection.cursor() as cursor:
            _rollup.write(cursor, connection, rows, postgres=True, chunk=1000)
        print(f"\r  rolled up {done:,} traces", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE agentops_django_rollup")
        cursor.execute("ANALYZE agentops_django_rollupbucket")


def measure(big_id: str, repeat: int, count: int) -> list[tuple[str, float, int]]:
    """Median milliseconds per admin page, over ``repeat`` requests after one warm-up."""
    from django.contrib.auth.models import User
    from django.db import OperationalError, close_old_connections, connections
    from django.test import Client

    from agentops_django.models import Trace

    user = User.objects.filter(username="bench").first() or User.objects.create_superuser("bench", "b@example.com", "b")
    client = Client()
    client.force_login(user)
    # The 501st newest trace (or the oldest of a smaller table): a page deep in the list.
    some = list(Trace.objects.order_by("-started_at").values_list("trace_id", "pk")[:501])[-1]
    big_pk = Trace.objects.get(trace_id=big_id).pk
    page = max(1, min(50, count // 100))
    month_ago = (dt.datetime.now(dt.UTC) - dt.timedelta(days=30)).strftime("%Y-%m-%dT%H:%M")
    from django.contrib import admin

    columns = list(admin.site._registry[Trace].list_display)

    def sort(column: str, descending: bool = True) -> str:
        """The admin's ``o`` parameter for sorting by ``column`` (1-based, after the action checkbox)."""
        return f"o={'-' if descending else ''}{columns.index(column) + 1}"

    trace_list = "/admin/agentops_django/trace/"
    pages = [
        ("list, unfiltered", "/admin/agentops_django/trace/"),
        (f"list, page {page}", f"/admin/agentops_django/trace/?p={page}"),
        ("list, status=Error", "/admin/agentops_django/trace/?status__exact=Error"),
        ("list, kind=task, last day", "/admin/agentops_django/trace/?kind__exact=task&recent=24h"),
        ("list, name filter", f"/admin/agentops_django/trace/?name={NAMES[3].replace('/', '%2F')}"),
        ("list, search full trace id", f"/admin/agentops_django/trace/?q={some[0]}"),
        ("list, search id prefix", f"/admin/agentops_django/trace/?q={some[0][:8]}"),
        ("list, search name prefix", "/admin/agentops_django/trace/?q=shop.tasks.job_1"),
        ("list, search tag:vip", "/admin/agentops_django/trace/?q=tag%3Avip"),
        ("list, search substring, common (chat)", f"{trace_list}?q=chat"),
        ("list, search substring, 2% (summarise_chord)", f"{trace_list}?q=chord"),
        ("list, search substring, 2% (/inquiries)", f"{trace_list}?q=%2Finquiries"),
        ("list, search substring, no match", f"{trace_list}?q=zzz-nothing"),
        ("list, search user:user_42", f"{trace_list}?q=user%3Auser_42"),
        ("list, search plain user_42", f"{trace_list}?q=user_42"),
        ("list, search host:web-1 (25%)", f"{trace_list}?q=host%3Aweb-1"),
        ("list, search worker:celery@worker-3", f"{trace_list}?q=worker%3Acelery%40worker-3"),
        ("list, filter process=celery@worker-3", f"{trace_list}?process=celery%40worker-3"),
        ("list, search span:step 4242 (rare)", f"{trace_list}?q=span%3Astep+4242"),
        ("list, search span:llm (every trace)", f"{trace_list}?q=span%3Allm"),
        ("list, sort duration desc", f"{trace_list}?{sort('duration')}"),
        ("list, sort duration asc", f"{trace_list}?{sort('duration', False)}"),
        ("list, sort spans desc", f"{trace_list}?{sort('span_total')}"),
        ("list, sort errors desc", f"{trace_list}?{sort('errors')}"),
        ("list, sort tokens desc", f"{trace_list}?{sort('tokens')}"),
        ("list, sort cost desc", f"{trace_list}?{sort('cost_display')}"),
        ("list, sort cost desc, page 20", f"{trace_list}?{sort('cost_display')}&p=20"),
        ("list, status=Error, sort cost", f"{trace_list}?status__exact=Error&{sort('cost_display')}"),
        ("list, user:user_42, sort duration", f"{trace_list}?q=user%3Auser_42&{sort('duration')}"),
        ("trace page, 10 spans", f"/admin/agentops_django/trace/{some[1]}/change/"),
        ("trace page, big trace", f"/admin/agentops_django/trace/{big_pk}/change/"),
        ("trace page, big trace, rows 2001+", f"/admin/agentops_django/trace/{big_pk}/change/?offset=2000"),
        ("OTLP JSON, big trace", f"/admin/agentops_django/trace/{big_pk}/otlp.json"),
        ("overview, last hour", "/admin/agentops_django/trace/overview/?window=1h"),
        ("overview, last day", "/admin/agentops_django/trace/overview/?window=24h"),
        ("overview, last week", "/admin/agentops_django/trace/overview/?window=7d"),
        ("overview, last 30 days (custom)", f"/admin/agentops_django/trace/overview/?from={month_ago}"),
    ]

    def get(url: str):
        # One retry: a shared server may drop connections (a restart, another user's DROP ... FORCE).
        try:
            return client.get(url)
        except OperationalError:
            close_old_connections()
            connections.close_all()
            return client.get(url)

    results = []
    for label, url in pages:
        response = get(url)
        assert response.status_code == 200, (url, response.status_code)
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            response = get(url)
            _ = response.content
            times.append((time.perf_counter() - start) * 1000)
        results.append((label, statistics.median(times), len(response.content)))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--traces", type=int, default=1_000_000, help="traces to load (default 1,000,000)")
    parser.add_argument("--big-trace", type=int, default=10_000, help="spans of the one big trace (default 10,000)")
    parser.add_argument("--repeat", type=int, default=7, help="requests per page; the median is printed")
    parser.add_argument("--host", default=os.environ.get("AGENTOPS_BENCH_PG_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("AGENTOPS_BENCH_PG_PORT", "5432")))
    parser.add_argument("--database", default=DB_NAME)
    parser.add_argument(
        "--days", type=float, default=30.0, help="days the traces spread over (default 30; the traffic's density)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--reuse", action="store_true", help="measure a database kept by an earlier --keep run")
    args = parser.parse_args(argv)
    SPREAD_DAYS[0] = args.days

    if not args.reuse:
        recreate_database(args.host, args.port, args.database)
    try:
        configure(args.host, args.port, args.database)
        from django.core.management import call_command

        from agentops_django.models import Trace

        if args.reuse:
            big_id = Trace.objects.get(name="big trace").trace_id
            args.traces = Trace.objects.count() - 1
            print(f"Reusing {args.traces:,} traces.")
        else:
            call_command("migrate", verbosity=0)
            print(f"Loading {args.traces:,} traces x {SPANS_PER_TRACE} spans + one of {args.big_trace:,} spans ...")
            started = time.perf_counter()
            big_id = load(args.traces, args.big_trace, args.host, args.port, args.database)
            load_rollup(args.traces)
            print(f"Loaded in {time.perf_counter() - started:.0f} s.\n")
        results = measure(big_id, args.repeat, args.traces)
        from agentops_django.models import Rollup, RollupBucket

        print(f"Rollup: {Rollup.objects.count():,} rows, {RollupBucket.objects.count():,} histogram bucket rows.")
        print(f"{'page':40} {'median ms':>10} {'bytes':>10}")
        for label, median, size in results:
            print(f"{label:40} {median:10.1f} {size:10,}")
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep and not args.reuse:
            recreate_database(args.host, args.port, args.database, drop_only=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
