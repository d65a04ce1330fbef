"""Automatic instrumentation of LLM clients (OpenAI, Anthropic).

Each integration lives in its own module, imports its client library at the
top, and raises :class:`DidNotEnable` when that library is missing, so a
missing client never breaks ``import agentops``. Integrations are installed
through ``wrapt`` post-import hooks: the client may be imported before or after
``agentops.init()``. :func:`uninstrument` undoes the patching.
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Callable, Iterable

import wrapt

from agentops._guard import capture_internal_exceptions
from agentops.exceptions import DidNotEnable

logger = logging.getLogger("agentops")

#: Integration name -> (module implementing it, client module that triggers it).
INTEGRATIONS: dict[str, tuple[str, str]] = {
    "openai": ("agentops.integrations._openai", "openai"),
    "anthropic": ("agentops.integrations._anthropic", "anthropic"),
}

_lock = threading.RLock()
_wanted: set[str] = set()
_installed: set[str] = set()
_hooked: set[str] = set()


def installed() -> frozenset[str]:
    """Names of the integrations whose patches are in place."""
    with _lock:
        return frozenset(_installed)


def _install(name: str) -> None:
    if name not in _wanted or name in _installed:
        return
    module_name = INTEGRATIONS[name][0]
    with capture_internal_exceptions(f"instrumenting {name}"):
        try:
            # Imported before taking the lock: holding it while another thread
            # holds the client library's import lock could deadlock.
            module = importlib.import_module(module_name)
        except DidNotEnable as exc:
            logger.info("agentops: %s integration not enabled: %s", name, exc)
            return
        with _lock:
            if name not in _wanted or name in _installed:
                return
            module.instrument()
            _installed.add(name)
        logger.debug("agentops: %s instrumented", name)


def _post_import_hook(name: str) -> Callable[[object], None]:
    def hook(_module: object) -> None:
        _install(name)

    return hook


def instrument(names: Iterable[str] | None = None) -> None:
    """Instrument the named client libraries (all known ones by default).

    Installing happens when the client library is imported (now, if it already
    is); each integration is installed once, under a lock.

    Args:
        names: Integration names from :data:`INTEGRATIONS`.
    """
    for name in INTEGRATIONS if names is None else names:
        if name not in INTEGRATIONS:
            logger.warning("agentops: unknown integration %r", name)
            continue
        with _lock:
            _wanted.add(name)
            first_hook = name not in _hooked
            _hooked.add(name)
        if first_hook:
            # The hook stays registered (wrapt cannot remove one); _wanted decides.
            wrapt.register_post_import_hook(_post_import_hook(name), INTEGRATIONS[name][1])
        else:
            import sys

            if INTEGRATIONS[name][1] in sys.modules:
                _install(name)


def uninstrument(names: Iterable[str] | None = None) -> None:
    """Undo the patching of the named integrations (all by default)."""
    for name in list(INTEGRATIONS if names is None else names):
        with _lock:
            _wanted.discard(name)
            if name not in _installed:
                continue
            _installed.discard(name)
        with capture_internal_exceptions(f"uninstrumenting {name}"):
            importlib.import_module(INTEGRATIONS[name][0]).uninstrument()


def uninstrument_all() -> None:
    uninstrument()


__all__ = ["INTEGRATIONS", "DidNotEnable", "installed", "instrument", "uninstrument"]
