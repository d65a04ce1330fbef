"""A long-lived process of one variant that runs measurements on command.

``run.py`` starts one driver per variant and sends each a JSON command per
line on stdin, in turn (A B C D A B C D ...), so that machine drift falls on
every variant alike; each answer is one JSON line on stdout.

Commands (``op``):
  ``wsgi``: call the WSGI handler in-process ``n`` times on ``path``; the median µs,
      and the CPU µs per request of the process's other threads (exporters, the writer).
  ``publish``: publish ``mark(start)``, ``n`` no-ops and ``mark(end)``; µs per ``delay()``.
  ``queries``: agentops only: the µs SQL recording adds per query and per request
      (``/queries?n=1`` and ``?n=many`` with ``RECORD_QUERIES`` on and off, interleaved).
  ``rss``: this process's current and peak resident memory.
  ``profile``: cProfile ``n`` calls on ``path``; the top functions.
  ``flush``: flush agentops' processors (the database writer), if any.
  ``quit``.
"""

from __future__ import annotations

import gc
import io
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks.procs import read_status_kib

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.project.settings")


def background_cpu_ns() -> int:
    """CPU time used so far by this process's threads other than the main one (exporters, writers)."""
    total = 0
    main = threading.main_thread()
    for thread in threading.enumerate():
        if thread is main or thread.ident is None:
            continue
        try:
            total += time.clock_gettime_ns(time.pthread_getcpuclockid(thread.ident))
        except (OSError, OverflowError):
            continue  # the thread ended meanwhile
    return total


