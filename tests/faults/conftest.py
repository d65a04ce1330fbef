"""Fixtures of the fault suite: private servers, processes, extra database aliases, a fault log.

Everything a fixture starts is stopped at its teardown, also when the test
fails. ``fault_log`` appends one JSON line per observation to the file named
by ``AGENTOPS_FAULTS_LOG`` (if set) and prints it, so a run leaves the figures
(spans created, written, dropped, seconds to recover) behind.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connections

from tests.conftest import IN_CI
from tests.faults import harness


def _need(path: str, what: str) -> None:
    if shutil.which(path) or Path(path).exists():
        return
    if IN_CI:
        pytest.fail(f"{what} ({path}) is missing (CI=true: a missing server is a failure)")
    pytest.skip(f"{what} ({path}) is missing")


@pytest.fixture
def workdir() -> Iterator[Path]:
    with harness.workdir() as path:
        yield path


@pytest.fixture
def procs(workdir: Path) -> Iterator[Callable[..., harness.Proc]]:
    """Start processes with ``procs(kind, ...)``; all of them are ended at teardown.

    ``kind`` is ``"web"`` (returns ``(proc, port)``), ``"worker"`` or ``"raw"``
    (``argv, env, name``).
    """
    started: list[harness.Proc] = []

    def start(kind: str, *args: Any, **kwargs: Any) -> Any:
        if kind == "web":
            proc, port = harness.start_gunicorn(*args, workdir, **kwargs)
            started.append(proc)
            return proc, port
        if kind == "worker":
            proc = harness.start_worker(*args, workdir, **kwargs)
        else:
            proc = harness.Proc(*args, workdir=workdir, **kwargs)
        started.append(proc)
        return proc

    yield start
    failed = []
    for proc in reversed(started):
        proc.stop()
        failed.append(f"--- {proc.name} (pid {proc.pid}) ---\n{proc.output(3000)}")
    if os.environ.get("AGENTOPS_FAULTS_VERBOSE"):
        print("\n".join(failed))
    keep = os.environ.get("AGENTOPS_FAULTS_KEEP_LOGS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        for proc in started:
            shutil.copy(proc.log, Path(keep) / f"{proc.name}-{proc.pid}.log")


@pytest.fixture(scope="module")
def private_pg() -> Iterator[harness.PrivatePostgres]:
    """A private PostgreSQL cluster on a free loopback port, running (module-wide)."""
    _need(str(harness.PG_BIN / "initdb"), "PostgreSQL's initdb")
    server = harness.PrivatePostgres()
    try:
        server.start()
        yield server
    finally:
        server.destroy()


@pytest.fixture
def pg_up(private_pg: harness.PrivatePostgres) -> harness.PrivatePostgres:
    """The private cluster, started again if a previous test left it down."""
    if not harness.port_open(private_pg.port):
        private_pg.start()
    return private_pg


@pytest.fixture
def private_redis(workdir: Path) -> Iterator[harness.PrivateRedis]:
    _need("redis-server", "redis-server")
    server = harness.PrivateRedis(workdir)
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def persistent_redis(workdir: Path) -> Iterator[harness.PrivateRedis]:
    """A private Redis with an append-only file: a clean restart keeps queued and unacked messages."""
    _need("redis-server", "redis-server")
    server = harness.PrivateRedis(workdir, persistent=True)
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def private_rabbit(workdir: Path) -> Iterator[harness.PrivateRabbit]:
    """A private RabbitMQ node (about 30 s to start), stopped at teardown."""
    _need("/usr/lib/rabbitmq/bin/rabbitmq-server", "rabbitmq-server")
    server = harness.PrivateRabbit(workdir)
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture
def db_alias(django_db_blocker: Any) -> Iterator[Callable[[dict[str, Any]], str]]:
    """``db_alias(settings)`` adds a database alias to this process, migrated; removed at teardown.

    The writer under test runs in this process on that alias (its own thread,
    its own connection), so the test sees its counters directly.
    """
    added: list[str] = []
    django_db_blocker.unblock()

    def add(settings: dict[str, Any]) -> str:
        alias = f"faults_{uuid.uuid4().hex[:8]}"
        configured = connections.configure_settings({"default": dict(connections.settings["default"]), alias: settings})
        connections.settings[alias] = configured[alias]
        added.append(alias)
        call_command("migrate", database=alias, verbosity=0, interactive=False)
        connections[alias].close()
        return alias

    try:
        yield add
    finally:
        for alias in added:
            try:
                connections[alias].close()
            except Exception:
                pass
            connections.settings.pop(alias, None)
        django_db_blocker.restore()


@pytest.fixture
def fault_log(request: pytest.FixtureRequest) -> Callable[..., None]:
    """``fault_log(fault=..., outcome=..., **figures)``: record one observation for the report."""

    def log(**entry: Any) -> None:
        entry = {"test": request.node.name, "at": time.strftime("%H:%M:%S"), **entry}
        line = json.dumps(entry, default=str)
        print(f"FAULT-LOG {line}")
        target = os.environ.get("AGENTOPS_FAULTS_LOG")
        if target:
            with open(target, "a", encoding="utf-8") as handle:
                handle.write(line + "\n")

    return log


class Stack:
    """A private PostgreSQL database, a private Redis broker, and the processes of one test.

    Attributes:
        env: The environment of the web and worker processes.
        pg: The private cluster; ``dbname`` its database for this test.
        redis: The private Redis (broker and result backend).
    """

    def __init__(
        self,
        pg: harness.PrivatePostgres,
        redis: harness.PrivateRedis,
        procs: Callable[..., Any],
        dbname: str,
        agentops: dict[str, Any],
        celery: dict[str, Any],
        broker: str | None = None,
    ) -> None:
        self.pg = pg
        self.redis = redis
        self.dbname = dbname
        self.procs = procs
        self.queue = f"faults-{uuid.uuid4().hex[:10]}"
        self.broker = broker or redis.url
        self.env = harness.project_env(
            database=pg.django_settings(dbname),
            agentops={"BATCH_INTERVAL": 0.05, **agentops},
            broker=self.broker,
            queue=self.queue,
            extra={"AGENTOPS_FAULTS_CELERY": json.dumps(celery), "AGENTOPS_FAULTS_BACKEND": redis.url},
        )
        self._client: Any = None

    def web(self, workers: int = 1, name: str = "web", **env: str) -> tuple[harness.Proc, int]:
        return self.procs("web", {**self.env, **env}, workers=workers, name=name)

    def worker(self, concurrency: int = 2, name: str = "worker", **options: Any) -> harness.Proc:
        proc = self.procs("worker", self.env, concurrency=concurrency, name=name, **options)
        return proc

    @property
    def celery(self) -> Any:
        """A Celery app of this process on the same broker, to publish and read results."""
        if self._client is None:
            from celery import Celery

            app = Celery(f"faults-client-{uuid.uuid4().hex[:6]}", set_as_current=False)
            app.conf.update(
                broker_url=self.broker,
                result_backend=self.redis.url,
                task_default_queue=self.queue,
                broker_connection_retry_on_startup=True,
            )
            self._client = app
        return self._client

    def sql(self, query: str, params: Any = ()) -> list[tuple[Any, ...]]:
        return self.pg.sql(query, params, dbname=self.dbname)

    def span_count(self, trace_ids: Any = None) -> int:
        if trace_ids is None:
            return int(self.sql("SELECT count(*) FROM agentops_django_span")[0][0])
        return int(
            self.sql("SELECT count(*) FROM agentops_django_span WHERE trace_id = ANY(%s)", [list(trace_ids)])[0][0]
        )

    def writer_stats(self) -> list[tuple[int, int, int, int]]:
        """``(pid, spans_written, spans_dropped, write_errors)`` of every process that stored its counters."""
        return [
            tuple(row)
            for row in self.sql(
                "SELECT pid, spans_written, spans_dropped, write_errors FROM agentops_django_writerstats"
            )
        ]

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


@pytest.fixture
def stack(
    pg_up: harness.PrivatePostgres,
    private_redis: harness.PrivateRedis,
    procs: Callable[..., Any],
    workdir: Path,
    unique: str,
) -> Iterator[Callable[..., Stack]]:
    """``stack(agentops={...}, celery={...})``: a migrated private database, a broker, process starters."""
    made: list[Stack] = []

    def make(
        agentops: dict[str, Any] | None = None,
        celery: dict[str, Any] | None = None,
        redis: harness.PrivateRedis | None = None,
        broker: str | None = None,
    ) -> Stack:
        dbname = f"stack_{unique}_{len(made)}"
        pg_up.create_database(dbname)
        built = Stack(pg_up, redis or private_redis, procs, dbname, agentops or {}, celery or {}, broker)
        harness.migrate(built.env, workdir)
        made.append(built)
        return built

    yield make
    for built in made:
        built.close()
