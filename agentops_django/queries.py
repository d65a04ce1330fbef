"""SQL per request and per task, through Django's own ``connection.execute_wrapper`` hook.

A request's or task's scope gets a :class:`QueryRecorder` in its OpenTelemetry
context (:func:`start`). Every query run in that context, on any database
alias and in any thread the context travels to (an async view's ORM calls run
in ``sync_to_async`` threads, which copy it), is counted and timed by
:func:`execute_wrapper`, one function Django calls around each query of a
connection that has it in its ``execute_wrappers``. It is added to every
connection as it opens (Django's ``connection_created`` signal), in any
thread, and once per thread (and per change of the setting) to the
connections a recording thread had open before; it is never removed: where no
recorder is current it costs one context look-up. Nothing is patched, and
with ``RECORD_QUERIES`` off nothing is added.

When the scope closes, :func:`finish` turns the recorder into the span's
attributes: the number of queries, their total time, how many distinct
statements ran at least ``REPEATED_QUERY_THRESHOLD`` times (the N+1 pattern)
and the top statements, normalised (literals and ``IN``/``VALUES`` lists of
any length folded, so one loop's statements are one). A query counts once, on
the innermost request or task running it (an eager task inside a view counts
its own), so totals summed over a trace count no query twice.

The database writer's own queries are never counted: its thread's context has
no recorder, and :func:`not_recorded` takes it away where spans are written
in the caller's thread (``agentops_django.testing.store_spans``).

With ``QUERY_SPANS`` each query is also a CLIENT span (OpenTelemetry's
database names: ``db.system.name``, ``db.namespace``, ``db.operation.name``,
``db.query.text``), a child of the span current where it ran, at most
``MAX_QUERY_SPANS`` per request or task (an eager task shares its caller's
allowance). The text is the normalised statement and parameter values are
never recorded: Django passes them apart from the SQL, and literals written
into raw SQL are replaced, as OpenTelemetry asks of query text recorded by
default. A query that fails marks its span with the error's type only (the
driver's message may quote values); the exception itself reaches the caller
unchanged.
"""

from __future__ import annotations

import functools
import json
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from django.db import connections
from django.db.backends.signals import connection_created
from opentelemetry import context as context_api
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind

from agentops import semconv
from agentops.integrations import scope as integration
from agentops.integrations.scope import Scope, capture_internal_exceptions
from agentops_django.conf import get_config

#: Distinct statements (as sent) tracked per request or task; more still count in the totals.
MAX_STATEMENTS = 200
#: Characters of a statement kept (longer ones are cut before they are tracked or normalised).
MAX_SQL_CHARS = 2_000
#: Statements listed in :data:`~agentops.semconv.AGENTOPS_DB_TOP_QUERIES`.
TOP_QUERIES = 5

_KEY = context_api.create_key("agentops_django.queries")
#: Compact JSON, text left as it is: a few times cheaper than ``json.dumps``'s defaults.
_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_perf_counter = time.perf_counter
_get_value = context_api.get_value

# One pass each, in order: quoted strings, then numbers (not inside names like t1),
# then lists of placeholders (IN (%s, %s, ...)), then repeated row groups (VALUES).
_STRINGS = re.compile(r"'(?:[^']|'')*'")
_NUMBERS = re.compile(r"(?<![\w.\"`])\d+(?:\.\d+)?(?:[eE][-+]?\d+)?\b")
_LISTS = re.compile(r"\(\s*(?:%s|\?)(?:\s*,\s*(?:%s|\?))+\s*\)")
_ROWS = re.compile(r"(\([^()]*\))(?:\s*,\s*\1)+")
_SPACE = re.compile(r"\s+")


@functools.lru_cache(maxsize=1024)
def normalize(sql: str) -> str:
    """The statement with its variable parts folded, so that one loop's queries read as one.

    Literals become ``?``; a list of placeholders of any length becomes
    ``(...)``; a ``VALUES`` list of identical rows keeps one row;
    runs of white space become one space. Cut at :data:`MAX_SQL_CHARS`.

    Args:
        sql: A statement as Django sends it (parameters apart, as ``%s``).

    Returns:
        The normalised statement.
    """
    text = _STRINGS.sub("?", sql[:MAX_SQL_CHARS])
    text = _NUMBERS.sub("?", text)
    text = _LISTS.sub("(...)", text)
    text = _ROWS.sub(r"\1", text)
    return _SPACE.sub(" ", text).strip()


