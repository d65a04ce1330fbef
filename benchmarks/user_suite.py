"""What ``agentops_django`` costs a user's test suite: the suite's wall time with the app and without.

Usage::

    .venv/bin/python benchmarks/user_suite.py          # 5 rounds; SQLite and PostgreSQL; pytest and manage.py test
    .venv/bin/python benchmarks/user_suite.py --rounds 3 --backend sqlite --runner pytest

The site is the one ``tests/agentops_django/test_user_site.py`` runs
(:mod:`tests.user_site.build`: ``startproject``, a shop app, an eager Celery
task, a dozen ordinary tests), built once in a temporary directory. Each round
runs every configuration (database x runner) without and with the app, in
turn, the order swapped every round so machine drift falls on both alike. A
run is the whole process, as the user waits for it: interpreter start, Django
set-up, test database creation, the tests, teardown.

Prints, per configuration, the median wall time without and with the app, the
spread (min-max) and the ratio with/without (target: at most 1.05), the same
for the CPU time of the run's processes (steadier than wall time on a busy
machine), then one JSON line of the figures (``benchmarks/run.py`` reads it). Exits 1 if a run
fails (a timing of a failing suite means nothing) or PostgreSQL is asked for
and absent. PostgreSQL runs use a database of their own on 127.0.0.1:5432
(``agentops_bench_user_suite_<random>``), dropped at the end with its test
databases.
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import statistics
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.user_site import build

RUNNERS = {"pytest": "pytest", "manage.py": "manage.py test"}
TARGET_RATIO = 1.05


def postgres_up() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 5432), timeout=1).close()
    except OSError:
        return False
    return True


def measure(site: Path, configs: list[tuple[str, str]], rounds: int, pg_name: str | None) -> dict[str, Any]:
    """Run every configuration ``rounds`` times each way.

    Returns:
        ``{"db runner": {"without": [s], "with": [s], "ratio": r, "cpu_without": [s], "cpu_with": [s],
        "cpu_ratio": r}}``: wall seconds, CPU seconds of the run's processes, medians' ratios with/without.
    """
    times: dict[str, Any] = {
        f"{db} {runner}": {"without": [], "with": [], "cpu_without": [], "cpu_with": []} for db, runner in configs
    }
    for round_number in range(rounds):
        order = (False, True) if round_number % 2 == 0 else (True, False)
        for db, runner in configs:
            for agentops in order:
                env = build.environment(database=db, agentops=agentops, pg_name=pg_name)
                outcome = build.run(site, RUNNERS[runner], env)
                if outcome.returncode != 0 or outcome.tests_passed is None:
                    raise RuntimeError(f"the site's suite failed ({db}, app: {agentops}):\n{outcome.tail()}")
                row, way = times[f"{db} {runner}"], "with" if agentops else "without"
                row[way].append(round(outcome.seconds, 3))
                row[f"cpu_{way}"].append(round(outcome.cpu_seconds, 3))
        print(f"round {round_number + 1}/{rounds} done", file=sys.stderr, flush=True)
    for row in times.values():
        row["ratio"] = round(statistics.median(row["with"]) / statistics.median(row["without"]), 3)
        row["cpu_ratio"] = round(statistics.median(row["cpu_with"]) / statistics.median(row["cpu_without"]), 3)
    return times


def print_table(times: dict[str, Any], rounds: int) -> None:
    print(f"A user's test suite, seconds per run: median (min-max) of {rounds} round(s)")
    header = f"{'configuration':<20} {'':<4} {'without the app':>20} {'with the app':>20} {'ratio':>7}"
    print(f"{header}  target: wall <= {TARGET_RATIO}x")
    for name, row in times.items():
        for label, prefix in (("wall", ""), ("cpu", "cpu_")):
            ways = (row[f"{prefix}without"], row[f"{prefix}with"])
            cells = [f"{statistics.median(v):.2f} ({min(v):.2f}-{max(v):.2f})" for v in ways]
            ratio = row[f"{prefix}ratio"]
            first, met = (name, "met" if ratio <= TARGET_RATIO else "MISSED") if label == "wall" else ("", "")
            print(f"{first:<20} {label:<4} {cells[0]:>20} {cells[1]:>20} {ratio:>6.3f}x  {met}".rstrip())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="runs of each configuration each way (default 5)")
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--runner", choices=[*RUNNERS, "both"], default="both")
    args = parser.parse_args()
    dbs = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    if "postgres" in dbs and not postgres_up():
        print("PostgreSQL is not running on 127.0.0.1:5432", file=sys.stderr)
        return 1
    runners = list(RUNNERS) if args.runner == "both" else [args.runner]
    configs = [(db, runner) for db in dbs for runner in runners]
    work = Path(tempfile.mkdtemp(prefix="agentops-bench-user-suite-"))
    pg_name = f"agentops_bench_user_suite_{uuid.uuid4().hex[:6]}" if "postgres" in dbs else None
    try:
        site = build.build(work / "site")
        build.migrate(site, build.environment(agentops=True))
        if pg_name:
            build.pg_create(pg_name)
            build.migrate(site, build.environment(database="postgres", agentops=True, pg_name=pg_name))
        times = measure(site, configs, args.rounds, pg_name)
    finally:
        if pg_name:
            build.pg_drop(build.pg_databases(pg_name) + build.pg_databases(f"test_{pg_name}"))
        shutil.rmtree(work, ignore_errors=True)
    print_table(times, args.rounds)
    print(json.dumps({"user_suite": times, "rounds": args.rounds, "target_ratio": TARGET_RATIO}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
