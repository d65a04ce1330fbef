"""Exceptions agentops defines. None of them is ever raised into host code."""

from __future__ import annotations


class AgentOpsError(Exception):
    """Base class of agentops' exceptions."""


class DidNotEnable(AgentOpsError):
    """An integration cannot be enabled (its client library is missing or too old)."""


__all__ = ["AgentOpsError", "DidNotEnable"]
