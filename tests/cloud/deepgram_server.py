"""A loopback Deepgram: live-listen WebSocket and speak REST on one 127.0.0.1 port.

Real Deepgram (and a self-hosted one) serves ``GET /v1/listen`` (WebSocket upgrade) and
``POST /v1/speak`` on the same host, so this does too: a plain asyncio HTTP/1.1 reader routes
each request, and upgrades go to the `websockets` sans-I/O `ServerProtocol` (the same frames
and handshake the real server speaks, with no framework in between).

Listen: the audio of each connection (μ-law 8 kHz, as the query says) is cut into 20 ms frames
and segmented by energy. While a segment is open the server sends interim ``Results``; when
``segment_gap_ms`` of quiet follows it, a final one (``is_final``, ``speech_final``) and an
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
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray
from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.server import ServerProtocol

from dsp.g711 import ulaw_decode, ulaw_encode

FRAME_BYTES = 160  # 20 ms of μ-law at 8 kHz
RATE = 8000
SPEECH_RMS = 300.0  # about -40 dBFS: espeak speech is far above, digital silence far below


class Transcriber(Protocol):
    """Words for a segment of speech."""

    def partial(self, pcm: NDArray[np.int16]) -> str:
        """What an interim result says while the segment is still open."""
        ...

    def final(self, pcm: NDArray[np.int16]) -> str:
        """The segment's final text (called once per segment)."""
        ...


