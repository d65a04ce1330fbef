"""The bounded batch span processor, for any OpenTelemetry ``SpanExporter``.

agentops puts it in front of every exporter it creates (OTLP, console), and
``agentops_django`` in front of its database exporter. Use it for your own::

    from agentops.integrations.batch import BoundedBatchProcessor

    agentops.add_span_processor(BoundedBatchProcessor(MyExporter(), queue_size=10_000))

See :mod:`agentops._batch` for why it exists next to OpenTelemetry's
``BatchSpanProcessor`` (deadlines honoured, the spans that name a trace kept).
"""

from __future__ import annotations

from agentops._batch import BoundedBatchProcessor, names_a_trace

__all__ = ["BoundedBatchProcessor", "names_a_trace"]
