"""Helpers for a project's own tests of the code it traces.

While a test suite runs (``manage.py test``, pytest; see ``IS_RUNNING_TESTS``)
agentops_django traces as usual but does not start the database writer:
spans stay in memory, where a test can assert on them, and nothing touches a
database the test run was not given, holds a lock or a connection Django's
test machinery needs, or outlives a test's rollback::

    from agentops_django.testing import captured_spans

    def test_ask_runs_the_agent(client):
        with captured_spans() as spans:
            client.post("/ask/", {"question": "why?"})
        request = spans.one("POST /ask/")
        assert spans.children_of(request)

:func:`store_spans` writes captured spans into the test database in the
test's own transaction, for tests of code that reads the stored traces (an
admin customisation, a report): the test's rollback removes them again.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction
from opentelemetry.sdk.trace import ReadableSpan

from agentops.testing import CapturedSpans, captured_spans
from agentops_django.conf import get_config
from agentops_django.queries import not_recorded
from agentops_django.writer import write_batch


def store_spans(spans: Iterable[ReadableSpan], using: str | None = None) -> int:
    """Store finished spans as the database writer would, inside the caller's transaction.

    Args:
        spans: Finished spans, e.g. from :func:`captured_spans`.
        using: The database alias; ``AGENTOPS["DATABASE_ALIAS"]`` by default.

    Returns:
        How many spans were newly stored.
    """
    alias = using or get_config().database_alias
    # Written on the caller's connection, perhaps inside a traced request: never its queries.
    with not_recorded(), transaction.atomic(using=alias):
        return write_batch(alias, list(spans), own_transaction=False)


__all__ = ["CapturedSpans", "captured_spans", "store_spans"]
