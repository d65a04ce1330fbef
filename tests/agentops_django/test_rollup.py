"""The overview's rollup: kept by the writer in each batch's transaction, exact however spans arrive.

Counts, errors, tokens, cost and query sums per minute and hour and per key
equal what the stored spans add up to; percentiles read from the histogram are
within the stated bound of the exact ones; a redelivered span counts once.
"""

from __future__ import annotations

import itertools
import multiprocessing
import random
from collections import defaultdict
from typing import Any

import pytest
from django.db import connections
from django.db.models import Sum

from agentops_django import _histogram
from agentops_django.models import Rollup, RollupBucket, Span
from agentops_django.writer import DatabaseSpanProcessor, write_batch
from tests.agentops_django.test_exporter import T0, _write_share, make_span, new_trace_id

pytestmark = pytest.mark.django_db(transaction=True)

ROUTES = ["GET /orders/<int:pk>/", "POST /chat/", "GET /healthz"]
TASKS = ["shop.tasks.digest", "shop.tasks.notify"]
MODELS = ["gpt-4o-mini", "claude-3-5-haiku-latest"]


def traffic(seed: int, traces: int = 60) -> list[Any]:
    """Requests over three minutes, each with a task and LLM calls; durations spread over four decades."""
    rng = random.Random(seed)
    spans = []
    for _ in range(traces):
        trace_id = new_trace_id()
        start = rng.randrange(0, 180_000)  # ms after T0
        route = rng.choice(ROUTES)
        duration = rng.lognormvariate(4, 1.5)
        spans.append(
            make_span(
                trace_id,
                1,
                name=route,
                kind="request",
                start=start,
                end=start + duration,
                error=rng.random() < 0.2,
                attributes={
                    "http.route": route.split(" ", 1)[1],
                    "http.request.method": route.split(" ", 1)[0],
                    "agentops.db.query_count": rng.randrange(0, 40),
                    "agentops.db.query_time_ms": rng.uniform(0, 50),
                    "agentops.db.repeated_queries": rng.choice([0, 0, 1, 3]),
                },
            )
        )
        task = rng.choice(TASKS)
        spans.append(
            make_span(
                trace_id,
                2,
                1,
                name=task,
                kind="celery.task",
                start=start + 5,
                end=start + 5 + rng.expovariate(1 / 300),
                error=rng.random() < 0.1,
                attributes={"celery.task.name": task, "celery.queue_wait_ms": rng.expovariate(1 / 40)},
            )
        )
        for span_id in range(3, 3 + rng.randrange(0, 3)):
            model = rng.choice(MODELS)
            usage = {
                "gen_ai.request.model": model,
                "gen_ai.usage.input_tokens": rng.randrange(10, 2000),
                "gen_ai.usage.output_tokens": rng.randrange(1, 500),
            }
            if model == "gpt-4o-mini":
                usage["gen_ai.usage.total_cost"] = rng.uniform(0.0001, 0.01)
            else:
                usage["agentops.cost.unpriced"] = True
            spans.append(
                make_span(
                    trace_id,
                    span_id,
                    2,
                    name="openai.chat",
                    kind="llm",
                    start=start + 10,
                    end=start + 10 + rng.uniform(50, 4000),
                    attributes=usage,
                )
            )
        spans.append(make_span(trace_id, 9, 1, name="planner.agent", kind="agent", start=start, end=start + 1))
    return spans  # fmt: skip


