"""The promise of the README, kept end to end: its quickstart, run as written.

The README's "Quickstart in your Django project" is taken apart into its code
blocks and replayed in a temporary directory, the way a newcomer copies it:

* the ``# once`` shell block builds the wheel from this checkout (one wheel for
  the whole module);
* the other shell blocks run in order in the new project's directory: a fresh
  virtualenv (no system site packages) gets the wheel with its extras, pip
  taking the rest from the package index, then ``startproject``, ``migrate``
  and ``createsuperuser``;
* each Python block starting ``# file: PATH`` is written to ``PATH`` (``(add at
  the end)``: appended to it);
* each ``# in a ... terminal`` block is a process left running: a prefork
  Celery worker on Redis and ``runserver``.

A request to the README's view then calls the agent, whose OpenAI client is
pointed at :class:`agentops.testing.llm_server.LLMServer` through
``OPENAI_BASE_URL``/``OPENAI_API_KEY``, and the trace must land in the
project's SQLite database: the request span, the agent's tool and LLM spans,
the publish span and the task's span with its own LLM call, one trace, parent
to child, and the admin must list it.

Only what :data:`SUBSTITUTIONS` names differs from the README's text: paths
that only the reader knows, a free port, a Redis database of the tests' own,
and ``--noinput`` where the README's command would prompt.
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from agentops.testing.llm_server import LLMServer

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DEADLINE = 90.0
#: The Redis database the quickstart's broker uses here (the README says 0).
REDIS_DB = 13
#: The .venv's ``python3``/``pip`` first on ``PATH``, for the commands run before the project's virtualenv exists.
VENV_BIN = str(Path(sys.executable).parent)
ADMIN = {"username": "admin", "password": "quickstart-password", "email": "admin@example.com"}

pytestmark = pytest.mark.slow


def wait_for(condition: Callable[[], Any], what: str, deadline: float = DEADLINE, logs: Callable[[], str] = str) -> Any:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"gave up waiting for {what} after {deadline:.0f} s\n{logs()}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class Block:
    """One fenced code block of the quickstart."""

    language: str
    text: str

    @property
    def heading(self) -> str:
        return self.text.splitlines()[0]

    @property
    def commands(self) -> list[str]:
        return [line for line in self.text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def quickstart() -> str:
    text = README.read_text()
    start = text.index("## Quickstart in your Django project\n")
    return text[start : text.index("\n## ", start)]


def blocks(section: str) -> list[Block]:
    return [Block(language, text) for language, text in re.findall(r"```(\w*)\n(.*?)```", section, flags=re.S)]


def substitute(text: str, substitutions: dict[str, str]) -> str:
    for old, new in substitutions.items():
        text = text.replace(old, new)
    return text


def clean_environ(**extra: str) -> dict[str, str]:
    """The environment of a new shell: nothing of this test run's Python, Django or OpenAI set-up."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("OPENAI_", "DJANGO_", "PYTHON", "VIRTUAL_ENV", "CELERY_"))
    }
    env["PATH"] = os.pathsep.join([VENV_BIN, env.get("PATH", "")])
    env["PYTHONUNBUFFERED"] = "1"
    return {**env, **extra}


def run_shell(script: str, cwd: Path, env: dict[str, str]) -> None:
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script], cwd=cwd, env=env, capture_output=True, text=True, timeout=400
    )
    assert done.returncode == 0, f"{script}\n---\n{done.stdout}\n{done.stderr}"


def test_the_quickstart_marks_every_block_the_test_replays() -> None:
    """Each block of the quickstart is a command block or a ``# file:`` block, so all of it is tested."""
    found = blocks(quickstart())
    assert found
    for block in found:
        if block.language == "bash":
            assert block.heading.startswith("# "), block.text
        else:
            assert block.language == "python", block.text
            assert re.fullmatch(r"# file: \S+( \(add at the end\))?", block.heading), block.text


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The distribution built by the quickstart's own ``# once`` command, from this checkout."""
    dist = tmp_path_factory.mktemp("wheels")
    (build,) = [block for block in blocks(quickstart()) if block.heading.startswith("# once")]
    script = substitute(build.text, {"~/wheels": str(dist), "/path/to/agentops-django": str(ROOT)})
    run_shell(script, ROOT, clean_environ())
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


