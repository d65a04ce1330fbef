"""What the demo does to its own site, through the real HTTP stack, and what it expects to see traced.

A visitor opens the home page, asks a few questions (a form POST with its
CSRF token, then the result page) and streams one answer. Each asking
request's trace should hold the whole story: the request, the agent and its
model calls, every Celery message published and every task run (the retried
attempt too), and the model calls made inside tasks.
"""

from __future__ import annotations

import dataclasses
import http.cookiejar
import re
import urllib.parse
import urllib.request
from typing import Any

from demo_project.research import corpus

TRACE_HEADER = "X-Trace-Id"

#: Asked through the form. At least one is "flaky" (its first fetch fails and is retried), one is not.
QUESTIONS = (
    "How does a Celery chord know that its group has finished?",
    "What does a tracing span record, and how do spans form one trace?",
    "How do AI agents use tools and language models together?",
)
STREAM_QUESTION = "Why would a page stream a language model's answer?"

#: Model calls made for one question: plan and draft in the request, summarise and combine in tasks.
LLM_CALLS_PER_QUESTION = 4


@dataclasses.dataclass
class Expected:
    """A trace the demo made, and what must be in it to count as complete.

    Attributes:
        label: How the table names it ("ask #1", "stream", "digest").
        trace_id: Its id (hex), from the response's ``X-Trace-Id`` header.
        root_kind: The ``agentops.span.kind`` of its one root span.
        tasks: Celery task name → how many runs (attempts) must be in it.
        llm_calls: How many LLM spans must be in it.
        description: What made it, in words (the question asked, ...).
    """

    label: str
    trace_id: str
    root_kind: str = "request"
    tasks: dict[str, int] = dataclasses.field(default_factory=dict)
    llm_calls: int = 0
    description: str = ""


def expected_for_question(label: str, trace_id: str, question: str) -> Expected:
    """What one asking request fans out to (the same rules the agent and its tasks follow)."""
    pieces = len(corpus.chunks(corpus.search(question)))
    tasks = {
        "research.fetch_sources": 2 if corpus.source_is_flaky(question) else 1,
        "research.summarise": 1,
        "research.notify": 1,
        "research.index_chunk": pieces,
        "research.analyse_chunk": pieces,
        "research.combine_findings": 1,
    }
    return Expected(label, trace_id, "request", tasks, LLM_CALLS_PER_QUESTION, f"asked: {question}")


class Visitor:
    """A browser stand-in: keeps cookies, reads the CSRF token, does not follow the POST's redirect."""

    def __init__(self, base_url: str, timeout: float = 60.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.cookies = http.cookiejar.CookieJar()
        self._opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.cookies), _NoRedirect(), urllib.request.ProxyHandler({})
        )

    def request(self, path: str, data: dict[str, str] | None = None) -> tuple[int, dict[str, str], str]:
        """GET (or POST ``data``) ``path``; return status, headers and body."""
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        request = urllib.request.Request(self.base_url + path, data=body, headers={"User-Agent": "agentops-demo"})
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                return response.status, dict(response.headers), response.read().decode()
        except urllib.error.HTTPError as error:
            with error:
                return error.code, dict(error.headers), error.read().decode(errors="replace")

    def ask(self, question: str) -> str:
        """Ask through the form like a person would; return the asking request's trace id."""
        status, _, page = self.request("/")
        _expect(status == 200, f"GET / answered {status}")
        match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        _expect(match is not None, "the form has no CSRF token")
        assert match is not None
        status, headers, _ = self.request("/", {"csrfmiddlewaretoken": match.group(1), "question": question})
        _expect(status == 302, f"POST / answered {status}, not a redirect to the result")
        status, _, page = self.request(headers["Location"])
        _expect(status == 200 and question[:20] in page, f"the result page answered {status}")
        return headers.get(TRACE_HEADER, "")

    def stream(self, question: str) -> tuple[str, str]:
        """Read a streamed answer to the end; return its trace id and text."""
        status, headers, text = self.request("/stream/?" + urllib.parse.urlencode({"q": question}))
        _expect(status == 200 and bool(text), f"GET /stream/ answered {status} with {len(text)} characters")
        return headers.get(TRACE_HEADER, ""), text


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class ScenarioError(RuntimeError):
    """The site did not answer the way a working demo does."""


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise ScenarioError(message)


def run(base_url: str, progress: Any = print) -> list[Expected]:
    """Ask every question and stream one answer; return the traces that must arrive.

    Args:
        base_url: The web server, e.g. ``http://127.0.0.1:8000``.
        progress: Called with a line of text per step.

    Returns:
        One :class:`Expected` per request made.
    """
    visitor = Visitor(base_url)
    expected: list[Expected] = []
    for number, question in enumerate(QUESTIONS, 1):
        label = f"ask #{number}"
        trace_id = visitor.ask(question)
        retry = " (its first fetch will fail and retry)" if corpus.source_is_flaky(question) else ""
        progress(f"  {label}: asked {question!r}{retry}")
        expected.append(expected_for_question(label, trace_id, question))
    trace_id, text = visitor.stream(STREAM_QUESTION)
    progress(f"  stream: read {len(text)} characters of a streamed answer")
    expected.append(Expected("stream", trace_id, "request", {}, 1, f"streamed: {STREAM_QUESTION}"))
    return expected
