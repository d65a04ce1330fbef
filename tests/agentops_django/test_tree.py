"""The span tree and waterfall builder: order, placement, and the garbage real traces contain."""

from __future__ import annotations

import datetime as dt
import sys

from hypothesis import given, settings
from hypothesis import strategies as st

from agentops_django._usage import TOTALS_RULE
from agentops_django.admin._tree import (
    ORPHAN_CYCLE,
    ORPHAN_SELF_PARENT,
    build_waterfall,
    totals_of,
)

T0 = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)


def span(span_id, parent="", start=0.0, duration=10.0, kind="tool", status="UNSET", **attributes):
    """A span row as the trace page's query returns it; start and duration in ms."""
    return {
        "span_id": span_id,
        "parent_span_id": parent,
        "name": f"{span_id}.{kind}",
        "kind": kind,
        "status": status,
        "started_at": T0 + dt.timedelta(milliseconds=start),
        "ended_at": T0 + dt.timedelta(milliseconds=start + duration),
        "duration_ms": duration,
        "attributes": attributes,
    }


def ids(waterfall):
    return [row.span_id for row in waterfall.rows]


def depths(waterfall):
    return {row.span_id: row.depth for row in waterfall.rows}


def test_children_follow_their_parent_depth_first_ordered_by_start():
    rows = [
        span("root", start=0, duration=100, kind="request"),
        span("b", "root", start=50, duration=10),
        span("a", "root", start=10, duration=30),
        span("a1", "a", start=12, duration=5),
    ]
    waterfall = build_waterfall(rows)
    assert ids(waterfall) == ["root", "a", "a1", "b"]
    assert depths(waterfall) == {"root": 0, "a": 1, "a1": 2, "b": 1}
    assert not any(row.orphan for row in waterfall.rows)


def test_bars_are_placed_by_start_and_sized_by_duration_on_the_trace_axis():
    waterfall = build_waterfall([span("root", start=0, duration=200), span("child", "root", start=50, duration=100)])
    child = waterfall.rows[1]
    assert waterfall.total_ms == 200
    assert child.left_pct == 25.0
    assert child.width_pct == 50.0


def test_a_span_whose_parent_has_not_arrived_is_attached_under_the_root_and_marked():
    waterfall = build_waterfall([span("root", duration=100), span("lost", "feedfacefeedface", start=20)])
    lost = waterfall.rows[1]
    assert lost.span_id == "lost" and lost.depth == 1
    assert "feedfacefeedface" in lost.orphan
    assert waterfall.orphans == 1


def test_orphans_are_shown_at_top_level_when_the_root_is_missing_too():
    waterfall = build_waterfall([span("x", "missing1", start=5), span("y", "missing2", start=1)])
    assert ids(waterfall) == ["y", "x"]
    assert all(row.depth == 0 and row.orphan for row in waterfall.rows)


def test_orphans_go_under_the_recorded_root_span_when_there_are_several_tops():
    rows = [span("other", start=0), span("root", start=1, duration=50), span("lost", "gone", start=2)]
    waterfall = build_waterfall(rows, root_span_id="root")
    assert depths(waterfall)["lost"] == 1
    assert waterfall.rows[ids(waterfall).index("lost") - 1].span_id == "root"


def test_a_span_naming_itself_as_parent_is_shown_once_and_marked():
    waterfall = build_waterfall([span("root", duration=50), span("self", "self", start=5)])
    assert ids(waterfall) == ["root", "self"]
    assert waterfall.rows[1].orphan == ORPHAN_SELF_PARENT


def test_a_parent_cycle_is_broken_at_its_earliest_span_and_every_span_is_shown_once():
    rows = [span("root", duration=100), span("a", "b", start=10), span("b", "a", start=20), span("c", "b", start=30)]
    waterfall = build_waterfall(rows)
    assert sorted(ids(waterfall)) == ["a", "b", "c", "root"]
    assert ids(waterfall)[1:] == ["a", "b", "c"]
    assert waterfall.rows[1].orphan == ORPHAN_CYCLE
    assert depths(waterfall) == {"root": 0, "a": 0, "b": 1, "c": 2}


def test_a_child_starting_before_its_parent_clock_skew_stays_on_the_axis():
    waterfall = build_waterfall([span("root", start=100, duration=100), span("early", "root", start=40, duration=30)])
    early = waterfall.rows[1]
    assert waterfall.start == T0 + dt.timedelta(milliseconds=40)
    assert early.left_pct == 0.0
    assert 0 <= waterfall.rows[0].left_pct <= 100
    assert all(row.left_pct + row.width_pct <= 100.0 + 1e-9 for row in waterfall.rows)


def test_a_child_outliving_its_parent_is_drawn_to_its_end_and_flagged():
    waterfall = build_waterfall([span("root", duration=50), span("late", "root", start=10, duration=150)])
    late = waterfall.rows[1]
    assert late.outlives_parent
    assert waterfall.total_ms == 160
    assert round(late.left_pct + late.width_pct, 6) == 100.0