class Site:
    """The quickstart's project directory and the processes its terminals run."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.processes: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, command: str, env: dict[str, str]) -> None:
        log = self.root / f"terminal-{len(self.processes) + 1}.log"
        with open(log, "wb") as out:
            process = subprocess.Popen(
                ["bash", "-c", f". .venv/bin/activate && exec {command}"],
                cwd=self.root,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.processes.append((log.name, process))

    def logs(self) -> str:
        return "\n".join(f"--- {name}\n{(self.root / name).read_text()[-4000:]}" for name, _ in self.processes)

    def stop(self) -> None:
        for _, process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for _, process in self.processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    root = tmp_path / "quickstart"
    root.mkdir()
    made = Site(root)
    try:
        yield made
    finally:
        made.stop()


def build_site(site: Site, section: str, env: dict[str, str], terminal_env: dict[str, str]) -> None:
    """Replay the quickstart's blocks in order: run the commands, write the files, start the terminals."""
    queue = ""
    for block in blocks(section):
        if block.heading.startswith("# once"):
            continue
        if block.language == "python":
            match = re.fullmatch(r"# file: (\S+)( \(add at the end\))?", block.heading)
            assert match, block.text
            path = site.root / match[1]
            with open(path, "a" if match[2] else "w") as out:
                out.write("\n" + block.text if match[2] else block.text)
        elif "terminal" in block.heading:
            for command in block.commands:
                site.start(command, terminal_env)
        else:
            activate = ". .venv/bin/activate\n" if (site.root / ".venv/bin/activate").exists() else ""
            run_shell(activate + block.text, site.root, env)
            if not queue and (site.root / "proj/settings.py").exists():
                # Not in the README: a queue of this run's own, so that no other worker on this Redis takes its task.
                queue = f"quickstart-{uuid.uuid4().hex[:8]}"
                with open(site.root / "proj/settings.py", "a") as settings:
                    settings.write(f'\nCELERY_TASK_DEFAULT_QUEUE = "{queue}"\n')


def spans_of(database: Path) -> list[dict[str, Any]]:
    if not database.exists():
        return []
    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=10)
    connection.row_factory = sqlite3.Row
    try:
        rows = connection.execute(
            "SELECT trace_id, span_id, parent_span_id, kind, name, attributes FROM agentops_django_span"
            " ORDER BY started_at"
        ).fetchall()
    except sqlite3.OperationalError:  # not migrated yet, or locked by a writer for longer than the timeout
        return []
    finally:
        connection.close()
    return [{**dict(row), "attributes": json.loads(row["attributes"])} for row in rows]


def log_in_and_get(base: str, path: str) -> str:
    """What a browser shows at ``path`` after logging in to the admin as the quickstart's superuser."""
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    login = f"{base}/admin/login/?next={urllib.parse.quote(path)}"
    form = opener.open(login, timeout=10).read().decode()
    (token,) = re.findall(r'name="csrfmiddlewaretoken" value="([^"]+)"', form)
    data = urllib.parse.urlencode(
        {"csrfmiddlewaretoken": token, "username": ADMIN["username"], "password": ADMIN["password"], "next": path}
    ).encode()
    request = urllib.request.Request(login, data=data, headers={"Referer": login})
    with opener.open(request, timeout=10) as response:
        assert response.url.endswith(path), f"not logged in: {response.url}"
        return response.read().decode()


