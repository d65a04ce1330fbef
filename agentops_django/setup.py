"""Process start-up: initialise the SDK and install the database writer (once per process)."""

from __future__ import annotations


def setup() -> None:
    """Wire agentops into this process; idempotent."""
