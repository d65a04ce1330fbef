"""The research agent, written with agentops' decorators as any user would.

``research`` (an agent) plans with the model, searches the library (a tool),
drafts an answer with the model, and hands the slow work to Celery: a chain
(fetch → summarise → notify), a group (index every chunk) and a chord
(analyse every chunk, then combine the findings).
"""

from __future__ import annotations

import logging

from celery import chain, chord, group

import agentops
from demo_project.research import corpus, llm, tasks
from demo_project.research.models import Inquiry

logger = logging.getLogger(__name__)

SYSTEM = "You are a careful research assistant. Answer briefly and cite the documents you were given."


@agentops.operation(name="plan_research")
def plan_research(question: str) -> list[str]:
    """Ask the model which angles to look into."""
    reply = llm.complete(SYSTEM, f"List up to three search queries, one per line, for: {question}", max_tokens=60)
    return [line.strip("-• ").strip() for line in reply.splitlines() if line.strip()][:3]


@agentops.tool(name="search_library")
def search_library(question: str, queries: list[str]) -> list[str]:
    """Find the documents that match the question (the plan's queries only widen the search)."""
    return corpus.search(question)


@agentops.operation(name="draft_answer")
def draft_answer(question: str, titles: list[str]) -> str:
    """Ask the model for an answer grounded in the found documents."""
    sources = "\n\n".join(f"# {title}\n{corpus.DOCUMENTS[title]}" for title in titles)
    return llm.complete(SYSTEM, f"Documents:\n{sources}\n\nQuestion: {question}", max_tokens=200)


@agentops.operation(name="dispatch_background_work")
def dispatch_background_work(inquiry_id: int, question: str, titles: list[str]) -> dict[str, str]:
    """Queue the chain, the group and the chord; return their ids."""
    pieces = corpus.chunks(titles)
    pipeline = chain(
        tasks.fetch_sources.s(inquiry_id, question, titles),
        tasks.summarise.s(inquiry_id),
        tasks.notify.s(inquiry_id),
    ).apply_async()
    indexing = group(tasks.index_chunk.s(inquiry_id, n, text) for n, text in enumerate(pieces)).apply_async()
    analysis = chord(tasks.analyse_chunk.s(question, n, text) for n, text in enumerate(pieces))(
        tasks.combine_findings.s(inquiry_id, question)
    )
    return {"chain": pipeline.id, "group": indexing.id, "chord": analysis.id}


@agentops.agent(name="research_assistant")
def research(inquiry: Inquiry) -> str:
    """Answer ``inquiry`` now and start its background work.

    Args:
        inquiry: A saved question.

    Returns:
        The drafted answer (the summary and report arrive later).
    """
    queries = plan_research(inquiry.question)
    titles = search_library(inquiry.question, queries)
    answer = draft_answer(inquiry.question, titles)
    jobs = dispatch_background_work(inquiry.pk, inquiry.question, titles)
    logger.info("inquiry %s answered; background jobs %s", inquiry.pk, jobs)
    return answer