class _Allowance:
    """Query spans still allowed; shared by a request and the eager tasks it runs."""

    __slots__ = ("left",)

    def __init__(self, left: int) -> None:
        self.left = left


class QueryRecorder:
    """The queries of one request or task run: totals and, per statement, count and time.

    Attributes:
        count: Queries run.
        seconds: Their total time.
        statements: ``{statement as sent: [count, seconds]}``, at most :data:`MAX_STATEMENTS`.
        threshold: Runs of one normalised statement that make it a repeated statement.
        spans: Query spans still allowed, or ``None`` without ``QUERY_SPANS``.
        closed: Set by :meth:`attributes`; later queries are not counted.
    """

    __slots__ = ("closed", "count", "lock", "seconds", "spans", "statements", "threshold")

    def __init__(self, threshold: int, spans: _Allowance | None = None) -> None:
        self.count = 0
        self.seconds = 0.0
        self.statements: dict[str, list[Any]] = {}
        self.threshold = threshold
        self.spans = spans
        self.closed = False
        # Threads of one async request may run queries at once.
        self.lock = threading.Lock()

    def add(self, sql: str, seconds: float) -> None:
        """Count one query of ``seconds``."""
        if len(sql) > MAX_SQL_CHARS:
            sql = sql[:MAX_SQL_CHARS]
        with self.lock:
            self.count += 1
            self.seconds += seconds
            entry = self.statements.get(sql)
            if entry is not None:
                entry[0] += 1
                entry[1] += seconds
            elif len(self.statements) < MAX_STATEMENTS:
                self.statements[sql] = [1, seconds]

    def attributes(self) -> dict[str, Any]:
        """Close the recorder and return the span attributes it adds up to."""
        with self.lock:
            self.closed = True
            statements = list(self.statements.items())
        grouped: dict[str, list[Any]] = {}
        for sql, (count, seconds) in statements:
            key = normalize(sql)
            entry = grouped.get(key)
            if entry is None:
                grouped[key] = [count, seconds]
            else:
                entry[0] += count
                entry[1] += seconds
        threshold = self.threshold
        ranked = list(grouped.items())
        if len(ranked) > 1:
            # Repeated statements first (each is an N+1 suspect to show), then by total time.
            ranked.sort(key=lambda item: (item[1][0] >= threshold, item[1][1]), reverse=True)
        repeated = 0
        for _, (count, _seconds) in ranked:
            if count < threshold:
                break  # the repeated ones come first
            repeated += 1
        result: dict[str, Any] = {
            semconv.AGENTOPS_DB_QUERY_COUNT: self.count,
            semconv.AGENTOPS_DB_QUERY_TIME_MS: round(self.seconds * 1000, 3),
            semconv.AGENTOPS_DB_REPEATED_QUERIES: repeated,
        }
        if ranked:
            top = [
                {"sql": sql, "count": count, "time_ms": round(seconds * 1000, 3)}
                for sql, (count, seconds) in ranked[:TOP_QUERIES]
            ]
            result[semconv.AGENTOPS_DB_TOP_QUERIES] = _encode(top)
        return result


def start(scope: Scope) -> QueryRecorder | None:
    """Record the queries run in ``scope`` (a request's or task's) until :func:`finish`.

    Puts a recorder in ``scope.context`` (call it before the context is
    attached or copied) and, the first time in this thread, adds
    :func:`execute_wrapper` to the connections it has open. Nothing happens
    with ``RECORD_QUERIES`` off or for a span that does not record (a request
    not sampled).

    Returns:
        The recorder, or ``None`` if nothing is recorded.
    """
    try:
        config = get_config()
        if not config.record_queries or not scope.span.is_recording():
            return None
        spans = None
        if config.query_spans:
            outer = _get_value(_KEY, scope.context)
            spans = outer.spans if isinstance(outer, QueryRecorder) and outer.spans is not None else None
            if spans is None:
                spans = _Allowance(config.max_query_spans)
        recorder = QueryRecorder(config.repeated_query_threshold, spans)
        scope.context = context_api.set_value(_KEY, recorder, scope.context)
        if _thread.checked is not config:
            # Connections opened before recording was on; later ones get the wrapper as they open.
            for connection in connections.all(initialized_only=True):
                _install(connection)
            _thread.checked = config
    except Exception as exc:  # never in the way of the request or task
        _internal_error(exc)
        return None
    return recorder