def expected_from_spans() -> dict[tuple[int, int, str, str], dict[str, Any]]:
    """What the rollup must hold, recomputed from the stored span rows."""
    kinds = {"request": "request", "celery.task": "task", "llm": "llm"}
    result: dict[tuple[int, int, str, str], dict[str, Any]] = defaultdict(
        lambda: {"count": 0, "errors": 0, "input_tokens": 0, "output_tokens": 0, "cost": 0.0, "unpriced_calls": 0,
                 "db_queries": 0, "repeated_queries": 0, "durations": [], "waits": []}
    )  # fmt: skip
    for span in Span.objects.all():
        kind = kinds.get(span.kind)
        if kind is None:
            continue
        a = span.attributes
        name = {"request": span.name, "task": a.get("celery.task.name"), "llm": a.get("gen_ai.request.model")}[kind]
        minute = int(span.started_at.timestamp() // 60)
        for period, key_name in itertools.product((1, 60, 1440), (name, "")):  # "": every name of the kind
            entry = result[(period, minute - minute % period, kind, key_name)]
            entry["count"] += 1
            entry["errors"] += span.status == "ERROR"
            entry["input_tokens"] += a.get("gen_ai.usage.input_tokens", 0) if kind == "llm" else 0
            entry["output_tokens"] += a.get("gen_ai.usage.output_tokens", 0) if kind == "llm" else 0
            entry["cost"] += a.get("gen_ai.usage.total_cost", 0.0)
            entry["unpriced_calls"] += bool(a.get("agentops.cost.unpriced"))
            entry["db_queries"] += a.get("agentops.db.query_count", 0)
            entry["repeated_queries"] += a.get("agentops.db.repeated_queries", 0) > 0
            entry["durations"].append(span.duration_ms)
            if "celery.queue_wait_ms" in a:
                entry["waits"].append(a["celery.queue_wait_ms"])
    return result


def assert_rollup_matches_spans() -> None:
    expected = expected_from_spans()
    stored = {(r.period, r.minute, r.kind, r.name): r for r in Rollup.objects.all()}
    assert set(stored) == set(expected)
    histograms: dict[tuple, dict[int, int]] = defaultdict(dict)
    for b in RollupBucket.objects.all():
        histograms[(b.period, b.minute, b.kind, b.name, b.series)][b.bucket] = b.count
    for key, want in expected.items():
        row = stored[key]
        for column in ("count", "errors", "input_tokens", "output_tokens", "unpriced_calls", "db_queries",
                       "repeated_queries"):  # fmt: skip
            assert getattr(row, column) == want[column], (key, column)
        assert row.cost == pytest.approx(want["cost"])
        assert row.duration_ms == pytest.approx(sum(want["durations"]), abs=0.01)
        for series, values in (("d", want["durations"]), ("q", want["waits"])):
            counts = histograms.get((*key, series), {})
            assert sum(counts.values()) == len(values)
            for fraction in (0.5, 0.95, 0.99):
                exact = _histogram.exact_percentile(values, fraction)
                estimate = _histogram.percentile(counts, fraction)
                if exact is None:
                    assert estimate is None
                else:
                    assert estimate == pytest.approx(exact, rel=_histogram.RELATIVE_ERROR + 1e-9), (key, series)


@pytest.mark.parametrize("seed", range(3))
def test_the_rollup_equals_what_the_stored_spans_add_up_to_whatever_the_batching(seed: int) -> None:
    spans = traffic(seed)
    rng = random.Random(seed)
    rng.shuffle(spans)
    redelivered = spans[:10]
    while spans:
        size = rng.randrange(1, 40)
        write_batch("default", spans[:size])
        spans = spans[size:]
    write_batch("default", redelivered)  # stored once, so counted once
    assert_rollup_matches_spans()
    # Every span is in its minute, hour and day: each period adds up to the same totals.
    counted = Span.objects.filter(kind__in=["request", "celery.task", "llm"]).count()
    for period in (1, 60, 1440):
        assert Rollup.objects.filter(period=period).exclude(name="").aggregate(n=Sum("count"))["n"] == counted
        assert Rollup.objects.filter(period=period, name="").aggregate(n=Sum("count"))["n"] == counted


@pytest.mark.slow
def test_the_rollup_is_exact_when_four_processes_write_the_same_minutes_at_once(
    writer: DatabaseSpanProcessor,
) -> None:
    spans = traffic(11, traces=80)
    random.Random(3).shuffle(spans)
    writer.on_end(make_span(new_trace_id(), 1))
    assert writer.force_flush(30_000)
    connections.close_all()
    shares = [spans[i::4] for i in range(4)]
    shares[0] = shares[0] + shares[1][:7]  # a redelivery from another process
    context = multiprocessing.get_context("fork")
    children = [context.Process(target=_write_share, args=(share,)) for share in shares]
    for child in children:
        child.start()
    for child in children:
        child.join(120)
    assert [child.exitcode for child in children] == [0, 0, 0, 0]
    assert_rollup_matches_spans()


def test_keys_are_the_route_the_task_name_and_the_model() -> None:
    trace_id = new_trace_id()
    write_batch(
        "default",
        [
            make_span(trace_id, 1, name="GET /nope/x1", kind="request", attributes={"http.request.method": "GET"}),
            make_span(new_trace_id(), 1, name="GET /bots/probe", kind="request",
                      attributes={"http.request.method": "GET"}),
            make_span(trace_id, 2, 1, name="run", kind="celery.task", attributes={"celery.task.name": "shop.add"}),
            make_span(trace_id, 3, 2, name="chat", kind="llm", attributes={"gen_ai.response.model": "gpt-x-2025"}),
            make_span(trace_id, 4, 2, name="chat", kind="llm"),
            make_span(trace_id, 5, 2, name="search", kind="tool"),
        ],
    )  # fmt: skip
    keys = set(Rollup.objects.filter(period=1).exclude(name="").values_list("kind", "name", "count"))
    # Requests no route matched share one key per method, so probing bots cannot flood the rollup.
    assert keys == {
        ("request", "GET (no route)", 2),
        ("task", "shop.add", 1),
        ("llm", "gpt-x-2025", 1),
        ("llm", "(unknown model)", 1),
    }


def test_a_span_counts_in_its_start_minute_hour_and_day() -> None:
    write_batch("default", [make_span(new_trace_id(), 1, name="GET /a/", kind="request", start=59_000, end=61_000,
                                      attributes={"http.route": "/a/"})])  # fmt: skip
    minute = (T0 // 1_000_000 + 59_000) // 60_000
    assert list(Rollup.objects.filter(name="GET /a/").values_list("period", "minute").order_by("period")) == [
        (1, minute),
        (60, minute - minute % 60),
        (1440, minute - minute % 1440),
    ]


def test_percentiles_from_the_histogram_are_within_the_stated_bound_of_the_exact_ones() -> None:
    rng = random.Random(5)
    for _ in range(200):
        values = [rng.lognormvariate(rng.uniform(-2, 10), rng.uniform(0.1, 3)) for _ in range(rng.randrange(1, 300))]
        # The bound holds from 4 microseconds to about 4.7 hours (see agentops_django._histogram).
        values = [v for v in values if _histogram.FLOOR_MS <= v < _histogram.CEILING_MS] or [1.0]
        counts: dict[int, int] = defaultdict(int)
        for v in values:
            counts[_histogram.bucket(v)] += 1
        for fraction in (0.5, 0.9, 0.95, 0.99, 1.0):
            exact = _histogram.exact_percentile(values, fraction)
            assert _histogram.percentile(counts, fraction) == pytest.approx(exact, rel=_histogram.RELATIVE_ERROR)
    assert _histogram.RELATIVE_ERROR < 0.1
    assert _histogram.percentile({}, 0.5) is None
    assert _histogram.percentile({_histogram.bucket(0.0): 3}, 0.5) == 0.0
    assert _histogram.percentile({_histogram.bucket(10 * _histogram.CEILING_MS): 1}, 0.5) == _histogram.CEILING_MS


def test_prune_deletes_rollup_rows_past_their_own_retention_and_keeps_the_rest(settings: Any) -> None:
    import datetime as dt

    from django.core.management import call_command

    from agentops_django import prune

    now = dt.datetime.fromtimestamp(T0 / 1e9, dt.UTC)
    for days_ago in (200, 95, 10):
        start = -days_ago * 86_400_000
        write_batch("default", [make_span(new_trace_id(), 1, name="GET /a/", kind="request", start=start,
                                          end=start + 5, attributes={"http.route": "/a/"})])  # fmt: skip
    # A minute, an hour and a day each, for the route and for all requests.
    assert Rollup.objects.count() == RollupBucket.objects.count() == 18
    dry = prune.prune(days=None, keep=None, dry_run=True, now=now)
    assert dry.rollup_rows == 12 and Rollup.objects.count() == 18  # ROLLUP_RETENTION_DAYS: 90 by default
    assert prune.prune(days=None, keep=None, now=now, rollup_days=30).rollup_rows == 12
    assert Rollup.objects.count() == RollupBucket.objects.count() == 6
    assert set(Rollup.objects.values_list("name", flat=True)) == {"GET /a/", ""}
    settings.AGENTOPS = {"ROLLUP_RETENTION_DAYS": 5}
    call_command("agentops_prune", "--days", "10000")  # the rollup's own setting applies, not --days
    assert Rollup.objects.count() == 0 and RollupBucket.objects.count() == 0


def test_without_the_rollup_tables_spans_and_summaries_are_still_stored_and_the_failure_is_logged(caplog) -> None:
    """A deploy that runs before ``migrate``: the overview misses those batches, the traces do not."""
    from django.db import connection

    from agentops_django.writer import _rollup

    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE agentops_django_rollupbucket RENAME TO agentops_django_rollupbucket_away")
    try:
        trace_id = new_trace_id()
        before = _rollup._failures
        assert write_batch("default", [make_span(trace_id, 1, name="GET /a/", kind="request")]) == 1
        assert _rollup._failures == before + 1
    finally:
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE agentops_django_rollupbucket_away RENAME TO agentops_django_rollupbucket")
    assert Span.objects.filter(trace_id=format(trace_id, "032x")).count() == 1
    assert Rollup.objects.count() == 0  # rolled back together with its buckets
    if before == 0:
        assert "did 'manage.py migrate' run?" in caplog.text
