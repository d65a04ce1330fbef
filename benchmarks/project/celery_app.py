"""The benchmark project's Celery app: a no-op task and a timestamp marker.

The suite publishes ``mark("start")``, N no-ops and ``mark("end")``, then
starts a worker; throughput is N over the time between the two marks, read
from Redis. ``BENCH_PROFILE`` set to a file name makes the marks profile
everything between them in this process (solo pool) into that file.
"""

from __future__ import annotations

import os
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.project.settings")

from benchmarks.project import tracing

tracing.install()

from celery import Celery  # noqa: E402

app = Celery("bench")
app.config_from_object("django.conf:settings", namespace="CELERY")

_profiler = None


@app.task(name="bench.noop")
def noop() -> None:
    """Do nothing: what is measured is the cost around a task."""


@app.task(name="bench.mark")
def mark(key: str) -> None:
    """Record the time this task ran under ``key`` in the broker's Redis."""
    global _profiler
    profile_path = os.environ.get("BENCH_PROFILE")
    if profile_path and key.endswith(":end") and _profiler is not None:
        _profiler.disable()
        _profiler.dump_stats(profile_path)
        _profiler = None
    import redis

    client = redis.Redis.from_url(app.conf.broker_url)
    client.set(key, repr(time.time()), ex=3600)
    client.close()
    if profile_path and key.endswith(":start"):
        import cProfile

        _profiler = cProfile.Profile()
        _profiler.enable()
