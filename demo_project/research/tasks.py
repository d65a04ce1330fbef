"""The assistant's background work, as plain Celery tasks.

``fetch_sources`` stands for a call to a flaky upstream: for about every
other question its first attempt fails and Celery retries it (see
:func:`demo_project.research.corpus.source_is_flaky`).
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from celery import shared_task
from django.utils import timezone

from demo_project.research import corpus, llm
from demo_project.research.models import Digest, Inquiry

logger = logging.getLogger(__name__)


class SourceUnavailable(Exception):
    """The (simulated) document server did not answer."""


@shared_task(name="research.fetch_sources", bind=True, max_retries=3)
def fetch_sources(self: Any, inquiry_id: int, question: str, titles: list[str]) -> list[str]:
    """Fetch the full text of the found documents (fails once for flaky questions)."""
    if corpus.source_is_flaky(question) and self.request.retries == 0:
        raise self.retry(exc=SourceUnavailable("document server timed out"), countdown=0.2)
    return [corpus.DOCUMENTS[title] for title in titles]


@shared_task(name="research.summarise")
def summarise(texts: list[str], inquiry_id: int) -> str:
    """Summarise the fetched documents with the model."""
    return llm.complete("Summarise for a busy reader in two sentences.", "\n\n".join(texts), max_tokens=120)


@shared_task(name="research.notify")
def notify(summary: str, inquiry_id: int) -> str:
    """Store the summary and tell the asker (here: the log and the result page)."""
    Inquiry.objects.filter(pk=inquiry_id).update(summary=summary, notified_at=timezone.now())
    logger.info("inquiry %s: summary ready", inquiry_id)
    return "notified"


@shared_task(name="research.index_chunk")
def index_chunk(inquiry_id: int, number: int, text: str) -> dict[str, Any]:
    """Index one chunk of a document (its most frequent keywords)."""
    counts = Counter(word for word in text.lower().split() if word in corpus.keywords(text))
    return {"chunk": number, "words": len(text.split()), "top": [word for word, _ in counts.most_common(3)]}


@shared_task(name="research.analyse_chunk")
def analyse_chunk(question: str, number: int, text: str) -> dict[str, Any]:
    """Score how relevant one chunk is to the question."""
    shared = sorted(corpus.keywords(question) & corpus.keywords(text))
    return {"chunk": number, "score": len(shared), "matches": shared}


@shared_task(name="research.combine_findings")
def combine_findings(findings: list[dict[str, Any]], inquiry_id: int, question: str) -> str:
    """The chord's callback: turn every chunk's findings into a short report with the model."""
    best = sorted(findings, key=lambda item: -item["score"])
    lines = [f"chunk {item['chunk']}: score {item['score']} ({', '.join(item['matches']) or '-'})" for item in best]
    report = llm.complete("Write a three-line research report.", f"Question: {question}\n" + "\n".join(lines))
    Inquiry.objects.filter(pk=inquiry_id).update(report=report)
    return report


@shared_task(name="research.write_digest")
def write_digest() -> str:
    """Periodic (Celery beat): a digest of the latest questions."""
    questions = list(Inquiry.objects.values_list("question", flat=True)[:10])
    prompt = "\n".join(questions) or "(no questions yet)"
    text = llm.complete("Write a one-paragraph digest of what people asked.", prompt, max_tokens=120)
    Digest.objects.create(text=text, inquiries=len(questions))
    return text
