"""A user's site and its ordinary test suite: built from ``startproject``, run in processes of its own.

The site is what a user has after following Django's and Celery's tutorials:
``django-admin startproject proj``, the ``shop`` app of ``site/`` (models, a
few views, one of which writes an order, an eager Celery task that writes a
receipt, and tests for pytest-django and for Django's runner), Celery's app in
``proj/celery.py``, a ``pytest.ini``, and a few lines at the end of the
generated settings. Nothing in the site's code or tests knows about agentops;
environment variables choose the set-up:

* ``USER_SITE_AGENTOPS=1`` adds ``"agentops_django"`` to ``INSTALLED_APPS``;
* ``USER_SITE_DATABASE=postgres`` uses PostgreSQL on 127.0.0.1:5432, database
  ``USER_SITE_PG_NAME``, test database ``USER_SITE_PG_TEST_NAME`` (Django's
  ``test_<name>`` when unset); otherwise it is startproject's SQLite
  ``db.sqlite3``, whose test database Django keeps in memory.

The suite runs in a subprocess whose environment is cleared of what this
repository's own test run sets (``DJANGO_SETTINGS_MODULE``, ``PYTEST_*``,
``AGENTOPS_*``, ...), so the site sees what it would see on a user's machine.
Used by ``tests/agentops_django/test_user_site.py`` and
``benchmarks/user_suite.py``.
"""

from __future__ import annotations

import dataclasses
import os
import re
import resource
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

#: The files copied over the generated project.
SITE_FILES = Path(__file__).resolve().parent / "site"
#: Not copied: bytecode a run of the template may have left.
NOT_COPIED = shutil.ignore_patterns("__pycache__")
PYTHON = sys.executable

#: Appended to the settings ``startproject`` wrote.
SETTINGS_TAIL = """

# -- Added for the shop, Celery and the test databases -------------------------
import os  # noqa: E402

INSTALLED_APPS += ["shop"]
if os.environ.get("USER_SITE_AGENTOPS") == "1":
    INSTALLED_APPS += ["agentops_django"]

# Otherwise startproject's SQLite database: its test database is in memory.
if os.environ.get("USER_SITE_DATABASE") == "postgres":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": os.environ["USER_SITE_PG_NAME"],
            "USER": "postgres",
            "HOST": "127.0.0.1",
            "PORT": "5432",
            "TEST": {"NAME": os.environ.get("USER_SITE_PG_TEST_NAME")},
        }
    }

CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = True
"""

#: pytest's options in every run: no cache directory in the site; pytest-asyncio, which this repository's
#: environment has and the site does not use, left out (it warns about its unset options, an error here).
PYTEST = ["-m", "pytest", "-p", "no:cacheprovider", "-p", "no:asyncio"]
#: The ways the suite is run, by name: arguments after ``python``.
COMMANDS: dict[str, list[str]] = {
    "pytest": PYTEST,
    "pytest --reuse-db": [*PYTEST, "--reuse-db"],
    "manage.py test": ["manage.py", "test", "--noinput"],
    "manage.py test --parallel 2": ["manage.py", "test", "--noinput", "--parallel", "2"],
}

#: Variables the site's processes do not inherit: this repository's test run (pytest, pytest-django,
#: tests/settings.py) sets some of them, and any of them would change what the site does.
SCRUBBED_PREFIXES = ("DJANGO_", "AGENTOPS_", "PYTEST_", "CELERY_", "USER_SITE_", "COV_CORE_")
SCRUBBED = {"PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONWARNINGS"}
#: Proxy variables: the live-server tests must reach 127.0.0.1 directly.
PROXIES = {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}


@dataclasses.dataclass
class Outcome:
    """One run of the site's suite: ``seconds`` of wall time, ``cpu_seconds`` of its processes (user + system)."""

    command: str
    returncode: int
    output: str
    seconds: float
    cpu_seconds: float = 0.0

    @property
    def tests_passed(self) -> int | None:
        """Tests that passed, from pytest's summary or Django's ``Ran N tests`` + ``OK``; None if not found."""
        if match := re.search(r"\b(\d+) passed\b", self.output):
            return int(match.group(1))
        match = re.search(r"^Ran (\d+) tests? in ", self.output, re.MULTILINE)
        if match and re.search(r"^OK\b", self.output, re.MULTILINE):
            return int(match.group(1))
        return None

    def tail(self, chars: int = 4000) -> str:
        return f"$ {self.command} (exit code {self.returncode})\n{self.output[-chars:]}"


