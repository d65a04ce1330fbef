"""A paginator for the trace list that never counts a million rows.

The admin's change list asks its paginator for ``count`` on every page. On a
table of a million traces ``SELECT COUNT(*)`` alone costs more than the whole
page should, so :class:`EstimatedCountPaginator` answers:

* unfiltered, on PostgreSQL: the planner's estimate (``pg_class.reltuples``,
  kept fresh by autovacuum/ANALYZE), read in one catalogue lookup;
* otherwise: an exact count capped at :attr:`EstimatedCountPaginator.cap`
  (``SELECT COUNT(*) FROM (... LIMIT cap)``), which stops early on big results.

:attr:`EstimatedCountPaginator.approximate` tells the template to print
"about" or "more than" instead of pretending the number is exact.
"""

from __future__ import annotations

import logging

from django.core.paginator import Paginator
from django.db import connections
from django.utils.functional import cached_property

logger = logging.getLogger(__name__)

#: Below this many estimated rows the real count is cheap and exact.
EXACT_BELOW = 10_000


class EstimatedCountPaginator(Paginator):
    """A :class:`~django.core.paginator.Paginator` whose ``count`` is estimated or capped.

    Attributes:
        cap: Filtered results are counted up to this many rows.
        approximate: ``""`` when ``count`` is exact, ``"about"`` for a
            planner estimate, ``"more than"`` when the cap was hit.
    """

    cap = 10_000

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.approximate = ""

    @cached_property
    def count(self) -> int:
        """The number of rows, estimated or capped (see the module docstring)."""
        queryset = self.object_list
        query = getattr(queryset, "query", None)
        if query is None:  # a plain list
            return len(queryset)
        if not query.where and not query.distinct and not query.combinator and not query.low_mark:
            estimate = self._planner_estimate(queryset)
            if estimate is not None and estimate >= EXACT_BELOW:
                self.approximate = "about"
                return estimate
        # Order is irrelevant to a count; without it the capped subquery needs no sort.
        counted = queryset.order_by()[: self.cap + 1].count()
        if counted > self.cap:
            self.approximate = "more than"
            return self.cap
        return counted

    @staticmethod
    def _planner_estimate(queryset) -> int | None:
        """PostgreSQL's row estimate of the queryset's table, or ``None`` elsewhere."""
        connection = connections[queryset.db]
        if connection.vendor != "postgresql":
            return None
        table = queryset.model._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(%s)",
                [connection.ops.quote_name(table)],
            )
            row = cursor.fetchone()
        if not row or row[0] is None or row[0] < 0:  # -1: never analysed
            return None
        return int(row[0])
