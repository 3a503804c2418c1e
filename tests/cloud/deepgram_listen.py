"""The live-listen half of the loopback Deepgram: one WebSocket session per connection.

`tests.cloud.deepgram_server` accepts the upgrade and hands the connection here. Audio
(μ-law 8 kHz) is processed in 20 ms frames as it arrives and segmented by energy: interim
``Results`` while a segment is open, a final one (``is_final``, ``speech_final``) and an
``UtteranceEnd`` after the quiet that ends it, ``from_finalize`` on ``Finalize``,
``Metadata`` and a close on ``CloseStream``. Final results cover the audio contiguously, as
Deepgram's do.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from numpy.typing import NDArray
from websockets.frames import Frame, Opcode
from websockets.server import ServerProtocol

from dsp.g711 import ulaw_decode

if TYPE_CHECKING:
    from tests.cloud.deepgram_server import DeepgramServer

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
class ListenRecord:
    """One live-listen connection as the server saw it."""

    query: dict[str, list[str]]
    headers: dict[str, str]
    audio: bytearray = field(default_factory=bytearray)
    controls: list[str] = field(default_factory=list)  # KeepAlive, Finalize, CloseStream
    sent: list[dict[str, Any]] = field(default_factory=list)
    dropped: bool = False


class ListenSession:
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
