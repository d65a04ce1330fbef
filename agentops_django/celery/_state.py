"""The Celery integration's per-process state: open task runs and producer spans, per thread."""

from __future__ import annotations

import logging
import threading

from django.conf import settings
from opentelemetry.trace import Span

from agentops.integrations import lifecycle
from agentops.integrations.scope import Scope
from agentops.semconv import (
    TraceState,
)
from agentops_django.conf import get_config

logger = logging.getLogger(__name__)


def _enabled() -> bool:
    """``AGENTOPS["ENABLED"]`` now (a test may turn it off after start-up); on when Django is not configured."""
    return not settings.configured or get_config().enabled


class _Run:
    """A task span in progress: one attempt of one task in one thread."""

    __slots__ = ("context", "eager", "end_state", "failed", "key", "scope", "span", "state", "thread", "token")

    def __init__(self, key: tuple[str, int], scope: Scope, token: object, eager: bool) -> None:
        self.key = key
        self.scope = scope
        self.span = scope.span
        self.context = scope.context
        self.token = token
        self.end_state: TraceState | None = None
        self.eager = eager
        self.thread = threading.get_ident()
        self.failed = False
        self.state: str | None = None


class _Registry:
    """Open task spans and producer spans, shared by the threads of a process."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        #: Every open run of the process, by ``id(run)`` (a redelivered message
        #: may run twice at once with the same task id and attempt).
        self.runs: dict[int, _Run] = {}
        self.pending: dict[tuple[str, int], tuple[Span, float]] = {}
        self.next_sweep = 0.0
        self.local = threading.local()

    def stack(self) -> list[_Run]:
        """The runs of the calling thread, innermost last (eager runs nest)."""
        try:
            return self.local.stack  # type: ignore[no-any-return]
        except AttributeError:
            self.local.stack = []
            return self.local.stack  # type: ignore[no-any-return]


_registry = _Registry()


def _after_fork_in_child() -> None:
    # A lock held by another thread at fork time stays held in the child forever.
    _registry.lock = threading.Lock()
    _registry.local = threading.local()


lifecycle.on_fork_child(_after_fork_in_child, lifecycle.FORK_INTEGRATIONS)
