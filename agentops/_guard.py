"""The one guard around agentops' own code: it logs, counts and swallows.

Every wrapper, signal handler, middleware hook, span processor and exporter
runs its own work inside :func:`capture_internal_exceptions`, so that a bug or
an outage in tracing never reaches the host application. The user's own
exceptions never pass through it: wrappers call user code outside the guard.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable
from types import TracebackType

from agentops._lifecycle import FORK_SDK, on_fork_child

logger = logging.getLogger(__name__)

_lock = threading.Lock()


def _after_fork_in_child() -> None:
    # Another thread may have held the lock at fork time; in the child it
    # would never be released.
    global _lock
    _lock = threading.Lock()


on_fork_child(_after_fork_in_child, FORK_SDK)
_counts: Counter[str] = Counter()
#: Called with each swallowed exception; tests set it to fail loudly.
_hook: Callable[[BaseException], None] | None = None


def count(name: str, n: int = 1) -> None:
    """Add ``n`` to the named counter (dropped spans, internal errors, ...)."""
    with _lock:
        _counts[name] += n


def counters() -> dict[str, int]:
    """A snapshot of all counters."""
    with _lock:
        return dict(_counts)


def reset_counters() -> None:
    with _lock:
        _counts.clear()


def set_internal_error_hook(hook: Callable[[BaseException], None] | None) -> None:
    """Install a callable that sees every swallowed internal error (for tests)."""
    global _hook
    _hook = hook


class capture_internal_exceptions:
    """Run agentops' own code; log, count and swallow what it raises.

    Use as ``with capture_internal_exceptions("where"):``. Instances of
    ``Exception`` are swallowed; ``KeyboardInterrupt``, ``SystemExit`` and
    other ``BaseException`` instances pass. Named like a function because it
    is used like one; a class rather than a generator-based context manager
    because it sits on the hot path of every span.

    Args:
        where: A short name of the code being guarded, used in the log line.
    """

    __slots__ = ("where",)

    def __init__(self, where: str) -> None:
        self.where = where

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        if exc is None or not isinstance(exc, Exception):
            return False
        count("internal_errors")
        logger.warning("agentops: internal error in %s: %r", self.where, exc, exc_info=exc)
        hook = _hook
        if hook is not None:
            hook(exc)
        return True
