"""Fixtures shared by every test: a clean agentops per test, span capture, servers.

* Every test starts with agentops reset and ends with it reset again.
* An internal error that agentops' guard swallowed fails the test, except in
  tests marked ``allow_internal_errors`` (those that check the swallowing).
* ``require_server("redis")`` skips a test whose server is absent, and fails it
  instead under ``CI=true``.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import agentops
from agentops import _guard, _state
from agentops.testing import CapturedSpans, captured_spans

IN_CI = os.environ.get("CI", "").lower() == "true"

# The servers, workers and sites these tests start are deployments, not test
# runs: without this they would inherit pytest's marker and keep their spans
# in memory (see AGENTOPS["IS_RUNNING_TESTS"]). This process's own setting
# says WRITE_DURING_TESTS.
os.environ.pop("PYTEST_VERSION", None)
# A developer's own AgentOps key must never send test spans to AgentOps' service:
# the tests that send spans there set the key and point the endpoints at a stand-in.
for _name in ("AGENTOPS_API_KEY", "AGENTOPS_API_ENDPOINT", "AGENTOPS_EXPORTER_ENDPOINT"):
    os.environ.pop(_name, None)

SERVERS = {
    "postgres": ("127.0.0.1", 5432),
    "redis": ("127.0.0.1", 6379),
    "rabbitmq": ("127.0.0.1", 5672),
}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "allow_internal_errors: the test expects agentops to swallow errors")


def server_up(name: str) -> bool:
    host, port = SERVERS[name]
    try:
        socket.create_connection((host, port), timeout=1).close()
    except OSError:
        return False
    return True


def require_server(name: str) -> None:
    """Skip (or, under CI=true, fail) unless the named server answers on loopback."""
    if server_up(name):
        return
    message = f"{name} is not running on {SERVERS[name][0]}:{SERVERS[name][1]}"
    if IN_CI:
        pytest.fail(f"{message} (CI=true: a missing server is a failure)")
    pytest.skip(message)


@pytest.fixture(autouse=True)
def _servers_for_marks(request: pytest.FixtureRequest) -> None:
    for name in SERVERS:
        if request.node.get_closest_marker(name):
            require_server(name)


@pytest.fixture(autouse=True)
def _clean_agentops(request: pytest.FixtureRequest) -> Iterator[None]:
    """Reset agentops around each test; fail on swallowed internal errors."""
    errors: list[BaseException] = []
    _state.reset()
    _guard.reset_counters()
    _guard.set_internal_error_hook(errors.append)
    yield
    _guard.set_internal_error_hook(None)
    _state.reset()
    if errors and not request.node.get_closest_marker("allow_internal_errors"):
        raise AssertionError(f"agentops swallowed internal errors: {errors!r}") from errors[0]


@pytest.fixture
def agentops_init() -> Callable[..., Any]:
    """Factory: ``agentops_init(**options)`` initialises agentops for this test.

    Defaults suited to tests: no automatic session, no exporters.
    """

    def init(**options: Any) -> Any:
        options.setdefault("auto_start_session", False)
        return agentops.init(**options)

    return init


@pytest.fixture
def spans(agentops_init: Callable[..., Any]) -> Iterator[CapturedSpans]:
    """agentops initialised (no auto session) and every span that ends, captured."""
    agentops_init()
    with captured_spans() as captured:
        yield captured
