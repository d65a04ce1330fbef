"""The one guard around agentops' own code: it logs, counts and swallows.

Every wrapper, signal handler, middleware hook, span processor and exporter
runs its own work inside :func:`capture_internal_exceptions`, so that a bug or
an outage in tracing never reaches the host application. The user's own
exceptions never pass through it: wrappers call user code outside the guard.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterator

logger = logging.getLogger(__name__)

_lock = threading.Lock()
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


@contextlib.contextmanager
def capture_internal_exceptions(where: str) -> Iterator[None]:
    """Run agentops' own code; log, count and swallow what it raises.

    Args:
        where: A short name of the code being guarded, used in the log line.
    """
    try:
        yield
    except Exception as exc:
        count("internal_errors")
        logger.warning("agentops: internal error in %s: %r", where, exc, exc_info=True)
        hook = _hook
        if hook is not None:
            hook(exc)
