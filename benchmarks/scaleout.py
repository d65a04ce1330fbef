#!/usr/bin/env python3
"""Scale-out: many web and worker "machines" writing traces into one PostgreSQL.

Usage (as root: it creates network namespaces)::

    python3 benchmarks/scaleout.py --machines 1,2,3 --seconds 10

Each machine is a network namespace (``ip netns``) with its own address and
host name, joined to the host by a veth pair on a private bridge
(``10.231.0.0/24`` by default: the host is ``.1``, machine *i* is ``.10+i``;
nothing is routed beyond it). The host runs one private PostgreSQL cluster
(``benchmarks/pgcluster.py``) and one private Redis, both bound to the
bridge's address only. Every machine runs the benchmark project
(``benchmarks/project``, ``BENCH_VARIANT=agentops``) under gunicorn and a
Celery worker, all on one queue: a request to ``/enqueue`` on machine A
publishes a task that any machine's worker may run, so with N machines about
(N-1)/N of the traces cross machines.

For each machine count, wrk drives every machine's ``/enqueue`` from the host
at once; then, when the queue is empty and the span count has settled, the
database is checked: traces stored against requests sent, spans per trace,
traces whose spans came from more than one machine (each process names its
machine and role in ``service.name``), and the writers' per-process counters
(``WriterStats``: host, pid). Reported: requests/s, spans/s stored, the
database server's CPU per stored span (the private cluster's processes, read
from ``/proc``), and the most connections the database saw. Prints one JSON
line ``{"scaleout": {...}}``. Namespaces, links and processes are removed at
the end, also on failure.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
from bootstrap import reexec_in_venv  # noqa: E402

reexec_in_venv(Path(__file__))  # run as ``python3 benchmarks/scaleout.py``: in the project's .venv

from benchmarks import procs as p  # noqa: E402
from benchmarks.pgcluster import PrivateCluster, pg_bin  # noqa: E402

PYTHON = sys.executable
BRIDGE = "aoscale0"
NS_PREFIX = "aoscale-m"
DB_NAME = "agentops_scaleout"
QUEUE = "agentops-scaleout"
WEB_PORT = 8000


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=check, timeout=60)


class Network:
    """A bridge on the host and one namespace per machine, each joined to it by a veth pair."""

    def __init__(self, subnet: str, machines: int) -> None:
        self.subnet = subnet  # "10.231.0"
        self.host = f"{subnet}.1"
        self.machines = machines
        self.created: list[str] = []

    def address(self, machine: int) -> str:
        return f"{self.subnet}.{10 + machine}"

    def namespace(self, machine: int) -> str:
        return f"{NS_PREFIX}{machine}"

    def check_free(self) -> None:
        taken = sh("ip", "-o", "-4", "addr", "show").stdout
        if re.search(rf"\binet {re.escape(self.subnet)}\.\d+/", taken) and BRIDGE not in taken:
            raise RuntimeError(f"{self.subnet}.0/24 is in use on this machine; choose another with --subnet")

    def up(self) -> None:
        self.down()  # leftovers of a run that was killed
        self.check_free()
        sh("ip", "link", "add", BRIDGE, "type", "bridge")
        self.created.append("bridge")
        sh("ip", "addr", "add", f"{self.host}/24", "dev", BRIDGE)
        sh("ip", "link", "set", BRIDGE, "up")
        for machine in range(1, self.machines + 1):
            ns = self.namespace(machine)
            sh("ip", "netns", "add", ns)
            self.created.append(ns)
            sh("ip", "link", "add", f"aoscale-h{machine}", "type", "veth", "peer", "name", "eth0", "netns", ns)
            sh("ip", "link", "set", f"aoscale-h{machine}", "master", BRIDGE, "up")
            sh("ip", "-n", ns, "addr", "add", f"{self.address(machine)}/24", "dev", "eth0")
            sh("ip", "-n", ns, "link", "set", "eth0", "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")

    def down(self) -> None:
        """Delete the namespaces (their veth ends go with them) and the bridge."""
        existing = sh("ip", "netns", "list", check=False).stdout
        for name in re.findall(rf"^({NS_PREFIX}\d+)", existing, flags=re.M):
            sh("ip", "netns", "del", name, check=False)
        if BRIDGE in sh("ip", "-o", "link", "show", check=False).stdout:
            sh("ip", "link", "del", BRIDGE, check=False)
        self.created.clear()

    def run_in(self, machine: int, argv: list[str]) -> list[str]:
        """``argv`` in machine ``machine``'s namespace, with a host name of its own (a UTS namespace)."""
        name = f"machine-{machine}"
        script = 'hostname "$0" && exec "$@"'
        return ["ip", "netns", "exec", self.namespace(machine), "unshare", "--uts", "sh", "-c", script, name, *argv]


