"""What a framework integration checks about the environment agentops runs in.

:func:`find_conflict` says whether the official AgentOps SDK (which installs a
package of the same import name, ``agentops``) is installed next to this one,
and how to fix it; ``agentops_django`` reports it as a system check.
"""

from __future__ import annotations

from agentops._conflict import FIX, PackageConflictError, find_conflict

__all__ = ["FIX", "PackageConflictError", "find_conflict"]
