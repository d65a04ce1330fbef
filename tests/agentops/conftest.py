"""Fixtures for the LLM integration tests: the stand-in server and real clients.

The server runs once per session on a free loopback port; each test sees an
empty request log. Clients never retry (``max_retries=0``), so an error test
costs exactly one request. The client libraries are imported inside the
fixtures, so tests that do not use them never import them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

import pytest

from agentops.testing.llm_server import LLMServer

if TYPE_CHECKING:
    import anthropic
    import openai


@pytest.fixture(scope="session")
def _llm_server_session() -> Iterator[LLMServer]:
    with LLMServer() as server:
        yield server


@pytest.fixture
def llm_server(_llm_server_session: LLMServer) -> LLMServer:
    """The stand-in OpenAI/Anthropic server, with its request log emptied."""
    _llm_server_session.clear()
    return _llm_server_session


@pytest.fixture
def openai_client(llm_server: LLMServer) -> Iterator[openai.OpenAI]:
    """A real OpenAI client talking to the stand-in server."""
    import openai

    client = openai.OpenAI(base_url=llm_server.base_url, api_key="test-key", max_retries=0)
    yield client
    client.close()


@pytest.fixture
async def async_openai_client(llm_server: LLMServer) -> AsyncIterator[openai.AsyncOpenAI]:
    """A real async OpenAI client talking to the stand-in server."""
    import openai

    client = openai.AsyncOpenAI(base_url=llm_server.base_url, api_key="test-key", max_retries=0)
    yield client
    await client.close()


@pytest.fixture
def anthropic_client(llm_server: LLMServer) -> Iterator[anthropic.Anthropic]:
    """A real Anthropic client talking to the stand-in server."""
    import anthropic

    client = anthropic.Anthropic(base_url=llm_server.anthropic_base_url, api_key="test-key", max_retries=0)
    yield client
    client.close()


@pytest.fixture
async def async_anthropic_client(llm_server: LLMServer) -> AsyncIterator[anthropic.AsyncAnthropic]:
    """A real async Anthropic client talking to the stand-in server."""
    import anthropic

    client = anthropic.AsyncAnthropic(base_url=llm_server.anthropic_base_url, api_key="test-key", max_retries=0)
    yield client
    await client.close()
