"""Deepgram streaming speech recognition over the SDK's live-listen WebSocket.

Theory of operation
-------------------
One caller turn is one WebSocket (``/v1/listen``), opened when the turn starts: the keyword
hints of the question being answered are query parameters, fixed for the socket's life, so a
socket per turn is what lets each question favour its own words. The query asks for the
telephone line as it is (``encoding=mulaw``, ``sample_rate=8000``, one channel: no
resampling), a telephony model, interim results, endpointing and ``utterance_end_ms``.

The runtime hands us decoded 8 kHz int16 frames (after the jitter buffer and concealment), so
each frame is encoded back to μ-law with `dsp.g711`; for a PCMU call that gives the caller's
RTP payload bytes exactly (μ-law decode then encode is the identity on every code but the
second zero, which decodes to the same sample).

Messages in: ``Results`` (``is_final`` marks text that will not change, ``speech_final`` the
end of an utterance by Deepgram's endpointing, ``from_finalize`` the answer to our
``Finalize``), ``UtteranceEnd``, ``SpeechStarted``, ``Metadata`` (the stream is over).
Messages out: audio as binary frames, ``KeepAlive`` when no audio has gone out for
``keepalive_s`` (Deepgram closes a socket after about 10 s without data), ``Finalize`` when
our endpointer ends the turn, ``CloseStream`` when we leave.

Reconnect without losing words: the stream keeps every byte of the turn's audio and the byte
offset up to which final results cover it (a final result's ``start + duration`` is in
seconds of the socket's audio, offset by where that socket's audio began). When the socket
drops, a new one is opened with the same parameters and the audio not yet covered is sent
again, so the words the caller said while the socket was down, or that the old socket heard
but never finalised, are recognised on the new one; words already final are not sent twice.
Reconnecting is bounded by the turn's budget (``final_timeout_s``, and ``connect_timeout_s``
per attempt); past it the stream raises `ProviderError`, which the failover wrapper turns
into the embedded recogniser taking the turn.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import websockets.exceptions
from deepgram import AsyncDeepgramClient
from deepgram.listen.v1.types import ListenV1Results
from numpy.typing import NDArray

from agent.providers.base import (
    RecognitionHints,
    RecognitionStream,
    Transcript,
)
from agent.providers.deepgram_client import deepgram_client, provider_error
from agent.providers.failure import FailureReason, ProviderError
from dsp.g711 import ulaw_encode

__all__ = ["DeepgramStt", "DeepgramSttConfig", "query_for"]

SAMPLE_RATE_HZ = 8000  # μ-law: one byte per sample
_RECONNECT_BACKOFF_S = (0.05, 0.1, 0.2, 0.4)
_CLOSE_WAIT_S = 0.25  # for Deepgram's close frame after CloseStream, not on the turn's path


@dataclass(frozen=True, slots=True)
class DeepgramSttConfig:
    """How to reach Deepgram and what to ask of it.

    Attributes:
        url: base URL (``https://api.deepgram.com``, a self-hosted one, a loopback server).
        api_key: sent as ``Authorization: Token <key>``.
        model: a telephony model; ``nova-2-phonecall`` is tuned for 8 kHz phone audio.
            A ``nova-3`` model takes keyword hints as ``keyterm``, older ones as ``keywords``.
        endpointing_ms: silence after which Deepgram marks ``speech_final``.
        utterance_end_ms: word gap after which Deepgram sends ``UtteranceEnd`` (>= 1000).
        keepalive_s: send ``KeepAlive`` after this long without audio.
        connect_timeout_s: per attempt to open the socket.
        final_timeout_s: the turn's budget after ``finish``: reconnects and the final result.
        max_keywords: at most this many keyword hints per turn (URL length).
        ends_turns: let Deepgram's ``speech_final`` end the caller's turn (after
            ``endpointing_ms`` of silence) instead of waiting for the runtime's endpointer
            (700 ms): faster answers, at the risk of cutting off a caller who pauses.
    """

    url: str
    api_key: str | None = None
    model: str = "nova-2-phonecall"
    endpointing_ms: int = 300
    utterance_end_ms: int = 1000
    keepalive_s: float = 4.0
    connect_timeout_s: float = 2.0
    final_timeout_s: float = 1.5
    max_keywords: int = 50
    ends_turns: bool = False


def query_for(config: DeepgramSttConfig, hints: RecognitionHints) -> dict[str, Any]:
    """The live-listen parameters for one turn (the SDK's ``connect`` keyword arguments)."""
    params: dict[str, Any] = {
        "model": config.model,
        "encoding": "mulaw",
        "sample_rate": str(SAMPLE_RATE_HZ),
        "channels": "1",
        "interim_results": "true",
        "endpointing": str(config.endpointing_ms),
        "utterance_end_ms": str(config.utterance_end_ms),
        "vad_events": "true",
        "punctuate": "false",
        "smart_format": "false",
    }
    phrases = [p for p in (*hints.phrases, *hints.places) if p.strip()]
    if config.model.startswith("nova-3"):
        terms = list(dict.fromkeys(phrases))  # keyterm takes whole phrases
        if terms:
            params["keyterm"] = terms[: config.max_keywords]
    else:
        words = list(dict.fromkeys(w for p in phrases for w in p.split()))
        if words:  # keywords are single words
            params["keywords"] = words[: config.max_keywords]
    return params


def _normalise(text: str) -> str:
    """Lowercase words, no punctuation (what `Transcript.text` promises)."""
    kept = "".join(c if c.isalnum() or c in " '" else " " for c in text.lower())
    return " ".join(kept.split())


class DeepgramStt:
    """A `SpeechToText` over Deepgram's live-listen WebSocket, one socket per turn."""

    def __init__(
        self, config: DeepgramSttConfig, client: AsyncDeepgramClient | None = None
    ) -> None:
        self.config = config
        self._client = client or deepgram_client(
            config.api_key, config.url, config.connect_timeout_s
        )

    @contextlib.asynccontextmanager
    async def start(self, hints: RecognitionHints) -> AsyncIterator[RecognitionStream]:
        """Open the turn's socket; raises `ProviderError` when it cannot be opened."""
        stream = DeepgramStream(self._client, self.config, query_for(self.config, hints))
        try:
            await stream.open()
            yield stream
        finally:
            await stream.close()

    async def aclose(self) -> None:
        """Nothing is held between turns."""


class DeepgramStream:
    """One turn on Deepgram: audio out, results in, reconnecting when the socket drops."""

    def __init__(
        self, client: AsyncDeepgramClient, config: DeepgramSttConfig, params: dict[str, Any]
    ) -> None:
        self._client = client
        self._config = config
        self._params = params
        self._loop = asyncio.get_running_loop()
        self._audio = bytearray()  # every byte of the turn, μ-law
        self._covered = 0  # bytes covered by final results
        self._base = 0  # where the current socket's audio starts in ``_audio``
        self._finals: list[tuple[str, float]] = []
        self._partial = ""
        self._socket: Any = None
        self._stack: contextlib.AsyncExitStack | None = None
        self._receiver: asyncio.Task[None] | None = None
        self._keepalive: asyncio.Task[None] | None = None
        self._dropped = asyncio.Event()
        self._finalized = asyncio.Event()
        self._updates: asyncio.Queue[Transcript | None] = asyncio.Queue()
        self._last_send = self._loop.time()
        self.reconnects = 0
        self._endpoint = asyncio.Event()  # Deepgram's endpointing saw the utterance end

    # ----------------------------------------------------------------- RecognitionStream
    async def feed(self, pcm8k: NDArray[np.int16]) -> None:
        """Send the block; reconnect first if the socket has dropped."""
        data = ulaw_encode(pcm8k).tobytes()
        self._audio += data
        if self._dropped.is_set():
            await self._reconnect(self._loop.time() + self._config.final_timeout_s)
            return  # the reconnect sent everything not yet covered, this block included
        try:
            await self._socket.send_media(data)
            self._last_send = self._loop.time()
        except websockets.exceptions.ConnectionClosed:
            await self._reconnect(self._loop.time() + self._config.final_timeout_s)

    async def interim(self) -> AsyncIterator[Transcript]:
        """Partial transcripts (``is_final=False``), then the final one."""
        while (update := await self._updates.get()) is not None:
            yield update

    async def wait_endpoint(self) -> None:
        """Return when Deepgram's endpointing ends the caller's utterance (``speech_final``).

        Only with ``ends_turns`` set; otherwise it never returns, and the runtime's own
        endpointer ends every turn.
        """
        if not self._config.ends_turns:
            await asyncio.Event().wait()  # cancelled when the turn closes
        await self._endpoint.wait()

    async def finish(self) -> Transcript:
        """Ask for the rest (``Finalize``) and return the turn's transcript."""
        deadline = self._loop.time() + self._config.final_timeout_s
        while self._covered < len(self._audio):
            if self._dropped.is_set():
                await self._reconnect(deadline)
            with contextlib.suppress(websockets.exceptions.ConnectionClosed):
                await self._socket.send_finalize()
            finalized = asyncio.ensure_future(self._finalized.wait())
            dropped = asyncio.ensure_future(self._dropped.wait())
            try:
                await asyncio.wait(
                    (finalized, dropped),
                    timeout=max(deadline - self._loop.time(), 0.0),
                    return_when=asyncio.FIRST_COMPLETED,
                )
            finally:
                finalized.cancel()
                dropped.cancel()
            if self._finalized.is_set():
                break
            if not self._dropped.is_set():
                raise ProviderError(FailureReason.TIMEOUT, "no final result")
        text = " ".join(t for t, _ in self._finals if t)
        confidences = [c for t, c in self._finals if t]
        confidence = float(np.mean(confidences)) if confidences else 0.0
        final = Transcript(
            text, confidence, is_final=True, audio_s=len(self._audio) / SAMPLE_RATE_HZ
        )
        self._updates.put_nowait(final)
        self._updates.put_nowait(None)
        return final

    # ----------------------------------------------------------------- sockets
    async def open(self) -> None:
        """Open the first socket and start the keepalive timer."""
        await self._connect()
        self._keepalive = self._loop.create_task(self._keep_alive())

    async def close(self) -> None:
        """``CloseStream``, then let go of the socket and the tasks."""
        if self._socket is not None and not self._dropped.is_set():
            with contextlib.suppress(Exception):
                await self._socket.send_close_stream()
        for task in (self._keepalive, self._receiver):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self._release()
        self._updates.put_nowait(None)

    async def _release(self) -> None:
        stack, self._stack, self._socket = self._stack, None, None
        if stack is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(_CLOSE_WAIT_S):
                    await stack.aclose()

    async def _connect(self) -> None:
        stack = contextlib.AsyncExitStack()
        try:
            async with asyncio.timeout(self._config.connect_timeout_s):
                socket = await stack.enter_async_context(
                    self._client.listen.v1.connect(**self._params)
                )
        except Exception as exc:
            with contextlib.suppress(Exception):
                await stack.aclose()
            raise provider_error(exc, "listen connect") from None
        self._socket, self._stack = socket, stack
        self._dropped = asyncio.Event()
        self._finalized = asyncio.Event()
        self._receiver = self._loop.create_task(self._receive(socket, self._base, self._dropped))

    async def _reconnect(self, deadline: float) -> None:
        """A new socket, and the audio the finals do not cover sent on it again."""
        if self._receiver is not None:
            self._receiver.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._receiver
        await self._release()
        retry = "not tried"
        for backoff_s in (0.0, *_RECONNECT_BACKOFF_S):
            if self._loop.time() + backoff_s >= deadline:
                break
            await asyncio.sleep(backoff_s)
            self._base = self._covered
            try:
                async with asyncio.timeout(max(deadline - self._loop.time(), 0.0)):
                    await self._connect()
                    await self._socket.send_media(bytes(self._audio[self._base :]))
            except (ProviderError, TimeoutError, websockets.exceptions.ConnectionClosed) as exc:
                retry = provider_error(exc, "listen reconnect").reason.value
                continue
            self.reconnects += 1
            self._last_send = self._loop.time()
            return
        # The reason is the drop; what the reconnects met (a 503, a timeout) is the detail.
        raise ProviderError(FailureReason.DISCONNECT, f"socket dropped, reconnect: {retry}")

    async def _receive(self, socket: Any, base: int, dropped: asyncio.Event) -> None:
        try:
            async for message in socket:
                if isinstance(message, ListenV1Results):
                    self._on_results(message, base)
        except websockets.exceptions.ConnectionClosed:
            pass
        finally:
            dropped.set()

    def _on_results(self, message: ListenV1Results, base: int) -> None:
        alternatives = message.channel.alternatives
        text = _normalise(alternatives[0].transcript) if alternatives else ""
        confidence = float(alternatives[0].confidence) if alternatives else 0.0
        if message.is_final:
            self._finals.append((text, confidence))
            end = base + round((message.start + message.duration) * SAMPLE_RATE_HZ)
            self._covered = max(self._covered, min(end, len(self._audio)))
            self._partial = ""
            if message.speech_final and any(t for t, _ in self._finals):
                self._endpoint.set()
        else:
            self._partial = text
        heard = " ".join(t for t in (*(t for t, _ in self._finals), self._partial) if t)
        self._updates.put_nowait(Transcript(heard, confidence, is_final=False))
        if message.from_finalize:
            self._finalized.set()

    async def _keep_alive(self) -> None:
        while True:
            idle_s = self._loop.time() - self._last_send
            if idle_s >= self._config.keepalive_s and not self._dropped.is_set():
                with contextlib.suppress(websockets.exceptions.ConnectionClosed):
                    await self._socket.send_keep_alive()
                self._last_send = self._loop.time()
                idle_s = 0.0
            await asyncio.sleep(self._config.keepalive_s - idle_s)
