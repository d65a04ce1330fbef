"""Settings of the demo site.

Runs with no server at all by default: SQLite for the database, kombu's
filesystem transport for the Celery broker and Celery's ``file://`` result
backend, all under ``.demo/`` (or ``DEMO_DATA_DIR``). Real servers are one
environment variable away:

* ``DATABASE_URL`` (e.g. ``postgres://postgres@127.0.0.1:5432/agentops_demo``),
  parsed with ``dj_database_url``;
* ``CELERY_BROKER_URL`` (e.g. ``redis://127.0.0.1:6379/0`` or
  ``amqp://guest:guest@127.0.0.1:5672//``);
* ``CELERY_RESULT_BACKEND`` (defaults to the broker for Redis, else the files).

Tracing needs only ``"agentops_django"`` in ``INSTALLED_APPS``; the
``AGENTOPS`` dictionary below is optional tuning.
"""

from __future__ import annotations

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
#: Where the embedded database, broker and result files live (gitignored).
DATA_DIR = Path(os.environ.get("DEMO_DATA_DIR") or BASE_DIR / ".demo").resolve()

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "demo-only-not-a-secret")
DEBUG = os.environ.get("DJANGO_DEBUG", "").lower() in {"1", "true", "yes", "on"}
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]"]
USE_TZ = True
TIME_ZONE = "UTC"
ROOT_URLCONF = "demo_project.urls"
WSGI_APPLICATION = "demo_project.wsgi.application"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "agentops_django",
    "demo_project.research",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
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
STATIC_ROOT = DATA_DIR / "static"

# --- Database -----------------------------------------------------------------
if os.environ.get("DATABASE_URL"):
    import dj_database_url

    DATABASES = {"default": dj_database_url.parse(os.environ["DATABASE_URL"], conn_max_age=60)}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": DATA_DIR / "demo.sqlite3",
            "OPTIONS": {
                # The web server, two worker processes and their trace writers
                # share one file: wait for the lock instead of failing, take it
                # up front (no deadlock upgrading a read lock) and let readers
                # run beside the writer (WAL).
                "timeout": 30,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    }

# --- Celery ---------------------------------------------------------------------
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL") or "filesystem://"
if CELERY_BROKER_URL.startswith("filesystem://"):
    # kombu's filesystem transport, writing each message atomically (see demo_project/broker.py).
    CELERY_BROKER_TRANSPORT = "demo_project.broker:Transport"
    _queue = DATA_DIR / "broker" / "queue"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue),
        "data_folder_out": str(_queue),
        "store_processed": True,
        "processed_folder": str(DATA_DIR / "broker" / "processed"),
        "control_folder": str(DATA_DIR / "broker" / "control"),
        # The transport polls its folder; a tenth of a second keeps chains snappy.
        "polling_interval": 0.1,
    }

if os.environ.get("CELERY_RESULT_BACKEND"):
    CELERY_RESULT_BACKEND = os.environ["CELERY_RESULT_BACKEND"]
elif CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    CELERY_RESULT_BACKEND = CELERY_BROKER_URL
else:
    # Needs no server and supports chords (through celery.chord_unlock).
    CELERY_RESULT_BACKEND = "file://" + str(DATA_DIR / "results")

CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
#: A queue of the demo's own, so that on a shared broker it neither takes nor leaves others' messages.
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("DEMO_CELERY_QUEUE", "demo-research")
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_EXPIRES = 3600
#: How often celery.chord_unlock looks whether a chord's header is done.
CELERY_RESULT_CHORD_RETRY_INTERVAL = 0.5
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    "research-digest": {
        "task": "research.write_digest",
        "schedule": float(os.environ.get("DEMO_DIGEST_INTERVAL") or 30),
    },
}

for _folder in (DATA_DIR, DATA_DIR / "broker" / "queue", DATA_DIR / "broker" / "processed", DATA_DIR / "results"):
    _folder.mkdir(parents=True, exist_ok=True)

# --- The research assistant -------------------------------------------------------
#: The model asked through ``openai.OpenAI()`` (which reads OPENAI_BASE_URL and OPENAI_API_KEY).
DEMO_LLM_MODEL = os.environ.get("DEMO_LLM_MODEL", "gpt-4o-mini")

# --- agentops (optional: every key has a default) ------------------------------------
AGENTOPS = {
    # Write spans a little sooner than the default so the demo's table fills fast.
    "BATCH_INTERVAL": 0.2,
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {
        "agentops": {"handlers": ["console"], "level": "WARNING"},
        "agentops_django": {"handlers": ["console"], "level": "WARNING"},
        "demo_project": {"handlers": ["console"], "level": "INFO"},
    },
}
