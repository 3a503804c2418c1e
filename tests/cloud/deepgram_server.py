"""A loopback Deepgram: live-listen WebSocket and speak REST on one 127.0.0.1 port.

Real Deepgram (and a self-hosted one) serves ``GET /v1/listen`` (WebSocket upgrade) and
``POST /v1/speak`` on the same host, so this does too: a plain asyncio HTTP/1.1 reader routes
each request, and upgrades go to the `websockets` sans-I/O `ServerProtocol` (the same frames
and handshake the real server speaks, with no framework in between).

Listen (`tests.cloud.deepgram_listen`): the audio of each connection (μ-law 8 kHz, as the
query says) is cut into 20 ms frames and segmented by energy. While a segment is open the
server sends interim ``Results``; when ``segment_gap_ms`` of quiet follows it (600 ms, or the
query's ``endpointing``), a final one (``is_final``, ``speech_final``) and an
``UtteranceEnd``; on ``Finalize`` whatever is open, marked ``from_finalize``; on
``CloseStream`` a ``Metadata`` and a close. Final results cover the audio contiguously
(``start + duration`` is where the next one starts), as Deepgram's do. The words come from
a pluggable `Transcriber`: `ScriptTranscriber` gives the next line of a persona's script per
segment (the line is used up only when its final result is sent, so a segment cut by a dropped
socket and resent on a new one gets the same line).

Speak: the body is the `Synthesizer`'s μ-law for the JSON ``text``, sent with chunked
transfer encoding in ``chunk_bytes`` pieces, the first after ``first_byte_s``.

Faults (`ListenFaults`, `SpeakFaults`): an HTTP status for every request (429, 500),
latency, a socket aborted after some audio (optionally followed by an outage: every later
handshake refused with 503), a speak body that stalls or is cut short.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass

from websockets.http11 import Request
from websockets.server import ServerProtocol

from dsp.g711 import ulaw_encode
from tests.cloud.deepgram_listen import (
    ListenFaults,
    ListenRecord,
    ListenSession,
    ScriptTranscriber,
    Transcriber,
)

__all__ = [
    "DeepgramServer",
    "ListenFaults",
    "ListenRecord",
    "ScriptTranscriber",
    "SpeakFaults",
    "SpeakRecord",
    "Transcriber",
    "espeak_ulaw",
    "tone_ulaw",
]


def tone_ulaw(text: str) -> bytes:
    """A deterministic stand-in voice: bytes that differ for every text (40 ms per char)."""
    seed = hashlib.sha256(text.encode()).digest()
    count = max(320, 320 * len(text))
    return (seed * (count // len(seed) + 1))[:count]


def espeak_ulaw(text: str) -> bytes:
    """Our espeak-ng voice at 8 kHz, μ-law (what the embedded synthesiser says)."""
    from agent.prompts import PROMPT_LEVEL_DBFS, to_telephone
    from agent.providers.espeak import Voice, sample_rate_hz, synthesize

    pcm = to_telephone(synthesize(text, Voice("en-us+f3")), sample_rate_hz(), PROMPT_LEVEL_DBFS)
    return ulaw_encode(pcm).tobytes()


@dataclass
class SpeakFaults:
    """How the speak endpoint misbehaves."""

    status: int | None = None
    first_byte_s: float = 0.0
    chunk_interval_s: float = 0.0  # between chunks (Aura streams faster than real time)
    stall_after_first: bool = False  # send one chunk, then nothing
    fail_after_requests: int | None = None  # answer this many, then ``fail_status`` to all
    fail_status: int = 500
    cut_after_first: bool = False  # send one chunk, then close the connection


@dataclass
class SpeakRecord:
    """One speak request and the audio sent for it."""

    query: dict[str, list[str]]
    text: str
    audio: bytes = b""


class DeepgramServer:
    """The loopback server; ``async with DeepgramServer(...) as server: server.url``."""

    def __init__(
        self,
        transcriber: Transcriber | None = None,
        synthesizer: Callable[[str], bytes] = tone_ulaw,
        *,
        listen: ListenFaults | None = None,
        speak: SpeakFaults | None = None,
        api_key: str = "test-key",
        chunk_bytes: int = 800,
    ) -> None:
        self.transcriber = transcriber or ScriptTranscriber([])
        self.synthesizer = synthesizer
        self.listen = listen or ListenFaults()
        self.speak = speak or SpeakFaults()
        self.api_key = api_key
        self.chunk_bytes = chunk_bytes
        self.connections: list[ListenRecord] = []
        self.speak_requests: list[SpeakRecord] = []
        self.refused: list[int] = []
        self.outage = False
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._closing = asyncio.Event()
        self.port = 0

    @property
    def url(self) -> str:
        """The base URL to configure (REST; WebSockets on the same host)."""
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> DeepgramServer:
        self._server = await asyncio.start_server(self._on_client, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        self._closing.set()
        for writer in list(self._writers):
            writer.transport.abort()  # each handler's next read ends, and it returns
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=2.0)
        await self._server.wait_closed()

    async def _pause(self, seconds: float) -> bool:
        """Sleep, unless the server is closing; False when it is."""
        if seconds > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), seconds)
        return not self._closing.is_set()

    # ----------------------------------------------------------------- HTTP
    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                method, target, headers = _parse_head(head)
                path, _, query_text = target.partition("?")
                query = urllib.parse.parse_qs(query_text)
                auth = headers.get("authorization", "")
                if headers.get("upgrade", "").lower() == "websocket":
                    await self._listen(head, path, query, headers, reader, writer)
                    return
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                if auth != f"Token {self.api_key}":
                    await _send_error(writer, 401, "INVALID_AUTH")
                elif method == "POST" and path == "/v1/speak":
                    if not await self._speak(query, body, writer):
                        return
                else:
                    await _send_error(writer, 404, "NOT_FOUND")
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            self._tasks.discard(task)
            self._writers.discard(writer)
            writer.close()

    async def _speak(
        self, query: dict[str, list[str]], body: bytes, writer: asyncio.StreamWriter
    ) -> bool:
        """Answer one speak request; False when the connection was closed on purpose."""
        faults = self.speak
        status = faults.status
        if faults.fail_after_requests is not None:
            if len(self.speak_requests) >= faults.fail_after_requests:
                status = faults.fail_status
        if status is not None:
            self.refused.append(status)
            await _send_error(writer, status, "LOOPBACK_FAULT")
            return True
        record = SpeakRecord(query, str(json.loads(body)["text"]))
        self.speak_requests.append(record)
        audio = await asyncio.to_thread(self.synthesizer, record.text)
        if not await self._pause(faults.first_byte_s):
            return False
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: audio/mulaw\r\ntransfer-encoding: chunked\r\n\r\n"
        )
        for offset in range(0, len(audio), self.chunk_bytes):
            chunk = audio[offset : offset + self.chunk_bytes]
            writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            await writer.drain()
            record.audio += chunk
            if not await self._pause(faults.chunk_interval_s):
                return False
            if faults.cut_after_first:
                writer.transport.abort()
                return False
            if faults.stall_after_first:
                await self._pause(30.0)
                return False
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        return True

    # ----------------------------------------------------------------- WebSocket
    async def _listen(
        self,
        head: bytes,
        path: str,
        query: dict[str, list[str]],
        headers: dict[str, str],
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        protocol = ServerProtocol()
        protocol.receive_data(head)
        request = protocol.events_received()[0]
        assert isinstance(request, Request)
        status = self.listen.status or (503 if self.outage else None)
        if headers.get("authorization", "") != f"Token {self.api_key}":
            status = 401
        if path != "/v1/listen":
            status = 404
        if status is not None:
            self.refused.append(status)
            protocol.send_response(protocol.reject(status, "loopback refusal\n"))
            writer.write(b"".join(protocol.data_to_send()))
            await writer.drain()
            return
        protocol.send_response(protocol.accept(request))
        writer.write(b"".join(protocol.data_to_send()))
        record = ListenRecord(query, headers)
        self.connections.append(record)
        session = ListenSession(self, protocol, writer, record)
        await session.run(reader)


def _parse_head(head: bytes) -> tuple[str, str, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    return method, target, headers


async def _send_error(writer: asyncio.StreamWriter, status: int, code: str) -> None:
    body = json.dumps({"err_code": code, "err_msg": "loopback", "request_id": "loopback"})
    writer.write(
        f"HTTP/1.1 {status} Loopback\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n\r\n{body}".encode()
    )
    await writer.drain()
