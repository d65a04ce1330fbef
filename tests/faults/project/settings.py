"""Settings of the fault project's web and worker processes.

The test project's settings, with what a fault test chooses through the
environment (each process the suite starts gets its own):

* ``AGENTOPS_FAULTS_DATABASE``: JSON of the ``default`` database (a private
  PostgreSQL cluster, or an SQLite file);
* ``AGENTOPS_FAULTS_AGENTOPS``: JSON merged over ``AGENTOPS``;
* ``AGENTOPS_FAULTS_BROKER`` / ``AGENTOPS_FAULTS_QUEUE`` / ``AGENTOPS_FAULTS_CELERY``:
  see :mod:`tests.faults.project.celery_app`.
"""

from __future__ import annotations

import importlib.util
import json
import os

from tests.settings import *  # noqa: F403
from tests.settings import AGENTOPS as _BASE_AGENTOPS
from tests.settings import INSTALLED_APPS as _BASE_APPS
from tests.settings import MIDDLEWARE as _BASE_MIDDLEWARE

ROOT_URLCONF = "tests.faults.project.urls"
INSTALLED_APPS = [*_BASE_APPS, "tests.faults.project"]

_middleware = "agentops_django.middleware.AgentOpsMiddleware"
MIDDLEWARE = list(_BASE_MIDDLEWARE)
if importlib.util.find_spec("agentops_django.middleware") is not None and _middleware not in MIDDLEWARE:
    MIDDLEWARE.insert(0, _middleware)

if os.environ.get("AGENTOPS_FAULTS_DATABASE"):
    DATABASES = {"default": json.loads(os.environ["AGENTOPS_FAULTS_DATABASE"])}

AGENTOPS = {**_BASE_AGENTOPS, **json.loads(os.environ.get("AGENTOPS_FAULTS_AGENTOPS") or "{}")}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {
        "agentops": {"handlers": ["console"], "level": "WARNING"},
        "agentops_django": {"handlers": ["console"], "level": "WARNING"},
    },
}
