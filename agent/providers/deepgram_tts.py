"""Deepgram Aura speech synthesis over the SDK's streaming REST endpoint (``POST /v1/speak``).

Theory of operation
-------------------
Each sentence is one request asking for what the phone line carries: ``encoding=mulaw``,
``sample_rate=8000``, ``container=none`` (raw bytes, no WAV header to strip), so every
byte of the body is one RTP payload sample. The body is read as it streams and handed on in
chunks as they arrive: playout starts with the first chunk, not when synthesis ends.

Requests are independent: a fresh request per call of `synthesize`, no audio buffer kept
between them, no speak WebSocket carried from one sentence or call to the next (a socket
whose ``Flush`` or ``Clear`` raced the previous sentence is how audio of an earlier request
can come back). The SDK's HTTP connection pool is shared, which reuses TCP connections only.

Failure is a `ProviderError`: a 429 or 5xx answer, no first byte within
``first_byte_timeout_s``, a gap of more than ``chunk_timeout_s`` between chunks, or a body
cut short. The failover wrapper speaks the sentence with the embedded synthesiser instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from dataclasses import dataclass

import numpy as np
from deepgram import AsyncDeepgramClient
from numpy.typing import NDArray

from agent.providers.deepgram_client import deepgram_client, provider_error
from dsp.g711 import ulaw_decode

__all__ = ["DeepgramTts", "DeepgramTtsConfig"]

SAMPLE_RATE_HZ = 8000


@dataclass(frozen=True, slots=True)
class DeepgramTtsConfig:
    """How to reach Aura and what to ask of it.

    Attributes:
        url: base URL (``https://api.deepgram.com``, a self-hosted one, a loopback server).
        api_key: sent as ``Authorization: Token <key>``.
        voice: the Aura voice model (``aura-asteria-en``).
        first_byte_timeout_s: give up when no audio has come this long after the request.
        chunk_timeout_s: give up when the body stalls this long between chunks.
    """

    url: str
    api_key: str | None = None
    voice: str = "aura-asteria-en"
    first_byte_timeout_s: float = 1.5
    chunk_timeout_s: float = 2.0


class DeepgramTts:
    """A `TextToSpeech` over Aura: one streamed REST request per sentence."""

    def __init__(
        self, config: DeepgramTtsConfig, client: AsyncDeepgramClient | None = None
    ) -> None:
        self.config = config
        self._client = client or deepgram_client(
            config.api_key, config.url, max(config.first_byte_timeout_s, config.chunk_timeout_s)
        )

    async def synthesize(self, text: str) -> AsyncGenerator[NDArray[np.int16], None]:
        """Speak ``text``: 8 kHz int16 chunks decoded from Aura's μ-law, as they arrive."""
        async for payload in self.synthesize_ulaw(text):
            yield ulaw_decode(payload)

    async def synthesize_ulaw(self, text: str) -> AsyncGenerator[bytes, None]:
        """Speak ``text`` as raw μ-law bytes, as they arrive (the RTP payload bytes)."""
        body = self._client.speak.v1.audio.generate(
            text=text,
            model=self.config.voice,
            encoding="mulaw",
            sample_rate=SAMPLE_RATE_HZ,
            container="none",
        )
        timeout_s = self.config.first_byte_timeout_s
        try:
            while True:
                try:
                    async with asyncio.timeout(timeout_s):
                        chunk = await anext(body)
                except StopAsyncIteration:
                    return
                except Exception as exc:
                    raise provider_error(exc, "speak") from None
                timeout_s = self.config.chunk_timeout_s
                if chunk:
                    yield chunk
        finally:
            await body.aclose()

    async def aclose(self) -> None:
        """Nothing is held between requests but the SDK's connection pool."""