def test_a_failed_span_is_marked_and_each_of_its_ancestors_contains_an_error():
    rows = [
        span("root", duration=100),
        span("task", "root", start=1),
        span("llm", "task", start=2, status="ERROR"),
        span("sibling", "root", start=3),
    ]
    waterfall = build_waterfall(rows)
    by_id = {row.span_id: row for row in waterfall.rows}
    assert by_id["llm"].error and not by_id["llm"].contains_error
    assert by_id["task"].contains_error and by_id["root"].contains_error
    assert not by_id["task"].error
    assert not by_id["sibling"].contains_error and not by_id["sibling"].error
    assert waterfall.errors == 1


def test_queue_wait_is_drawn_right_before_the_task_bar_and_extends_the_axis():
    rows = [
        span("root", start=0, duration=10, kind="publish"),
        span("task", "root", start=50, duration=50, kind="celery.task", **{"celery.queue_wait_ms": 40}),
    ]
    waterfall = build_waterfall(rows)
    task = waterfall.rows[1]
    assert task.wait_ms == 40
    assert round(task.wait_left_pct + task.wait_width_pct, 6) == round(task.left_pct, 6)
    assert round(task.wait_width_pct, 6) == 40.0


def test_queue_wait_longer_than_the_trace_before_the_task_moves_the_axis_origin():
    waterfall = build_waterfall(
        [span("task", start=0, duration=10, kind="celery.task", **{"celery.queue_wait_ms": "90"})]
    )
    row = waterfall.rows[0]
    assert waterfall.total_ms == 100
    assert row.wait_left_pct == 0.0 and round(row.left_pct, 6) == 90.0


def test_a_span_stored_twice_is_shown_once():
    waterfall = build_waterfall([span("root", duration=10), span("root", duration=99)])
    assert ids(waterfall) == ["root"]
    assert waterfall.total_ms == 10


def test_zero_length_spans_still_get_a_visible_bar():
    waterfall = build_waterfall([span("root", duration=100), span("instant", "root", start=100, duration=0)])
    instant = waterfall.rows[1]
    assert instant.width_pct > 0
    assert instant.left_pct <= 100


def test_a_ten_thousand_deep_chain_does_not_hit_the_recursion_limit():
    count = max(10_000, sys.getrecursionlimit() * 2)
    rows = [span(f"s{i}", f"s{i - 1}" if i else "", start=i, duration=1) for i in range(count)]
    waterfall = build_waterfall(rows)
    assert len(waterfall.rows) == count
    assert waterfall.rows[-1].depth == count - 1


def test_no_spans_give_an_empty_waterfall():
    waterfall = build_waterfall([])
    assert waterfall.rows == [] and waterfall.total_ms == 0


def test_totals_count_llm_spans_only_so_no_call_is_counted_twice():
    rows = [
        span("agent", kind="agent", **{"gen_ai.usage.input_tokens": 1000, "gen_ai.usage.cost": 9.0}),
        span("llm1", "agent", kind="llm", **{"gen_ai.usage.input_tokens": 10, "gen_ai.usage.output_tokens": 5}),
        span("llm2", "agent", kind="llm", **{"gen_ai.usage.input_tokens": "7", "gen_ai.usage.cost": 0.25}),
        span("tool", "agent", kind="tool", **{"gen_ai.usage.output_tokens": 500}),
    ]
    totals = totals_of(rows)
    assert (totals.llm_calls, totals.input_tokens, totals.output_tokens, totals.total_tokens) == (2, 17, 5, 22)
    assert totals.cost == 0.25
    assert "llm" in TOTALS_RULE and "twice" in TOTALS_RULE


def test_priced_tool_calls_add_their_price_to_the_cost_but_never_tokens():
    rows = [
        span("tool", kind="tool", **{"agentops.tool.cost": 0.5, "gen_ai.usage.output_tokens": 500}),
        span("llm", "tool", kind="llm", **{"gen_ai.usage.input_tokens": 3, "gen_ai.usage.cost": 0.25}),
        span("agent", kind="agent", **{"agentops.tool.cost": 9.0}),
    ]
    totals = totals_of(rows)
    assert (totals.input_tokens, totals.output_tokens) == (3, 0)
    assert totals.cost == 0.75


def test_totals_ignore_unreadable_token_values():
    rows = [span("llm", kind="llm", **{"gen_ai.usage.input_tokens": "many", "gen_ai.usage.output_tokens": None})]
    assert totals_of(rows).total_tokens == 0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 30), st.integers(-5, 500), st.integers(0, 300)), min_size=1, max_size=30))
