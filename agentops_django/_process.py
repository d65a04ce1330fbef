"""Which process this is: host, pid, role (web, worker, beat, command), Celery worker node and pool child.

What is known at start-up (the role guessed from the command line) goes into
the SDK's resource, so OTLP and console exporters see it; what a process
learns later (a Celery worker's node name at ``celeryd_init``, a prefork
child's index at ``worker_process_init``, beat at ``beat_init``, a web
process at its first request) is kept here. The database writer stores the
whole identity once per process, in its :class:`~agentops_django.models.WriterStats`
row, and points each span row at it: nothing is added per span.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Sequence
from typing import Any

from agentops import semconv
from agentops.semconv import ProcessRole

#: Programs that serve web requests (the first word of the command line, without a path).
_WEB_SERVERS = frozenset({"gunicorn", "uvicorn", "daphne", "hypercorn", "uwsgi", "waitress-serve", "granian"})
#: ``manage.py`` commands that serve web requests.
_WEB_COMMANDS = frozenset({"runserver", "runserver_plus", "runmodwsgi", "testserver"})

_role: str | None = None
_worker_node = ""
_pool_index: int | None = None


def guess_role(argv: Sequence[str]) -> str:
    """The role a command line suggests: ``celery ... worker`` is a worker, ``manage.py migrate`` a command.

    Args:
        argv: The command line (``sys.argv``).

    Returns:
        One of :class:`agentops.semconv.ProcessRole`'s values.
    """
    if not argv:
        return ProcessRole.OTHER
    program = os.path.basename(argv[0]).removesuffix(".py")
    if program == "__main__" and len(argv[0].split(os.sep)) >= 2:  # python -m celery / gunicorn
        program = argv[0].split(os.sep)[-2]
    words = list(argv[1:])
    if program == "celery" or "celery" in words[:1]:
        for word in words:
            if word == "worker":
                return ProcessRole.WORKER
            if word == "beat":
                return ProcessRole.BEAT
        return ProcessRole.COMMAND
    if program in _WEB_SERVERS:
        return ProcessRole.WEB
    if program in ("manage", "django-admin", "django"):
        command = next((word for word in words if not word.startswith("-")), "")
        return ProcessRole.WEB if command in _WEB_COMMANDS else ProcessRole.COMMAND
    return ProcessRole.OTHER


def role() -> str:
    """This process's role: set by a signal or a first request, else guessed from the command line."""
    return _role if _role is not None else guess_role(sys.argv)


def set_role(value: str, *, worker_node: str | None = None, pool_index: int | None = None) -> None:
    """Record what this process is (a signal handler's or the middleware's call)."""
    global _role, _worker_node, _pool_index
    _role = value
    if worker_node is not None:
        _worker_node = worker_node[:255]
    if pool_index is not None:
        _pool_index = pool_index


def serves_requests() -> None:
    """A request handler was made here: a process of no known role is a web process."""
    if _role is None:
        guessed = guess_role(sys.argv)
        set_role(ProcessRole.WEB if guessed in (ProcessRole.OTHER, ProcessRole.COMMAND) else guessed)


def resource_attributes() -> dict[str, Any]:
    """What the SDK's resource carries besides service, host and pid: the role guessed at start-up."""
    return {semconv.AGENTOPS_PROCESS_ROLE: role()}


def identity() -> dict[str, Any]:
    """This process's identity now, under :mod:`agentops.semconv`'s names."""
    result: dict[str, Any] = {
        semconv.HOST_NAME: socket.gethostname()[:255],
        semconv.PROCESS_PID: os.getpid(),
        semconv.AGENTOPS_PROCESS_ROLE: role(),
    }
    if _worker_node:
        result[semconv.CELERY_WORKER_NODE] = _worker_node
    if _pool_index is not None:
        result[semconv.CELERY_WORKER_POOL_INDEX] = _pool_index
    return result


def default_service_name(settings_module: str | None) -> str | None:
    """The Django project's name (``mysite`` of ``mysite.settings``), the default ``service.name``."""
    if not settings_module:
        return None
    return settings_module.split(".")[0] or None


def reset() -> None:
    """Forget what signals told (for tests)."""
    global _role, _worker_node, _pool_index
    _role, _worker_node, _pool_index = None, "", None
