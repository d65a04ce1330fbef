"""Finding the trace one wants in the list: the search box's terms and the process filter.

Every branch of :func:`search_filter` is served by an index on PostgreSQL:

* a trace id or its first hex digits: the unique ``trace_id`` index;
* ``user:NAME``: ``(username, -started_at)``;
* a substring of the trace's name (case-insensitive), ``tag:``, ``host:``/``worker:``
  and ``span:``: the trigram GIN indexes of ``pg_trgm`` that migration 0004
  adds where the extension can be had (``UPPER(name)``, ``tags_text``,
  ``processes_text``, the span table's ``UPPER(name)``). Without them, and on
  SQLite, the same queries scan: right, only slower on big tables.

Tags, hosts and worker nodes are stored as ``"|a|b|"`` text, so matching
``"|a|"`` finds a whole tag, never a part of one.
"""

from __future__ import annotations

import datetime as dt
import re

from django.contrib import admin
from django.db import connections, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.functional import cached_property

from agentops_django.admin._page import HEX32
from agentops_django.admin._paginator import EstimatedCountPaginator
from agentops_django.models import Span, WriterStats
from agentops_django.routers import database

HEX_PREFIX = re.compile(r"[0-9a-fA-F]{6,31}")
#: The process filter offers the hosts and workers of processes that reported within this window.
RECENT_PROCESSES_WINDOW = dt.timedelta(days=1)
#: ... at most this many of each.
RECENT_PROCESSES_LIMIT = 50

#: The search box's prefixes.
_PREFIXES = ("tag:", "user:", "host:", "worker:", "span:")


def _whole(value: str) -> str:
    return f"|{value.strip()}|"


def search_filter(term: str) -> Q:
    """The query a search box term stands for (see the module docstring for the indexes).

    * 32 hex digits: that trace id;
    * 6 to 31 hex digits: trace ids starting with them, or names containing them;
    * ``tag:foo``: traces tagged ``foo``;
    * ``user:alice``: traces of the user named ``alice``;
    * ``host:web-1`` or ``worker:celery@w1``: traces with spans stored by a process of that host or worker;
    * ``span:chord``: traces with a span whose name contains ``chord``;
    * anything else: names containing the term (any case), traces tagged with it, or of the user of that name.
    """
    term = term.strip()
    if HEX32.fullmatch(term):
        return Q(trace_id=term.lower())
    prefix = next((p for p in _PREFIXES if term.lower().startswith(p)), "")
    value = term[len(prefix) :].strip()
    if prefix == "tag:":
        return Q(tags_text__contains=_whole(value))
    if prefix == "user:":
        return Q(username=value)
    if prefix in ("host:", "worker:"):
        return Q(processes_text__contains=_whole(value))
    if prefix == "span:":
        spans = Span.objects.using(database()).filter(name__icontains=value).values("trace_id")
        return Q(trace_id__in=spans)
    if HEX_PREFIX.fullmatch(term):
        return Q(trace_id__startswith=term.lower()) | Q(name__icontains=term)
    return Q(name__icontains=term) | Q(tags_text__contains=_whole(term)) | Q(username=term)


class SearchPaginator(EstimatedCountPaginator):
    """The paginator of a search: matches counted up to 1,000, through the indexes on PostgreSQL.

    Counting 10,000 matches of a substring costs more than the page itself,
    and twenty pages of results are plenty. The capped count is a choice
    between reading the table until 1,001 matches are found (right when
    matches are dense) and the trigram index (right when they are sparse).
    ``UPPER(...) LIKE`` costs more per row than the planner's default
    operator cost assumes, so it read half the table for a name 2% of traces
    have (200 ms at 200,000 traces); at four times that cost
    (``SET LOCAL cpu_operator_cost``, in its own transaction, for that one
    statement) it chose right for every search the admin benchmark measures.
    """

    cap = 1_000

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        db = getattr(queryset, "db", None)
        if db is None or connections[db].vendor != "postgresql":
            return super().count
        with transaction.atomic(using=db):
            with connections[db].cursor() as cursor:
                cursor.execute("SET LOCAL cpu_operator_cost = 0.01")
            return super().count


class ProcessFilter(admin.SimpleListFilter):
    """Traces with spans stored by a host or a Celery worker, among those that reported in the last day.

    The choices come from the small per-process table, never from the traces.
    """

    title = "host or worker"
    parameter_name = "process"

    def lookups(self, request, model_admin):
        recent = (
            WriterStats.objects.using(database())
            .filter(updated_at__gte=timezone.now() - RECENT_PROCESSES_WINDOW)
            .order_by("-updated_at")
            .values_list("host", "worker_node")[:1000]
        )
        hosts: dict[str, None] = {}
        workers: dict[str, None] = {}
        for host, node in recent:
            hosts.setdefault(host)
            if node:
                workers.setdefault(node)
        choices = [(host, f"host {host}") for host in sorted(hosts)[:RECENT_PROCESSES_LIMIT]]
        choices += [(node, f"worker {node}") for node in sorted(workers)[:RECENT_PROCESSES_LIMIT]]
        current = self.value()
        if current and current not in hosts and current not in workers:
            choices.append((current, current))
        return choices

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(processes_text__contains=_whole(self.value()))
        return queryset
