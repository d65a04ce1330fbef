"""``manage.py agentops_prune`` and friends."""
