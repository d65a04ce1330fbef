"""Servers and processes the fault suite starts, breaks and stops: all private, all on loopback.

Nothing here touches the shared servers on their usual ports. Each helper
starts its own instance on a free loopback port, in a temporary directory, in
its own process group, and ``stop()`` ends it (SIGTERM, then SIGKILL after a
deadline) whatever state it is in. Every wait is bounded.

* :class:`PrivatePostgres`: ``initdb`` + ``pg_ctl`` as the ``postgres`` user,
  trust auth, listening on 127.0.0.1 only; ``stop()``/``start()`` make an
  outage and a recovery on the same port.
* :class:`PrivateRedis`: ``redis-server`` without persistence; ``restart()``.
* :class:`Proc`: a child process (gunicorn, a Celery worker, a load client)
  with its output in a file and its whole process group ended at teardown.
* :class:`Collector`: a tiny OTLP/HTTP collector that can be healthy, slow,
  failing (HTTP 500) or down.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
LOOPBACK = "127.0.0.1"
PG_BIN = Path(os.environ.get("AGENTOPS_FAULTS_PG_BIN", "/usr/lib/postgresql/15/bin"))
#: Seconds any single wait of the harness may take before it fails.
DEADLINE = 60.0


def free_port() -> int:
    """A TCP port nobody listens on right now, on loopback."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def port_open(port: int, host: str = LOOPBACK) -> bool:
    try:
        socket.create_connection((host, port), timeout=0.5).close()
    except OSError:
        return False
    return True


def wait_for(condition: Callable[[], Any], what: str, deadline: float = DEADLINE, interval: float = 0.05) -> Any:
    """Poll ``condition`` until it returns something truthy; fail after ``deadline`` seconds."""
    end = time.monotonic() + deadline
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {deadline:.0f}s waiting for {what}")
        time.sleep(interval)


