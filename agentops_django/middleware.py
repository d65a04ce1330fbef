"""The request middleware: every request is the root span of its own trace.

:class:`AgentOpsMiddleware` is put first in ``MIDDLEWARE`` by the app's
``ready()``. For each request that is not excluded it starts a SERVER span
named ``"{method} {route}"`` (``"GET /orders/<int:pk>/"``; the method alone
when no URL pattern matched), makes it current in an agentops *scope* for the
duration of the view, and ends it when the response is done: at once for an
ordinary response, when the stream closes for a streaming one. Inside the
scope ``agentops.start_trace()`` makes a child of the request and
``end_trace()`` ends only the request's own traces; whatever the view left
open is ended as ``Indeterminate`` with the request.

The request's trace ends as ``Error`` for a 5xx response or an unhandled
exception (which is recorded on the span), as ``Success`` otherwise, 404s
included. Host names are never validated here (no ``get_host()``), so a bad
``Host`` header cannot make tracing raise.
"""

from __future__ import annotations

import functools
import random
import sys
from collections.abc import AsyncIterator, Awaitable, Iterator
from typing import Any, Protocol
from urllib.parse import unquote_plus

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import FileResponse, HttpRequest
from django.http.response import HttpResponseBase
from django.utils.functional import empty
from opentelemetry import context as context_api
from opentelemetry import trace as trace_api
from opentelemetry.context import Context
from opentelemetry.trace import SpanContext, TraceFlags
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from agentops import semconv
from agentops.integrations import scope as integration
from agentops.integrations.scope import REDACTED, Scope, capture_internal_exceptions, is_secret_key
from agentops.semconv import TraceState
from agentops_django import _process, queries
from agentops_django.conf import get_config

#: Characters of the path kept in the name of a request no URL pattern matched.
NOT_FOUND_PATH_CHARS = 100
#: Where the per-request state lives on the request.
REQUEST_ATTRIBUTE = "_agentops"
#: Headers never recorded in clear, whatever ``REDACT_KEYS`` says.
ALWAYS_REDACTED_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization", "set-cookie"})

_ROOT = Context()
_PROPAGATOR = TraceContextTextMapPropagator()
_SERVER = trace_api.SpanKind.SERVER
_UNSAMPLED = TraceFlags(TraceFlags.DEFAULT)
_REQUEST = semconv.SpanKind.REQUEST


class _Traced:
    """One request's tracing state (``request._agentops``)."""

    __slots__ = ("context", "ended", "exception", "method", "scope", "span", "stream_error")

    def __init__(self, scope: Scope, method: str) -> None:
        self.scope = scope
        self.span = scope.span
        self.context = scope.context
        self.method = method
        self.exception: BaseException | None = None
        self.stream_error: BaseException | None = None
        self.ended = False


class GetResponse(Protocol):
    """The rest of a synchronous middleware chain."""

    def __call__(self, request: HttpRequest, /) -> HttpResponseBase: ...


class AsyncGetResponse(Protocol):
    """The rest of an asynchronous middleware chain."""

    def __call__(self, request: HttpRequest, /) -> Awaitable[HttpResponseBase]: ...


class AgentOpsMiddleware:
    """Traces each request as the root span of a new trace; sync and async.

    Args:
        get_response: The rest of the middleware chain.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: GetResponse | AsyncGetResponse) -> None:
        self.get_response: Any = get_response
        self.is_async = iscoroutinefunction(get_response)
        _process.serves_requests()  # made by a request handler: a web process, unless a role is known
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self.__acall__(request)
        try:
            traced = _start(request)
        except Exception as exc:
            _internal_error("middleware start", exc)
            traced = None
        if traced is None:
            return self.get_response(request)
        token = context_api.attach(traced.context)
        try:
            response = self.get_response(request)
        except BaseException as exc:
            _fail(traced, exc, token)
            raise
        return _respond(traced, request, response, token)

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        try:
            traced = _start(request)
        except Exception as exc:
            _internal_error("middleware start", exc)
            traced = None
        if traced is None:
            return await self.get_response(request)
        token = context_api.attach(traced.context)
        try:
            response = await self.get_response(request)
        except BaseException as exc:
            _fail(traced, exc, token)
            raise
        return _respond(traced, request, response, token)

    def process_exception(self, request: HttpRequest, exception: BaseException) -> None:
        """Remember the view's exception; it is recorded if the response is a 5xx."""
        traced = getattr(request, REQUEST_ATTRIBUTE, None)
        if traced is not None and traced.exception is None:
            traced.exception = exception


