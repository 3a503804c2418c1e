"""What the media engine is configured with and what each of its ticks produces.

`rtp.engine.MediaEngine` (its theory of operation is there) takes an `EngineConfig`; each
tick returns a `TickResult`: the `Datagram` s to send, the `MediaEvent` s for the
conversation layer (turn start and end, barge-in, keypad digits, playout done or stopped),
and one `CallerFrame` of decoded caller audio per call. `rtp.engine` re-exports these names.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from dsp.bargein import BargeIn, BargeInConfig
from dsp.endpoint import EndpointConfig, SpeechEnded, SpeechStarted
from dsp.vad import VadConfig
from rtp.latching import Address
from rtp.packet import slot_builder


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """Settings of the media path."""

    vad: VadConfig = field(default_factory=VadConfig)
    endpoint: EndpointConfig = field(default_factory=EndpointConfig)
    bargein: BargeInConfig = field(default_factory=BargeInConfig)
    echo_guard: bool = True
    bargein_enabled: bool = True


@dataclass(frozen=True, slots=True)
class DtmfDigit:
    """A keypad digit from the caller, by RFC 4733 event or in-band tone."""

    digit: str
    source: str  # "rfc4733" or "inband"


@dataclass(frozen=True, slots=True)
class PlayoutDone:
    """Everything queued with `MediaEngine.play` has been sent."""


@dataclass(frozen=True, slots=True)
class PlayoutStopped:
    """Playout was cut short (barge-in or `MediaEngine.stop`); ``frames_left`` were dropped."""

    frames_left: int
    reason: str


Payload = SpeechStarted | SpeechEnded | BargeIn | DtmfDigit | PlayoutDone | PlayoutStopped


@dataclass(frozen=True, slots=True)
class MediaEvent:
    """Something the conversation layer must hear about, at ``frame_index`` of the call."""

    call_id: str
    frame_index: int
    event: Payload


@dataclass(frozen=True, slots=True)
class Datagram:
    """One packet to send for ``call_id``: RTP (``rtcp=False``) or RTCP."""

    call_id: str
    data: bytes
    destination: Address
    rtcp: bool = False


@dataclass(frozen=True, slots=True)
class CallerFrame:
    """One frame of the caller's decoded (and, where lost, concealed) audio.

    ``timestamp`` is the RTP timestamp of the caller's frame that played at this tick (of
    the frame that was due, for a concealed one): it places the frame in the caller's
    stream, which the tick count alone does not once the jitter buffer has dropped or held
    a frame to adapt its delay.
    """

    frame_index: int
    pcm: NDArray[np.int16]
    timestamp: int
    concealed: bool = False


# Built per call per tick: through the slots (`rtp.packet.slot_builder`), same values.
build_caller_frame = slot_builder(CallerFrame)
build_datagram = slot_builder(Datagram)


@dataclass(slots=True)
class TickResult:
    """What one tick produced."""

    datagrams: list[Datagram] = field(default_factory=list)
    events: list[MediaEvent] = field(default_factory=list)
    audio: dict[str, CallerFrame] = field(default_factory=dict)
