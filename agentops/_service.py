"""AgentOps' service as a second destination: the API key's token, then OTLP/HTTP.

With an API key, spans also go where the official AgentOps SDK sends them,
the way it sends them: the key is exchanged for a bearer token
(``POST {endpoint}/v3/auth/token`` with ``{"api_key": ...}``, answered with
``token`` and ``project_id``), then batches are posted as OTLP/HTTP protobuf
to the exporter endpoint with ``Authorization: Bearer <token>`` and the
project on the resource (``agentops.project.id``). The database copy and any
other exporter are unaffected.

Everything here runs on the export thread of the
:class:`~agentops._batch.BoundedBatchProcessor` the exporter sits behind,
never on the host's: the token is fetched before the first batch is sent,
renewed shortly before it expires (a JWT's ``exp``) and when the OTLP
endpoint answers 401 (then the batch is sent once more). A failed exchange
(refused key, 5xx, timeout) is logged and retried after a growing pause;
meanwhile batches fail at once, and the processor counts and reports them as
dropped. OpenTelemetry's OTLP exporter does the posting and its retries of
transient answers, bounded by :data:`REQUEST_TIMEOUT`.

Importing this module needs the ``otlp`` extra; without it, it raises
:class:`~agentops.exceptions.DidNotEnable`.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
import weakref
from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from agentops import semconv
from agentops._lifecycle import FORK_INTEGRATIONS, on_fork_child
from agentops.exceptions import DidNotEnable

try:
    import requests
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
except ImportError as exc:  # pragma: no cover - exercised by removing the package in a test
    raise DidNotEnable(
        "sending spans to AgentOps' service needs the otlp extra (pip install 'agentops-django[otlp]')"
    ) from exc

logger = logging.getLogger(__name__)

#: AgentOps' API, where the key is exchanged for a token (``AGENTOPS_API_ENDPOINT``).
DEFAULT_API_ENDPOINT = "https://api.agentops.ai"
#: AgentOps' OTLP/HTTP traces endpoint (``AGENTOPS_EXPORTER_ENDPOINT``).
DEFAULT_EXPORTER_ENDPOINT = "https://otlp.agentops.ai/v1/traces"
#: The token exchange, under the API endpoint.
AUTH_PATH = "/v3/auth/token"
#: Seconds one token exchange, or one batch's post with its retries, may take.
REQUEST_TIMEOUT = 10.0
#: Seconds before a token's expiry at which it is renewed.
RENEW_MARGIN = 60.0
#: Seconds before the first retry of a failed exchange; the pause doubles up to :data:`BACKOFF_MAX`.
BACKOFF_MIN = 1.0
BACKOFF_MAX = 300.0

_exporters: weakref.WeakSet[AgentOpsServiceExporter] = weakref.WeakSet()


def _user_agent() -> str:
    from agentops import __version__

    return f"agentops-django/{__version__}"


def _expiry(token: str) -> float:
    """The ``exp`` (epoch seconds) of a JWT, without checking it; infinity if there is none."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return float(claims["exp"])
    except (IndexError, KeyError, TypeError, ValueError):
        return float("inf")


class TokenSource:
    """The bearer token of one API key: exchanged when needed, renewed, backed off after failures.

    Args:
        api_key: AgentOps' API key (never logged).
        endpoint: AgentOps' API (:data:`DEFAULT_API_ENDPOINT`).
        timeout: Seconds an exchange may take.
    """

    def __init__(self, api_key: str, endpoint: str, timeout: float) -> None:
        self._api_key = api_key
        self.url = endpoint.rstrip("/") + AUTH_PATH
        self.timeout = timeout
        self.token: str | None = None
        self.project_id: str | None = None
        self._expires_at = float("inf")
        self._retry_at = float("-inf")
        self._backoff = BACKOFF_MIN
        self._lock = threading.Lock()
        self.session = requests.Session()
        self.session.headers["User-Agent"] = _user_agent()

    def get(self) -> str | None:
        """The current token, exchanged first if there is none or it is about to expire.

        Returns:
            The token, or ``None`` while the exchange fails (and backs off).
        """
        with self._lock:
            if self.token is not None and time.time() < self._expires_at - RENEW_MARGIN:
                return self.token
            return self._exchange()

    def renew(self, refused: str) -> str | None:
        """A new token in place of ``refused`` (one the OTLP endpoint answered 401 to)."""
        with self._lock:
            if self.token == refused:
                self.token = None
                self._retry_at = float("-inf")  # a refused token is renewed at once, whatever came before
            return self.token if self.token is not None else self._exchange()

    def refused(self, token: str) -> None:
        """The OTLP endpoint refused even a freshly exchanged ``token``: pause as after a failed exchange."""
        with self._lock:
            if self.token == token:
                self._fail("the OTLP endpoint refused a new token (401)")

    def _exchange(self) -> str | None:
        if time.monotonic() < self._retry_at:
            return None
        problem = ""
        try:
            response = self.session.post(self.url, json={"api_key": self._api_key}, timeout=self.timeout)
            if response.status_code == 200:
                answer = response.json()
                token = answer.get("token") if isinstance(answer, dict) else None
                if isinstance(token, str) and token:
                    project = answer.get("project_id")
                    self.token = token
                    self.project_id = str(project) if project else None
                    self._expires_at = _expiry(token)
                    logger.debug("agentops: AgentOps' service token received (project %s)", self.project_id)
                    return token
                problem = "the answer has no token"
            elif response.status_code in (401, 403):
                problem = f"the API key was refused ({response.status_code})"
            else:
                problem = f"status {response.status_code}"
        except (requests.RequestException, ValueError) as exc:
            problem = f"{type(exc).__name__}: {exc}"
        self._fail(f"no token from {self.url} ({problem})")
        return None

    def accepted(self) -> None:
        """The OTLP endpoint accepted a batch: the next failure pauses for the shortest time again."""
        self._backoff = BACKOFF_MIN

    def _fail(self, problem: str) -> None:
        self.token = None
        self._retry_at = time.monotonic() + self._backoff
        logger.warning(
            "agentops: AgentOps' service: %s; its spans are dropped until a retry in %.0fs", problem, self._backoff
        )
        self._backoff = min(self._backoff * 2, BACKOFF_MAX)

    def after_fork(self) -> None:
        self._lock = threading.Lock()
        # The parent's pooled connections are the parent's: the child opens its own.
        self.session.close()