class ScaleOut:
    """One run: the network, the shared services, and the machines' processes."""

    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args = args
        self.work = work
        self.network = Network(args.subnet, max(args.machines))
        self.procs = p.Processes(work)
        self.cluster: PrivateCluster | None = None
        self.redis_port = 0
        self.redis_proc: Any = None
        self.monitor: Any = None

    # -- shared services ----------------------------------------------------------------

    def start_services(self) -> None:
        host = self.network.host
        self.cluster = PrivateCluster(
            host, p.free_port(), {"max_connections": "400"}, trust=f"{self.network.subnet}.0/24"
        )
        self.cluster.start()
        self.cluster.create_database(DB_NAME)
        self.redis_port = p.free_port()
        # Bound to the private bridge only; protected mode would refuse the namespaces.
        redis = ["redis-server", "--port", str(self.redis_port), "--bind", host, "--protected-mode", "no"]
        self.redis_proc = self.procs.start("redis", [*redis, "--save", "", "--appendonly", "no"], os.environ)
        deadline = time.monotonic() + 20
        while not p.server_up(self.redis_port, host):
            if time.monotonic() > deadline or self.redis_proc.poll() is not None:
                raise RuntimeError("the private Redis did not start (see redis.log)")
            time.sleep(0.1)
        subprocess.run(
            [PYTHON, "-m", "django", "migrate", "-v0", "--settings", "benchmarks.project.settings"],
            cwd=ROOT,
            env=self.env("migrate"),
            check=True,
            timeout=300,
        )

    def env(self, service: str) -> dict[str, str]:
        assert self.cluster is not None
        return self.procs.env(
            BENCH_VARIANT="agentops",
            BENCH_DB="postgres",
            BENCH_PG_NAME=DB_NAME,
            BENCH_PG_HOST=self.network.host,
            BENCH_PG_PORT=str(self.cluster.port),
            BENCH_REDIS_URL=f"redis://{self.network.host}:{self.redis_port}/0",
            BENCH_QUEUE=QUEUE,
            # Which machine and role stored a span: checked when traces are counted.
            AGENTOPS_SERVICE_NAME=service,
        )

    def sql(self, query: str, params: Any = ()) -> list[tuple[Any, ...]]:
        """A query on the benchmark's own connection (its backend's CPU is left out of the figures)."""
        assert self.cluster is not None
        if self.monitor is None:
            self.monitor = self.cluster.connect(DB_NAME)
        cursor = self.monitor.execute(query, params)
        return cursor.fetchall() if cursor.description else []

    def own_backends_cpu(self, pids: list[int]) -> float:
        return sum(backend_cpu_seconds(pid) for pid in pids)

    # -- one machine count ----------------------------------------------------------------

    def start_machines(self, count: int) -> list[Any]:
        started = []
        for machine in range(1, count + 1):
            address = self.network.address(machine)
            gunicorn = [
                PYTHON, "-m", "gunicorn", "benchmarks.project.wsgi:application",
                "-w", str(self.args.web_workers), "-k", "sync", "-b", f"{address}:{WEB_PORT}",
                "--timeout", "60", "--graceful-timeout", "20", "--log-level", "warning",
            ]  # fmt: skip
            worker = [
                PYTHON, "-m", "celery", "-A", "benchmarks.project.celery_app", "worker",
                "-P", "prefork", "-c", str(self.args.worker_concurrency), "-Q", QUEUE,
                "-n", f"worker@machine-{machine}",
                "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "WARNING",
            ]  # fmt: skip
            web_env = self.env(f"machine-{machine}-web")
            worker_env = self.env(f"machine-{machine}-worker")
            started.append(self.procs.start(f"web-{count}-{machine}", self.network.run_in(machine, gunicorn), web_env))
            started.append(
                self.procs.start(f"worker-{count}-{machine}", self.network.run_in(machine, worker), worker_env)
            )
        for machine in range(1, count + 1):
            p.wait_http(f"http://{self.network.address(machine)}:{WEB_PORT}/ping", proc=started[2 * (machine - 1)])
        return started

    def wrk(self, machine: int, seconds: int) -> subprocess.Popen[str]:
        url = f"http://{self.network.address(machine)}:{WEB_PORT}/enqueue"
        argv = ["wrk", "-t1", f"-c{self.args.connections}", f"-d{seconds}s", url]
        return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def queue_length(self) -> int:
        import redis

        client = redis.Redis(host=self.network.host, port=self.redis_port)
        try:
            return int(client.llen(QUEUE))
        finally:
            client.close()

    def settle(self, timeout: float = 180.0) -> float:
        """Wait until the queue is empty and the span count has not moved for 3 s; the time it last moved."""
        deadline = time.monotonic() + timeout
        last_count, last_change = -1, time.time()
        while time.monotonic() < deadline:
            count = self.sql("SELECT count(*) FROM agentops_django_span")[0][0]
            if count != last_count:
                last_count, last_change = count, time.time()
            elif self.queue_length() == 0 and time.time() - last_change > 3.0:
                return last_change
            time.sleep(0.25)
        raise RuntimeError(f"spans still arriving after {timeout:.0f}s")

    def measure(self, count: int) -> dict[str, Any]:
        assert self.cluster is not None
        self.sql("TRUNCATE agentops_django_span, agentops_django_trace, agentops_django_writerstats")
        started = self.start_machines(count)
        try:
            for machine in range(1, count + 1):  # warm up: first requests, connections, imports
                self.wrk(machine, 1).communicate(timeout=60)
            self.settle()
            self.sql("TRUNCATE agentops_django_span, agentops_django_trace")
            peak = PeakConnections(self)
            peak.start()
            peak.ready.wait(10)
            own = [self.sql("SELECT pg_backend_pid()")[0][0], peak.backend]
            own_before = self.own_backends_cpu(own)
            cpu_before = self.cluster.server_cpu_seconds()
            began = time.time()
            runs = [self.wrk(machine, self.args.seconds) for machine in range(1, count + 1)]
            outputs = [run.communicate(timeout=self.args.seconds + 60)[0] for run in runs]
            load_end = time.time()
            finished = self.settle()
            # The server's CPU but for the benchmark's own two sessions (polling counts, sampling connections).
            cpu = self.cluster.server_cpu_seconds() - cpu_before - (self.own_backends_cpu(own) - own_before)
            peak.halt.set()
            peak.join(5)
            load = os.getloadavg()[0]
        finally:
            for proc in started:
                self.procs.stop(proc, timeout=30)
        requests = 0
        for output in outputs:
            found = re.search(r"(\d+) requests in", output)
            bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
            if not found or bad:
                raise RuntimeError(f"wrk: {output}")
            requests += int(found.group(1))
        figures = self.check_database(requests)
        spans = figures["spans"]
        # wrk counts the requests that completed before it stopped; up to its open connections were in flight.
        in_flight = self.args.connections * count
        figures["every_request_stored"] = requests <= figures["traces_web_and_worker"] <= requests + in_flight
        figures.update(
            machines=count,
            requests=requests,
            requests_per_s=round(requests / (load_end - began)),
            spans_per_s=round(spans / (finished - began)),
            seconds_until_stored=round(finished - began, 1),
            db_cpu_us_per_span=round(cpu / spans * 1e6, 1) if spans else None,
            db_cpu_share_of_one_core=round(cpu / (finished - began), 2),
            db_connections_peak=peak.peak,
            load_average=round(load, 1),
        )
        return figures

    def check_database(self, requests: int) -> dict[str, Any]:
        """What the database holds against what was sent: traces, spans per trace, traces across machines."""
        traces, spans = self.sql(
            "SELECT (SELECT count(*) FROM agentops_django_trace), count(*) FROM agentops_django_span"
        )[0]
        per_trace = dict(
            self.sql(
                "SELECT spans, count(*) FROM (SELECT count(*) AS spans FROM agentops_django_span GROUP BY trace_id) t "
                "GROUP BY spans ORDER BY spans"
            )
        )
        # "machine-2-worker" -> "machine-2": the machines whose processes stored a trace's spans.
        crossing, complete, complete_crossing = self.sql(
            "SELECT count(*) FILTER (WHERE machines > 1), count(*) FILTER (WHERE roles = 2), "
            "count(*) FILTER (WHERE roles = 2 AND machines > 1) FROM ("
            "  SELECT trace_id, count(DISTINCT regexp_replace(service_name, '-(web|worker)$', '')) AS machines,"
            "         count(DISTINCT substring(service_name from '(web|worker)$')) AS roles"
            "  FROM agentops_django_span GROUP BY trace_id) t"
        )[0]
        writers = self.sql(
            "SELECT host, count(*), sum(spans_written), sum(spans_dropped), sum(write_errors) "
            "FROM agentops_django_writerstats GROUP BY host ORDER BY host"
        )
        return {
            "traces": traces,
            "spans": spans,
            "traces_per_request": round(traces / requests, 3) if requests else None,
            "spans_per_trace": per_trace,
            "traces_web_and_worker": complete,
            "traces_across_machines": crossing,
            "traces_web_and_worker_across_machines": complete_crossing,
            "traces_across_machines_share": round(crossing / traces, 3) if traces else None,
            "writer_processes": {
                host: {"processes": n, "written": int(w or 0), "dropped": int(d or 0), "errors": int(e or 0)}
                for host, n, w, d, e in writers
            },
        }

    def run(self) -> dict[str, Any]:
        self.network.up()
        self.start_services()
        results = []
        for count in self.args.machines:
            log(f"{count} machine(s): {self.args.seconds}s of wrk on each /enqueue")
            figures = self.measure(count)
            log(f"  {json.dumps(figures)}")
            results.append(figures)
        return {
            "subnet": f"{self.network.subnet}.0/24",
            "web_workers": self.args.web_workers,
            "worker_concurrency": self.args.worker_concurrency,
            "wrk_connections": self.args.connections,
            "seconds": self.args.seconds,
            "cpus": os.cpu_count(),
            "runs": results,
        }

    def close(self) -> None:
        if self.monitor is not None:
            with contextlib.suppress(Exception):
                self.monitor.close()
        with contextlib.suppress(Exception):
            self.procs.close()
        if self.cluster is not None:
            with contextlib.suppress(Exception):
                self.cluster.destroy()
        with contextlib.suppress(Exception):
            self.network.down()