def _kill_group(proc: subprocess.Popen[Any], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def end_process(proc: subprocess.Popen[Any], grace: float = 10.0) -> int | None:
    """SIGTERM the process group, wait up to ``grace`` seconds, then SIGKILL it."""
    if proc.poll() is None:
        _kill_group(proc, signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            _kill_group(proc, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(10)
    # Children that outlived their parent (a prefork pool) go too.
    _kill_group(proc, signal.SIGKILL)
    return proc.returncode


class Proc:
    """A child process in its own process group, its output in ``log``.

    Args:
        argv: The command.
        env: Extra environment (added to this process's).
        name: A short name for the log file and messages.
        workdir: Where its log goes.
    """

    def __init__(self, argv: Sequence[str], env: dict[str, str], name: str, workdir: Path) -> None:
        self.name = name
        self.log = workdir / f"{name}.log"
        self._log_file = self.log.open("wb")
        full_env = {**os.environ, **env}
        full_env.setdefault("PYTHONUNBUFFERED", "1")
        self.popen = subprocess.Popen(
            list(argv),
            cwd=REPO,
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.started = time.monotonic()

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def signal(self, sig: int) -> None:
        """Send ``sig`` to the process itself (not its group)."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.popen.pid, sig)

    def wait(self, deadline: float) -> int | None:
        """Wait up to ``deadline`` seconds for the process to exit; its code, or None."""
        try:
            return self.popen.wait(deadline)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, grace: float = 10.0) -> int | None:
        code = end_process(self.popen, grace)
        self._log_file.close()
        return code

    def output(self, tail: int = 6000) -> str:
        try:
            return self.log.read_text(errors="replace")[-tail:]
        except OSError:
            return ""

    def children(self) -> list[int]:
        """PIDs of this process's direct children (prefork pool processes, gunicorn workers)."""
        path = Path(f"/proc/{self.pid}/task/{self.pid}/children")
        try:
            return [int(pid) for pid in path.read_text().split()]
        except OSError:
            return []


def rss_kib(pid: int) -> int:
    """Resident memory of ``pid`` in KiB (0 if it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def hwm_kib(pid: int) -> int:
    """Peak resident memory (VmHWM) of ``pid`` in KiB (0 if it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def thread_count(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return 0


# --- PostgreSQL ---------------------------------------------------------------------
class PrivatePostgres:
    """A PostgreSQL cluster of our own on a loopback port, for outages.

    ``initdb`` refuses to run as root, so the cluster belongs to the
    ``postgres`` user and every ``pg_ctl`` runs through ``runuser``.
    """

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.root = Path(tempfile.mkdtemp(prefix="agentops-faults-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            shutil.chown(self.root, "postgres", "postgres")
        self._run([str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8"])

    def _run(self, argv: list[str], timeout: float = DEADLINE) -> subprocess.CompletedProcess[str]:
        if self._as_postgres:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"{argv!r} failed: {result.stdout}\n{result.stderr}")
        return result

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses={LOOPBACK} -c unix_socket_directories={self.root} "
            "-c fsync=off -c full_page_writes=off -c max_connections=200"
        )
        self._run(
            [
                str(PG_BIN / "pg_ctl"),
                "-D",
                str(self.data),
                "-l",
                str(self.log),
                "-o",
                options,
                "-w",
                "-t",
                "60",
                "start",
            ]
        )
        wait_for(lambda: port_open(self.port), f"PostgreSQL on port {self.port}")

    def stop(self, mode: str = "immediate") -> None:
        """Stop the server (``immediate`` is a crash: connections are cut at once)."""
        if not (self.data / "postmaster.pid").exists():
            return
        self._run([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop"])

    def destroy(self) -> None:
        with contextlib.suppress(Exception):
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def create_database(self, name: str) -> None:
        self.sql(f'CREATE DATABASE "{name}"', dbname="postgres")

    def connect(self, dbname: str = "postgres") -> Any:
        import psycopg

        return psycopg.connect(host=LOOPBACK, port=self.port, user="postgres", dbname=dbname, autocommit=True)

    def sql(self, query: str, params: Sequence[Any] = (), dbname: str = "postgres") -> list[tuple[Any, ...]]:
        with self.connect(dbname) as connection, connection.cursor() as cursor:
            cursor.execute(query, params)
            return cursor.fetchall() if cursor.description else []

    def django_settings(self, name: str) -> dict[str, Any]:
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": name,
            "USER": "postgres",
            "HOST": LOOPBACK,
            "PORT": str(self.port),
            "OPTIONS": {"connect_timeout": 2},
        }


# --- Redis --------------------------------------------------------------------------
class PrivateRedis:
    """A Redis server of our own on a loopback port, without persistence."""

    def __init__(self, workdir: Path, port: int | None = None, persistent: bool = False) -> None:
        self.port = port or free_port()
        self.workdir = workdir
        #: With an append-only file, a clean restart keeps the queues (and unacked messages).
        self.persistent = persistent
        self.proc: Proc | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"redis://{LOOPBACK}:{self.port}/0"

    def start(self) -> None:
        self.starts += 1
        self.proc = Proc(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                LOOPBACK,
                "--save",
                "",
                "--appendonly",
                "yes" if self.persistent else "no",
                "--appendfsync",
                "always",
                "--daemonize",
                "no",
                "--dir",
                str(self.workdir),
            ],
            {},
            f"redis-{self.starts}",
            self.workdir,
        )
        wait_for(lambda: port_open(self.port), f"Redis on port {self.port}")

    def kill(self) -> None:
        """Kill the server at once (a crash: what it held in memory is gone)."""
        if self.proc is not None:
            self.proc.signal(signal.SIGKILL)
            self.proc.wait(10)
            self.proc.stop()
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()
            self.proc = None

    def restart(self, down_for: float = 0.0) -> None:
        """Stop the server cleanly (SIGTERM), stay down ``down_for`` seconds, start it on the same port."""
        self.stop()
        wait_for(lambda: not port_open(self.port), f"Redis on port {self.port} to stop")
        time.sleep(down_for)
        self.start()


# --- RabbitMQ -----------------------------------------------------------------------
class PrivateRabbit:
    """A RabbitMQ node of our own (its own name, ports, data and log directories), on loopback.

    It shares the machine's epmd with any other node, and never reads the
    machine's RabbitMQ configuration (its own config and env files, no plugins).
    ``restart()`` restarts the broker application inside the node
    (``stop_app``/``start_app``): every client connection is cut, durable
    queues and their messages stay.
    """

    def __init__(self, workdir: Path) -> None:
        self.root = workdir / "rabbitmq"
        self.root.mkdir()
        self.port = free_port()
        self.dist_port = free_port()
        self.node = f"faults{self.port}@localhost"
        (self.root / "plugins").write_text("[].\n")
        (self.root / "env.conf").write_text("ERL_EPMD_ADDRESS=127.0.0.1\n")
        (self.root / "rabbitmq.conf").write_text(
            f"listeners.tcp.local = {LOOPBACK}:{self.port}\nloopback_users = none\n"
        )
        self.env = {
            "RABBITMQ_CONF_ENV_FILE": str(self.root / "env.conf"),
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": LOOPBACK,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_CONFIG_FILE": str(self.root / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.root / "plugins"),
            "RABBITMQ_MNESIA_BASE": str(self.root / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.root / "log"),
            "ERL_EPMD_ADDRESS": LOOPBACK,
            "ERL_FLAGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        }
        self.proc: Proc | None = None

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@{LOOPBACK}:{self.port}//"

    def start(self) -> None:
        self.proc = Proc(["/usr/lib/rabbitmq/bin/rabbitmq-server"], self.env, "rabbitmq", self.root)
        wait_for(lambda: port_open(self.port) or not self.proc.alive(), f"RabbitMQ on port {self.port}", 120, 0.5)
        if not self.proc.alive():
            raise RuntimeError(f"RabbitMQ did not start:\n{self.proc.output()}")

    def ctl(self, *args: str) -> None:
        # The node runs as this user, with this user's cookie; the CLI wrapper
        # may run as another user, so it is given the cookie explicitly.
        cookie = (Path.home() / ".erlang.cookie").read_text().strip()
        subprocess.run(
            ["rabbitmqctl", "-n", self.node, "--erlang-cookie", cookie, *args],
            env={**os.environ, **self.env},
            capture_output=True,
            timeout=120,
            check=True,
        )

    def restart(self, down_for: float = 0.0) -> None:
        self.ctl("stop_app")
        time.sleep(down_for)
        self.ctl("start_app")
        wait_for(lambda: port_open(self.port), f"RabbitMQ on port {self.port} after start_app", 120, 0.2)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop(grace=15)  # SIGTERM: the node stops itself
            self.proc = None


# --- OTLP collector -----------------------------------------------------------------
class Collector:
    """An OTLP/HTTP collector stand-in on loopback: ``mode`` is ok, slow, error or down.

    It records every request it answers (path, bytes, when). ``down`` closes
    the listening socket, so connections are refused.
    """

    def __init__(self, mode: str = "ok", delay: float = 5.0) -> None:
        self.mode = mode
        self.delay = delay
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self.port = free_port()
        self._server: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        if mode != "down":
            self.start()

    @property
    def endpoint(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self) -> None:
        collector = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with collector._lock:
                    collector.requests.append({"path": self.path, "bytes": len(body), "at": time.time()})
                if collector.mode == "slow":
                    time.sleep(collector.delay)
                code = 500 if collector.mode == "error" else 200
                self.send_response(code)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        server = http.server.ThreadingHTTPServer((LOOPBACK, self.port), Handler)
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self._thread.start()

    def count(self) -> int:
        with self._lock:
            return len(self.requests)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


# --- the test project's processes ---------------------------------------------------
PYTHON = sys.executable
SETTINGS = "tests.faults.project.settings"


def project_env(
    *,
    database: dict[str, Any],
    agentops: dict[str, Any] | None = None,
    broker: str | None = None,
    queue: str | None = None,
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    """The environment of a web or worker process of the fault project."""
    env = {
        "DJANGO_SETTINGS_MODULE": SETTINGS,
        "AGENTOPS_FAULTS_DATABASE": json.dumps(database),
        "AGENTOPS_FAULTS_AGENTOPS": json.dumps(agentops or {}),
        "PYTHONPATH": str(REPO),
    }
    if broker:
        env["AGENTOPS_FAULTS_BROKER"] = broker
    if queue:
        env["AGENTOPS_FAULTS_QUEUE"] = queue
    env.update(extra or {})
    return env


def migrate(env: dict[str, str], workdir: Path) -> None:
    """Create the fault project's tables in the database ``env`` names."""
    result = subprocess.run(
        [PYTHON, "-m", "django", "migrate", "--no-input", "-v", "0"],
        cwd=REPO,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"migrate failed:\n{result.stdout}\n{result.stderr}")


def start_gunicorn(env: dict[str, str], workdir: Path, *, workers: int = 1, name: str = "web") -> tuple[Proc, int]:
    """A gunicorn server of the fault project on a free loopback port; returns it and the port."""
    port = free_port()
    proc = Proc(
        [
            PYTHON,
            "-m",
            "gunicorn",
            "tests.faults.project.wsgi:application",
            "--bind",
            f"{LOOPBACK}:{port}",
            "--workers",
            str(workers),
            "--threads",
            "4",
            "--worker-class",
            "gthread",
            "--graceful-timeout",
            "20",
            "--timeout",
            "60",
            "--log-level",
            "warning",
        ],
        env,
        name,
        workdir,
    )
    try:
        wait_for(lambda: port_open(port) or not proc.alive(), f"gunicorn {name} on port {port}")
    except AssertionError:
        proc.stop()
        raise
    if not proc.alive():
        raise RuntimeError(f"gunicorn {name} exited:\n{proc.output()}")
    return proc, port


def start_worker(
    env: dict[str, str],
    workdir: Path,
    *,
    concurrency: int = 2,
    pool: str = "prefork",
    name: str = "worker",
    extra_args: Sequence[str] = (),
) -> Proc:
    """A ``celery worker`` of the fault project's app, consuming the queue in ``env``."""
    proc = Proc(
        [
            PYTHON,
            "-m",
            "celery",
            "-A",
            "tests.faults.project.celery_app",
            "worker",
            "--pool",
            pool,
            "--concurrency",
            str(concurrency),
            "--loglevel",
            "WARNING",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-n",
            f"{name}-{os.getpid()}-{free_port()}@localhost",
            *extra_args,
        ],
        env,
        name,
        workdir,
    )
    return proc


def http_get(port: int, path: str, headers: dict[str, str] | None = None, timeout: float = 30.0) -> tuple[int, bytes]:
    """One GET to our own server on loopback; returns status and body."""
    import http.client

    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@contextlib.contextmanager
def workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="agentops-faults-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