def on_request_exception(sender: Any, request: Any = None, **kwargs: Any) -> None:
    """Remember exceptions that never reached ``process_exception`` (raised by other middleware)."""
    traced = getattr(request, REQUEST_ATTRIBUTE, None)
    if traced is not None and traced.exception is None:
        traced.exception = sys.exc_info()[1]


def _internal_error(where: str, exc: Exception) -> None:
    """Hand an error of ours to the guard (log, count, test hook) after the fact.

    The hot path uses plain ``try``/``except`` (cheaper than entering the
    guard's context manager on every request) and reports through it only
    when something went wrong.
    """
    with capture_internal_exceptions(where):
        raise exc


def _start(request: Any) -> _Traced | None:
    """Open the request's span and context, or return ``None`` if it is not traced."""
    if not integration.is_active():
        return None  # agentops is not initialised (or was reset)
    config = get_config()
    if not config.enabled:
        return None
    excluded = config.excluded
    path_info = request.path_info
    if excluded is not None and excluded.match(path_info):
        return None
    if config.exclude_default_paths:
        admin = admin_prefix()
        if admin and path_info.startswith(admin):
            return None
    if config.should_trace is not None and not config.should_trace(request):
        return None
    meta = request.META
    method = request.method
    parent = _ROOT
    sampled = True
    if config.trust_traceparent and "HTTP_TRACEPARENT" in meta:
        carrier = {"traceparent": meta["HTTP_TRACEPARENT"], "tracestate": meta.get("HTTP_TRACESTATE", "")}
        extracted = _PROPAGATOR.extract(carrier)
        if trace_api.get_current_span(extracted).get_span_context().is_valid:
            parent = extracted  # the client's sampling decision is kept
        else:
            sampled = _sample(config.sample_rate)
    elif config.sample_rate < 1.0:
        sampled = _sample(config.sample_rate)
    if sampled:
        attributes = {
            semconv.AGENTOPS_SPAN_KIND: _REQUEST,
            semconv.HTTP_REQUEST_METHOD: method,
            semconv.URL_PATH: request.path,
            semconv.URL_SCHEME: request.scheme,
        }
        query = meta.get("QUERY_STRING")
        if query:
            attributes[semconv.URL_QUERY] = _redact_query(query, integration.redact_keys())
        address = meta.get("REMOTE_ADDR")
        if address:
            attributes[semconv.CLIENT_ADDRESS] = address
        agent = meta.get("HTTP_USER_AGENT")
        if agent:
            attributes[semconv.USER_AGENT_ORIGINAL] = agent
        if config.record_headers:
            attributes.update(_headers(meta, integration.redact_keys()))
        opened = integration.open_scope(method, parent=parent, base=_ROOT, kind=_SERVER, attributes=attributes)
        queries.start(opened)  # in the context before it is attached: the view's queries are counted
    else:
        # Not sampled: a non-recording span, so that everything started
        # inside (traces, decorated calls, LLM calls) is dropped as well.
        bits = random.getrandbits
        unsampled = SpanContext(bits(128) or 1, bits(64) or 1, is_remote=False, trace_flags=_UNSAMPLED)
        opened = integration.non_recording_scope(unsampled, base=_ROOT)
    traced = _Traced(opened, method)
    setattr(request, REQUEST_ATTRIBUTE, traced)
    return traced


@functools.cache
def admin_prefix() -> str:
    """The path of the Django admin's index (``"/admin/"``), or ``""`` without an admin; found once."""
    try:
        from django.urls import reverse

        return reverse("admin:index")
    except Exception:  # no admin in the URLconf (NoReverseMatch), or no URLconf at all
        return ""


@receiver(setting_changed)
def _forget_admin_prefix(*, setting: str, **kwargs: Any) -> None:
    if setting == "ROOT_URLCONF":
        admin_prefix.cache_clear()


def _sample(rate: float) -> bool:
    return rate >= 1.0 or (rate > 0.0 and random.random() < rate)


def _redact_query(query: str, redact_keys: frozenset[str]) -> str:
    """The query string with the values of secret-looking parameters replaced."""
    parts = query.split("&")
    changed = False
    for i, part in enumerate(parts):
        name, sep, value = part.partition("=")
        if sep and value and is_secret_key(unquote_plus(name), redact_keys):
            parts[i] = f"{name}={REDACTED}"
            changed = True
    return "&".join(parts) if changed else query


def _headers(meta: Any, redact_keys: frozenset[str]) -> dict[str, str]:
    """``http.request.header.*`` attributes; credentials and secret-looking headers redacted."""
    result = {}
    for key, value in meta.items():
        if not key.startswith("HTTP_"):
            continue
        name = key[5:].lower().replace("_", "-")
        if name in ALWAYS_REDACTED_HEADERS or is_secret_key(name, redact_keys):
            value = REDACTED
        result[f"http.request.header.{name}"] = str(value)
    return result


