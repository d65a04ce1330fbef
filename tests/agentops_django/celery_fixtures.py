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
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from celery import Celery
from kombu import Exchange, Queue

from agentops.testing import CapturedSpans, captured_spans
from agentops_django import celery_signals
from tests.conftest import require_server

REDIS_URL = os.environ.get("AGENTOPS_TEST_CELERY_REDIS", "redis://127.0.0.1:6379/11")
RABBITMQ_URL = os.environ.get("AGENTOPS_TEST_CELERY_RABBITMQ", "amqp://guest:guest@127.0.0.1:5672//")
BROKERS = {"redis": REDIS_URL, "rabbitmq": RABBITMQ_URL}
#: Seconds a test waits for a task's result or for spans to arrive.
DEADLINE = 30.0


def session_queue() -> str:
    import tests.celery_app  # noqa: F401 - sets the session's queue name

    return os.environ["AGENTOPS_TEST_CELERY_QUEUE"]


def configure_app(app: Celery, broker_url: str) -> Celery:
    """Point ``app`` at a broker, the Redis result backend and this session's queue."""
    queue = session_queue()
    app.conf.update(
        broker_url=broker_url,
        result_backend=REDIS_URL,
        task_default_queue=queue,
        # RabbitMQ forgets the session's queue ten minutes after its last use.
        task_queues=[Queue(queue, Exchange(queue), routing_key=queue, queue_arguments={"x-expires": 600_000})],
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        result_expires=600,
    )
    return app


def make_app(broker: str) -> Celery:
    """The test project's app for ``broker`` (``"redis"`` or ``"rabbitmq"``)."""
    require_server("redis")  # the result backend
    require_server(broker)
    import tests.testapp.tasks  # noqa: F401 - registers the shared tasks
    from tests.celery_app import app

    if broker == "redis":
        return configure_app(app, REDIS_URL)
    other = Celery("tests-rabbitmq")
    other.config_from_object("django.conf:settings", namespace="CELERY")
    configure_app(other, RABBITMQ_URL)
    other.finalize()
    return other


@contextlib.contextmanager
def running_worker(app: Celery, pool: str, concurrency: int = 1) -> Iterator[Any]:
    """A worker thread of this process consuming the session's queue."""
    from celery.contrib.testing.worker import start_worker

    app.set_current()
    with start_worker(
        app,
        pool=pool,
        concurrency=concurrency,
        perform_ping_check=False,
        loglevel="WARNING",
        shutdown_timeout=30,
    ) as worker:
        yield worker


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
