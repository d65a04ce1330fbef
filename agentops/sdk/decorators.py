"""The decorators under AgentOps' import path: ``from agentops.sdk.decorators import agent, tool``.

The same objects as ``agentops.agent``, ``agentops.tool`` and the others.
"""

from __future__ import annotations

from agentops._decorators import (
    agent,
    guardrail,
    operation,
    session,
    task,
    tool,
    trace,
    track_endpoint,
    workflow,
)

__all__ = ["agent", "guardrail", "operation", "session", "task", "tool", "trace", "track_endpoint", "workflow"]