def _route(request: Any) -> str | None:
    match = getattr(request, "resolver_match", None)
    route = getattr(match, "route", None) if match is not None else None
    if route is None:
        return None
    return "/" + str(route).lstrip("^")


def _respond(traced: _Traced, request: Any, response: Any, token: Any) -> Any:
    """Name the span and end it now, or when a streaming response closes."""
    try:
        status = response.status_code
        final: dict[str, Any] = {semconv.HTTP_RESPONSE_STATUS_CODE: status}
        route = _route(request)
        if traced.span.is_recording() and get_config().record_user:
            try:
                _record_user(request, final)
            except Exception as exc:  # a failing user backend costs the user attributes, not the span
                _internal_error("middleware user", exc)
        if route is not None and traced.span.is_recording():
            traced.span.update_name(f"{traced.method} {route}")
            final[semconv.HTTP_ROUTE] = route
        elif status == 404 and traced.span.is_recording():
            # No URL pattern matched: say what was asked for (cut, so bots cannot flood the name).
            traced.span.update_name(f"{traced.method} {request.path[:NOT_FOUND_PATH_CHARS]} (no route)")
        if response.streaming:
            if not isinstance(response, FileResponse):
                # FileResponse keeps its file so servers can use sendfile.
                if response.is_async:
                    response.streaming_content = _aiterate(traced, response.streaming_content)
                else:
                    response.streaming_content = _iterate(traced, response.streaming_content)
            response._resource_closers.append(functools.partial(_end_stream, traced, status, final))
        else:
            _end(traced, status, traced.exception, final)
    except Exception as exc:
        _internal_error("middleware response", exc)
    finally:
        context_api.detach(token)
    return response


def _record_user(request: Any, final: dict[str, Any]) -> None:
    """Add the authenticated user's id and username to ``final``; nothing for an anonymous user.

    Only a user the request already loaded is recorded: a ``request.user`` that
    nothing looked at is still Django's lazy object, and evaluating it would
    add a session and a user query to the host's request (or query the
    database from an async request's event loop). Views, templates showing the
    user, permission checks and token authentication all load it.
    """
    user = getattr(request, "user", None)
    if user is None or getattr(user, "__dict__", {}).get("_wrapped", None) is empty:
        return
    if not getattr(user, "is_authenticated", False):
        return
    final[semconv.USER_ID] = str(user.pk)[:64]
    final[semconv.USER_NAME] = str(user.get_username())[:150]


def _fail(traced: _Traced, exc: BaseException, token: Any) -> None:
    """The rest of the chain raised: end the trace as Error and let the exception go on."""
    try:
        _end(traced, 500, exc, {semconv.HTTP_RESPONSE_STATUS_CODE: 500})
    except Exception as error:
        _internal_error("middleware exception", error)
    finally:
        context_api.detach(token)


def _end_stream(traced: _Traced, status: int, final: dict[str, Any]) -> None:
    with capture_internal_exceptions("middleware stream end"):
        error = traced.stream_error is not None
        _end(traced, status, traced.stream_error or traced.exception, final, error=error)


def _end(traced: _Traced, status: int, exc: BaseException | None, final: dict[str, Any], error: bool = False) -> None:
    """End the request's scope (once): leftovers, end state and the last attributes in one call."""
    if traced.ended:
        return
    traced.ended = True
    final = queries.finish(traced.context, final) or final
    if error or status >= 500:
        traced.scope.fail(exc, error_type=None if exc is not None else str(status))
        traced.scope.close(TraceState.ERROR, final)
    else:
        traced.scope.close(TraceState.SUCCESS, final)


def _iterate(traced: _Traced, content: Iterator[Any]) -> Iterator[Any]:
    """The streaming content, run in the request's context; errors are remembered."""
    iterator = iter(content)
    while True:
        token = context_api.attach(traced.context)
        try:
            chunk = next(iterator)
        except StopIteration:
            return
        except BaseException as exc:
            traced.stream_error = exc
            raise
        finally:
            context_api.detach(token)
        yield chunk


async def _aiterate(traced: _Traced, content: AsyncIterator[Any]) -> AsyncIterator[Any]:
    """The async streaming content, run in the request's context; errors are remembered."""
    iterator = aiter(content)
    while True:
        token = context_api.attach(traced.context)
        try:
            chunk = await anext(iterator)
        except StopAsyncIteration:
            return
        except BaseException as exc:
            traced.stream_error = exc
            raise
        finally:
            context_api.detach(token)
        yield chunk
