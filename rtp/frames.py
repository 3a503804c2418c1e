"""What the jitter buffer takes and gives: its settings, frames, gaps and statistics.

`rtp.jitter.JitterBuffer` (its theory of operation is there) takes RTP packets and a
`JitterConfig`; each playout tick it returns a `Frame` or a `Gap` (with a `GapReason`), and
`JitterStats` snapshots its counters. `rtp.jitter` re-exports every name here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from rtp.errors import RtpError
from rtp.packet import slot_builder


class JitterConfigError(RtpError, ValueError):
    """A `JitterConfig` value is out of range."""


@dataclass(frozen=True, slots=True)
class JitterConfig:
    """Jitter buffer settings.

    Attributes:
        ptime_s: Frame duration, 10-60 ms; every packet must carry one frame.
        clock_rate_hz: RTP clock rate (8000 for G.711).
        min_delay_s: Lowest target delay.
        max_delay_s: Highest target delay; above it frames are dropped every tick.
        initial_delay_s: Target before the jitter estimate has data (it seeds J).
        jitter_factor: k in ``target = k * J + ptime``. J of a uniform spread of width w is
            w/3, so k = 4 covers the whole spread with a third to spare.
        adapt_hold_s: How long the delay must stay a frame off target before a frame is
            dropped or inserted.
        base_window_s: Window of the minimum transit (longer tracks clock drift slower).
        adaptive: False fixes the target at ``initial_delay_s`` and never drops or inserts.
    """

    ptime_s: float = 0.020
    clock_rate_hz: int = 8000
    min_delay_s: float = 0.020
    max_delay_s: float = 0.300
    initial_delay_s: float = 0.060
    jitter_factor: float = 4.0
    adapt_hold_s: float = 0.5
    base_window_s: float = 2.0
    adaptive: bool = True

    def __post_init__(self) -> None:
        if not 0.010 <= self.ptime_s <= 0.060:
            raise JitterConfigError("ptime_s must be between 0.010 and 0.060")
        samples = self.ptime_s * self.clock_rate_hz
        if self.clock_rate_hz <= 0 or abs(samples - round(samples)) > 1e-6:
            raise JitterConfigError("ptime_s must be a whole number of samples")
        if not 0 <= self.min_delay_s <= self.initial_delay_s <= self.max_delay_s <= 2.0:
            raise JitterConfigError("need 0 <= min_delay <= initial_delay <= max_delay <= 2 s")
        if self.jitter_factor <= 0 or self.adapt_hold_s < 0 or self.base_window_s <= 0:
            raise JitterConfigError("jitter_factor, adapt_hold_s and base_window_s must be > 0")

    @property
    def samples_per_frame(self) -> int:
        """RTP timestamp units per frame (160 for 20 ms at 8 kHz)."""
        return round(self.ptime_s * self.clock_rate_hz)

    @property
    def ring_size(self) -> int:
        """Ring slots: a power of two holding twice max(max_delay, 1 s) of frames."""
        frames = 2 * max(self.max_delay_s, 1.0) / self.ptime_s
        return 1 << max(4, int(frames - 1e-9).bit_length())


class GapReason(Enum):
    """Why `JitterBuffer.pop` had no frame to return."""

    LOST = "lost"  # the frame never came in time; later ones are here, playout moves on
    UNDERRUN = "underrun"  # nothing to play yet (buffer dry, or a talkspurt not yet due)
    INSERTED = "inserted"  # a frame was here but is held one tick to raise the delay


@dataclass(frozen=True, slots=True)
class Frame:
    """One frame to play.

    Attributes:
        payload: The RTP payload, untouched.
        payload_type: RTP payload type.
        timestamp: RTP timestamp (32-bit, as sent).
        seq: RTP sequence number (16-bit, as sent).
        ssrc: RTP synchronisation source.
        marker: The marker bit (start of a talkspurt).
    """

    payload: bytes
    payload_type: int
    timestamp: int
    seq: int
    ssrc: int
    marker: bool


build_frame = slot_builder(Frame)  # one per packet: through the slots, same value


@dataclass(frozen=True, slots=True)
class Gap:
    """No frame for this tick: the caller conceals (`dsp.plc.Concealer`).

    Attributes:
        timestamp: RTP timestamp of the frame that would play here. An UNDERRUN or INSERTED
            gap does not use up its timestamp: the next frame may carry the same one.
        reason: Why there is no frame.
    """

    timestamp: int
    reason: GapReason


@dataclass(frozen=True, slots=True)
class JitterStats:
    """A snapshot of the buffer's counters.

    Attributes:
        received: Packets pushed.
        duplicates: Packets already buffered or played.
        late: Packets that came after their slot played (or of a replaced stream, numbered
            after the switch).
        lost: Slots never filled in time (each shows as one gap).
        reordered: Packets that came after a higher-numbered one, still in time.
        resyncs: Epochs started (SSRC change, sequence or timestamp jump).
        dropped: Frames discarded to cut the delay (or evicted from a full ring).
        underruns: UNDERRUN gaps returned.
        inserted: INSERTED gaps returned.
        strays: Packets with a wild sequence number that no other packet confirmed.
        current_delay_ms: Delay of the last frame played, above the base.
        target_delay_ms: Current target.
        jitter_ms: RFC 3550 A.8 interarrival jitter (seeded from ``initial_delay_s`` until
            packets arrive).
    """

    received: int
    duplicates: int
    late: int
    lost: int
    reordered: int
    resyncs: int
    dropped: int
    underruns: int
    inserted: int
    strays: int
    current_delay_ms: float
    target_delay_ms: float
    jitter_ms: float
