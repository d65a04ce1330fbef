"""A long-lived process of one variant that runs measurements on command.

``run.py`` starts one driver per variant and sends each a JSON command per
line on stdin, in turn (A B C D A B C D ...), so that machine drift falls on
every variant alike; each answer is one JSON line on stdout.

Commands (``op``):
  ``wsgi``: call the WSGI handler in-process ``n`` times on ``path``; the median µs,
      and the CPU µs per request of the process's other threads (exporters, the writer).
  ``publish``: publish ``mark(start)``, ``n`` no-ops and ``mark(end)``; µs per ``delay()``.
  ``queries``: agentops only: the µs SQL recording adds per ORM query (batches with
      and without a recorder, interleaved) and per request (start and summing up).
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

    def queries(self, n: int, batch: int = 100, **_: Any) -> dict[str, Any]:
        """What SQL recording adds: µs per query and per request (agentops only).

        Per query: batches of ``batch`` queries through Django's cursor
        (``SELECT %s`` with a parameter, the cheapest statement, so the
        difference is not lost in the query's own time) inside a request-like
        scope with a recorder, and the same batches with no recorder and no
        wrapper on the connection, interleaved; the difference of the median
        batches over ``batch``. ``wrapper_us``: the wrapper alone around a
        no-op instead of a database. Per request: the recorder's start and its
        summing up of 20 queries of two statements, less 20 counted queries.
        """
        if os.environ.get("BENCH_VARIANT") != "agentops":
            return {}
        from django.db import connection, connections
        from opentelemetry import context as context_api

        from agentops.integrations import scope as integration
        from agentops_django import queries

        def remove_wrapper() -> None:
            for each in connections.all(initialized_only=True):
                if queries.execute_wrapper in each.execute_wrappers:
                    each.execute_wrappers.remove(queries.execute_wrapper)

        def run_batch() -> None:
            with connection.cursor() as cursor:
                for i in range(batch):
                    cursor.execute("SELECT %s", [i])

        def noop(sql: Any, params: Any, many: bool, context: Any) -> None:
            return None

        clock = time.perf_counter_ns
        off: list[int] = []
        on: list[int] = []
        bare: list[int] = []
        wrapped: list[int] = []
        fixed: list[int] = []
        counted: list[int] = []
        wrapper_context = {"connection": connection, "cursor": None}
        run_batch()
        for _ in range(max(n // 10, 10)):
            remove_wrapper()
            t0 = clock()
            run_batch()
            off.append(clock() - t0)
            t0 = clock()
            for _ in range(batch):
                noop("SELECT %s", (1,), False, wrapper_context)
            bare.append(clock() - t0)
            scope = integration.open_scope("bench")
            recorder = queries.start(scope)
            assert recorder is not None
            token = context_api.attach(scope.context)
            t0 = clock()
            run_batch()
            on.append(clock() - t0)
            t0 = clock()
            for _ in range(batch):
                queries.execute_wrapper(noop, "SELECT %s", (1,), False, wrapper_context)
            wrapped.append(clock() - t0)
            context_api.detach(token)
            queries.finish(scope.context)
            scope.close()
            # The per-request part: start, 20 queries of two statements counted, summed up.
            scope = integration.open_scope("bench")
            t0 = clock()
            recorder = queries.start(scope)
            assert recorder is not None
            for i in range(20):
                recorder.add('SELECT 1 AS "a" FROM "auth_user" WHERE "id" = %s LIMIT 1' if i else "SELECT 2", 0.0)
            queries.finish(scope.context)
            fixed.append(clock() - t0)
            scope.close()
            t0 = clock()
            for i in range(20):
                recorder.add('SELECT 1 AS "a" FROM "auth_user" WHERE "id" = %s LIMIT 1' if i else "SELECT 2", 0.0)
            counted.append(clock() - t0)
        median = statistics.median
        return {
            "per_query_us": (median(on) - median(off)) / batch / 1000,
            "wrapper_us": (median(wrapped) - median(bare)) / batch / 1000,
            "query_us": median(off) / batch / 1000,
            "per_request_us": (median(fixed) - median(counted)) / 1000,
            "batches": len(on),
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
