"""The SDK's own span hooks: what agentops itself must see as each span ends.

Two parts of the SDK need every ending span: the validation record (the
spans of the latest traces, see :mod:`agentops._validation`) and the agent
instances whose span must end with the span they were opened in (see
:mod:`agentops._instances`). They are not exporters, so they are not among
``span_processors()`` (which the user and ``init(exporters=...)`` manage, and
``reset()`` empties): :class:`SpanHooks` sits in the dispatcher's ``hooks``,
after the exporters, and does nothing while agentops is not initialised.
"""

from __future__ import annotations

from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor

from agentops._guard import capture_internal_exceptions
from agentops._instances import end_children
from agentops._state import Dispatcher, state
from agentops._validation import record_span


class SpanHooks(SpanProcessor):
    """Runs the SDK's span hooks as spans end; never blocks, never raises."""

    def on_end(self, span: ReadableSpan) -> None:
        if state.config is None:
            return
        # Plain try/except on this per-span path (entering the guard costs more);
        # an error is handed to the guard after the fact.
        try:
            record_span(span)
            end_children(span)
        except Exception as exc:
            with capture_internal_exceptions("span hooks"):
                raise exc


_hooks = SpanHooks()


def install(dispatcher: Dispatcher) -> None:
    """Give ``dispatcher`` the SDK's span hooks (once)."""
    if _hooks not in dispatcher.hooks:
        dispatcher.hooks = (*dispatcher.hooks, _hooks)
