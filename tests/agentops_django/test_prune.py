"""Retention: ``manage.py agentops_prune``, the shared prune logic and the Celery task."""

from __future__ import annotations

import datetime as dt
import io
import threading

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from agentops_django import prune
from agentops_django.models import Span, Trace, WriterStats
from tests.agentops_django.test_admin import make_span, make_trace

pytestmark = pytest.mark.django_db


def trace_aged(days: float, name: str = "t", spans: int = 2) -> Trace:
    trace = make_trace(name, started_at=timezone.now() - dt.timedelta(days=days), span_count=spans)
    for i in range(spans):
        make_span(trace, f"step {i}", "tool", start_ms=i)
    return trace


def names() -> list[str]:
    return sorted(Trace.objects.values_list("name", flat=True))


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("agentops_prune", *args, stdout=out)
    return out.getvalue()


def test_days_deletes_older_traces_with_their_spans_and_keeps_recent_ones():
    old, recent = trace_aged(10, "old"), trace_aged(1, "recent")
    output = run("--days", "7")
    assert names() == ["recent"]
    assert not Span.objects.filter(trace_id=old.trace_id).exists()
    assert Span.objects.filter(trace_id=recent.trace_id).count() == 2
    assert "Deleted 1 traces and 2 spans (older than 7 days)." in output


def test_keep_keeps_only_the_newest_traces():
    for age in range(5):
        trace_aged(age + 0.5, f"age{age}")
    output = run("--keep", "2")
    assert names() == ["age0", "age1"]
    assert Span.objects.count() == 4
    assert "Deleted 3 traces and 6 spans (beyond the newest 2)." in output


def test_keep_breaks_ties_on_start_time_without_deleting_too_many():
    started = timezone.now() - dt.timedelta(hours=1)
    for i in range(4):
        make_trace(f"same{i}", started_at=started)
    run("--keep", "3")
    assert Trace.objects.count() == 3


def test_days_and_keep_together_delete_what_either_rule_selects():
    trace_aged(30, "ancient")
    for age in range(3):
        trace_aged(age + 0.1, f"new{age}")
    output = run("--days", "7", "--keep", "2")
    assert names() == ["new0", "new1"]
    assert "Deleted 2 traces" in output


def test_deletes_in_batches_of_the_given_size():
    for i in range(5):
        trace_aged(20, f"old{i}")
    seen = []
    result = prune.prune(days=7, batch_size=2, progress=lambda r: seen.append(r.traces))
    assert seen == [2, 4, 5]
    assert (result.traces, result.spans) == (5, 10)
    assert Trace.objects.count() == 0 and Span.objects.count() == 0


def test_a_dry_run_counts_and_deletes_nothing():
    trace_aged(20, "old", spans=3)
    trace_aged(1, "recent")
    output = run("--days", "7", "--dry-run")
    assert "Would delete 1 traces and 3 spans" in output
    assert names() == ["old", "recent"] and Span.objects.count() == 5


def test_spans_whose_trace_row_is_pruned_do_not_survive_it():
    """A span of a pruned trace stored under the trace id (no trace row yet, from another process) goes too."""
    trace = trace_aged(20, "old")
    result = prune.delete_traces([trace.trace_id, "f" * 32])
    assert result.traces == 1 and result.spans == 2
    assert Span.objects.count() == 0


@override_settings(AGENTOPS={"RETENTION_DAYS": 3, "RETENTION_MAX_TRACES": None})
def test_without_options_the_retention_settings_apply():
    trace_aged(5, "old")
    trace_aged(1, "recent")
    assert prune.retention_defaults() == (3, None)
    output = run()
    assert names() == ["recent"] and "older than 3 days" in output


@override_settings(AGENTOPS={"RETENTION_DAYS": None, "RETENTION_MAX_TRACES": 1})
def test_the_count_setting_alone_applies_when_days_are_switched_off():
    trace_aged(50, "old")
    trace_aged(1, "recent")
    run()
    assert names() == ["recent"]


@override_settings(AGENTOPS={"RETENTION_DAYS": 0, "RETENTION_MAX_TRACES": 0})
def test_with_retention_switched_off_the_command_does_nothing():
    trace_aged(500, "old")
    assert "Nothing to do" in run()
    assert names() == ["old"]


