"""The one-command demo: ``python3 demo.py`` (serve until Ctrl-C) or ``python3 demo.py --once`` (check and exit).

Steps: check that the web server's port is free; migrate the database and
make the demo admin user; start the stand-in LLM server (unless
``OPENAI_BASE_URL`` already points somewhere), the web server on 127.0.0.1, a
Celery worker (prefork, two children) and Celery beat; ask the site a few
questions and stream an answer over real HTTP; wait until their traces are
complete in the database; print them as a table with their admin links.
Every process started here is stopped again on the way out, on success,
failure, Ctrl-C or SIGTERM alike, in the order that lets each finish its
work: beat first (no new tasks), then the worker and the web server, then
the LLM server they call.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import signal
import sys
import textwrap
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from demo_project.processes import (
    Child,
    ChildExited,
    PortInUse,
    check_port_free,
    free_port,
    stop_all,
    wait_for_log,
    wait_for_port,
)

ROOT = Path(__file__).resolve().parent.parent
ADMIN_USER = "admin"
ADMIN_PASSWORD = "agentops-demo"
#: Seconds the digest waits between runs under ``--once`` (``DEMO_DIGEST_INTERVAL`` overrides).
ONCE_DIGEST_INTERVAL = "5"
#: Files held open for the life of the process (the data folder's lock).
_held: list[Any] = []
#: The order of stopping: beat sends no new task, then the worker finishes its tasks
#: and the web server its requests while the LLM server they call still answers.
STOP_ORDER = (("beat",), ("worker", "web"), ("llm",))
#: What a Celery worker logs (at INFO) once it takes tasks: "celery@host ready.".
WORKER_READY = re.compile(r"@\S+ ready\.$", re.MULTILINE)


class DemoError(RuntimeError):
    """The demo cannot go on; the message says why and what to do."""


def _say(message: str = "") -> None:
    print(message, flush=True)


class _Progress:
    """Shows the waiting on one line in a terminal, or a short line per change elsewhere."""

    def __init__(self) -> None:
        self.tty = sys.stdout.isatty()
        self.last = ""
        self.started = time.monotonic()

    def __call__(self, reports: list[Any]) -> None:
        from demo_project.verify import progress_line

        line = progress_line(reports)
        if line == self.last:
            return
        self.last = line
        line = f"[{time.monotonic() - self.started:4.1f} s] {line}"
        if self.tty:
            width = shutil.get_terminal_size((120, 20)).columns - 1
            sys.stdout.write("\r\x1b[2K  " + line[: width - 2])
            sys.stdout.flush()
        else:
            _say("  " + line)

    def done(self) -> None:
        if self.tty and self.last:
            sys.stdout.write("\n")
            sys.stdout.flush()


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="demo.py",
        description="The agentops-django demo: a traced research-assistant site with its Celery worker. "
        "Serves until Ctrl-C; with --once, checks that every trace is complete and exits.",
    )
    parser.add_argument("--once", action="store_true", help="run the scenario, check every trace is complete, exit")
    parser.add_argument("--port", type=int, default=0, help="web server port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--timeout", type=float, default=90.0, help="seconds to wait for the traces (default 90)")
    return parser.parse_args(argv)


def _prepare_environment(once: bool) -> bool:
    """Environment for this process and the children; return whether to start the stand-in LLM server."""
    os.environ["DJANGO_SETTINGS_MODULE"] = "demo_project.settings"
    os.environ["PYTHONUNBUFFERED"] = "1"
    # The children import the project from the checkout (the demo's .venv holds only its dependencies).
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    if once:
        os.environ.setdefault("DEMO_DIGEST_INTERVAL", ONCE_DIGEST_INTERVAL)
    # A real endpoint the user configured wins; otherwise the stand-in server is used.
    return not os.environ.get("OPENAI_BASE_URL")


def _setup_database() -> None:
    import django
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    django.setup()
    call_command("migrate", interactive=False, verbosity=0)
    user, _ = get_user_model().objects.get_or_create(
        username=ADMIN_USER, defaults={"is_staff": True, "is_superuser": True, "email": "admin@example.com"}
    )
    if not (user.is_staff and user.is_superuser and user.check_password(ADMIN_PASSWORD)):
        user.is_staff = user.is_superuser = True
        user.set_password(ADMIN_PASSWORD)
        user.save()


def _lock_data_dir(data_dir: Path) -> None:
    """Hold an exclusive lock on the data folder for as long as this process lives.

    Raises:
        DemoError: Another demo is running on the same folder.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    handle = open(data_dir / "demo.lock", "w")
    _held.append(handle)  # closing it would release the lock
    try:
        import fcntl

        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except ImportError:  # not POSIX: run without the lock
        return
    except OSError:
        _held.remove(handle)
        handle.close()
        raise DemoError(
            f"another demo is running with the data folder {data_dir}; stop it first, "
            "or give this one a folder of its own with DEMO_DATA_DIR"
        ) from None


