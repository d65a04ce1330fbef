#!/usr/bin/env python3
"""The benchmark suite: agentops-django against no tracing, OpenTelemetry and Sentry.

    python3 benchmarks/run.py           # quick mode: short runs, noisy but fast
    python3 benchmarks/run.py --full    # the complete figures (about a quarter hour)

It sets itself up (``.venv``, the benchmark-only packages, the ``agentops_bench``
PostgreSQL database), runs every variant in processes of its own, interleaved
A B C D A B C D ... so machine drift falls on each alike, stops every process it
started, and rewrites ``docs/benchmarks.md`` and ``docs/images/benchmarks.png``.

Sections: in-process WSGI requests; a real server (gunicorn, one sync worker)
under wrk; Celery workers (prefork and solo) on Redis; the SDK alone; the
database writer (``benchmarks/writer.py``) and the admin
(``benchmarks/admin.py``) when present; a user's test suite with and without
the app (``benchmarks/user_suite.py``); memory, with agentops' database up and
down; and profiles of agentops' hot paths. A section whose server or tool is
missing is skipped with the reason in the report.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT))

from bootstrap import reexec_in_venv  # noqa: E402

reexec_in_venv(Path(__file__))

#: Benchmark-only packages (the ``bench`` extra), installed into .venv when missing.
BENCH_PACKAGES = {
    "opentelemetry.instrumentation.django": "opentelemetry-instrumentation-django==0.66b2",
    "opentelemetry.instrumentation.celery": "opentelemetry-instrumentation-celery==0.66b2",
    "sentry_sdk": "sentry-sdk==2.75.0",
    "matplotlib": "matplotlib==3.11.2",
}
VARIANTS = ("none", "otel", "sentry", "agentops")
PATHS = ("/ping", "/db", "/enqueue")
PG_NAME = "agentops_bench"
REDIS_DB = 11
#: The writer's and the admin's scripts get databases of their own, apart from their authors' runs.
WRITER_DB = {"--pg-name": "agentops_bench_suite_writer"}
ADMIN_DB = {"--database": "agentops_bench_suite_admin"}

#: Sizes per mode. ``smoke`` is the smallest configuration, for the smoke test.
MODES: dict[str, dict[str, Any]] = {
    "smoke": dict(
        dbs=("sqlite",),
        rounds=1,
        wsgi_n=30,
        wrk_rounds=1,
        wrk_max_rounds=1,
        wrk_seconds=1,
        celery_rounds=1,
        celery_tasks=40,
        pools=("solo",),
        sdk_rounds=1,
        sdk_n=200,
        mem_requests=300,
        mem_tasks=40,
        profile_n=50,
        writer_args={"--spans": "2000", "--backend": "sqlite", "--processes": "1,4", **WRITER_DB},
        feature_rounds=1,
        feature_spans=2000,
        pricing_args=["--n", "200", "--calls", "20"],
        admin_args={"--traces": "1000", "--big-trace": "200", "--repeat": "1", **ADMIN_DB},
        user_suite_args={"--rounds": "1", "--backend": "sqlite", "--runner": "pytest"},
    ),
    "quick": dict(
        dbs=("sqlite", "postgres"),
        rounds=3,
        wsgi_n=300,
        wrk_rounds=2,
        wrk_max_rounds=4,
        wrk_seconds=2,
        celery_rounds=1,
        celery_tasks=500,
        pools=("prefork", "solo"),
        sdk_rounds=3,
        sdk_n=2_000,
        mem_requests=10_000,
        mem_tasks=2_000,
        profile_n=1_000,
        writer_args={"--spans": "20000", **WRITER_DB},
        feature_rounds=3,
        feature_spans=40000,
        pricing_args=["--n", "5000", "--calls", "200"],
        admin_args={"--traces": "10000", "--repeat": "3", **ADMIN_DB},
        user_suite_args={"--rounds": "3"},
    ),
    # Sized to run in about a quarter of an hour on a quiet two-core machine.
    "full": dict(
        dbs=("sqlite", "postgres"),
        rounds=4,
        wsgi_n=300,
        wrk_rounds=3,
        wrk_max_rounds=6,
        wrk_seconds=4,
        celery_rounds=3,
        celery_tasks=2_000,
        pools=("prefork", "solo"),
        sdk_rounds=3,
        sdk_n=5_000,
        mem_requests=100_000,
        mem_tasks=3_000,
        profile_n=2_000,
        writer_args={**WRITER_DB},
        feature_rounds=5,
        feature_spans=100000,
        pricing_args=[],
        admin_args={"--traces": "20000", **ADMIN_DB},
        user_suite_args={"--rounds": "5"},
    ),
}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def ensure_bench_packages() -> None:
    missing = [spec for module, spec in BENCH_PACKAGES.items() if importlib.util.find_spec(module) is None]
    if missing:
        log(f"installing the benchmark packages into .venv: {' '.join(missing)}")
        pip = [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        subprocess.run([*pip, *missing], check=True)


def ensure_wrk() -> str | None:
    found = shutil.which("wrk")
    if found or os.geteuid() != 0 or not shutil.which("apt-get"):
        return found
    log("installing wrk (apt-get install -y wrk)")
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    if subprocess.run(["apt-get", "install", "-y", "wrk"], **quiet).returncode != 0:
        subprocess.run(["apt-get", "update"], **quiet)
        subprocess.run(["apt-get", "install", "-y", "wrk"], **quiet)
    return shutil.which("wrk")


ensure_bench_packages()

from benchmarks import procs as p  # noqa: E402
from benchmarks import report  # noqa: E402

#: A server series is repeated while (max - min) / median exceeds this (and rounds are left).
WIDE_SPREAD = 0.10


def wide_spread(table: dict[str, dict[str, list[float]]]) -> bool:
    """Whether any untraced or agentops series of ``table`` spreads wider than :data:`WIDE_SPREAD`."""
    for row in table.values():
        for variant in ("none", "agentops"):
            values = row.get(variant) or []
            if len(values) < 2:
                continue
            mid = statistics.median(values)
            if mid and (max(values) - min(values)) / mid > WIDE_SPREAD:
                return True
    return False


def thread_cpu_ns(pid: int) -> dict[int, int]:
    """CPU time in ns of each thread of ``pid`` (the kernel's per-thread run time)."""
    found: dict[int, int] = {}
    with contextlib.suppress(OSError):
        for tid in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                found[int(tid)] = int(Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()[0])
    return found


def settled_thread_cpu_ns(pid: int, quiet_ns: int = 2_000_000, limit: float = 5.0) -> dict[int, int]:
    """:func:`thread_cpu_ns` once the threads other than the main one stopped working (a writer draining)."""
    last = thread_cpu_ns(pid)
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        time.sleep(0.2)
        now = thread_cpu_ns(pid)
        busy = sum(now.get(t, 0) - last.get(t, 0) for t in now if t != pid)
        last = now
        if busy < quiet_ns:
            break
    return last


def cpu_split(before: dict[int, int], after: dict[int, int], pid: int) -> tuple[int, int]:
    """(ns of the main thread, ns of every other thread) between two readings."""
    main = after.get(pid, 0) - before.get(pid, 0)
    other = sum(ns - before.get(tid, 0) for tid, ns in after.items() if tid != pid)
    return main, other


def median(values: list[float]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


class Suite:
    """One run of the suite: its settings, its processes and its results."""

    def __init__(self, mode: str, work: Path, only: set[str] | None, deadline_minutes: float | None = None) -> None:
        self.mode = mode
        self.deadline = None if deadline_minutes is None else time.monotonic() + deadline_minutes * 60
        self.size = MODES[mode]
        self.work = work
        self.only = only
        self.procs = p.Processes(work)
        self.run_id = uuid.uuid4().hex[:8]
        self.queue = f"agentops-bench-{self.run_id}"
        self.web_queue = f"{self.queue}-web"
        self.redis_url = f"redis://127.0.0.1:6379/{REDIS_DB}"
        self.sqlite_path = str(work / "bench.sqlite3")
        self.have_pg = p.server_up(5432)
        self.have_redis = p.server_up(6379)
        self.wrk = ensure_wrk()
        self.results: dict[str, Any] = {
            "meta": {
                "mode": mode,
                "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                "python": platform.python_version(),
                "cpus": os.cpu_count(),
                "load_before": os.getloadavg(),
                "versions": versions(),
            },
            "errors": {},
            "skipped": {},
        }

    # -- set-up -----------------------------------------------------------------

    def env(self, variant: str, db: str = "sqlite", **extra: str) -> dict[str, str]:
        return self.procs.env(
            BENCH_VARIANT=variant,
            BENCH_DB=db,
            BENCH_SQLITE_PATH=self.sqlite_path,
            BENCH_PG_NAME=PG_NAME,
            BENCH_REDIS_URL=self.redis_url,
            BENCH_QUEUE=self.web_queue,
            **extra,
        )

    def dbs(self) -> list[str]:
        dbs = [db for db in self.size["dbs"] if db != "postgres" or self.have_pg]
        if "postgres" in self.size["dbs"] and not self.have_pg:
            self.results["skipped"]["postgres"] = "PostgreSQL is not running on 127.0.0.1:5432"
        return dbs

    def prepare_databases(self) -> None:
        if "postgres" in self.dbs():
            import psycopg

            with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=postgres", autocommit=True) as conn:
                if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [PG_NAME]).fetchone():
                    conn.execute(f"CREATE DATABASE {PG_NAME}")
        for db in self.dbs():
            log(f"migrating the {db} database")
            subprocess.run(
                [sys.executable, "-m", "django", "migrate", "-v0", "--settings", "benchmarks.project.settings"],
                cwd=ROOT,
                env=self.env("agentops", db),
                check=True,
                timeout=300,
            )
        if "postgres" in self.dbs():
            import psycopg

            # Start from empty trace tables, so each run's writer works on the same table sizes.
            with psycopg.connect(f"host=127.0.0.1 port=5432 user=postgres dbname={PG_NAME}", autocommit=True) as conn:
                conn.execute("TRUNCATE agentops_django_span, agentops_django_trace, agentops_django_writerstats")

    def redis(self) -> Any:
        import redis

        return redis.Redis.from_url(self.redis_url)

    def purge_queues(self) -> None:
        if not self.have_redis:
            return
        client = self.redis()
        try:
            for key in client.scan_iter(match=f"{self.queue}*", count=1000):
                client.delete(key)
        finally:
            client.close()

    def wanted(self, section: str) -> bool:
        return self.only is None or section in self.only

    def section(self, name: str, func: Any) -> None:
        if not self.wanted(name):
            return
        if self.deadline is not None and time.monotonic() > self.deadline:
            self.results["skipped"][name] = "not started: the run's --deadline-minutes had passed"
            log(f"== {name}: skipped, past the deadline")
            return
        log(f"== {name}")
        started = time.monotonic()
        try:
            func()
        except Exception as exc:
            self.results["errors"][name] = f"{type(exc).__name__}: {exc}"
            log(f"{name} failed: {exc!r}")
            traceback.print_exc()
        finally:
            self.purge_queues()
            log(f"   {name} took {time.monotonic() - started:.0f}s")

    # -- 1a. in-process WSGI ----------------------------------------------------

    def inproc(self) -> None:
        out = self.results.setdefault("inproc", {})
        paths = [path for path in PATHS if path != "/enqueue" or self.have_redis]
        for db in self.dbs():
            envs = {v: self.env(v, db) for v in VARIANTS}
            with p.drivers(self.procs, envs) as drivers:
                for driver in drivers.values():
                    for path in paths:
                        driver.ask("wsgi", path=path, n=max(self.size["wsgi_n"] // 3, 10))
                table = out.setdefault(db, {path: {v: [] for v in VARIANTS} for path in paths})
                background = self.results.setdefault("inproc_background_cpu", {}).setdefault(
                    db, {path: {v: [] for v in VARIANTS} for path in paths}
                )
                for _ in range(self.size["rounds"]):
                    for path in paths:
                        for variant, driver in drivers.items():
                            answer = driver.ask("wsgi", path=path, n=self.size["wsgi_n"])
                            table[path][variant].append(answer["median_us"])
                            background[path][variant].append(answer["background_cpu_us"])
                # What SQL recording costs, per query and per request (agentops only, on vs off).
                recording = drivers["agentops"].ask("queries", n=self.size["wsgi_n"])
                self.results.setdefault("query_recording", {})[db] = recording
            self.purge_queues()
            log(f"   {db}: " + summarise_latency(out[db]))
            if "per_query_us" in recording:
                log(
                    f"   {db}: SQL recording {recording['per_query_us']:.2f} µs per query "
                    f"(wrapper alone {recording['wrapper_us']:.2f}), "
                    f"{recording['per_request_us']:.1f} µs per request"
                )

    # -- 1b. gunicorn under wrk -------------------------------------------------

    def server(self) -> None:
        """gunicorn (one sync worker) under wrk: requests/s, and CPU per request from per-thread clocks.

        Every round runs each (path, variant) once, interleaved. After the
        fixed rounds, rounds are added (up to ``wrk_max_rounds``) while any
        agentops or untraced series spreads wider than :data:`WIDE_SPREAD` of
        its median. The worker's CPU per request is read from the kernel's
        per-thread run time (``/proc/<pid>/task/<tid>/schedstat``): the
        request thread apart from the other threads (the writer, the SDK's
        exporters), after those have gone idle, so spans written after wrk
        stops are counted too.
        """
        if not self.wrk:
            self.results["skipped"]["server"] = "wrk is not installed"
            return
        out = self.results.setdefault("server", {})
        cpu_out = self.results.setdefault("server_cpu", {})
        loads = self.results.setdefault("server_load", {})
        paths = [path for path in PATHS if path != "/enqueue" or self.have_redis]
        for db in self.dbs():
            servers: dict[str, tuple[Any, int]] = {}
            try:
                for variant in VARIANTS:
                    port = p.free_port()
                    proc = self.procs.start(
                        f"gunicorn-{variant}-{db}",
                        [
                            sys.executable, "-m", "gunicorn", "benchmarks.project.wsgi:application",
                            "-w", "1", "-k", "sync", "-b", f"127.0.0.1:{port}",
                            "--timeout", "30", "--graceful-timeout", "20", "--log-level", "warning",
                        ],
                        self.env(variant, db),
                    )  # fmt: skip
                    servers[variant] = (proc, port)
                workers: dict[str, int] = {}
                for variant, (proc, port) in servers.items():
                    p.wait_http(f"http://127.0.0.1:{port}/ping", proc=proc)
                    workers[variant] = p.children_of(proc.pid)[0]
                    for path in paths:
                        self.run_wrk(port, path, 1)
                table = out.setdefault(db, {path: {v: [] for v in VARIANTS} for path in paths})
                empty = {path: {v: {"request": [], "other": []} for v in VARIANTS} for path in paths}
                cpu = cpu_out.setdefault(db, empty)
                rounds = 0
                while rounds < self.size["wrk_rounds"] or (
                    rounds < self.size.get("wrk_max_rounds", rounds) and wide_spread(table)
                ):
                    rounds += 1
                    loads.setdefault(db, []).append(os.getloadavg()[0])
                    for path in paths:
                        for variant, (proc, port) in servers.items():
                            if proc.poll() is not None:
                                raise RuntimeError(f"gunicorn of {variant} exited with code {proc.returncode}")
                            before = thread_cpu_ns(workers[variant])
                            rps, requests = self.run_wrk(port, path, self.size["wrk_seconds"])
                            after = settled_thread_cpu_ns(workers[variant])
                            main_ns, other_ns = cpu_split(before, after, workers[variant])
                            table[path][variant].append(rps)
                            cpu[path][variant]["request"].append(main_ns / 1000 / requests)
                            cpu[path][variant]["other"].append(other_ns / 1000 / requests)
                        self.purge_queues()
            finally:
                for proc, _port in servers.values():
                    self.procs.stop(proc, timeout=30)
            log(f"   {db}: " + summarise_rps(out[db]) + f" ({rounds} rounds)")

    def run_wrk(self, port: int, path: str, seconds: int) -> tuple[float, int]:
        """(requests/s, requests completed) of one wrk run."""
        result = subprocess.run(
            [self.wrk, "-t1", "-c8", f"-d{seconds}s", f"http://127.0.0.1:{port}{path}"],
            capture_output=True,
            text=True,
            timeout=seconds + 60,
        )
        match = re.search(r"Requests/sec:\s+([\d.]+)", result.stdout)
        count = re.search(r"(\d+) requests in", result.stdout)
        if result.returncode != 0 or not match or not count:
            raise RuntimeError(f"wrk failed on {path}: {result.stdout} {result.stderr}")
        bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", result.stdout)
        if bad:
            raise RuntimeError(f"{path}: {bad.group(1)} error responses under wrk")
        return float(match.group(1)), max(1, int(count.group(1)))

    # -- 2. Celery ----------------------------------------------------------------

    def celery(self) -> None:
        if not self.have_redis:
            self.results["skipped"]["celery"] = "Redis is not running on 127.0.0.1:6379"
            return
        out = self.results.setdefault("celery", {})
        db = "postgres" if self.have_pg else "sqlite"
        self.results["meta"]["celery_db"] = db
        n = self.size["celery_tasks"]
        envs = {v: self.env(v, db) for v in VARIANTS}
        with p.drivers(self.procs, envs) as drivers:
            for pool in self.size["pools"]:
                table = out.setdefault(pool, {v: {"tasks_per_s": [], "publish_us": []} for v in VARIANTS})
                for _ in range(self.size["celery_rounds"]):
                    for variant, driver in drivers.items():
                        tps, publish_us = self.celery_run(driver, envs[variant], variant, pool, n)
                        table[variant]["tasks_per_s"].append(tps)
                        table[variant]["publish_us"].append(publish_us)
                log(f"   {pool}: " + summarise_celery(table))

    def celery_run(
        self, driver: p.Driver, env: dict[str, str], variant: str, pool: str, n: int, concurrency: int = 2,
        *, on_end: Any = None,
    ) -> tuple[float, float]:  # fmt: skip
        """Publish ``n`` no-ops between two marks, run a worker over them; tasks/s and µs per publish."""
        run_id = f"bench:{self.run_id}:{uuid.uuid4().hex[:8]}"
        queue = f"{self.queue}-{uuid.uuid4().hex[:6]}"
        answer = driver.ask("publish", n=n, queue=queue, run_id=run_id, flush="BENCH_AGENTOPS_DB_DOWN_PORT" not in env)
        args = [
            sys.executable, "-m", "celery", "-A", "benchmarks.project.celery_app", "worker",
            "-P", pool, "-Q", queue, "-n", f"bench-{variant}-{uuid.uuid4().hex[:6]}@127.0.0.1",
            "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "WARNING",
        ]  # fmt: skip
        if pool == "prefork":
            args += ["-c", str(concurrency)]
        worker = self.procs.start(f"worker-{variant}-{pool}", args, env)
        client = self.redis()
        try:
            deadline = time.monotonic() + 120 + n / 50
            end = None
            while time.monotonic() < deadline:
                end = client.get(f"{run_id}:end")
                if end is not None or worker.poll() is not None:
                    break
                time.sleep(0.05)
            if end is None:
                raise RuntimeError(f"{variant} {pool} worker did not finish {n} tasks (exit code {worker.poll()})")
            start = float(client.get(f"{run_id}:start"))
            if on_end is not None:
                on_end(worker)
            client.delete(f"{run_id}:start", f"{run_id}:end")
            client.delete(queue)
            return n / (float(end) - start), answer["median_us"]
        finally:
            client.close()
            self.procs.stop(worker, timeout=60)

    # -- 3. the SDK alone ---------------------------------------------------------

    def sdk(self) -> None:
        out = self.results.setdefault("sdk", {"floor": {}, "agentops": {}})
        llm_url = None
        server = None
        if importlib.util.find_spec("agentops.testing.llm_server") is not None:
            port = p.free_port()
            # TCP_NODELAY on the stand-in's sockets: without it every call waits ~40 ms for a delayed ACK.
            code = (
                "import sys; import agentops.testing.llm_server as m; "
                "m._Handler.disable_nagle_algorithm = True; m.main(sys.argv[1:])"
            )
            server = self.procs.start("llm-server", [sys.executable, "-c", code, "--port", str(port)], self.procs.env())
            llm_url = f"http://127.0.0.1:{port}/v1"
        else:
            self.results["skipped"]["sdk_llm"] = "agentops.testing.llm_server is not there yet"
        try:
            if server is not None:
                deadline = time.monotonic() + 30
                while not p.server_up(port) and time.monotonic() < deadline:
                    time.sleep(0.1)
            for _ in range(self.size["sdk_rounds"]):
                for mode in ("floor", "agentops"):
                    args = [sys.executable, "benchmarks/sdk_bench.py", "--mode", mode, "--n", str(self.size["sdk_n"])]
                    if llm_url:
                        args += ["--llm-url", llm_url]
                    result = subprocess.run(
                        args, cwd=ROOT, env=self.procs.env(), capture_output=True, text=True, timeout=600
                    )
                    if result.returncode != 0:
                        raise RuntimeError(f"sdk_bench {mode} failed: {result.stderr[-2000:]}")
                    for key, value in json.loads(result.stdout.strip().splitlines()[-1]).items():
                        out[mode].setdefault(key, []).append(value)
        finally:
            if server is not None:
                self.procs.stop(server)
        log("   " + ", ".join(f"{m}.{k}={median(v):.1f}µs" for m in out for k, v in out[m].items()))

    # -- 4./5. the writer's and the admin's own scripts ---------------------------

    def external(self, name: str, options: dict[str, str]) -> None:
        script = ROOT / "benchmarks" / f"{name}.py"
        entry: dict[str, Any] = self.results.setdefault(name, {})
        if not script.exists():
            entry["missing"] = f"benchmarks/{name}.py is not there yet; the suite runs it when it exists"
            return
        helptext = subprocess.run(
            [sys.executable, str(script), "--help"], cwd=ROOT, env=self.procs.env(), capture_output=True, text=True,
            timeout=60,
        ).stdout  # fmt: skip
        # Only the options the script has (it is written separately and may change).
        args = [part for flag, value in options.items() if flag in helptext for part in (flag, value)]
        command = [sys.executable, str(script), *args]
        entry["command"] = " ".join(["python3", f"benchmarks/{name}.py", *args])
        started = time.monotonic()
        proc = self.procs.start(f"external-{name}", command, self.procs.env(), pipe=True)
        timeout = 1800 if self.mode == "full" else 600
        try:
            stdout, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            stdout = ""
        finally:
            self.procs.stop(proc)
        entry["returncode"] = proc.returncode
        entry["seconds"] = round(time.monotonic() - started, 1)
        entry["output"] = stdout[-8000:]
        entry["json"] = [json.loads(line) for line in stdout.splitlines() if line.startswith("{") and _is_json(line)]
        log(f"   {name}.py exited {proc.returncode} after {entry['seconds']}s")
        if proc.returncode != 0:
            errors = (self.work / f"external-{name}.log").read_text(errors="replace")[-1500:]
            raise RuntimeError(f"benchmarks/{name}.py exited {proc.returncode} (timeout {timeout}s): {errors}")

    # -- 4b. what each feature costs ----------------------------------------------

    def features(self) -> None:
        """The cost of the features added beside the spans: the overview's rollup and the process
        identity (the writer with each one off, interleaved with it on), pricing (its own script);
        SQL recording is measured by the in-process section.
        """
        out = self.results.setdefault("features", {})
        writer = out.setdefault("writer", {})
        pg_name = WRITER_DB["--pg-name"]
        variants = {
            "all": ["--pg-name", pg_name],
            "no rollup": ["--no-rollup", "--pg-name", pg_name],
            "no identity": ["--no-identity", "--pg-name", pg_name],
            # (a database of its own: the index is dropped there)
            "no span-name index": ["--no-span-search-index", "--pg-name", f"{pg_name}_plain"],
        }
        for _ in range(self.size["feature_rounds"]):
            for db in self.dbs():
                for variant, flags in variants.items():
                    if variant == "no span-name index" and db != "postgres":
                        continue
                    command = [
                        sys.executable, "benchmarks/writer.py", "--backend", "postgres" if db == "postgres" else db,
                        "--processes", "1", "--spans", str(self.size["feature_spans"]), *flags,
                    ]  # fmt: skip
                    result = subprocess.run(
                        command, cwd=ROOT, env=self.procs.env(), capture_output=True, text=True, timeout=600
                    )
                    if result.returncode != 0:
                        raise RuntimeError(f"writer.py {' '.join(flags)} failed: {result.stderr[-2000:]}")
                    line = next(json.loads(x)["writer"] for x in result.stdout.splitlines() if x.startswith("{"))
                    cell = writer.setdefault(db, {}).setdefault(variant, {})
                    for key in ("writer_cpu_us", "server_cpu_us", "spans_per_s"):
                        cell.setdefault(key, []).append(line[key])
        result = subprocess.run(
            [sys.executable, "benchmarks/pricing.py", "--json", *self.size["pricing_args"]],
            cwd=ROOT, env=self.procs.env(), capture_output=True, text=True, timeout=900,
        )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(f"pricing.py failed: {result.stderr[-2000:]}")
        out["pricing"] = json.loads(result.stdout.strip().splitlines()[-1])
        for db, row in writer.items():
            costs = ", ".join(f"{v}={median(c['writer_cpu_us']):.1f}" for v, c in row.items())
            log(f"   {db}: writer CPU µs/span {costs}")
        log(f"   pricing: {out['pricing'].get('price_openai')} µs per priced span")

    # -- 6. memory ----------------------------------------------------------------

    def memory(self) -> None:
        out = self.results.setdefault("memory", {})
        db = "postgres" if self.have_pg else "sqlite"
        down = str(p.closed_port())
        # A listener that never answers: connections hang until their timeout, so the writer stalls
        # and its queue fills up to QUEUE_SIZE (a closed port fails fast instead).
        hanging = p.free_port()
        code = (
            "import socket, sys, time; s = socket.socket(); s.bind(('127.0.0.1', int(sys.argv[1]))); "
            "s.listen(4096); time.sleep(3600)"
        )
        listener = self.procs.start("hanging-db", [sys.executable, "-c", code, str(hanging)], self.procs.env())
        configs = {
            "none": self.env("none", db),
            "agentops": self.env("agentops", db),
            "agentops, database down": self.env(
                "agentops", db, BENCH_AGENTOPS_DB_DOWN_PORT=down, BENCH_NO_FINAL_FLUSH="1"
            ),
            "agentops, database hanging": self.env(
                "agentops", db, BENCH_AGENTOPS_DB_DOWN_PORT=str(hanging), BENCH_NO_FINAL_FLUSH="1"
            ),
        }
        try:
            self._memory(out, db, configs)
        finally:
            self.procs.stop(listener)

    def _memory(self, out: dict[str, Any], db: str, configs: dict[str, dict[str, str]]) -> None:
        n = self.size["mem_requests"]
        chunk = max(n // 10, 1)
        with p.drivers(self.procs, configs) as drivers:
            web = out.setdefault("web", {})
            # The untraced baseline's memory is flat; a fifth of the requests shows it.
            sizes = {name: n // 5 if name == "none" else n for name in drivers}
            for name, driver in drivers.items():
                driver.ask("wsgi", path="/ping", n=200, flush=False)
                rss = driver.ask("rss")["rss_kib"]
                web[name] = {"requests": sizes[name], "rss_after_warmup_kib": rss, "rss_kib": []}
            for _ in range(n // chunk):
                for name, driver in drivers.items():
                    driver.ask("wsgi", path="/ping", n=sizes[name] // (n // chunk), flush=False)
                    web[name]["rss_kib"].append(driver.ask("rss")["rss_kib"])
            for name, driver in drivers.items():
                if "database" not in name:
                    driver.ask("flush")
                web[name]["peak_kib"] = driver.ask("rss")["hwm_kib"]
                web[name]["counters"] = driver.ask("counters")
            log("   web: " + ", ".join(f"{k} peak {v['peak_kib'] / 1024:.0f} MiB" for k, v in web.items()))
            if not self.have_redis:
                self.results["skipped"]["memory_worker"] = "Redis is not running"
                return
            worker = out.setdefault("worker", {})
            for name, driver in drivers.items():
                peaks: list[int] = []

                def read_child(proc: Any, peaks: list[int] = peaks) -> None:
                    peaks.extend(p.read_status_kib("VmHWM", child) for child in p.children_of(proc.pid))

                variant = "agentops" if name.startswith("agentops") else "none"
                tps, _ = self.celery_run(
                    driver, configs[name], variant, "prefork", self.size["mem_tasks"], concurrency=1, on_end=read_child
                )
                worker[name] = {"tasks": self.size["mem_tasks"], "peak_kib": max(peaks, default=0), "tasks_per_s": tps}
            log("   worker: " + ", ".join(f"{k} peak {v['peak_kib'] / 1024:.0f} MiB" for k, v in worker.items()))

    # -- profiles -----------------------------------------------------------------

    def profile(self) -> None:
        from benchmarks.driver import format_profile

        out = self.results.setdefault("profiles", {})
        db = "postgres" if self.have_pg else "sqlite"
        n = self.size["profile_n"]
        with p.drivers(self.procs, {"agentops": self.env("agentops", db), "none": self.env("none", db)}) as drivers:
            for name, driver in drivers.items():
                out[f"/ping ({name})"] = driver.ask("profile", path="/ping", n=n)["text"]
            if not self.have_redis:
                return
            for name, driver in drivers.items():
                stats_path = self.work / f"task-{name}.prof"
                variant_env = {**self.env(name, db), "BENCH_PROFILE": str(stats_path)}
                self.celery_run(driver, variant_env, name, "solo", n)
                if stats_path.exists():
                    out[f"no-op task, solo worker ({name})"] = format_profile(stats_path, n, 25)

    # -- all ----------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        self.prepare_databases()
        # Most wanted first: with a deadline, what is left out is at the end.
        self.section("inproc", self.inproc)
        self.section("server", self.server)
        self.section("celery", self.celery)
        self.section("memory", self.memory)
        self.section("writer", lambda: self.external("writer", self.size["writer_args"]))
        self.section("features", self.features)
        self.section("admin", lambda: self.external("admin", self.size["admin_args"]))
        self.section("user_suite", lambda: self.external("user_suite", self.size["user_suite_args"]))
        self.section("sdk", self.sdk)
        self.section("profile", self.profile)
        # Scale sections: minutes each and root for the namespaces, so only when named in --only.
        for name in ("scaleout", "retention"):
            if self.only is not None and name in self.only:
                size = {"--spans": "200000"} if name == "retention" and self.mode != "full" else {}
                self.section(name, lambda name=name, size=size: self.external(name, size))
        self.results["meta"]["load_after"] = os.getloadavg()
        return self.results


def _is_json(line: str) -> bool:
    try:
        json.loads(line)
    except ValueError:
        return False
    return True


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("Django", "celery", "opentelemetry-sdk", "opentelemetry-instrumentation-django", "sentry-sdk"):
        with contextlib.suppress(PackageNotFoundError):
            found[name] = version(name)
    return found


def summarise_latency(table: dict[str, dict[str, list[float]]]) -> str:
    return "; ".join(
        f"{path} " + " ".join(f"{v}={median(vals):.0f}µs" for v, vals in row.items()) for path, row in table.items()
    )


def summarise_rps(table: dict[str, dict[str, list[float]]]) -> str:
    return "; ".join(
        f"{path} " + " ".join(f"{v}={median(vals):.0f}/s" for v, vals in row.items()) for path, row in table.items()
    )


def summarise_celery(table: dict[str, dict[str, list[float]]]) -> str:
    return " ".join(f"{v}={median(row['tasks_per_s']):.0f}/s" for v, row in table.items())


def main() -> int:
    parser = argparse.ArgumentParser(description="Run the benchmark suite and rewrite docs/benchmarks.md.")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--full", action="store_true", help="the complete figures (longer runs, more rounds)")
    group.add_argument("--smoke", action="store_true", help="the smallest configuration (for the smoke test)")
    parser.add_argument(
        "--only",
        help="comma-separated sections: inproc,server,celery,sdk,writer,features,admin,user_suite,memory,profile "
        "(and, only when named, scaleout,retention)",
    )
    parser.add_argument(
        "--deadline-minutes", type=float, help="start no section after this many minutes (the rest is reported skipped)"
    )
    parser.add_argument("--output-dir", type=Path, default=ROOT / "docs", help="where benchmarks.md and images/ go")
    parser.add_argument(
        "--report-only", action="store_true", help="rewrite the report and plot from benchmarks/results.json"
    )
    options = parser.parse_args()
    if options.report_only:
        results = json.loads((ROOT / "benchmarks" / "results.json").read_text())
        report.write(results, options.output_dir / "benchmarks.md", options.output_dir / "images" / "benchmarks.png")
        if options.output_dir == ROOT / "docs":
            report.update_readme(results, ROOT / "README.md")
        return 0
    mode = "full" if options.full else "smoke" if options.smoke else "quick"
    only = set(options.only.split(",")) if options.only else None
    work = Path(tempfile.mkdtemp(prefix="agentops-bench-"))
    log(f"agentops-django benchmarks, {mode} mode; logs of the processes in {work}")
    suite = Suite(mode, work, only, options.deadline_minutes)
    try:
        results = suite.run()
    finally:
        suite.procs.close()
    options.output_dir.mkdir(parents=True, exist_ok=True)
    (options.output_dir / "images").mkdir(exist_ok=True)
    default_dir = options.output_dir == ROOT / "docs"
    raw = ROOT / "benchmarks" / "results.json" if default_dir else options.output_dir / "raw.json"
    raw.write_text(json.dumps(results, indent=1, default=str))
    report.write(results, options.output_dir / "benchmarks.md", options.output_dir / "images" / "benchmarks.png")
    log(f"wrote {options.output_dir / 'benchmarks.md'}")
    if default_dir and report.update_readme(results, ROOT / "README.md"):
        log("updated the summary table in README.md")
    if results["errors"]:
        log(f"sections with errors: {', '.join(results['errors'])} (process logs kept in {work})")
        return 1
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
