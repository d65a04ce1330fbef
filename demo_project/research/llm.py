"""The assistant's one way to a language model: the real ``openai`` client.

``openai.OpenAI()`` reads ``OPENAI_BASE_URL`` and ``OPENAI_API_KEY``; the demo
points them at its stand-in server unless they are already set. One client
per process, made on first use (so that a Celery child makes its own after
the fork).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator

import openai
from django.conf import settings


@functools.cache
def client() -> openai.OpenAI:
    """This process's OpenAI client."""
    return openai.OpenAI(max_retries=1, timeout=30)


def complete(system: str, prompt: str, max_tokens: int = 200) -> str:
    """Ask the model once and return its answer's text.

    Args:
        system: The system message.
        prompt: The user message.
        max_tokens: The most tokens to generate.

    Returns:
        The text of the first choice.
    """
    response = client().chat.completions.create(
        model=settings.DEMO_LLM_MODEL,
        messages=[{"role": "system", "content": system}, {"role": "user", "content": prompt}],
        max_tokens=max_tokens,
        temperature=0.2,
    )
    return response.choices[0].message.content or ""


def stream(system: str, prompt: str, max_tokens: int = 200) -> Iterator[str]:
    """Ask the model for a streamed answer; the request is sent before this returns.

    The call happens here, in the caller's context (a request being traced),
    and only the reading of the deltas is left to the returned iterator.

    Returns:
        An iterator over the answer's text deltas.
    """
    chunks = client().chat.completions.create(
        model=settings.DEMO_LLM_MODEL,
        messages=[{"role": "system", "content": system}, {"role": "user", "content": prompt}],
        max_tokens=max_tokens,
        stream=True,
        stream_options={"include_usage": True},
    )

    def deltas() -> Iterator[str]:
        # Iterate the returned object itself (not what ``with`` would hand
        # back): an instrumented client may return a wrapper around the stream.
        try:
            for chunk in chunks:
                if chunk.choices and chunk.choices[0].delta.content:
                    yield chunk.choices[0].delta.content
        finally:
            chunks.close()

    return deltas()