def build(dest: Path) -> Path:
    """Make the site in ``dest`` (created): startproject, the shop app, the settings' tail, the shop's migration.

    Returns:
        ``dest``, the directory of ``manage.py``.
    """
    dest.mkdir(parents=True, exist_ok=True)
    django_admin = Path(PYTHON).parent / "django-admin"
    check([str(django_admin), "startproject", "proj", str(dest)], dest, environment())
    shutil.copytree(SITE_FILES, dest, ignore=NOT_COPIED, dirs_exist_ok=True)
    with open(dest / "proj" / "settings.py", "a") as settings:
        settings.write(SETTINGS_TAIL)
    urls = (dest / "proj" / "urls.py").read_text()
    for old, new in (
        ("\nfrom django.urls import path\n", "\nfrom django.urls import include, path\n"),
        ("\nurlpatterns = [\n", '\nurlpatterns = [\n    path("", include("shop.urls")),\n'),
    ):
        if urls.count(old) != 1:
            raise RuntimeError(f"startproject's urls.py is not what this build expects:\n{urls}")
        urls = urls.replace(old, new)
    (dest / "proj" / "urls.py").write_text(urls)
    check([PYTHON, "manage.py", "makemigrations", "shop", "-v", "0"], dest, environment())
    return dest


def environment(
    *, database: str = "sqlite", agentops: bool = False, pg_name: str | None = None, pg_test_name: str | None = None
) -> dict[str, str]:
    """The environment of a process of the site: the caller's, scrubbed, plus the site's choices.

    Args:
        database: ``"sqlite"`` or ``"postgres"``.
        agentops: Whether ``agentops_django`` is installed.
        pg_name: The PostgreSQL database (``postgres`` only).
        pg_test_name: The PostgreSQL test database; Django's ``test_<pg_name>`` when None.
    """
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(SCRUBBED_PREFIXES) and key not in SCRUBBED and key.lower() not in PROXIES
    }
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    if agentops:
        env["USER_SITE_AGENTOPS"] = "1"
    if database == "postgres":
        if not pg_name:
            raise ValueError("a PostgreSQL site needs pg_name")
        env["USER_SITE_DATABASE"] = "postgres"
        env["USER_SITE_PG_NAME"] = pg_name
        if pg_test_name:
            env["USER_SITE_PG_TEST_NAME"] = pg_test_name
    elif database != "sqlite":
        raise ValueError(f"unknown database {database!r}")
    return env


def run(site: Path, command: str, env: dict[str, str], *, timeout: float = 300) -> Outcome:
    """Run the suite one of the :data:`COMMANDS` ways; output is stdout and stderr together.

    The CPU time is that of the children this process reaped meanwhile: run one suite at a time to measure it.
    """
    started = time.monotonic()
    cpu_before = _children_cpu()
    try:
        done = subprocess.run(
            [PYTHON, *COMMANDS[command]],
            cwd=site,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:
        output = exc.output.decode(errors="replace") if isinstance(exc.output, bytes) else exc.output or ""
        return Outcome(command, -1, output + f"\n[timed out after {timeout:.0f} s]", time.monotonic() - started)
    return Outcome(command, done.returncode, done.stdout, time.monotonic() - started, _children_cpu() - cpu_before)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def migrate(site: Path, env: dict[str, str]) -> None:
    """``manage.py migrate`` the site's development database."""
    check([PYTHON, "manage.py", "migrate", "-v", "0"], site, env)


def check(args: list[str], cwd: Path, env: dict[str, str]) -> None:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited {done.returncode}:\n{done.stdout}{done.stderr}")


# -- the databases ------------------------------------------------------------------


def stored_spans(site: Path, database: str = "sqlite", pg_name: str | None = None) -> tuple[int, int] | None:
    """(traces, spans) stored in the site's development database; None if it has no ``agentops_django`` tables."""
    queries = ("SELECT count(*) FROM agentops_django_trace", "SELECT count(*) FROM agentops_django_span")
    if database == "postgres":
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port=5432 user=postgres dbname={pg_name}") as conn:
            if conn.execute("SELECT to_regclass('agentops_django_span')").fetchone() == (None,):
                return None
            return tuple(conn.execute(query).fetchone()[0] for query in queries)  # type: ignore[return-value]
    path = site / "db.sqlite3"
    if not path.exists():
        return None
    conn = sqlite3.connect(path)
    try:
        if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'agentops_django_span'").fetchone():
            return None
        return tuple(conn.execute(query).fetchone()[0] for query in queries)  # type: ignore[return-value]
    finally:
        conn.close()


def pg_admin() -> Any:
    """An autocommit connection to the ``postgres`` maintenance database."""
    import psycopg

    return psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=postgres", autocommit=True)


def pg_databases(prefix: str) -> list[str]:
    """Names of the PostgreSQL databases that start with ``prefix``, sorted."""
    pattern = prefix.replace("\\", "\\\\").replace("_", "\\_").replace("%", "\\%") + "%"
    with pg_admin() as conn:
        rows = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s ORDER BY datname", [pattern])
        return [row[0] for row in rows.fetchall()]


def pg_create(name: str) -> None:
    with pg_admin() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')


def pg_drop(names: Iterable[str]) -> None:
    """Drop the databases (those that exist), closing any connection left to them."""
    with pg_admin() as conn:
        for name in names:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
