"""The benchmark suite still runs: its smallest configuration, end to end.

Speed is not asserted here (that is the suite's own report); what is checked
is that ``python3 benchmarks/run.py`` keeps working as the code under it
changes: every variant starts, every section that has its server runs without
error, and the report and the plot are written.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_benchmark_suite_smallest_configuration_runs_and_writes_its_report(tmp_path: Path) -> None:
    """``run.py --smoke`` exits 0 and writes a table of all four variants, the targets and the plot."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--smoke", "--output-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=850,
    )
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-5000:]
    report = (tmp_path / "benchmarks.md").read_text()
    assert "## Targets" in report
    assert "## 1. Django requests in process" in report
    assert "| view | none | otel | sentry | agentops" in report
    raw = json.loads((tmp_path / "raw.json").read_text())
    assert raw["errors"] == {}
    for path in ("/ping", "/db"):
        row = raw["inproc"]["sqlite"][path]
        assert all(len(row[variant]) == 1 for variant in ("none", "otel", "sentry", "agentops")), row
    assert (tmp_path / "images" / "benchmarks.png").stat().st_size > 0
