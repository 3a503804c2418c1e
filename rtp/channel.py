"""One call's state inside the media engine, and the echo-guard bookkeeping of its playout.

A `Channel` holds everything `rtp.engine.MediaEngine` keeps per call between ticks: the
RTP session, the VAD, endpointer, barge-in detector and echo guard, the in-band DTMF
detector (only when RFC 4733 was not negotiated), packet-loss concealment with its recent
history, the queue of our outgoing audio and RFC 4733 events, and the frame clock.

*Echo guard.* While a prompt plays, and for `ECHO_TAIL_FRAMES` after it, every frame we
send is fed to the guard as its reference (`Channel.feed_echo_guard`), so it can tell the
caller's speech from our own echo. When the jitter buffer slips a frame against our clock,
the echo moves by a frame, so the guard is re-seeded (`Channel.track_slip`).
"""

from __future__ import annotations

import collections

import numpy as np
from numpy.typing import NDArray

from dsp.bargein import BargeInDetector
from dsp.dtmf import DtmfToneDetector
from dsp.echo import EchoGuard
from dsp.endpoint import Endpointer
from dsp.g711 import G711Law
from dsp.plc import Concealer
from dsp.vad import Vad, WebRtcScorer
from rtp.session import MediaSession
from rtp.tick import EngineConfig, Payload

FRAME_SAMPLES = 160
ECHO_TAIL_FRAMES = 10  # keep feeding the echo guard 200 ms past a prompt (its max delay)
_ECHO_SENT_FRAMES = 12  # frames that cover the echo guard's history (200 ms + taps + a frame)


class Channel:
    """One call's state inside the engine."""

    __slots__ = (
        "bargein",
        "call_id",
        "concealer",
        "dtmf",
        "echo",
        "echo_tail",
        "endpointer",
        "frame_index",
        "history",
        "inband",
        "law",
        "law_offset",
        "media_offset",
        "outgoing",
        "pending",
        "phase",
        "scorer",
        "sent",
        "session",
        "speaking",
        "stopped",
        "talkspurt",
        "turn_open",
        "vad",
    )

    def __init__(
        self, call_id: str, session: MediaSession, law: G711Law, config: EngineConfig, phase: int
    ) -> None:
        self.call_id = call_id
        self.session = session
        self.phase = phase
        self.law = law
        self.law_offset = 0 if law is G711Law.PCMU else 256
        self.vad = Vad(config.vad, scorer=NoScorer())
        self.scorer = WebRtcScorer(config.vad.scorer)
        self.endpointer = Endpointer(config.endpoint)
        self.bargein = BargeInDetector(config.bargein)
        self.echo = EchoGuard() if config.echo_guard else None
        self.inband = DtmfToneDetector() if session.config.telephone_event_pt is None else None
        self.concealer = Concealer()
        self.history: collections.deque[NDArray[np.int16]] = collections.deque(maxlen=3)
        self.outgoing: collections.deque[NDArray[np.int16]] = collections.deque()
        # RFC 4733 packets to send, one per tick; b"" marks a tick of plain audio (a gap).
        self.dtmf: collections.deque[tuple[bytes, bool]] = collections.deque()
        self.pending: list[Payload] = []  # events from calls between ticks (stop)
        self.frame_index = 0
        self.speaking = False
        self.talkspurt = True
        self.turn_open = False
        self.stopped = False
        self.echo_tail = 0
        # What the echo guard was fed (its whole reach), to re-seed it after a playout slip.
        self.sent: collections.deque[NDArray[np.int16]] = collections.deque(
            maxlen=_ECHO_SENT_FRAMES
        )
        self.media_offset: int | None = None  # caller's RTP timestamp minus our frame clock

    def track_slip(self, timestamp: int) -> None:
        """Re-seed the echo guard when playout slips against our clock.

        The jitter buffer drops or inserts whole frames to adapt its delay (and a resync
        re-anchors it); each such slip moves the echo of our prompt by a frame in the
        received stream. The guard's smoothed delay statistics would take ~20 frames to
        follow, and every one of those frames would look like the caller talking (a false
        barge-in). A fresh guard fed the recent sent audio finds the new delay on the next
        frame.
        """
        offset = (timestamp - self.frame_index * FRAME_SAMPLES) & 0xFFFFFFFF
        slipped = self.media_offset is not None and offset != self.media_offset
        self.media_offset = offset
        if slipped and self.echo is not None and (self.speaking or self.echo_tail):
            self.echo.restart(self.sent)

    def feed_echo_guard(self, frame: NDArray[np.int16], was_speaking: bool) -> None:
        """Give the echo guard a continuous reference while our audio can still echo back."""
        echo = self.echo
        if echo is None:
            return
        if self.speaking:
            if not was_speaking and self.echo_tail == 0:
                silence = np.zeros(FRAME_SAMPLES, dtype=np.int16)
                for _ in range(ECHO_TAIL_FRAMES):  # the line was quiet before this prompt
                    echo.observe_sent(silence)
                    self.sent.append(silence)
            echo.observe_sent(frame)
            self.sent.append(frame)
            self.echo_tail = ECHO_TAIL_FRAMES
        elif self.echo_tail > 0:
            echo.observe_sent(frame)
            self.sent.append(frame)
            self.echo_tail -= 1


class NoScorer:
    """The engine scores frames in batch and calls `Vad.advance`; `update` is never used."""

    def is_speech(self, frame: NDArray[np.int16]) -> bool:
        """Never called: see the class docstring."""
        raise AssertionError("MediaEngine advances the VAD with batch decisions")
