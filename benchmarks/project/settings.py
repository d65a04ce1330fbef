"""Settings of the benchmark project, chosen by environment variables.

* ``BENCH_VARIANT``: ``none``, ``otel``, ``sentry`` or ``agentops``.
* ``BENCH_DB``: ``sqlite`` (file ``BENCH_SQLITE_PATH``) or ``postgres``
  (database ``BENCH_PG_NAME`` on ``BENCH_PG_HOST``:``BENCH_PG_PORT``,
  default 127.0.0.1:5432).
* ``BENCH_AGENTOPS_DB_DOWN_PORT``: point agentops' writer (only) at a closed
  port on 127.0.0.1, to measure memory with its database down.
* ``BENCH_REDIS_URL`` and ``BENCH_QUEUE``: the Celery broker and queue.
"""

from __future__ import annotations

import os

VARIANT = os.environ.get("BENCH_VARIANT", "none")
VARIANTS = ("none", "otel", "sentry", "agentops")
if VARIANT not in VARIANTS:
    raise ValueError(f"BENCH_VARIANT must be one of {VARIANTS}, not {VARIANT!r}")

SECRET_KEY = "agentops-benchmarks-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
TIME_ZONE = "UTC"
ROOT_URLCONF = "benchmarks.project.urls"
WSGI_APPLICATION = "benchmarks.project.wsgi.application"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Django's own startproject defaults, as most sites run them.
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
STATIC_URL = "/static/"

if os.environ.get("BENCH_DB", "sqlite") == "postgres":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": os.environ.get("BENCH_PG_NAME", "agentops_bench"),
            "USER": "postgres",
            "HOST": os.environ.get("BENCH_PG_HOST", "127.0.0.1"),
            "PORT": os.environ.get("BENCH_PG_PORT", "5432"),
            # Persistent connections, as production sites configure them.
            "CONN_MAX_AGE": 60,
            "OPTIONS": {"connect_timeout": 2},
        }
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get("BENCH_SQLITE_PATH", "bench.sqlite3"),
            "CONN_MAX_AGE": 60,
            "OPTIONS": {"timeout": 30},
        }
    }

CELERY_BROKER_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("BENCH_QUEUE", "agentops-bench")
CELERY_TASK_IGNORE_RESULT = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

if VARIANT == "agentops":
    # As users run it: the app installed (it puts its middleware first by itself), defaults otherwise.
    INSTALLED_APPS.append("agentops_django")
    AGENTOPS: dict[str, object] = {}
    down_port = os.environ.get("BENCH_AGENTOPS_DB_DOWN_PORT")
    if down_port:
        # The writer's database is unreachable (a closed port); the site's is fine.
        DATABASES["agentops_down"] = {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": "agentops_bench_down",
            "USER": "postgres",
            "HOST": "127.0.0.1",
            "PORT": down_port,
            "OPTIONS": {"connect_timeout": 1},
        }
        AGENTOPS["DATABASE_ALIAS"] = "agentops_down"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