@pytest.mark.redis
def test_the_readme_quickstart_run_as_written_stores_a_request_its_agent_and_its_task_as_one_trace(
    wheel: Path, site: Site
) -> None:
    section = quickstart()
    port = free_port()
    substitutions = {
        "/path/to/agentops-django": str(ROOT),
        "~/wheels": str(wheel.parent),
        "redis://127.0.0.1:6379/0": f"redis://127.0.0.1:6379/{REDIS_DB}",
        "python manage.py createsuperuser": "python manage.py createsuperuser --noinput",
        "python manage.py runserver": f"python manage.py runserver 127.0.0.1:{port} --noreload",
    }
    for old in substitutions:
        assert old in section, f"the quickstart no longer says {old!r}: update SUBSTITUTIONS"
    for url in ("http://127.0.0.1:8000/ask/?q=", "http://127.0.0.1:8000/admin/agentops_django/trace/"):
        assert url in section, url
    # The commands run without OPENAI_API_KEY, as the README promises `check` and `migrate` do.
    env = clean_environ(**{f"DJANGO_SUPERUSER_{name.upper()}": value for name, value in ADMIN.items()})
    with LLMServer() as llm:
        terminal_env = clean_environ(OPENAI_BASE_URL=llm.base_url, OPENAI_API_KEY="sk-quickstart")
        build_site(site, substitute(section, substitutions), env, terminal_env)
        assert len(site.processes) == 2, "a worker and the site"
        python = site.root / ".venv/bin/python"
        where = subprocess.run(
            [python, "-c", "import agentops_django, django; print(agentops_django.__file__, django.__file__)"],
            cwd=site.root, env=env, capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        assert where.count(str(site.root / ".venv")) == 2, f"the wheel in the project's own virtualenv: {where}"

        base = f"http://127.0.0.1:{port}"

        def ask() -> dict[str, Any] | None:
            try:
                with urllib.request.urlopen(f"{base}/ask/?q=What+is+a+span%3F", timeout=30) as response:
                    return json.load(response)
            except OSError:
                return None

        answer = wait_for(ask, "runserver to answer /ask/", logs=site.logs)
        assert answer["answer"].startswith("Echo: What is a span?")

        def stored() -> list[dict[str, Any]] | None:
            rows = spans_of(site.root / "db.sqlite3")
            kinds = [row["kind"] for row in rows]
            return rows if kinds.count("llm") == 2 and "celery.task" in kinds else None

        rows = wait_for(stored, "the request's and the task's spans in db.sqlite3", logs=site.logs)
        chats = [request for request in llm.requests if request.path.endswith("/chat/completions")]
        assert len(chats) == 2
        assert {request.headers["authorization"] for request in chats} == {"Bearer sk-quickstart"}

    by_kind: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_kind.setdefault(row["kind"], []).append(row)
    (request,) = by_kind["request"]
    (agent,) = by_kind["agent"]
    (tool,) = by_kind["tool"]
    (publish,) = by_kind["publish"]
    (task,) = by_kind["celery.task"]
    assert {row["trace_id"] for row in rows} == {request["trace_id"]}, "one trace"
    assert agent["name"] == "Researcher.agent" and tool["name"] == "search.tool"
    assert agent["parent_span_id"] == request["span_id"] and tool["parent_span_id"] == agent["span_id"]
    assert task["parent_span_id"] == publish["span_id"]
    assert task["attributes"]["celery.task.id"] == answer["summary_task"]
    parents = {row["parent_span_id"] for row in by_kind["llm"]}
    assert parents == {agent["span_id"], task["span_id"]}, "the agent's LLM call and the task's"
    assert {row["attributes"]["gen_ai.request.model"] for row in by_kind["llm"]} == {"gpt-4o-mini"}

    connection = sqlite3.connect(f"file:{site.root / 'db.sqlite3'}?mode=ro", uri=True, timeout=10)
    try:
        trace = connection.execute(
            "SELECT name, kind, status, span_count, total_tokens > 0 FROM agentops_django_trace WHERE trace_id = ?",
            [request["trace_id"]],
        ).fetchone()
    finally:
        connection.close()
    assert trace == (request["name"], "request", "Success", len(rows), 1), "with the LLM calls' tokens"
    listing = log_in_and_get(base, "/admin/agentops_django/trace/")
    assert request["name"] in listing
