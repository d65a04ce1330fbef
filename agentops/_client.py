"""AgentOps' ``Client`` and ``get_client()``: one object per process over ``init()``/``configure()``.

AgentOps' client holds its configuration and the session ``init()`` started;
code that reaches for it (``agentops.get_client().config.default_tags``,
``Client().init(...)``) finds the same here, backed by the module-level state.
It talks to no service: nothing is sent to AgentOps.
"""

from __future__ import annotations

import threading
from typing import Any

from agentops._config import Config
from agentops._init import configure, current_config, init
from agentops._state import state
from agentops._traces import TraceContext


class Client:
    """The process's AgentOps client: ``Client() is Client() is get_client()``."""

    _instance: Client | None = None
    _lock = threading.Lock()

    def __new__(cls, *args: Any, **kwargs: Any) -> Client:
        with cls._lock:
            if cls._instance is None:
                cls._instance = super().__new__(cls)
            return cls._instance

    def init(self, *args: Any, **options: Any) -> TraceContext | None:
        """Start agentops, as :func:`agentops.init` (same options)."""
        return init(*args, **options)

    def configure(self, *args: Any, **options: Any) -> None:
        """Change options, as :func:`agentops.configure` (same options)."""
        configure(*args, **options)

    @property
    def config(self) -> Config:
        """The configuration in force (before ``init()``, the one it would use now)."""
        return current_config()

    @property
    def initialized(self) -> bool:
        """Whether ``init()`` has run."""
        return state.config is not None

    @property
    def init_trace(self) -> TraceContext | None:
        """The session ``init()`` started, while it runs."""
        return state.init_trace

    def __repr__(self) -> str:
        return f"<agentops.Client initialized={self.initialized}>"


def get_client() -> Client:
    """The process's :class:`Client` (made on first use).

    Returns:
        The one ``Client``.
    """
    return Client()
