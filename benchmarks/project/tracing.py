"""Install the variant's tracing, once per process, before Django serves.

OpenTelemetry's global provider can be set once per process, so every variant
runs in processes of its own. The exporters and transports here discard what
they are given: the benchmark measures the cost in the host, not a backend.
"""

from __future__ import annotations

import logging
import os

logger = logging.getLogger(__name__)

_installed = False


def install() -> str:
    """Set up the tracing of ``BENCH_VARIANT`` in this process; idempotent.

    Returns:
        The variant's name.
    """
    global _installed
    variant = os.environ.get("BENCH_VARIANT", "none")
    if _installed:
        return variant
    _installed = True
    if variant == "otel":
        _install_otel()
    elif variant == "sentry":
        _install_sentry()
    return variant


def _install_otel() -> None:
    from opentelemetry import trace
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.django import DjangoInstrumentor
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    class DiscardExporter(SpanExporter):
        def export(self, spans):
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(DiscardExporter()))
    trace.set_tracer_provider(provider)
    DjangoInstrumentor().instrument()
    CeleryInstrumentor().instrument()


def _install_sentry() -> None:
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.django import DjangoIntegration
    from sentry_sdk.transport import Transport

    class DiscardTransport(Transport):
        def capture_envelope(self, envelope):
            pass

        def flush(self, timeout, callback=None):
            pass

        def kill(self):
            pass

    sentry_sdk.init(
        dsn="http://public@127.0.0.1:9/1",
        transport=DiscardTransport,
        traces_sample_rate=1.0,
        integrations=[DjangoIntegration(), CeleryIntegration()],
        default_integrations=True,
    )
