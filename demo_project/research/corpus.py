"""The assistant's library: a few short documents, a keyword search and chunking.

Everything here is deterministic so that the demo's runner can tell, from a
question alone, how much work the agent will fan out.
"""

from __future__ import annotations

import re
import zlib

#: Words per chunk handed to one Celery task.
CHUNK_WORDS = 60

DOCUMENTS: dict[str, str] = {
    "Task queues": (
        "A task queue lets a web application hand slow work to background workers. The web process publishes "
        "a message to a broker such as Redis or RabbitMQ; a worker takes it, runs the task and stores the result "
        "in a result backend. Celery adds chains, groups and chords on top: a chain runs tasks one after another "
        "and passes each result on, a group runs tasks in parallel, and a chord runs a callback once every task "
        "of its group has finished. Retries with a countdown let a task survive a flaky dependency."
    ),
    "Tracing": (
        "Distributed tracing follows one piece of work across processes. Each step is a span with a start, an "
        "end, attributes and a parent; spans that share a trace id form one tree. OpenTelemetry carries the "
        "context between processes in a W3C traceparent header, so a task run by a worker becomes a child of "
        "the request that published it. Sampling, batching and exporters decide what is kept and where it goes."
    ),
    "Language models": (
        "A large language model predicts text one token at a time. Applications send a list of messages and "
        "receive a completion together with the number of prompt and completion tokens used, which is what "
        "providers bill for. Streaming returns the completion in small deltas as they are generated, so a page "
        "can show the answer while the model is still writing it. Agents call a model repeatedly and use tools."
    ),
    "Django": (
        "Django is a Python web framework. A request passes through a stack of middleware to a view, which "
        "returns a response; the object-relational mapper reads and writes the database, and the admin gives "
        "staff a ready-made interface to the models. Templates render HTML, forms validate input, and streaming "
        "responses send a body in pieces. Management commands run maintenance work such as migrations."
    ),
    "Agents": (
        "An AI agent plans, acts and observes in a loop. It asks a model what to do next, calls a tool such as a "
        "search engine or a calculator, feeds the result back and repeats until it can answer. Observability for "
        "agents records every model call, tool call and decision with its inputs, outputs, token counts and cost, "
        "so that a surprising answer can be traced back to the step that caused it."
    ),
}

_WORD = re.compile(r"[a-z]+")
_STOP = frozenset(
    "a an and are as at be by can for from how in is it its of on or so such that the their this to what when "
    "which who why with does do i you".split()
)


def keywords(text: str) -> set[str]:
    """The lower-case content words of ``text``."""
    return {word for word in _WORD.findall(text.lower()) if word not in _STOP and len(word) > 2}


def search(question: str, limit: int = 2) -> list[str]:
    """Titles of the documents that best match ``question``, best first (at least one).

    Args:
        question: What the user asked.
        limit: How many titles at most.

    Returns:
        Document titles; ties keep the library's order.
    """
    wanted = keywords(question)
    scored = [
        (len(wanted & keywords(title + " " + text)), index, title)
        for index, (title, text) in enumerate(DOCUMENTS.items())
    ]
    scored.sort(key=lambda item: (-item[0], item[1]))
    found = [title for score, _, title in scored if score > 0][:limit]
    return found or [scored[0][2]]


def chunks(titles: list[str]) -> list[str]:
    """The documents' text cut into chunks of :data:`CHUNK_WORDS` words."""
    pieces: list[str] = []
    for title in titles:
        words = DOCUMENTS[title].split()
        pieces.extend(" ".join(words[i : i + CHUNK_WORDS]) for i in range(0, len(words), CHUNK_WORDS))
    return pieces


def source_is_flaky(question: str) -> bool:
    """Whether fetching the sources of ``question`` fails on the first attempt.

    The demo's stand-in for a flaky upstream: about every other question (by a
    checksum of its text, so the same question always behaves the same) sees
    one failure and a retry.
    """
    return zlib.crc32(question.strip().lower().encode()) % 2 == 0
