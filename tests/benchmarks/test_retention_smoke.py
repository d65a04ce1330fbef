"""``benchmarks/retention.py`` still runs, at a tiny size, and its figures add up.

Speed is the script's own report; checked here is that both ways of pruning
delete what the retention rule says while the real writer keeps storing spans
into the table (plain, then partitioned by day) without a failed batch.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.pgcluster import pg_bin

ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_retention_benchmark_prunes_by_batches_and_by_day_partitions_while_the_writer_writes() -> None:
    """20,000 spans over 30 days, 14 kept: both ways delete the older traces; no writer batch fails."""
    if pg_bin() is None:
        pytest.skip("PostgreSQL's initdb is not installed")
    spread, days = 30, 14
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "retention.py"), "--spans", "20000", "--baseline", "1",
         "--spread-days", str(spread), "--days", str(days)],
        cwd=ROOT, capture_output=True, text=True, timeout=280,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])["retention"]
    batched, partitioned = figures["batched_deletes"], figures["day_partitions"]

    # (a) agentops_prune: traces of 10 spans, evenly spread: a share (30 - 14) / 30 of them goes.
    deleted = batched["output"]
    found = re.search(r"Deleted (\d+) traces and (\d+) spans", deleted)
    assert found, deleted
    traces, spans = int(found.group(1)), int(found.group(2))
    assert spans == 10 * traces
    assert abs(traces - 2000 * (spread - days) / spread) <= 2000 / spread, deleted
    assert batched["batches"] == -(-traces // 500)

    # (b) every whole day before the cutoff is dropped, and the trace rows before it deleted in batches.
    assert partitioned["partitions_dropped"] == spread + 1 - days
    assert abs(partitioned["traces"]["traces"] - traces) <= 2000 / spread

    # The concurrent writer kept storing through both, the table swap included.
    windows = [figures["writer_baseline"], batched["writer"]] + [
        value for key, value in partitioned.items() if key.startswith("writer_")
    ]
    assert all(window["failed"] == 0 for window in windows), windows
    assert figures["writer_baseline"]["batches"] > 0
    assert figures["sizes"]["bytes_per_span"] > figures["sizes"]["attributes_avg_bytes"] > 200
