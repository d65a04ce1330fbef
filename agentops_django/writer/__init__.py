"""The database writer: finished spans into ``Trace`` and ``Span`` rows, in batches, off the host's threads.

The way of a span through it::

    on_end ─► bounded queue ─► writer thread ─► DatabaseSpanExporter.export(batch)
              of _record.SpanRecord              ├─ _rows: records → rows and trace summaries
              (agentops.integrations.batch)      └─ _store: one transaction (COPY/INSERT, additive upsert;
                                                    _params: many rows as one jsonb parameter)

:func:`get_processor` gives the process's writer, made from the ``AGENTOPS``
setting; the app's start-up adds it to agentops (except while tests run).
"""

from __future__ import annotations

from agentops_django.writer._exporter import DatabaseSpanExporter
from agentops_django.writer._processor import DatabaseSpanProcessor, get_processor
from agentops_django.writer._store import write_batch

__all__ = ["DatabaseSpanExporter", "DatabaseSpanProcessor", "get_processor", "write_batch"]
