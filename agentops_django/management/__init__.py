"""Management commands of agentops_django."""
