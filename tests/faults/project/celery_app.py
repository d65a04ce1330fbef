"""The fault project's Celery app: broker and queue from the environment.

* ``AGENTOPS_FAULTS_BROKER``: the broker URL (a private Redis of the test);
  results go to the same Redis unless it is an AMQP URL (then ``rpc://``);
* ``AGENTOPS_FAULTS_BACKEND``: the result backend, if not the broker's;
* ``AGENTOPS_FAULTS_QUEUE``: the queue (unique per test, so no other worker
  takes its messages);
* ``AGENTOPS_FAULTS_CELERY``: JSON of extra ``app.conf`` values
  (``task_acks_late``, ``worker_max_tasks_per_child``, ...).
"""

from __future__ import annotations

import json
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.faults.project.settings")

# Without a broker of the test, messages stay in this process (never on a shared server).
_broker = os.environ.get("AGENTOPS_FAULTS_BROKER", "memory://")

app = Celery("faults", set_as_current=True)
app.conf.update(
    broker_url=_broker,
    result_backend=os.environ.get("AGENTOPS_FAULTS_BACKEND")
    or ("rpc://" if _broker.startswith("amqp") else (None if _broker == "memory://" else _broker)),
    task_default_queue=os.environ.get("AGENTOPS_FAULTS_QUEUE", "agentops-faults"),
    broker_connection_retry_on_startup=True,
    broker_connection_retry=True,
    broker_connection_max_retries=None,
    worker_hijack_root_logger=False,
    worker_send_task_events=False,
    worker_prefetch_multiplier=1,
    result_expires=600,
    broker_transport_options={"visibility_timeout": 600},
)
app.conf.update(json.loads(os.environ.get("AGENTOPS_FAULTS_CELERY") or "{}"))
app.conf.include = ["tests.faults.project.tasks"]
