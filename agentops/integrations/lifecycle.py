"""Per-process hooks for integrations: what to re-make in a forked child, what to wind down at exit.

One fork hook and one exit hook run every registered callback in a declared
order (smaller first), so correctness never depends on import order::

    from agentops.integrations import lifecycle

    lifecycle.on_fork_child(my_registry.reset)                           # FORK_INTEGRATIONS
    lifecycle.on_exit(close_my_open_spans, lifecycle.EXIT_CLOSE_OPEN_SPANS)
    lifecycle.on_exit(my_writer.shutdown, lifecycle.EXIT_SHUTDOWN)

At exit: integrations end the spans they hold (100), the SDK ends open traces
(200) and flushes (300), then processors and writers stop (400).
"""

from __future__ import annotations

from agentops._lifecycle import (
    EXIT_CLOSE_OPEN_SPANS,
    EXIT_END_TRACES,
    EXIT_FLUSH,
    EXIT_SHUTDOWN,
    FORK_INTEGRATIONS,
    FORK_SDK,
    on_exit,
    on_fork_child,
    run_exit_callbacks,
)

__all__ = [
    "EXIT_CLOSE_OPEN_SPANS",
    "EXIT_END_TRACES",
    "EXIT_FLUSH",
    "EXIT_SHUTDOWN",
    "FORK_INTEGRATIONS",
    "FORK_SDK",
    "on_exit",
    "on_fork_child",
    "run_exit_callbacks",
]
