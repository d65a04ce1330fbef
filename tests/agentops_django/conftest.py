"""Fixtures of the Django tests: agentops wired as ``ready()`` wires it, with or without the database writer.

``agentops`` is reset around every test (``tests/conftest.py``), which also
shuts the writer down; these fixtures run the app's setup again with the
``AGENTOPS`` setting each test needs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from agentops.testing import CapturedSpans, captured_spans
from agentops_django import _wiring as setup
from agentops_django.writer import DatabaseSpanProcessor, get_processor

#: The AGENTOPS setting of tests/settings.py, which each test builds on.
BASE_SETTINGS = {"BATCH_INTERVAL": 0.05, "INSTRUMENT_LLM_CALLS": False, "WRITE_DURING_TESTS": True}


@pytest.fixture
def configure_agentops(settings: Any) -> Iterator[Callable[..., None]]:
    """Factory: ``configure_agentops(**AGENTOPS keys)`` sets the setting and runs the app's setup again."""

    def configure(**overrides: Any) -> None:
        settings.AGENTOPS = {**BASE_SETTINGS, **overrides}
        setup.reset()
        setup.setup()

    yield configure
    setup.reset()


@pytest.fixture
def traced(configure_agentops: Callable[..., None]) -> Iterator[CapturedSpans]:
    """agentops_django set up without the database writer; every finished span captured."""
    configure_agentops(DATABASE_WRITER=False)
    with captured_spans() as spans:
        yield spans


@pytest.fixture
def writer(transactional_db: Any, configure_agentops: Callable[..., None]) -> DatabaseSpanProcessor:
    """agentops_django set up with the database writer on the test database (committed data)."""
    configure_agentops()
    return get_processor()
