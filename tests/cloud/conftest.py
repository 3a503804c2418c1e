"""Fixtures: the loopback OpenAI server and the real ``openai`` client pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from agent.providers.openai_llm import OpenAiChat
from tests.cloud.openai_server import OpenAiServer

API_KEY = "sk-loopback-test"


@pytest.fixture
def openai_server() -> Iterator[OpenAiServer]:
    """A fresh server on 127.0.0.1, in a thread of its own."""
    with OpenAiServer.running(API_KEY) as server:
        yield server


@pytest.fixture
async def chat(openai_server: OpenAiServer) -> AsyncIterator[OpenAiChat]:
    """`OpenAiChat` (the official client inside) pointed at the loopback server."""
    client = OpenAiChat(base_url=openai_server.base_url, api_key=API_KEY, model="gpt-4o")
    yield client
    await client.aclose()
