"""AgentOps' ``agentops.sdk`` namespace, kept so that its users' imports work unchanged.

Only :mod:`agentops.sdk.decorators` is here; everything else of agentops is
imported from ``agentops`` itself.
"""