class ScriptTranscriber:
    """The next scripted line for each segment, in order (a persona's spoken lines)."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = list(lines)
        self.used = 0

    def partial(self, pcm: NDArray[np.int16]) -> str:
        if self.used >= len(self.lines):
            return ""
        words = self.lines[self.used].split()
        return " ".join(words[: max(1, min(len(words), int(len(pcm) / RATE / 0.3)))])

    def final(self, pcm: NDArray[np.int16]) -> str:
        if self.used >= len(self.lines):
            return ""
        self.used += 1
        return self.lines[self.used - 1]

    def rewind(self, count: int) -> None:
        """Give back the last ``count`` lines (their results never reached the client)."""
        self.used = max(0, self.used - count)


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
class ListenFaults:
    """How the listen endpoint misbehaves."""

    status: int | None = None  # refuse every handshake with this status
    drop_after_audio_s: float | None = None  # abort the socket after this much audio
    drops: int = 1  # connections to drop that way
    drop_from_connection: int = 1  # the first connection (counting from 1) that may be dropped
    outage_after_drop: bool = False  # after a drop, refuse every handshake with 503
    final_latency_s: float = 0.0  # final result this long after the speech end / Finalize
    segment_gap_ms: int | None = 600  # quiet that ends a segment (None: the query's endpointing)


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
class ListenRecord:
    """One live-listen connection as the server saw it."""

    query: dict[str, list[str]]
    headers: dict[str, str]
    audio: bytearray = field(default_factory=bytearray)
    controls: list[str] = field(default_factory=list)  # KeepAlive, Finalize, CloseStream
    sent: list[dict[str, Any]] = field(default_factory=list)
    dropped: bool = False


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
        session = _ListenSession(self, protocol, writer, record)
        await session.run(reader)


class _ListenSession:
    """One live-listen connection."""

    def __init__(
        self,
        server: DeepgramServer,
        protocol: ServerProtocol,
        writer: asyncio.StreamWriter,
        record: ListenRecord,
    ) -> None:
        self.server = server
        self.protocol = protocol
        self.writer = writer
        self.record = record
        self.faults = server.listen
        self.model = record.query.get("model", ["?"])[0]
        self.index = len(server.connections)  # this connection's number, from 1
        self.request_id = f"loopback-{self.index}"
        self.unsent_lines = 0  # final results with words, queued but not yet sent
        endpointing = int(record.query.get("endpointing", ["300"])[0])
        self.gap_ms = self.faults.segment_gap_ms or endpointing
        self.frames = 0  # 20 ms frames processed
        self.final_end = 0  # frame where the next final result starts
        self.segment_start: int | None = None
        self.last_speech = 0
        self.next_interim = 0
        self.outbox: asyncio.Queue[tuple[float, dict[str, Any] | None]] = asyncio.Queue()

    async def run(self, reader: asyncio.StreamReader) -> None:
        sender = asyncio.create_task(self._send_loop())
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    return
                self.protocol.receive_data(data)
                for event in self.protocol.events_received():
                    if isinstance(event, Frame) and not await self._on_frame(event):
                        return
                self._flush()
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender

    async def _on_frame(self, frame: Frame) -> bool:
        if frame.opcode is Opcode.BINARY:
            self.record.audio += frame.data
            self._process_audio()
            limit = self.faults.drop_after_audio_s
            if (
                limit is not None
                and self.faults.drops > 0
                and self.index >= self.faults.drop_from_connection
                and len(self.record.audio) >= limit * RATE
            ):
                self.faults.drops -= 1
                rewind = getattr(self.server.transcriber, "rewind", None)
                if rewind is not None and self.unsent_lines:
                    rewind(self.unsent_lines)  # finals never sent: their lines are not used
                self.server.outage = self.faults.outage_after_drop
                self.record.dropped = True
                self.writer.transport.abort()
                return False
        elif frame.opcode is Opcode.TEXT:
            message = json.loads(bytes(frame.data))
            kind = str(message.get("type"))
            self.record.controls.append(kind)
            if kind == "Finalize":
                self._final(from_finalize=True)
            elif kind == "CloseStream":
                self._final(from_finalize=False, only_if_open=True)
                self._queue(self._metadata())
                self._queue(None)
        elif frame.opcode is Opcode.CLOSE:
            self._flush()
            return False
        return True

    def _process_audio(self) -> None:
        audio = self.record.audio
        while (self.frames + 1) * FRAME_BYTES <= len(audio):
            start = self.frames * FRAME_BYTES
            pcm = ulaw_decode(bytes(audio[start : start + FRAME_BYTES])).astype(np.float64)
            speech = float(np.sqrt(np.mean(pcm**2))) > SPEECH_RMS
            self.frames += 1
            if speech:
                if self.segment_start is None:
                    self.segment_start = self.frames - 1
                    self.next_interim = self.frames + 12
                self.last_speech = self.frames
            if self.segment_start is None:
                continue
            quiet_ms = (self.frames - self.last_speech) * 20
            if quiet_ms >= self.gap_ms:
                self._final(from_finalize=False)
                self._queue(_utterance_end(self.last_speech * 0.02))
            elif self.frames >= self.next_interim:
                self.next_interim = self.frames + 12  # every 240 ms of audio
                text = self.server.transcriber.partial(self._pcm(self.segment_start, self.frames))
                self._queue(self._results(text, self.final_end, self.frames, is_final=False))

    def _final(self, *, from_finalize: bool, only_if_open: bool = False) -> None:
        """A final result covering everything up to now (the open segment's words, if any)."""
        if only_if_open and self.segment_start is None:
            return
        text = ""
        if self.segment_start is not None:
            text = self.server.transcriber.final(self._pcm(self.segment_start, self.frames))
        end = max(self.frames, len(self.record.audio) // FRAME_BYTES)
        message = self._results(
            text,
            self.final_end,
            end,
            is_final=True,
            speech_final=self.segment_start is not None,
            from_finalize=from_finalize,
        )
        self.segment_start = None
        self.final_end = end
        latency = self.faults.final_latency_s if text else 0.0
        self.unsent_lines += bool(text)
        self._queue(message, latency)

    def _pcm(self, start: int, end: int) -> NDArray[np.int16]:
        return ulaw_decode(bytes(self.record.audio[start * FRAME_BYTES : end * FRAME_BYTES]))

    def _results(
        self,
        text: str,
        start: int,
        end: int,
        *,
        is_final: bool,
        speech_final: bool = False,
        from_finalize: bool = False,
    ) -> dict[str, Any]:
        start_s, end_s = start * 0.02, end * 0.02
        words = text.split()
        step = (end_s - start_s) / max(len(words), 1)
        return {
            "type": "Results",
            "channel_index": [0, 1],
            "duration": round(end_s - start_s, 3),
            "start": round(start_s, 3),
            "is_final": is_final,
            "speech_final": speech_final,
            "from_finalize": from_finalize,
            "channel": {
                "alternatives": [
                    {
                        "transcript": text,
                        "confidence": 0.98 if text else 0.0,
                        "words": [
                            {
                                "word": w,
                                "start": round(start_s + i * step, 3),
                                "end": round(start_s + (i + 1) * step, 3),
                                "confidence": 0.98,
                            }
                            for i, w in enumerate(words)
                        ],
                    }
                ]
            },
            "metadata": {
                "request_id": self.request_id,
                "model_info": {"name": self.model, "version": "loopback", "arch": "loopback"},
                "model_uuid": "00000000-0000-0000-0000-000000000000",
            },
        }

    def _metadata(self) -> dict[str, Any]:
        return {
            "type": "Metadata",
            "transaction_key": "deprecated",
            "request_id": self.request_id,
            "sha256": hashlib.sha256(bytes(self.record.audio)).hexdigest(),
            "created": "2026-01-01T00:00:00.000Z",
            "duration": len(self.record.audio) / RATE,
            "channels": 1,
            "models": [],
            "model_info": {},
        }

    def _queue(self, message: dict[str, Any] | None, delay_s: float = 0.0) -> None:
        loop = asyncio.get_running_loop()
        self.outbox.put_nowait((loop.time() + delay_s, message))

    async def _send_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due, message = await self.outbox.get()
            await asyncio.sleep(max(0.0, due - loop.time()))
            if message is None:
                self.protocol.send_close(1000)
            else:
                self.record.sent.append(message)
                if message.get("is_final") and message["channel"]["alternatives"][0]["transcript"]:
                    self.unsent_lines -= 1
                self.protocol.send_text(json.dumps(message).encode())
            self._flush()

    def _flush(self) -> None:
        data = self.protocol.data_to_send()
        if data and not self.writer.is_closing():
            self.writer.write(b"".join(data))


def _utterance_end(last_word_end_s: float) -> dict[str, Any]:
    return {"type": "UtteranceEnd", "channel": [0, 1], "last_word_end": round(last_word_end_s, 3)}


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
