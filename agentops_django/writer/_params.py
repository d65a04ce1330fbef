"""PostgreSQL: many rows as one query parameter, a JSON array of arrays.

The trace summaries and the rollup go into their tables by ``INSERT ...
SELECT ... ON CONFLICT DO UPDATE`` from rows that arrive as a single JSON text
and are cast on the server, column by column. Django's psycopg cursor binds
parameters on the client, where an array parameter is quoted element by
element in Python (about 30 µs per trace summary); the JSON text is written
by ``orjson`` in about 1 µs per row and read by the server in about 5 µs
(as ``jsonb``, parsed once: ``->>`` on ``json`` text parses the row again
for every column, 24 µs per row).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from agentops_django.writer._rows import _json


def json_rows_source(types: Sequence[str]) -> str:
    """``SELECT`` of the rows in one ``%s`` parameter (see :func:`json_rows`), each column cast to its type.

    Args:
        types: The PostgreSQL type of each column, in order.
    """
    columns = ", ".join(f"(r->>{i})::{kind}" for i, kind in enumerate(types))
    return f"SELECT {columns} FROM jsonb_array_elements(%s::jsonb) AS r"


def json_rows(rows: Sequence[Sequence[Any]]) -> str:
    """The parameter of :func:`json_rows_source`: ``rows`` as strict JSON text.

    Datetimes become ISO 8601 text, a ``jsonb`` column's value its JSON text
    (a JSON string, which ``->>`` unquotes); strings are column-safe already.
    """
    return _json(rows)
