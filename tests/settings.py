"""Django settings of the test project.

``AGENTOPS_TEST_DATABASE=postgres`` runs the Django tests on the PostgreSQL
server at 127.0.0.1:5432 (database ``AGENTOPS_TEST_PG_NAME``, default
``agentops``; pytest-django prefixes ``test_``); the default is SQLite.

The SQLite test database is a file, not Django's in-memory default: the
database writer's thread and worker processes open their own connections to
it. Its name comes from ``AGENTOPS_TEST_SQLITE_FILE``, which is set here (per
test process) when absent, so that processes started by a test find it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent
SECRET_KEY = "agentops-tests-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
TIME_ZONE = "UTC"
ROOT_URLCONF = "tests.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# Tests log in as freshly made users: a fast hasher (PBKDF2 costs ~0.25 s per user).
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "agentops_django",
    "tests.testapp",
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

if os.environ.get("AGENTOPS_TEST_DATABASE", "sqlite") == "postgres":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": os.environ.get("AGENTOPS_TEST_PG_NAME", "agentops"),
            "USER": "postgres",
            "HOST": "127.0.0.1",
            "PORT": "5432",
            "TEST": {"NAME": "test_" + os.environ.get("AGENTOPS_TEST_PG_NAME", "agentops")},
        }
    }
else:
    os.environ.setdefault(
        "AGENTOPS_TEST_SQLITE_FILE", os.path.join(tempfile.gettempdir(), f"agentops-test-{os.getpid()}.sqlite3")
    )
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": BASE_DIR / "test.sqlite3",
            "OPTIONS": {"timeout": 30},
            "TEST": {"NAME": os.environ["AGENTOPS_TEST_SQLITE_FILE"]},
        }
    }

AGENTOPS = {
    # Tests read spans from the database right after a request: flush quickly.
    "BATCH_INTERVAL": 0.05,
    # This suite tests the database writer itself (on a file or PostgreSQL
    # test database, which the writer's own connection can share).
    "WRITE_DURING_TESTS": True,
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"agentops": {"handlers": ["console"], "level": "WARNING"}},
}
