"""Barge-in over real sockets (issue 3): the prompt stops when the caller talks, not on its echo.

An in-process `MediaRuntime` (tier 3, 127.0.0.1) plays a 6-second espeak prompt. The test's
RTP peer is a phone whose clock is the server's stream: for every packet it receives it sends
one back with the same RTP timestamp, carrying the prompt's own echo (60 ms late, -10 dB,
G.711 again) and, in the first case, the caller's speech with its onset 2.0 s into the
prompt. Everything is measured on the RTP timestamps the server sent, so the loop's
scheduling cannot flatter or spoil the figure.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import cast

import numpy as np
import pytest
from numpy.typing import NDArray

from agent.prompts import PromptCache
from dsp.bargein import BargeIn
from dsp.g711 import ulaw_decode, ulaw_encode
from rtp.engine import PlayoutDone, PlayoutStopped
from rtp.packet import RtpPacket
from tests.dsp.speech import espeak, scale_to_dbfs, speech_span
from tests.media.conftest import LOOPBACK, OpenCall

FRAME = 160
RATE = 8000
PROMPT_S = 6.0
ONSET_S = 2.0
ECHO_DELAY = 480  # 60 ms
ECHO_GAIN = 10 ** (-10 / 20)
LIMIT = 960  # 120 ms of RTP timestamp units
PROMPT_TEXT = (
    "Before we begin, please have your insurance card and a list of your current "
    "medications ready. I will ask you a few questions about your visit today."
)


def prompt_pcm() -> NDArray[np.int16]:
    pcm = PromptCache().get(PROMPT_TEXT)
    assert len(pcm) >= PROMPT_S * RATE, "the prompt text must speak for 6 s"
    return pcm[: int(PROMPT_S * RATE)]


def caller_pcm() -> tuple[NDArray[np.int16], int]:
    """The caller's interruption and the index of its first audible sample."""
    pcm = scale_to_dbfs(espeak("No wait, I need to change my appointment.", "en-us+f3"), -20.0)
    onset = round(speech_span(pcm).start_ms * RATE / 1000)
    return pcm, onset


@dataclass
class Heard:
    timestamp: int
    marker: bool
    pcm: NDArray[np.int16]