def _clear_embedded_broker() -> None:
    """Drop what a previous run left in the embedded broker's and result backend's folders."""
    from django.conf import settings

    options = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {})
    folders: list[Path] = []
    if settings.CELERY_BROKER_URL.startswith("filesystem://"):
        folders += [Path(options.get(key, "")) for key in ("data_folder_in", "control_folder", "processed_folder")]
    if settings.CELERY_RESULT_BACKEND.startswith("file://"):
        folders.append(Path(settings.CELERY_RESULT_BACKEND.removeprefix("file://")))
    for folder in folders:
        if folder.is_dir() and folder.resolve().is_relative_to(settings.DATA_DIR):
            for entry in folder.iterdir():
                if entry.is_file():
                    entry.unlink(missing_ok=True)


def _describe_backends() -> str:
    from django.conf import settings
    from django.db import connection

    broker = settings.CELERY_BROKER_URL.split("://", 1)[0]
    backend = settings.CELERY_RESULT_BACKEND.split("://", 1)[0]
    return f"database {connection.vendor}, broker {broker}, result backend {backend}"


def _start_children(children: list[Child], log_dir: Path, port: int, stand_in: bool) -> None:
    """Start the processes in the order they are needed, adding each to ``children`` as it starts."""
    python = sys.executable
    env = dict(os.environ)
    if stand_in:
        llm_port = free_port()
        llm = Child(
            "llm",
            [python, "-m", "agentops.testing.llm_server", "--port", str(llm_port)],
            env,
            ROOT,
            log_dir / "llm.log",
        )
        children.append(llm)
        wait_for_port(llm_port, llm, timeout=30)
        os.environ["OPENAI_BASE_URL"] = env["OPENAI_BASE_URL"] = f"http://127.0.0.1:{llm_port}/v1"
        os.environ["OPENAI_API_KEY"] = env["OPENAI_API_KEY"] = "sk-demo-stand-in"
        _say(f"  stand-in LLM server   http://127.0.0.1:{llm_port}/v1")
    else:
        _say(f"  LLM endpoint          {os.environ['OPENAI_BASE_URL']} (from OPENAI_BASE_URL)")
    # The web server, the worker and beat boot side by side (a few seconds each); the
    # visitor starts once the web server listens and the worker takes tasks.
    web = Child(
        "web",
        [python, str(ROOT / "manage.py"), "runserver", "--noreload", "--insecure", f"127.0.0.1:{port}"],
        env,
        ROOT,
        log_dir / "web.log",
    )
    children.append(web)
    celery = [python, "-m", "celery", "-A", "demo_project"]
    worker_argv = [
        *celery,
        "worker",
        "-P",
        "prefork",
        "-c",
        "2",
        "-l",
        "info",
        "-n",
        f"demo-{os.getpid()}@%h",
        "--without-gossip",
        "--without-mingle",
    ]
    worker = Child("worker", worker_argv, env, ROOT, log_dir / "worker.log")
    children.append(worker)
    # Beat runs on its own (not inside the worker with -B) so that it can be stopped first.
    children.append(Child("beat", [*celery, "beat", "-l", "info"], env, ROOT, log_dir / "beat.log"))
    wait_for_port(port, web, timeout=60)
    _say(f"  web server            http://127.0.0.1:{port}/")
    wait_for_log(worker, WORKER_READY, timeout=60)
    _say("  Celery worker         prefork, 2 processes")
    from django.conf import settings

    interval = settings.CELERY_BEAT_SCHEDULE["research-digest"]["schedule"]
    _say(f"  Celery beat           sends the digest task every {interval:g} s")


def _check_alive(children: Sequence[Child]) -> None:
    for child in children:
        child.check()


