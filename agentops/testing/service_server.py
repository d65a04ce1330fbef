"""A stand-in for AgentOps' service on loopback: the token exchange and the OTLP/HTTP endpoint.

To check, without the network, that spans go to AgentOps' dashboard with an
API key (``init(api_key=...)``)::

    with ServiceServer(api_key="test-key") as service:
        agentops.init(api_key="test-key", endpoint=service.api_endpoint,
                      exporter_endpoint=service.exporter_endpoint)
        ...
        agentops.flush()
        assert "my-agent.agent" in service.span_names()

It answers as the service does:

* ``POST /v3/auth/token`` with ``{"api_key": ...}``: the known key gets
  ``{"token", "project_id", "project_prem_status"}`` (the token a JWT whose
  ``exp`` is ``token_lifetime`` seconds away), any other key a 401;
* ``POST /v1/traces``: OTLP/HTTP protobuf, accepted (200) only with
  ``Authorization: Bearer <a token it issued and has not expired>``,
  otherwise 401; accepted requests are decoded and kept in :attr:`exports`.

Behaviour for tests of the unhappy paths: :meth:`expire_tokens` makes every
token issued so far expired; :attr:`auth_failures` and
:attr:`export_failures` are statuses answered, in turn, before the normal
answer (``[503, 503]``: two failures, then success); :attr:`export_delay`
holds every OTLP answer back that many seconds. Every request, accepted or
not, is kept in :attr:`requests`. Needs the ``otlp`` extra (it decodes with
``opentelemetry-proto``).
"""

from __future__ import annotations

import base64
import gzip
import itertools
import json
import threading
import time
import zlib
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

AUTH_PATH = "/v3/auth/token"
TRACES_PATH = "/v1/traces"


@dataclass(frozen=True)
class ServiceRequest:
    """One request the stand-in received, and the status it answered."""

    path: str
    headers: dict[str, str]
    body: bytes
    status: int


@dataclass(frozen=True)
class Export:
    """One accepted OTLP/HTTP request: the bearer token and the decoded ``ExportTraceServiceRequest``."""

    token: str
    request: Any

    @property
    def spans(self) -> list[Any]:
        """The protobuf spans of the request, in order."""
        return [span for rs in self.request.resource_spans for ss in rs.scope_spans for span in ss.spans]

    @property
    def resources(self) -> list[dict[str, Any]]:
        """The resource attributes of each group of spans, as plain values."""
        return [
            {kv.key: getattr(kv.value, kv.value.WhichOneof("value")) for kv in rs.resource.attributes}
            for rs in self.request.resource_spans
        ]


def _jwt(claims: dict[str, Any]) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}.stand-in"


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        path = self.path.split("?", 1)[0]
        if path == AUTH_PATH:
            status, answer = self.server.owner._authenticate(body)
            payload = json.dumps(answer).encode()
            content_type = "application/json"
        elif path == TRACES_PATH:
            status = self.server.owner._receive(dict(self.headers.items()), body)
            payload, content_type = b"", "application/x-protobuf"
        else:
            status, payload, content_type = 404, b"", "text/plain"
        self.server.owner._record(ServiceRequest(path, dict(self.headers.items()), body, status))
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting (a held-back answer)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # a held-back answer must not hold up stop()
    owner: ServiceServer