@dataclass
class EchoingPhone(asyncio.DatagramProtocol):
    """Answers each server packet with echo (+ caller speech) stamped with its timestamp."""

    speech: NDArray[np.int16] | None = None
    speech_onset: int = 0
    heard: list[Heard] = field(default_factory=list)
    sent: int = 0
    prompt_start: int | None = None  # RTP timestamp of the prompt's first packet (marker)
    transport: asyncio.DatagramTransport | None = None
    _by_ts: dict[int, NDArray[np.int16]] = field(default_factory=dict)
    _seq: int = 1000

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        packet = RtpPacket.parse(data)
        pcm = ulaw_decode(packet.payload)
        self.heard.append(Heard(packet.timestamp, packet.marker, pcm))
        self._by_ts[packet.timestamp] = pcm
        if packet.marker and self.prompt_start is None:
            self.prompt_start = packet.timestamp
        ts = packet.timestamp
        back = -(-ECHO_DELAY // FRAME) * FRAME  # the frames the 60 ms echo path reaches into
        first = self._by_ts.get((ts - back) & 0xFFFFFFFF)
        second = self._by_ts.get((ts - back + FRAME) & 0xFFFFFFFF)
        out = np.zeros(FRAME, dtype=np.float64)
        if first is not None and second is not None:
            start = back - ECHO_DELAY
            out += ECHO_GAIN * np.concatenate([first, second])[start : start + FRAME]
        if self.speech is not None and self.prompt_start is not None:
            # caller speech whose first audible sample lands at prompt start + ONSET_S
            start = (ts - self.prompt_start) & 0xFFFFFFFF
            pos = start - round(ONSET_S * RATE) + self.speech_onset
            if -FRAME < pos < len(self.speech):
                chunk = np.zeros(FRAME)
                lo, hi = max(pos, 0), min(pos + FRAME, len(self.speech))
                chunk[lo - pos : hi - pos] = self.speech[lo:hi]
                out += chunk
        codes = ulaw_encode(np.clip(np.round(out), -32768, 32767).astype(np.int16))
        reply = RtpPacket(
            payload_type=0,
            sequence_number=self._seq,
            timestamp=ts,
            ssrc=0xCA11E4,
            payload=codes.tobytes(),
        )
        self._seq = (self._seq + 1) & 0xFFFF
        assert self.transport is not None
        self.transport.sendto(bytes(reply), addr)
        self.sent += 1


@dataclass
class Outcome:
    phone: EchoingPhone
    events: list[object]
    prompt: NDArray[np.int16]


async def play_prompt_to(open_call: OpenCall, phone: EchoingPhone) -> Outcome:
    """Settle for 1 s, play the prompt, run until it is done or stopped (bounded), hang up."""
    loop = asyncio.get_running_loop()
    prompt = prompt_pcm()
    transport, _ = await loop.create_datagram_endpoint(lambda: phone, local_addr=(LOOPBACK, 0))
    rtcp, _ = await loop.create_datagram_endpoint(
        asyncio.DatagramProtocol, local_addr=(LOOPBACK, 0)
    )
    events: list[object] = []
    try:
        call = open_call(
            transport.get_extra_info("sockname")[1], rtcp.get_extra_info("sockname")[1]
        )

        async def discard_audio() -> None:
            while await call.media.audio.get() is not None:
                pass

        audio = asyncio.create_task(discard_audio())
        for _ in range(100):  # 1 s of two-way silence: the jitter buffer settles
            if phone.sent >= 50:
                break
            await asyncio.sleep(0.02)
        call.media.play(prompt)
        async with asyncio.timeout(PROMPT_S + 3.0):
            async for event in call.media.iter_events():
                events.append(event)
                if isinstance(event, PlayoutDone | PlayoutStopped):
                    break
        await asyncio.sleep(0.3)  # the packets after the stop, for the record
        while not call.media.events.empty():
            if (event := call.media.events.get_nowait()) is not None:
                events.append(event)
        call.detach()
        audio.cancel()
    finally:
        transport.close()
        rtcp.close()
    return Outcome(phone, events, prompt)


def loud(frame: NDArray[np.int16]) -> bool:
    return bool(np.any(frame != 0))


@pytest.mark.slow
async def test_the_prompt_stops_within_120_ms_of_the_callers_speech_onset(
    open_call: OpenCall,
) -> None:
    began = time.monotonic()
    speech, onset = caller_pcm()
    outcome = await play_prompt_to(open_call, EchoingPhone(speech=speech, speech_onset=onset))
    phone = outcome.phone
    assert phone.prompt_start is not None, "the prompt's first packet carries the marker bit"
    # RTP timestamps relative to the prompt's first packet (the server's start is random)
    after = [
        (rel, h)
        for h in phone.heard
        if (rel := (h.timestamp - phone.prompt_start) & 0xFFFFFFFF) < 10**7
    ]
    onset_rel = round(ONSET_S * RATE)
    last_prompt = max(rel for rel, h in after if loud(h.pcm))
    stop_units = last_prompt - onset_rel  # the last prompt packet's timestamp past the onset
    barge = [e for e in outcome.events if isinstance(e, BargeIn)]
    stopped = [e for e in outcome.events if isinstance(e, PlayoutStopped)]
    # the prompt itself was still talking 120 ms after the onset: stopping it is the server's doing
    still_talking = outcome.prompt[round(ONSET_S * RATE) + LIMIT + FRAME :][: 3 * FRAME]
    assert np.abs(still_talking.astype(np.int32)).max() > 300
    print(
        f"\nbarge-in: last prompt packet {stop_units / 8:.1f} ms after the onset "
        f"(limit 120 ms); events {outcome.events}; {time.monotonic() - began:.1f} s"
    )
    assert len(barge) == 1 and stopped and stopped[0].reason == "barge_in"
    assert stop_units <= LIMIT
    assert not any(loud(h.pcm) for rel, h in after if rel > last_prompt)


@pytest.mark.slow
async def test_the_prompts_own_echo_at_minus_10_db_does_not_stop_it(open_call: OpenCall) -> None:
    began = time.monotonic()
    outcome = await play_prompt_to(open_call, EchoingPhone())
    phone = outcome.phone
    assert phone.prompt_start is not None
    sent = [h for h in phone.heard if (h.timestamp - phone.prompt_start) & 0xFFFFFFFF < 10**7]
    frames = len(outcome.prompt) // FRAME
    played = np.concatenate([h.pcm for h in sent[:frames]])
    expected = ulaw_decode(ulaw_encode(outcome.prompt))
    print(f"\necho only: events {outcome.events}; {time.monotonic() - began:.1f} s")
    assert not any(isinstance(e, BargeIn | PlayoutStopped) for e in outcome.events)
    assert any(isinstance(e, PlayoutDone) for e in outcome.events)
    assert np.array_equal(played, expected)  # every frame of the prompt, in order
    assert not any(loud(h.pcm) for h in sent[frames:])