def backend_cpu_seconds(pid: int) -> float:
    """CPU seconds of one server process (0 once it has exited)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class PeakConnections(threading.Thread):
    """The most sessions the benchmark database had at once, sampled every 100 ms."""

    def __init__(self, run: ScaleOut) -> None:
        super().__init__(daemon=True)
        self.run_ = run
        self.halt = threading.Event()
        self.ready = threading.Event()
        self.peak = 0
        self.backend = 0

    def run(self) -> None:
        assert self.run_.cluster is not None
        with self.run_.cluster.connect(DB_NAME) as conn:
            self.backend = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
            self.ready.set()
            while not self.halt.is_set():
                query = "SELECT count(*) - 1 FROM pg_stat_activity WHERE datname = current_database()"
                self.peak = max(self.peak, conn.execute(query).fetchone()[0])
                time.sleep(0.1)


def missing() -> str | None:
    """Why this machine cannot run the benchmark, or None."""
    if sys.platform != "linux":
        return "network namespaces need Linux"
    if os.geteuid() != 0:
        return "it creates network namespaces: run it as root"
    for tool in ("ip", "unshare", "hostname", "wrk", "redis-server", "runuser"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    if pg_bin() is None:
        return "PostgreSQL's initdb was not found (set AGENTOPS_PG_BIN)"
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--machines", default="1,2,3", help="comma-separated machine counts, run in turn")
    parser.add_argument("--seconds", type=int, default=10, help="seconds of wrk per machine count")
    parser.add_argument("--connections", type=int, default=4, help="wrk connections per machine")
    parser.add_argument("--web-workers", type=int, default=1, help="gunicorn sync workers per machine")
    parser.add_argument("--worker-concurrency", type=int, default=1, help="Celery prefork children per machine")
    parser.add_argument("--subnet", default="10.231.0", help="the private /24 of the bridge (first three octets)")
    args = parser.parse_args()
    args.machines = [int(n) for n in args.machines.split(",")]
    reason = missing()
    if reason:
        print(f"scaleout: skipped, {reason}", file=sys.stderr)
        print(json.dumps({"scaleout": {"skipped": reason}}))
        return 0
    work = Path(tempfile.mkdtemp(prefix="agentops-scaleout-"))
    run = ScaleOut(args, work)
    try:
        result = run.run()
    except BaseException:
        log(f"failed; the processes' logs are kept in {work}")
        raise
    finally:
        run.close()
    print(json.dumps({"scaleout": result}))
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