def finish(context: Context, attributes: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
    """The scope's last attributes with its query attributes added (``attributes`` if none were recorded)."""
    recorder = _get_value(_KEY, context)
    if not isinstance(recorder, QueryRecorder) or recorder.closed:
        return dict(attributes) if attributes else None
    try:
        found = recorder.attributes()
    except Exception as exc:
        with capture_internal_exceptions("query attributes"):
            raise exc
        found = {}
    return {**attributes, **found} if attributes else found


@contextmanager
def not_recorded() -> Iterator[None]:
    """Queries run inside are counted by no request or task (the writer's, run in the caller's thread)."""
    token = context_api.attach(context_api.set_value(_KEY, None))
    try:
        yield
    finally:
        context_api.detach(token)


def execute_wrapper(execute: Callable[..., Any], sql: Any, params: Any, many: bool, context: dict[str, Any]) -> Any:
    """Django's execute wrapper: time and count the query if a recorder is current, else just run it.

    The query's own exception passes through unchanged; it is counted too.
    """
    recorder: Any = _get_value(_KEY)
    if recorder is None or recorder.closed:
        return execute(sql, params, many, context)
    if recorder.spans is not None and recorder.spans.left > 0:
        return _execute_in_span(recorder, execute, sql, params, many, context)
    started = _perf_counter()
    try:
        return execute(sql, params, many, context)
    finally:
        elapsed = _perf_counter() - started
        try:
            recorder.add(sql if isinstance(sql, str) else str(sql), elapsed)
        except Exception as exc:
            _internal_error(exc)


def _execute_in_span(
    recorder: QueryRecorder, execute: Callable[..., Any], sql: Any, params: Any, many: bool, context: dict[str, Any]
) -> Any:
    span = None
    try:
        recorder.spans.left -= 1  # type: ignore[union-attr]
        span = integration.tracer().start_span(
            _operation(sql), kind=SpanKind.CLIENT, attributes=_span_attributes(sql, context)
        )
    except Exception as exc:
        _internal_error(exc)
    started = _perf_counter()
    try:
        return execute(sql, params, many, context)
    except BaseException as exc:
        if span is not None:
            try:
                # The type only: a driver's message may quote the values (a duplicate key's).
                integration.mark_failed(span, None, error_type=type(exc).__qualname__)
            except Exception as error:
                _internal_error(error)
        raise
    finally:
        elapsed = _perf_counter() - started
        try:
            recorder.add(sql if isinstance(sql, str) else str(sql), elapsed)
            if span is not None:
                span.end()
        except Exception as exc:
            _internal_error(exc)


#: Django's vendor names that OpenTelemetry spells differently (``db.system.name``).
_SYSTEMS = {"oracle": "oracle.db", "microsoft": "microsoft.sql_server"}


def _operation(sql: Any) -> str:
    """The statement's first word (``SELECT``), the span's name."""
    word = str(sql).lstrip()[:16].split(None, 1)
    return word[0].upper() if word else "SQL"


def _span_attributes(sql: Any, context: dict[str, Any]) -> dict[str, Any]:
    connection = context.get("connection")
    vendor = getattr(connection, "vendor", "") or "other_sql"
    attributes: dict[str, Any] = {
        semconv.DB_SYSTEM_NAME: _SYSTEMS.get(vendor, vendor),
        semconv.DB_OPERATION_NAME: _operation(sql),
        semconv.DB_QUERY_TEXT: normalize(str(sql)),
    }
    name = getattr(connection, "settings_dict", {}).get("NAME")
    if name:
        attributes[semconv.DB_NAMESPACE] = str(name)
    return attributes


def _install(connection: Any) -> None:
    wrappers = connection.execute_wrappers
    if execute_wrapper not in wrappers:
        # Outermost: the time includes what other wrappers add.
        wrappers.insert(0, execute_wrapper)


class _Checked(threading.local):
    """Per thread: the settings under which its open connections were given the wrapper."""

    checked: object = None


_thread = _Checked()


def _on_connection_created(sender: Any, connection: Any = None, **kwargs: Any) -> None:
    """A connection opened (in any thread: a request's, an async view's ORM thread, a worker's): add the wrapper."""
    try:
        if connection is not None and get_config().record_queries:
            _install(connection)
    except Exception as exc:  # Signal.send lets a receiver's exception escape: guard ourselves
        _internal_error(exc)


def _internal_error(exc: Exception) -> None:
    with capture_internal_exceptions("query recording"):
        raise exc


connection_created.connect(_on_connection_created, dispatch_uid="agentops_django.queries")

__all__ = ["QueryRecorder", "execute_wrapper", "finish", "normalize", "not_recorded", "start"]