class AgentOpsServiceExporter(SpanExporter):
    """Sends spans to AgentOps' service with the API key's bearer token (see the module's docstring).

    Put it behind a batch processor: ``export`` may wait for the network.

    Args:
        api_key: AgentOps' API key.
        endpoint: AgentOps' API; ``None``: :data:`DEFAULT_API_ENDPOINT`.
        exporter_endpoint: The OTLP/HTTP traces URL; ``None``: :data:`DEFAULT_EXPORTER_ENDPOINT`.
    """

    def __init__(self, api_key: str, *, endpoint: str | None = None, exporter_endpoint: str | None = None) -> None:
        self.endpoint = exporter_endpoint or DEFAULT_EXPORTER_ENDPOINT
        self.tokens = TokenSource(api_key, endpoint or DEFAULT_API_ENDPOINT, REQUEST_TIMEOUT)
        self._session = requests.Session()
        self._session.headers["User-Agent"] = _user_agent()
        # OpenTelemetry's exporter reports success or failure only; the status tells an expired token apart.
        self._session.hooks["response"].append(self._seen)
        self._last_status: int | None = None
        self._otlp = OTLPSpanExporter(endpoint=self.endpoint, session=self._session, timeout=REQUEST_TIMEOUT)
        self._deadline = float("inf")
        self._resources: dict[int, tuple[Resource, Resource]] = {}
        self._resources_project: str | None = None
        _exporters.add(self)

    def _seen(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self._last_status = response.status_code

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Post ``spans`` with the current token; on a 401, renew it and post them once more."""
        if time.monotonic() >= self._deadline:
            return SpanExportResult.FAILURE
        token = self.tokens.get()
        if token is None:
            return SpanExportResult.FAILURE
        spans = self._with_project(spans)
        result = self._post(token, spans)
        if result is not SpanExportResult.SUCCESS and self._last_status == 401:
            logger.info("agentops: AgentOps' service refused the token (expired?); renewing it")
            token = self.tokens.renew(token)
            if token is not None:
                result = self._post(token, spans)
                if result is not SpanExportResult.SUCCESS and self._last_status == 401:
                    self.tokens.refused(token)
        if result is SpanExportResult.SUCCESS:
            self.tokens.accepted()
        return result

    def _post(self, token: str, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self._last_status = None
        self._session.headers["Authorization"] = f"Bearer {token}"
        return self._otlp.export(spans)

    def _with_project(self, spans: Sequence[ReadableSpan]) -> Sequence[ReadableSpan]:
        """The spans with ``agentops.project.id`` on their resource, as the official SDK sends it."""
        project = self.tokens.project_id
        if not project:
            return spans
        if project != self._resources_project:
            self._resources = {}
            self._resources_project = project
        copies = []
        for span in spans:
            original = span.resource
            cached = self._resources.get(id(original))
            if cached is None or cached[0] is not original:
                cached = (original, original.merge(Resource({semconv.AGENTOPS_PROJECT_ID: project})))
                self._resources[id(original)] = cached
            copies.append(
                ReadableSpan(
                    name=span.name,
                    context=span.context,
                    parent=span.parent,
                    resource=cached[1],
                    attributes=span.attributes,
                    events=span.events,
                    links=span.links,
                    kind=span.kind,
                    status=span.status,
                    start_time=span.start_time,
                    end_time=span.end_time,
                    instrumentation_scope=span.instrumentation_scope,
                )
            )
        return copies

    def interrupt(self, deadline: float) -> None:
        """Send nothing new after ``deadline`` (``time.monotonic()``): the processor is shutting down."""
        self._deadline = deadline

    def shutdown(self) -> None:
        self._otlp.shutdown()  # type: ignore[no-untyped-call]
        self.tokens.session.close()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


def _after_fork_in_child() -> None:
    for exporter in list(_exporters):
        exporter.tokens.after_fork()
        exporter._session.close()


on_fork_child(_after_fork_in_child, FORK_INTEGRATIONS)
