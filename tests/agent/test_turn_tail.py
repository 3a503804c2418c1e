"""A caller turn ended by the endpointer reaches the recogniser whole, even from a busy one.

On a loaded machine the recogniser holds ``feed`` back (its workers are behind), so the
audio task is still handing over the turn's last frames when the endpointer says the turn
is over. The turn must wait for them: recognised without its last words, "back pain"
becomes "back" and the caller is asked again. Here the recogniser takes 5 ms per frame, so
the 60 frames still queued when the turn ends need 0.3 s (the runtime used to wait 0.2 s).

A slow recogniser cannot be made on demand from pocketsphinx, so this one is a stand-in: it
records what it is fed and sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from agent.call_runtime import POST_ROLL_FRAMES, PRE_ROLL_FRAMES, CallServices, CallSession
from agent.conversation import Conversation, ConversationConfig
from agent.phase_rules import default_questions
from agent.prompts import PromptCache
from agent.providers.base import RecognitionHints, Transcript
from agent.records import SqliteRecords
from agent.store import MemoryStore
from rtp.tick import CallerFrame
from rtp.transport import CallMedia, MediaRuntime

FEED_S = 0.005


class SlowStream:
    def __init__(self) -> None:
        self.fed: list[int] = []  # the first sample of each frame: its index, below

    async def feed(self, pcm8k: NDArray[np.int16]) -> None:
        await asyncio.sleep(FEED_S)
        self.fed.append(int(pcm8k[0]))

    async def interim(self) -> AsyncIterator[Transcript]:
        return
        yield

    async def finish(self) -> Transcript:
        return Transcript("back pain", 0.9, True)


class SlowStt:
    def __init__(self) -> None:
        self.streams: list[SlowStream] = []

    @contextlib.asynccontextmanager
    async def start(self, hints: RecognitionHints) -> AsyncIterator[SlowStream]:
        stream = SlowStream()
        self.streams.append(stream)
        yield stream

    async def aclose(self) -> None:
        return None


def frame(index: int) -> CallerFrame:
    return CallerFrame(index, np.full(160, index, dtype=np.int16), 160 * index)


async def test_the_turn_waits_for_its_last_frames_from_a_busy_recogniser(tmp_path: Path) -> None:
    stt = SlowStt()
    records = SqliteRecords(tmp_path / "records.sqlite3")
    services = CallServices(
        stt=stt,  # type: ignore[arg-type]
        prompts=PromptCache(),
        records=records,
        store=MemoryStore(),
        hangup=lambda _call_id: None,
    )
    config = ConversationConfig(questions=default_questions(), clinic_name="Maple Clinic")
    media = CallMedia(MediaRuntime("127.0.0.1"), "call-1")
    session = CallSession(
        "call-1",
        media,
        Conversation("call-1", config, started=datetime(2026, 11, 29, 9, 0)),
        services,
        caller_id=None,
        wall_time=datetime(2026, 11, 29, 9, 0),
    )
    audio = asyncio.create_task(session._audio_loop())
    try:
        speech_start, speech_end = 20, 60
        for index in range(speech_start - PRE_ROLL_FRAMES):
            media.audio.put_nowait(frame(index))
        await asyncio.sleep(0.05)  # the ring holds what came before the speech
        await session._open_turn(speech_start)
        # The endpointer's trailing silence has arrived too, all of it queued behind a
        # recogniser that takes 5 ms a frame.
        for index in range(speech_start - PRE_ROLL_FRAMES, speech_end + 35):
            media.audio.put_nowait(frame(index))
        transcript = await session._close_turn(speech_end)
    finally:
        audio.cancel()
        records.close()
    assert transcript is not None and transcript.text == "back pain"
    (stream,) = stt.streams
    wanted = list(range(speech_start - PRE_ROLL_FRAMES, speech_end + POST_ROLL_FRAMES))
    assert stream.fed == wanted
