"""In a Django project, an AgentOps key sends spans to AgentOps' service and the database keeps every one.

The key comes from ``AGENTOPS_API_KEY`` (the app's ``ready()`` calls
``agentops.init()``, which reads it), the endpoints point at the loopback
stand-in of the service.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.test import Client

import agentops
from agentops_django.models import Span

pytest.importorskip("opentelemetry.exporter.otlp.proto.http.trace_exporter")

from agentops.testing.service_server import ServiceServer

KEY = "django-project-key"


@pytest.fixture
def service(monkeypatch: pytest.MonkeyPatch) -> Iterator[ServiceServer]:
    with ServiceServer(api_key=KEY) as server:
        monkeypatch.setenv("AGENTOPS_API_KEY", KEY)
        monkeypatch.setenv("AGENTOPS_API_ENDPOINT", server.api_endpoint)
        monkeypatch.setenv("AGENTOPS_EXPORTER_ENDPOINT", server.exporter_endpoint)
        yield server


def traffic() -> None:
    """Three requests and a manual trace."""
    client = Client()
    for path in ("/orders/1/", "/orders/2/", "/orders/404/"):
        client.get(path)
    with agentops.start_trace("nightly-report"):
        pass


def stored_span_ids() -> set[str]:
    return set(Span.objects.values_list("span_id", flat=True))


def sent_span_ids(service: ServiceServer) -> set[str]:
    return {span.span_id.hex() for export in service.exports for span in export.spans}


def test_the_service_and_the_database_both_get_every_span(
    transactional_db: Any, service: ServiceServer, configure_agentops: Callable[..., None]
) -> None:
    configure_agentops()
    traffic()
    assert agentops.flush(30_000)

    stored = stored_span_ids()
    assert len(stored) >= 4
    assert sent_span_ids(service) == stored
    assert len(service.auth_requests) == 1


def test_when_the_service_fails_the_database_copy_is_unaffected(
    transactional_db: Any, service: ServiceServer, configure_agentops: Callable[..., None]
) -> None:
    service.export_failures = [500] * 100
    configure_agentops()
    traffic()
    assert agentops.flush(30_000)

    assert service.exports == []
    assert service.export_requests  # it was tried
    assert len(stored_span_ids()) >= 4
    assert {row.name for row in Span.objects.all()} >= {"nightly-report"}