def writer_stats(host: str, silent_days: float) -> WriterStats:
    """A process's writer counters, last updated ``silent_days`` ago."""
    stats = WriterStats.objects.create(host=host, pid=1, process_started_at=timezone.now(), spans_written=10)
    WriterStats.objects.filter(pk=stats.pk).update(updated_at=timezone.now() - dt.timedelta(days=silent_days))
    return stats


def hosts() -> list[str]:
    return sorted(WriterStats.objects.values_list("host", flat=True))


def test_prune_deletes_the_writer_counters_of_processes_silent_for_longer_than_the_retention():
    """Every process that ever wrote has a counters row: recycled workers and cron runs must not pile up forever."""
    writer_stats("gone", 10)
    writer_stats("quiet", 3)
    writer_stats("busy", 0)
    output = run("--days", "7")
    assert hosts() == ["busy", "quiet"]
    assert "Deleted the writer counters of 1 processes silent for more than 7 days." in output


@override_settings(AGENTOPS={"RETENTION_DAYS": 5, "RETENTION_MAX_TRACES": None})
def test_a_count_only_prune_deletes_writer_counters_by_the_retention_days():
    writer_stats("gone", 6)
    writer_stats("busy", 1)
    run("--keep", "100")
    assert hosts() == ["busy"]


def test_writer_counters_updated_today_stay_even_with_days_zero():
    writer_stats("gone", 2)
    writer_stats("busy", 0.5)
    result = prune.prune(days=0)
    assert hosts() == ["busy"] and result.writer_stats == 1


def test_a_dry_run_counts_stale_writer_counters_and_deletes_none():
    writer_stats("gone", 30)
    output = run("--days", "7", "--dry-run")
    assert "Would delete the writer counters of 1 processes" in output
    assert hosts() == ["gone"]


def test_negative_values_are_refused():
    with pytest.raises(CommandError):
        run("--days", "-1")


def test_the_tasks_module_says_celery_is_missing_instead_of_breaking_imports_elsewhere(monkeypatch):
    """Nothing imports agentops_django.tasks but Celery itself; without Celery it fails with a clear message."""
    import importlib
    import sys

    monkeypatch.setitem(sys.modules, "celery", None)
    monkeypatch.delitem(sys.modules, "agentops_django.tasks", raising=False)
    with pytest.raises(ImportError, match="needs Celery"):
        importlib.import_module("agentops_django.tasks")
    monkeypatch.delitem(sys.modules, "agentops_django.tasks", raising=False)


def test_the_celery_task_prunes_with_the_same_rules():
    pytest.importorskip("celery")
    from agentops_django.tasks import prune_traces

    trace_aged(20, "old")
    trace_aged(1, "recent")
    result = prune_traces.apply(kwargs={"days": 7}).get()
    assert result == {"traces": 1, "spans": 2, "writer_stats": 0, "rollup_rows": 0, "dry_run": False}
    assert names() == ["recent"]
    assert prune_traces.name == "agentops_django.tasks.prune_traces"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_pruning_while_spans_are_being_written_loses_no_new_trace_and_leaves_no_pruned_span():
    """Safe to run under load: a writer keeps storing spans of new traces while old ones are pruned."""
    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers need PostgreSQL (AGENTOPS_TEST_DATABASE=postgres)")
    old = [trace_aged(30, f"old{i}", spans=5) for i in range(40)]
    stop = threading.Event()
    written: list[str] = []

    def writer() -> None:
        from django.db import connection as thread_connection

        try:
            while not stop.is_set():
                trace = trace_aged(0, "live", spans=3)
                written.append(trace.trace_id)
        finally:
            thread_connection.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        result = prune.prune(days=7, batch_size=3)
    finally:
        stop.set()
        thread.join()
    assert result.traces == 40 and result.spans == 200
    assert not Span.objects.filter(trace_id__in=[t.trace_id for t in old]).exists()
    assert Trace.objects.filter(trace_id__in=written).count() == len(written)
    assert Span.objects.filter(trace_id__in=written).count() == 3 * len(written)
