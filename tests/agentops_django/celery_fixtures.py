"""Fixtures for the Celery tracing tests: apps on real brokers, real workers.

Import the fixtures you need into a test module (``from
tests.agentops_django.celery_fixtures import *``-style, by name).

* ``traced``: agentops initialised, the Celery signal handlers connected, and
  every span that ends (in any thread of this process) captured.
* ``inprocess_worker``: a worker thread of this process
  (``celery.contrib.testing.worker.start_worker``), parametrised over brokers
  and pools by the test module.
* ``wait_for``: poll a condition with a deadline (never a blind sleep).

Every session uses its own queue (``AGENTOPS_TEST_CELERY_QUEUE``, unique per
test session), so workers of other sessions never take these messages.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from celery import Celery

from agentops.testing import CapturedSpans, captured_spans
from agentops_django import celery as celery_signals
from tests.conftest import IN_CI, require_server

ROOT = Path(__file__).resolve().parents[2]

REDIS_URL = os.environ.get("AGENTOPS_TEST_CELERY_REDIS", "redis://127.0.0.1:6379/11")
RABBITMQ_URL = os.environ.get("AGENTOPS_TEST_CELERY_RABBITMQ", "amqp://guest:guest@127.0.0.1:5672//")
BROKERS = {"redis": REDIS_URL, "rabbitmq": RABBITMQ_URL}
#: Seconds a test waits for a task's result or for spans to arrive.
DEADLINE = 60.0


def session_queue() -> str:
    from tests.celery_app import QUEUE

    return QUEUE


def make_app(broker: str) -> Celery:
    """The test project's app for ``broker`` (``"redis"`` or ``"rabbitmq"``), made current."""
    require_server("redis")  # the result backend
    require_server(broker)
    import tests.testapp.tasks  # noqa: F401 - registers the shared tasks
    from tests.celery_app import app, configure

    if broker != "redis":
        app = Celery("tests-rabbitmq", set_as_current=False)
        app.config_from_object("django.conf:settings", namespace="CELERY")
        configure(app, BROKERS[broker], REDIS_URL)
        app.finalize()
    else:
        configure(app, REDIS_URL, REDIS_URL)
    # Canvas and shared tasks resolve the app per thread, the live server's included.
    app.set_current()
    app.set_default()
    return app


def restore_default_app() -> None:
    from tests.celery_app import app

    app.set_current()
    app.set_default()


@contextlib.contextmanager
def running_worker(app: Celery, pool: str, concurrency: int = 1) -> Iterator[Any]:
    """A worker thread of this process consuming the session's queue."""
    from celery.contrib.testing.worker import start_worker

    with start_worker(
        app,
        pool=pool,
        concurrency=concurrency,
        perform_ping_check=False,
        loglevel="WARNING",
        shutdown_timeout=30,
    ) as worker:
        yield worker


def shared_database_name() -> str:
    """The test database's name, for a worker process to open; skips if only this process can see it."""
    from django.db import connection

    if connection.vendor == "sqlite" and connection.is_in_memory_db():
        message = (
            "worker processes need a test database they can open: set AGENTOPS_TEST_SQLITE_FILE "
            "or AGENTOPS_TEST_DATABASE=postgres"
        )
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return str(connection.settings_dict["NAME"])


@contextlib.contextmanager
def worker_process(
    app: Celery,
    broker: str,
    *,
    pool: str = "prefork",
    concurrency: int = 2,
    extra: tuple[str, ...] = (),
    queue: str | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """A real ``celery worker`` process on ``broker`` that writes its spans to the test database.

    It consumes this session's queue only (or ``queue``: a worker no other
    worker of the session competes with), is pinged until it answers, and is
    stopped with a warm shutdown (SIGTERM) so its processes flush their spans.
    """
    hostname = f"agentops-test-{uuid.uuid4().hex[:8]}@127.0.0.1"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "AGENTOPS_TEST_CELERY_BROKER": BROKERS[broker],
        "AGENTOPS_TEST_CELERY_BACKEND": REDIS_URL,
        "AGENTOPS_TEST_CELERY_QUEUE": queue or session_queue(),
        "AGENTOPS_TEST_WORKER_DATABASE": shared_database_name(),
    }
    command = [
        sys.executable, "-m", "celery", "-A", "tests.celery_app", "worker",
        "-P", pool, "-c", str(concurrency), "-n", hostname, "-Q", queue or session_queue(),
        "-l", "WARNING", "--without-mingle", "--without-gossip", *extra,
    ]  # fmt: skip
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)

        def output() -> str:
            log.seek(0)
            return log.read().decode("utf-8", "replace")[-5000:]

        try:
            deadline = time.monotonic() + 90
            while not app.control.ping([hostname], timeout=0.5):
                if process.poll() is not None:
                    raise AssertionError(f"the worker exited with {process.returncode}:\n{output()}")
                if time.monotonic() > deadline:
                    raise AssertionError(f"the worker did not answer a ping:\n{output()}")
            yield process
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(60)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


@pytest.fixture
def traced(agentops_init: Callable[..., Any]) -> Iterator[CapturedSpans]:
    """agentops initialised, Celery's signals connected, every ended span captured."""
    was_connected = celery_signals.is_connected()
    agentops_init()
    celery_signals.connect()
    try:
        with captured_spans() as spans:
            yield spans
    finally:
        if not was_connected:
            celery_signals.disconnect()


@pytest.fixture
def wait_for() -> Callable[..., Any]:
    """``wait_for(condition, what)`` polls until ``condition()`` is truthy, or fails at the deadline."""

    def wait(condition: Callable[[], Any], what: str, deadline: float = DEADLINE) -> Any:
        end = time.monotonic() + deadline
        while True:
            value = condition()
            if value:
                return value
            if time.monotonic() > end:
                raise AssertionError(f"timed out after {deadline}s waiting for {what}")
            time.sleep(0.02)

    return wait
