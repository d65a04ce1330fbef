"""Process lifecycle in one place: one fork hook and one exit hook, callbacks in a declared order.

OpenTelemetry, agentops and its integrations each keep per-process state
(locks, queues, threads, open spans) that must be re-made in a forked child
and wound down at exit in the right order: open spans ended before traces,
traces before the flush, the flush before the processors stop. Registered
one by one with ``os.register_at_fork`` and ``atexit``, that order would
depend on import order (``atexit`` runs last-registered first). Here every
callback states its place instead.

The exit hook is installed by the first ``init()``, after the SDK has
created its provider, so it runs before the provider's own exit hook.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from collections.abc import Callable

logger = logging.getLogger("agentops")

#: Fork: the SDK's own locks and registries (first: everything else uses them).
FORK_SDK = 0
#: Fork: integrations' registries, queues and threads.
FORK_INTEGRATIONS = 100
#: Exit: integrations end the spans they still hold open (a task still running, a publish never confirmed).
EXIT_CLOSE_OPEN_SPANS = 100
#: Exit: the SDK ends traces still open, as Indeterminate.
EXIT_END_TRACES = 200
#: Exit: what is queued is exported, within a deadline.
EXIT_FLUSH = 300
#: Exit: processors and writers stop.
EXIT_SHUTDOWN = 400

_fork: list[tuple[int, int, Callable[[], None]]] = []
_exit: list[tuple[int, int, Callable[[], None]]] = []
_lock = threading.Lock()
_exit_installed = False
_sequence = 0


def _add(table: list[tuple[int, int, Callable[[], None]]], callback: Callable[[], None], order: int) -> None:
    global _sequence
    with _lock:
        if any(entry[2] == callback for entry in table):
            return
        _sequence += 1
        table.append((order, _sequence, callback))
        table.sort(key=lambda entry: entry[:2])


def on_fork_child(callback: Callable[[], None], order: int = FORK_INTEGRATIONS) -> None:
    """Run ``callback`` in every forked child, at its ``order`` (smaller first); once per callback."""
    _add(_fork, callback, order)


def on_exit(callback: Callable[[], None], order: int) -> None:
    """Run ``callback`` when the interpreter exits, at its ``order`` (smaller first); once per callback."""
    _add(_exit, callback, order)


def install_exit_hook() -> None:
    """Register the one ``atexit`` hook (``init()`` calls it; later calls do nothing)."""
    global _exit_installed
    with _lock:
        if _exit_installed:
            return
        _exit_installed = True
    atexit.register(run_exit_callbacks)


def _run(table: list[tuple[int, int, Callable[[], None]]], what: str) -> None:
    for _order, _seq, callback in list(table):
        try:
            callback()
        except Exception:  # one failing callback must not keep the others from running
            logger.warning("agentops: %s callback %r failed", what, callback, exc_info=True)


def run_exit_callbacks() -> None:
    """Run the exit callbacks now, in order (the ``atexit`` hook; tests call it too)."""
    _run(_exit, "exit")


def _after_fork_in_child() -> None:
    global _lock
    _lock = threading.Lock()  # another thread may have held it at fork time
    _run(_fork, "fork")


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
