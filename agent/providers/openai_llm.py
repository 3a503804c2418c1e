"""A chat-completions model through the official ``openai`` package: OpenAI or a local server.

Theory of operation
-------------------
One `AsyncOpenAI` client per process (its HTTP connection pool is shared by all calls), pointed
at ``base_url``: api.openai.com, or an OpenAI-compatible server a hospital runs itself (vLLM,
llama.cpp, Ollama), or the loopback test double in ``tests/cloud``. Each caller turn is one
streamed request (``stream=True``) with a strict ``json_schema`` response format and the
intake's tools (`agent.proposals`); `OpenAiChat.stream` yields the content as it arrives
(`ContentDelta`) and each tool call once its arguments are complete (`ToolCall`).

Failures come out as one exception, `ModelUnavailable`, whose ``reason`` is a bounded label
(``http_429``, ``http_5xx``, ``timeout``, ``disconnect``, ``error``) safe for logs and metric
labels; the message never holds the prompt or the reply. The client's own retries are off
(``max_retries=0``): a turn has a budget of about a second, and the caller is better served by
the rules at once than by a retry after a back-off (`agent.phase_handler` fails over).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any, cast

import openai
from openai import AsyncOpenAI

from agent.config import Settings
from agent.errors import AgentError
from agent.metrics import LLM_LATENCY, LLM_TOKENS
from agent.proposals import TurnRequest

#: No vendor default: a GPT-4-class model with structured outputs and tool calls.
DEFAULT_MODEL = "gpt-4o"


class ModelUnavailable(AgentError):
    """The model server failed this request; ``reason`` is a PHI-free label."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"language model unavailable ({reason})")
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ContentDelta:
    """A fragment of the model's reply text (here: JSON in the requested schema)."""

    text: str


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A complete tool call: the function's name and its JSON arguments."""

    name: str
    arguments: str


def failure_reason(exc: BaseException) -> str:
    """The bounded label for a client error."""
    if isinstance(exc, openai.RateLimitError):
        return "http_429"
    if isinstance(exc, openai.APIStatusError):
        return "http_5xx" if exc.status_code >= 500 else "error"
    if isinstance(exc, openai.APITimeoutError):
        return "timeout"
    if isinstance(exc, openai.APIConnectionError):  # refused, reset, or dropped mid-stream
        return "disconnect"
    return "error"


class OpenAiChat:
    """Streams one turn's proposal from a chat-completions endpoint."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        model: str = DEFAULT_MODEL,
        timeout_s: float = 10.0,
        stream_usage: bool = True,
    ) -> None:
        """``stream_usage``: ask for the token counts at the end of each streamed reply."""
        self.model = model
        self.stream_usage = stream_usage
        self._client = AsyncOpenAI(
            base_url=base_url, api_key=api_key, max_retries=0, timeout=timeout_s
        )

    async def stream(
        self, request: TurnRequest, caller_words: str
    ) -> AsyncGenerator[ContentDelta | ToolCall, None]:
        """The reply to one turn, as it streams.

        Raises:
            ModelUnavailable: the server answered an error, timed out or dropped the stream.
        """
        calls: dict[int, list[str]] = {}  # index -> [name, arguments so far]
        started = asyncio.get_running_loop().time()
        try:
            response = await self._client.chat.completions.create(
                model=self.model,
                messages=cast(Any, request.messages(caller_words)),
                response_format=cast(Any, request.response_format),
                tools=cast(Any, list(request.tools)),
                temperature=0,
                stream=True,
                # OpenAI reports usage on a stream only when asked: a last chunk, no choices.
                stream_options={"include_usage": True} if self.stream_usage else openai.omit,
            )
            async with response:
                async for chunk in response:
                    usage = getattr(chunk, "usage", None)  # a server that reports it
                    if usage is not None:
                        LLM_TOKENS.labels("openai", "prompt").inc(usage.prompt_tokens or 0)
                        LLM_TOKENS.labels("openai", "completion").inc(usage.completion_tokens or 0)
                    if not chunk.choices:
                        continue
                    delta = chunk.choices[0].delta
                    if delta.content:
                        yield ContentDelta(delta.content)
                    for call in delta.tool_calls or ():
                        entry = calls.setdefault(call.index, ["", ""])
                        if call.function is not None:
                            entry[0] += call.function.name or ""
                            entry[1] += call.function.arguments or ""
        except Exception as exc:
            # Whatever breaks the model path (the client wraps transport errors; anything else
            # is a malformed reply or a client bug) must cost the caller one turn, not the call.
            raise ModelUnavailable(failure_reason(exc)) from None
        LLM_LATENCY.labels("openai").observe(asyncio.get_running_loop().time() - started)
        for _, (name, arguments) in sorted(calls.items()):
            yield ToolCall(name, arguments)

    async def aclose(self) -> None:
        """Close the client's connection pool."""
        await self._client.close()


def language_model(settings: Settings) -> OpenAiChat | None:
    """The configured model client, or None for ``llm_provider = "embedded"``."""
    if settings.llm_provider != "openai":
        return None
    key = settings.openai_api_key
    return OpenAiChat(
        base_url=settings.openai_base_url,
        # The SDK wants a key; a self-hosted server without authentication ignores it.
        api_key=key.get_secret_value() if key is not None else "not-needed",
        model=settings.llm_model,
        stream_usage=settings.llm_stream_usage,
    )