class ServiceServer:
    """The stand-in, run on a background thread (a context manager starts and stops it).

    Args:
        api_key: The one key it accepts.
        project_id: The project its tokens are for.
        token_lifetime: Seconds from issue to a token's ``exp``.
        host: The address to listen on; loopback by default.
    """

    def __init__(
        self,
        api_key: str = "test-api-key",
        *,
        project_id: str = "stand-in-project",
        token_lifetime: float = 3600.0,
        host: str = "127.0.0.1",
    ) -> None:
        self.api_key = api_key
        self.project_id = project_id
        self.token_lifetime = token_lifetime
        self.host = host
        #: Statuses answered to the next token exchanges, in turn, before the normal answer.
        self.auth_failures: list[int] = []
        #: Statuses answered to the next OTLP posts, in turn, before the normal answer.
        self.export_failures: list[int] = []
        #: Seconds every OTLP answer is held back.
        self.export_delay = 0.0
        self._lock = threading.Lock()
        self._tokens: dict[str, float] = {}  # token -> expiry (epoch seconds)
        self._counter = itertools.count(1)
        self._requests: list[ServiceRequest] = []
        self._exports: list[Export] = []
        self._server: _Server | None = None

    # --- addresses ------------------------------------------------------------------
    @property
    def url(self) -> str:
        """The root URL, e.g. ``http://127.0.0.1:PORT``."""
        if self._server is None:
            raise RuntimeError("the server is not running")
        return f"http://{self.host}:{self._server.server_address[1]}"

    @property
    def api_endpoint(self) -> str:
        """What ``init(endpoint=...)`` takes."""
        return self.url

    @property
    def exporter_endpoint(self) -> str:
        """What ``init(exporter_endpoint=...)`` takes."""
        return self.url + TRACES_PATH

    # --- what it saw ------------------------------------------------------------------
    @property
    def requests(self) -> list[ServiceRequest]:
        """Every request so far, oldest first."""
        with self._lock:
            return list(self._requests)

    @property
    def auth_requests(self) -> list[ServiceRequest]:
        return [r for r in self.requests if r.path == AUTH_PATH]

    @property
    def export_requests(self) -> list[ServiceRequest]:
        return [r for r in self.requests if r.path == TRACES_PATH]

    @property
    def exports(self) -> list[Export]:
        """The accepted OTLP requests, decoded, oldest first."""
        with self._lock:
            return list(self._exports)

    def span_names(self) -> list[str]:
        """The names of the spans accepted so far, in the order they arrived."""
        return [span.name for export in self.exports for span in export.spans]

    def expire_tokens(self) -> None:
        """Make every token issued so far expired: the OTLP endpoint answers 401 to them."""
        with self._lock:
            self._tokens = dict.fromkeys(self._tokens, 0.0)

    def clear(self) -> None:
        """Forget the requests and exports so far (tokens stay valid)."""
        with self._lock:
            self._requests.clear()
            self._exports.clear()

    # --- answers ----------------------------------------------------------------------
    def _record(self, request: ServiceRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def _authenticate(self, body: bytes) -> tuple[int, dict[str, Any]]:
        with self._lock:
            if self.auth_failures:
                return self.auth_failures.pop(0), {"error": "stand-in failure"}
        try:
            key = json.loads(body).get("api_key")
        except (ValueError, AttributeError):
            return 400, {"error": "body must be a JSON object"}
        if key != self.api_key:
            return 401, {"error": "Invalid API key"}
        expires = time.time() + self.token_lifetime
        token = _jwt({"project_id": self.project_id, "exp": int(expires), "n": next(self._counter)})
        with self._lock:
            self._tokens[token] = expires
        return 200, {"token": token, "project_id": self.project_id, "project_prem_status": "free"}

    def _receive(self, headers: dict[str, str], body: bytes) -> int:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

        if self.export_delay:
            time.sleep(self.export_delay)
        with self._lock:
            if self.export_failures:
                return self.export_failures.pop(0)
        lowered = {k.lower(): v for k, v in headers.items()}
        scheme, _, token = lowered.get("authorization", "").partition(" ")
        with self._lock:
            valid = scheme == "Bearer" and self._tokens.get(token, 0.0) > time.time()
        if not valid:
            return 401
        if lowered.get("content-type") != "application/x-protobuf":
            return 415
        encoding = lowered.get("content-encoding", "")
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "deflate":
            body = zlib.decompress(body)
        try:
            request = ExportTraceServiceRequest.FromString(body)
        except Exception:
            return 400
        with self._lock:
            self._exports.append(Export(token, request))
        return 200

    # --- running ----------------------------------------------------------------------
    def start(self) -> ServiceServer:
        """Listen on a free port and serve on a daemon thread."""
        if self._server is None:
            server = _Server((self.host, 0), _Handler)
            server.owner = self
            self._server = server
            threading.Thread(
                target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="agentops-service-server", daemon=True
            ).start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()

    def __enter__(self) -> ServiceServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