def _run(args: argparse.Namespace, children: list[Child]) -> int:
    stand_in = _prepare_environment(args.once)
    # Before anything starts: a busy port would only show up as the web server's exit, later.
    if args.port:
        check_port_free(args.port)
    port = args.port or free_port()
    started = datetime.now(UTC) - timedelta(seconds=1)
    _say("==> preparing the database")
    from django.conf import settings

    _lock_data_dir(settings.DATA_DIR)
    _setup_database()
    _clear_embedded_broker()
    log_dir = settings.DATA_DIR / "logs"
    _say(f"  {_describe_backends()}")
    _say(f"  admin user            {ADMIN_USER} / {ADMIN_PASSWORD}")

    _say(f"==> starting the processes (logs in {log_dir})")
    _start_children(children, log_dir, port, stand_in)
    base = f"http://127.0.0.1:{port}"

    from agentops.semconv import SpanKind
    from demo_project import scenario, verify

    _say("==> using the site like a visitor would")
    expected = scenario.run(base, progress=_say)
    if args.once:
        # Beat publishes with no caller, so the digest task's span is its trace's root.
        expected.append(
            scenario.Expected(
                "digest", "", SpanKind.CELERY_TASK, {"research.write_digest": 1}, 1, "the digest task beat sends"
            )
        )

    _say("==> waiting for the traces to be stored")
    progress = _Progress()

    def watch(reports: list[Any]) -> None:
        _check_alive(children)
        for item in expected:
            if item.label == "digest" and not item.trace_id:
                item.trace_id = verify.find_task_trace("research.write_digest", started)
        progress(reports)

    reports = verify.wait_for(expected, timeout=args.timeout, progress=watch)
    progress.done()
    _say()
    _say(verify.table(reports))
    _say()
    complete = all(report.complete for report in reports)
    _say(f"Checked: {verify.CHECKED}.")
    if args.once:
        if complete:
            _say(f"All {len(reports)} traces are complete.")
            _say(f"Their pages in the admin while python3 demo.py runs (log in as {ADMIN_USER} / {ADMIN_PASSWORD}):")
            for report in reports:
                _say(f"  {report.expected.label:<7} {verify.admin_path(report.expected.trace_id)}")
            return 0
        _say(f"Some traces are incomplete (see the check column). Logs: {log_dir}")
        for child in children:
            _say(f"  the end of the {child.name} log ({child.log_path}):")
            _say(textwrap.indent(child.tail(15), "    "))
        return 1
    _say("Each trace in the admin:")
    for report in reports:
        if report.expected.trace_id:
            _say(f"  {report.expected.label:<7} {base}{verify.admin_path(report.expected.trace_id)}")
    _say(f"Log in as {ADMIN_USER} / {ADMIN_PASSWORD}; every trace: {base}/admin/agentops_django/trace/")
    _say(f"Ask your own questions at {base}/ . New traces are listed below as they settle. Ctrl-C stops everything.")
    from agentops_django.models import Trace

    # The visitor's page views are traces too; list only what comes next.
    seen = set(Trace.objects.filter(started_at__gte=started).values_list("trace_id", flat=True))
    _follow(children, base, seen=seen, since=started)
    return 0


def _follow(children: Sequence[Child], base: str, seen: set[str], since: datetime) -> None:
    """Until Ctrl-C: print each new trace once it has been quiet for a few seconds."""
    from agentops_django.models import Trace
    from demo_project.verify import admin_path, plural

    while True:
        _check_alive(children)
        quiet = datetime.now(UTC) - timedelta(seconds=3)
        rows = Trace.objects.filter(started_at__gte=since, updated_at__lt=quiet).exclude(trace_id__in=seen)
        for trace in rows.order_by("started_at"):
            seen.add(trace.trace_id)
            duration = "-" if trace.duration_ms is None else f"{trace.duration_ms:.0f} ms"
            _say(
                f"  {trace.name:<28} {plural(trace.span_count, 'span'):>9} {plural(trace.total_tokens, 'token'):>12} "
                f"{duration:>9}  {trace.status:<13} {base}{admin_path(trace.trace_id)}"
            )
        time.sleep(2)


def _stop_stages(children: Sequence[Child]) -> list[list[Child]]:
    """``children`` grouped in :data:`STOP_ORDER` (anything not named there last)."""
    stages = [[child for child in children if child.name in names] for names in STOP_ORDER]
    named = {name for names in STOP_ORDER for name in names}
    stages.append([child for child in children if child.name not in named])
    return [stage for stage in stages if stage]


def _raise_exit(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo; return the process exit code.

    Args:
        argv: Command-line arguments (default: ``sys.argv[1:]``).

    Returns:
        0 on success; 1 when ``--once`` found a trace incomplete or a step failed.
    """
    args = _parse(argv)
    children: list[Child] = []
    # Ctrl-C must reach us even when started from a shell that ignores it for background jobs.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _raise_exit)
    with contextlib.suppress(ValueError, AttributeError):
        signal.signal(signal.SIGHUP, _raise_exit)
    code = 1
    try:
        code = _run(args, children)
    except KeyboardInterrupt:
        _say()
        code = 0 if not args.once else 130
    except PortInUse as error:
        _say(f"error: {error}.")
        _say("  Stop the program that uses it, or leave out --port and the demo picks a free port.")
    except DemoError as error:
        _say(f"error: {error}")
    except ChildExited as error:
        # The cause first (the log's last line), then the rest of this run's log for context.
        _say(f"\nerror: {error}")
        _say(f"  the end of its log ({error.child.log_path}):")
        _say(textwrap.indent(error.child.tail(15), "    "))
    except Exception as error:  # the demo must explain itself and still clean up
        _say(f"\nerror: {type(error).__name__}: {error}")
        for child in children:
            _say(f"  the end of the {child.name} log ({child.log_path}):")
            _say(textwrap.indent(child.tail(15), "    "))
        if os.environ.get("DEMO_DEBUG"):
            raise
    finally:
        # Nothing may interrupt the clean-up: it has its own deadlines.
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if children:
            stages = _stop_stages(children)
            _say(f"==> stopping {', then '.join(' and '.join(child.name for child in stage) for stage in stages)}")
            stopping = time.monotonic()
            forced = stop_all(stages)
            if forced:
                _say(f"  did not stop in time, so signalled their whole process group: {', '.join(forced)}")
            left = [child.name for child in children if child.group_alive()]
            took = time.monotonic() - stopping
            _say(f"  still running: {', '.join(left)}" if left else f"  all stopped ({took:.1f} s)")
        signal.signal(signal.SIGINT, previous)
    return code
