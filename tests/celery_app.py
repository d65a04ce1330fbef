"""The test project's Celery app, set up as Celery's Django guide says.

The broker, the result backend and the queue come from the environment, so a
test session (and the worker processes it starts, which inherit it) can pick
its own and never take another session's messages:

* ``AGENTOPS_TEST_CELERY_BROKER`` (default Redis database 11 on loopback),
* ``AGENTOPS_TEST_CELERY_BACKEND`` (default the same Redis database),
* ``AGENTOPS_TEST_CELERY_QUEUE`` (default a name unique to this process).
"""

from __future__ import annotations

import os
import uuid

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
os.environ.setdefault("AGENTOPS_TEST_CELERY_QUEUE", f"agentops-tests-{uuid.uuid4().hex[:12]}")

DEFAULT_REDIS = "redis://127.0.0.1:6379/11"

app = Celery("tests")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.update(
    broker_url=os.environ.get("AGENTOPS_TEST_CELERY_BROKER", DEFAULT_REDIS),
    result_backend=os.environ.get("AGENTOPS_TEST_CELERY_BACKEND", DEFAULT_REDIS),
    task_default_queue=os.environ["AGENTOPS_TEST_CELERY_QUEUE"],
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
    worker_send_task_events=False,
    result_expires=600,
    # A test that fails must not leave a worker retrying a message forever.
    broker_transport_options={"visibility_timeout": 600},
)
app.autodiscover_tasks()