class Driver:
    def __init__(self) -> None:
        from benchmarks.project.wsgi import application

        self.app = application
        self.base = {
            "REQUEST_METHOD": "GET",
            "SCRIPT_NAME": "",
            "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8000",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
            "HTTP_HOST": "127.0.0.1:8000",
            "HTTP_USER_AGENT": "agentops-bench",
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": False,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
        }
        self.status = ""

    def _start_response(self, status: str, headers: list[Any], exc_info: Any = None) -> None:
        self.status = status

    def call(self, path: str, query: str = "") -> None:
        environ = dict(self.base)
        environ["PATH_INFO"] = path
        environ["QUERY_STRING"] = query
        environ["wsgi.input"] = io.BytesIO(b"")
        response = self.app(environ, self._start_response)
        try:
            for _ in response:
                pass
        finally:
            close = getattr(response, "close", None)
            if close is not None:
                close()
        if not self.status.startswith("200"):
            raise RuntimeError(f"{path} answered {self.status}")

    def wsgi(self, path: str, n: int, query: str = "", flush: bool = True, **_: Any) -> dict[str, Any]:
        timings = []
        clock = time.perf_counter_ns
        gc.collect()
        background = background_cpu_ns()
        for _ in range(n):
            t0 = clock()
            self.call(path, query)
            timings.append(clock() - t0)
        if flush:
            self.flush()
        background = background_cpu_ns() - background
        return {"median_us": statistics.median(timings) / 1000, "n": n, "background_cpu_us": background / n / 1000}

    def publish(self, n: int, queue: str, run_id: str, flush: bool = True, **_: Any) -> dict[str, Any]:
        from benchmarks.project.celery_app import mark, noop

        mark.apply_async((f"{run_id}:start",), queue=queue)
        timings = []
        clock = time.perf_counter_ns
        for _ in range(n):
            t0 = clock()
            noop.apply_async(queue=queue)
            timings.append(clock() - t0)
        mark.apply_async((f"{run_id}:end",), queue=queue)
        if flush:
            self.flush()
        return {"median_us": statistics.median(timings) / 1000, "n": n}

    def queries(self, n: int, many: int = 20, rounds: int = 5, **_: Any) -> dict[str, Any]:
        """Median µs of ``/queries?n=1`` and ``?n=many`` with ``RECORD_QUERIES`` on and off.

        Off means no wrapper on the connections at all (it is taken off again
        after each round on). The difference between the two sizes, divided
        by ``many - 1``, is the cost per query; what remains at ``n=1`` is the
        cost per request (starting and summing up the recorder).
        """
        if os.environ.get("BENCH_VARIANT") != "agentops":
            return {}
        from django.conf import settings
        from django.db import connections

        from agentops_django.conf import get_config
        from agentops_django.queries import execute_wrapper

        base = dict(settings.AGENTOPS)
        timings: dict[tuple[bool, int], list[int]] = {(on, k): [] for on in (False, True) for k in (1, many)}
        clock = time.perf_counter_ns
        per_round = max(n // rounds, 5)
        try:
            for _ in range(rounds):
                for on in (False, True):
                    settings.AGENTOPS = {**base, "RECORD_QUERIES": on}
                    get_config.cache_clear()
                    for connection in connections.all(initialized_only=True):
                        if execute_wrapper in connection.execute_wrappers:
                            connection.execute_wrappers.remove(execute_wrapper)
                    for k in (1, many):
                        query = f"n={k}"
                        self.call("/queries", query)  # warm
                        for _ in range(per_round):
                            t0 = clock()
                            self.call("/queries", query)
                            timings[(on, k)].append(clock() - t0)
                    self.flush()
        finally:
            settings.AGENTOPS = base
            get_config.cache_clear()
        med = {key: statistics.median(values) / 1000 for key, values in timings.items()}
        added_one = med[(True, 1)] - med[(False, 1)]
        added_many = med[(True, many)] - med[(False, many)]
        per_query = (added_many - added_one) / (many - 1)
        return {
            "per_query_us": per_query,
            "per_request_us": added_one - per_query,
            "median_us": {f"{'on' if on else 'off'} n={k}": value for (on, k), value in med.items()},
            "many": many,
        }

    def rss(self, **_: Any) -> dict[str, Any]:
        return {"rss_kib": read_status_kib("VmRSS"), "hwm_kib": read_status_kib("VmHWM")}

    def profile(self, path: str, n: int, top: int = 25, **_: Any) -> dict[str, Any]:
        import cProfile

        for _ in range(min(n, 200)):
            self.call(path)
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(n):
            self.call(path)
        profiler.disable()
        return {"text": format_profile(profiler, n, top)}

    def counters(self, **_: Any) -> dict[str, Any]:
        if os.environ.get("BENCH_VARIANT") != "agentops":
            return {}
        import agentops

        return dict(agentops.counters())

    def flush(self, **_: Any) -> dict[str, Any]:
        if os.environ.get("BENCH_VARIANT") == "agentops":
            import agentops

            return {"flushed": bool(agentops.flush(30_000))}
        return {"flushed": True}


def format_profile(profile: Any, calls: int, top: int) -> str:
    """The top functions of a profile by own time, as text, in µs per measured unit.

    Args:
        profile: A ``cProfile.Profile`` or the path of a stats file.
        calls: How many units (requests, tasks) the profile covers.
        top: How many functions to list.
    """
    import pstats

    stats = pstats.Stats(str(profile) if isinstance(profile, Path) else profile)
    total = stats.total_tt
    rows = []
    for (filename, line, func), (_cc, nc, tt, ct, _callers) in stats.stats.items():
        rows.append((tt, ct, nc, _short(filename), line, func))
    rows.sort(reverse=True)

    def show(row: tuple[Any, ...]) -> str:
        tt, ct, nc, filename, line, func = row
        return (
            f"{tt / calls * 1e6:8.2f} µs own {ct / calls * 1e6:8.2f} µs cum {nc / calls:6.2f} calls  "
            f"{filename}:{line}({func})"
        )

    out = [f"total {total / calls * 1e6:.1f} µs per unit (profiler on, so inflated); own time / cumulative per unit:"]
    out.extend(show(row) for row in rows[:top])
    ours = [row for row in rows if row[3].startswith(("agentops", "opentelemetry"))]
    if ours:
        out.append("")
        out.append("agentops and OpenTelemetry functions, by cumulative time per unit:")
        ours.sort(key=lambda row: row[1], reverse=True)
        out.extend(show(row) for row in ours[:top])
    return "\n".join(out)


def _short(filename: str) -> str:
    """A file name relative to the checkout, site-packages or the standard library."""
    if "site-packages/" in filename:
        return filename.partition("site-packages/")[2]
    root = str(Path(__file__).resolve().parent.parent) + "/"
    if filename.startswith(root):
        return filename[len(root) :]
    if "/lib/python3." in filename:
        return filename.partition("/lib/python3.")[2].partition("/")[2]
    return filename


def main() -> None:
    out = sys.stdout
    # Keep stdout for answers only.
    sys.stdout = sys.stderr
    driver = Driver()
    out.write(json.dumps({"ready": True, "pid": os.getpid()}) + "\n")
    out.flush()
    for line in sys.stdin:
        command = json.loads(line)
        op = command.pop("op")
        if op == "quit":
            break
        try:
            answer = getattr(driver, op)(**command)
        except Exception as exc:  # report, keep serving
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        out.write(json.dumps(answer) + "\n")
        out.flush()
    if os.environ.get("BENCH_NO_FINAL_FLUSH") != "1":
        driver.flush()


if __name__ == "__main__":
    main()
