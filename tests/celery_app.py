"""The test project's Celery app, set up as Celery's Django guide says.

The broker, the result backend and the queue come from the environment, so a
test session (and the worker processes it starts, which inherit it) can pick
its own and never take another session's messages:

* ``AGENTOPS_TEST_CELERY_BROKER`` (default Redis database 11 on loopback),
* ``AGENTOPS_TEST_CELERY_BACKEND`` (default the same Redis database),
* ``AGENTOPS_TEST_CELERY_QUEUE`` (default a name unique to this process),
* ``AGENTOPS_TEST_WORKER_DATABASE``: for worker processes started by the
  tests, the name of the test database to use (the tests' own, so the test
  reads what the worker wrote),
* ``AGENTOPS_TEST_WORKER_TRACING``: ``off`` runs the worker with
  ``AGENTOPS["ENABLED"]`` false, ``no-writer`` with spans made but not stored
  (to measure what tracing costs a worker).
"""

from __future__ import annotations

import os
import uuid

from celery import Celery
from kombu import Exchange, Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
os.environ.setdefault("AGENTOPS_TEST_CELERY_QUEUE", f"agentops-tests-{uuid.uuid4().hex[:12]}")

DEFAULT_REDIS = "redis://127.0.0.1:6379/11"
QUEUE = os.environ["AGENTOPS_TEST_CELERY_QUEUE"]

if os.environ.get("AGENTOPS_TEST_WORKER_DATABASE"):
    from django.conf import settings

    # Before Django opens any connection: this worker writes where the test reads.
    settings.DATABASES["default"]["NAME"] = os.environ["AGENTOPS_TEST_WORKER_DATABASE"]
_TRACING = {"off": {"ENABLED": False}, "no-writer": {"DATABASE_WRITER": False}}
if os.environ.get("AGENTOPS_TEST_WORKER_TRACING") in _TRACING:
    from django.conf import settings

    settings.AGENTOPS = {**settings.AGENTOPS, **_TRACING[os.environ["AGENTOPS_TEST_WORKER_TRACING"]]}

app = Celery("tests")
app.config_from_object("django.conf:settings", namespace="CELERY")


def configure(app: Celery, broker_url: str, backend_url: str) -> Celery:
    """Point ``app`` at a broker, a result backend and this session's queue."""
    app.conf.update(
        broker_url=broker_url,
        result_backend=backend_url,
        task_default_queue=QUEUE,
        # RabbitMQ forgets a session's queue ten minutes after its last use.
        task_queues=[Queue(QUEUE, Exchange(QUEUE), routing_key=QUEUE, queue_arguments={"x-expires": 600_000})],
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        result_expires=600,
    )
    return app


configure(
    app,
    os.environ.get("AGENTOPS_TEST_CELERY_BROKER", DEFAULT_REDIS),
    os.environ.get("AGENTOPS_TEST_CELERY_BACKEND", DEFAULT_REDIS),
)
app.autodiscover_tasks()
