"""Django system checks for the agentops settings (ids ``agentops_django.E0xx``/``W0xx``)."""

from __future__ import annotations