def test_any_parent_garbage_shows_every_span_exactly_once_on_the_axis(spec):
    """Whatever the parent ids (missing, self, cycles), each span is one row and its bar stays on the axis."""
    rows = [
        span(f"s{i}", f"s{parent}" if parent != i or i % 3 else "", start=start, duration=duration)
        for i, (parent, start, duration) in enumerate(spec)
    ]
    waterfall = build_waterfall(rows)
    assert sorted(ids(waterfall)) == sorted(f"s{i}" for i in range(len(spec)))
    for row in waterfall.rows:
        assert 0.0 <= row.left_pct <= 100.0
        assert row.left_pct + row.width_pct <= 100.0 + 1e-9
        assert row.depth >= 0


# --- where the time went: self time and the critical path ------------------------------------------


def by_id(waterfall):
    return {row.span_id: row for row in waterfall.rows}


def critical(waterfall):
    return {row.span_id for row in waterfall.rows if row.critical}


def test_self_time_is_the_duration_less_the_time_children_cover_counting_overlaps_once():
    rows = by_id(
        build_waterfall(
            [
                span("root", start=0, duration=100, kind="request"),
                span("a", "root", start=10, duration=30),  # 10-40
                span("b", "root", start=30, duration=20),  # 30-50: overlaps a by 10
                span("c", "root", start=80, duration=40),  # 80-120: outlives root, 20 inside
            ]
        )
    )
    assert rows["root"].self_ms == 100 - (40 + 20)  # 10-50 and 80-100 covered
    assert rows["a"].self_ms == 30 and rows["c"].self_ms == 40


def test_self_time_ignores_the_part_of_a_child_before_its_parent_started():
    """Clock skew: a child starting 5 ms before its parent covers only what overlaps."""
    rows = by_id(build_waterfall([span("p", start=10, duration=50), span("k", "p", start=5, duration=15)]))
    assert rows["p"].self_ms == 50 - 10


def test_the_critical_path_follows_sequential_work_and_skips_work_done_in_parallel():
    rows = [
        span("root", start=0, duration=100, kind="agent"),
        span("llm1", "root", start=5, duration=60, kind="llm"),  # 5-65
        span("cache", "root", start=10, duration=20),  # 10-30: beside llm1, the agent never waited on it
        span("llm2", "root", start=70, duration=25, kind="llm"),  # 70-95
        span("llm2_io", "llm2", start=72, duration=5),  # 72-77, then llm2's own work
    ]
    waterfall = build_waterfall(rows)
    assert critical(waterfall) == {"root", "llm1", "llm2", "llm2_io"}


def test_the_critical_path_goes_through_tasks_that_outlive_the_request_that_sent_them():
    """A view that enqueues a task returns first; the trace ends when the task does."""
    rows = [
        span("request", start=0, duration=40, kind="request"),
        span("render", "request", start=20, duration=15),
        span("publish", "request", start=5, duration=2, kind="publish"),
        span("task", "publish", start=60, duration=500, kind="celery.task", **{"celery.queue_wait_ms": 50.0}),
        span("llm", "task", start=100, duration=400, kind="llm"),
    ]
    waterfall = build_waterfall(rows)
    assert critical(waterfall) == {"request", "publish", "task", "llm"}
    assert not by_id(waterfall)["render"].critical


def test_the_critical_path_of_parallel_branches_is_the_branch_that_ends_last():
    rows = [
        span("root", start=0, duration=100),
        span("fast", "root", start=0, duration=40),
        span("slow", "root", start=0, duration=90),
        span("slow_child", "slow", start=50, duration=30),
    ]
    assert critical(build_waterfall(rows)) == {"root", "slow", "slow_child"}


def test_a_cycle_or_a_ten_thousand_deep_chain_does_not_break_self_time_or_the_critical_path():
    cycle = build_waterfall([span("a", "b", start=0, duration=10), span("b", "a", start=1, duration=5)])
    assert len(cycle.rows) == 2 and all(row.self_ms >= 0 for row in cycle.rows)
    chain = [span("s0", start=0, duration=30_000)]
    chain += [span(f"s{i}", f"s{i - 1}", start=i, duration=30_000 - 2 * i) for i in range(1, 10_000)]
    deep = build_waterfall(chain)
    assert len(critical(deep)) == 10_000
    assert by_id(deep)["s0"].self_ms == 2  # 1 ms before its child starts, 1 ms after it ends


def test_rows_carry_their_end_on_the_axis_for_zooming():
    waterfall = build_waterfall([span("root", start=0, duration=200), span("child", "root", start=50, duration=100)])
    assert [(row.offset_ms, row.end_ms) for row in waterfall.rows] == [(0, 200), (50, 150)]


def test_a_trace_whose_root_task_waited_in_the_queue_says_how_long_before_its_first_span():
    waterfall = build_waterfall(
        [span("task", start=0, duration=100, kind="celery.task", **{"celery.queue_wait_ms": 40.0})]
    )
    assert waterfall.queued_before_ms == 40 and waterfall.total_ms == 140
    assert build_waterfall([span("request", start=0, duration=100)]).queued_before_ms == 0
