"""The promise of the README, kept end to end: a project made with ``startproject``.

The package is built as a wheel and installed apart from the checkout; a new
Django project adds ``"agentops_django"`` to ``INSTALLED_APPS``, sets Celery up
as Celery's Django guide says, and runs ``migrate``. With nothing else
configured, a real request to a view that enqueues a task, served by
``runserver`` and run by a prefork worker over Redis, lands in PostgreSQL as one
trace: the request span, the publish span and the task span, parent to child.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
import uuid
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
DEADLINE = 90.0

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]


def wait_for(condition: Callable[[], Any], what: str, deadline: float = DEADLINE) -> Any:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"gave up waiting for {what} after {deadline:.0f} s")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The distribution built as users get it (``pip wheel .``)."""
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (built,) = dist.glob("agentops_django-*.whl")
    return built


def test_the_wheel_ships_both_packages_with_templates_static_files_and_migrations(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for expected in (
        "agentops/__init__.py",
        "agentops/py.typed",
        "agentops/integrations/_openai.py",
        "agentops/testing/llm_server.py",
        "agentops_django/py.typed",
        "agentops_django/migrations/0001_initial.py",
        "agentops_django/templates/agentops_django/trace_detail.html",
        "agentops_django/static/agentops_django/trace.css",
        "agentops_django/static/agentops_django/trace.js",
        "agentops_django/management/commands/agentops_prune.py",
    ):
        assert expected in names, expected
    assert not [name for name in names if name.startswith(("tests/", "demo_project/", "benchmarks/"))]


class Project:
    """A ``startproject`` project with the wheel on its path and the processes it runs."""

    def __init__(self, root: Path, site: Path, database: str, queue: str) -> None:
        self.root = root
        self.env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(site), str(root)]),
            "DJANGO_SETTINGS_MODULE": "proj.settings",
            "PYTHONUNBUFFERED": "1",
        }
        self.database = database
        self.queue = queue
        self.processes: list[subprocess.Popen[bytes]] = []

    def run(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, *args], cwd=self.root, env=self.env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def start(self, *args: str, log: str) -> subprocess.Popen[bytes]:
        with open(self.root / log, "wb") as out:
            process = subprocess.Popen(
                [sys.executable, *args],
                cwd=self.root,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.processes.append(process)
        return process

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)


def _admin_connection() -> Any:
    import psycopg

    return psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True)


@pytest.fixture
def project(wheel: Path, tmp_path: Path) -> Iterator[Project]:
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
        check=True,
        capture_output=True,
    )
    database = f"agentops_startproject_{uuid.uuid4().hex[:8]}"
    with _admin_connection() as connection:
        connection.execute(f'CREATE DATABASE "{database}"')
    root = tmp_path / "proj"
    root.mkdir()
    made = Project(root, site, database, f"startproject-{uuid.uuid4().hex[:8]}")
    try:
        yield made
    finally:
        made.stop()
        with _admin_connection() as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def _write_project(project: Project) -> None:
    project.run("-m", "django", "startproject", "proj", str(project.root))
    project.run("manage.py", "startapp", "shop")
    root = project.root
    with open(root / "proj" / "settings.py", "a") as settings:
        settings.write(
            textwrap.dedent(
                f"""
                INSTALLED_APPS += ["agentops_django", "shop"]
                DATABASES = {{"default": {{
                    "ENGINE": "django.db.backends.postgresql",
                    "NAME": "{project.database}", "USER": "postgres", "HOST": "127.0.0.1", "PORT": "5432",
                }}}}
                ALLOWED_HOSTS = ["127.0.0.1"]
                CELERY_BROKER_URL = "redis://127.0.0.1:6379/13"
                CELERY_TASK_DEFAULT_QUEUE = "{project.queue}"
                """
            )
        )
    # Celery's "First steps with Django", as written there.
    (root / "proj" / "celery.py").write_text(
        textwrap.dedent(
            """
            import os

            from celery import Celery

            os.environ.setdefault("DJANGO_SETTINGS_MODULE", "proj.settings")
            app = Celery("proj")
            app.config_from_object("django.conf:settings", namespace="CELERY")
            app.autodiscover_tasks()
            """
        )
    )
    (root / "proj" / "__init__.py").write_text('from .celery import app as celery_app\n\n__all__ = ("celery_app",)\n')
    (root / "shop" / "tasks.py").write_text(
        "from celery import shared_task\n\n\n@shared_task\ndef add(x, y):\n    return x + y\n"
    )
    (root / "shop" / "views.py").write_text(
        textwrap.dedent(
            """
            from django.http import HttpResponse

            from shop.tasks import add


            def order(request, pk):
                result = add.delay(pk, 1)
                return HttpResponse(result.id)
            """
        )
    )
    urls = (root / "proj" / "urls.py").read_text()
    urls = urls.replace("from django.urls import path", "from django.urls import path\n\nfrom shop import views")
    urls = urls.replace("urlpatterns = [", 'urlpatterns = [\n    path("orders/<int:pk>/", views.order),')
    (root / "proj" / "urls.py").write_text(urls)


def test_a_startproject_site_gets_request_and_task_traces_in_postgresql_with_nothing_else_configured(
    project: Project,
) -> None:
    import psycopg

    _write_project(project)
    where = project.run("-c", "import agentops_django; print(agentops_django.__file__)")
    assert "/site/agentops_django/" in where, f"the wheel is not what runs: {where}"
    project.run("manage.py", "migrate", "-v", "0")
    project.start(
        "-m", "celery", "-A", "proj", "worker", "-P", "prefork", "-c", "2", "-Q", project.queue, "-l", "info",
        log="worker.log",
    )  # fmt: skip
    port = free_port()
    project.start("manage.py", "runserver", f"127.0.0.1:{port}", "--noreload", log="web.log")

    def get() -> str | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/orders/41/", timeout=5) as response:
                return response.read().decode()
        except OSError:
            return None

    task_id = wait_for(get, "runserver to answer")

    def spans() -> list[tuple[str, str, str, str, str]] | None:
        with psycopg.connect(f"host=127.0.0.1 user=postgres dbname={project.database}") as connection:
            rows = connection.execute(
                "SELECT trace_id, span_id, parent_span_id, kind, name FROM agentops_django_span ORDER BY started_at"
            ).fetchall()
        kinds = [row[3] for row in rows]
        return rows if {"request", "publish", "celery.task"} <= set(kinds) else None

    rows = wait_for(spans, "the request's, publish and task spans in PostgreSQL")
    by_kind = {row[3]: row for row in rows}
    request, publish, task = by_kind["request"], by_kind["publish"], by_kind["celery.task"]
    assert request[4] == "GET /orders/<int:pk>/"
    assert request[0] == publish[0] == task[0], "one trace"
    assert publish[2] == request[1] and task[2] == publish[1], "parent to child"
    with psycopg.connect(f"host=127.0.0.1 user=postgres dbname={project.database}") as connection:
        summary = connection.execute(
            "SELECT kind, status, span_count FROM agentops_django_trace WHERE trace_id = %s", [request[0]]
        ).fetchone()
        attributes = connection.execute(
            "SELECT attributes->>'celery.task.id' FROM agentops_django_span WHERE span_id = %s", [task[1]]
        ).fetchone()
    assert summary == ("request", "Success", len([row for row in rows if row[0] == request[0]]))
    assert attributes == (task_id,)
