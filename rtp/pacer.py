"""Send-side timing and numbering of one RTP stream (RFC 3550 §5.1, RFC 3551 §4.1, RFC 4733).

Theory of operation
-------------------
`PacedSender` says *when* frames go out. Frame n is due at ``start + n * ptime``: deadlines
come from the frame count, never from the previous send time, so a late timer does not
push every later frame back (errors do not pile up). ``due(now)`` returns how many frames
are due and counts them as sent; ``next_deadline()`` is when to call it again, for the
shell's one timer. If the process stalled (a tick 200 ms late means ten frames due), it
sends at most ``max_burst`` of them (a burst is all the peer's jitter buffer will absorb)
and skips the rest, staying on the original grid; ``skipped`` counts them. The caller
passes the count to `RtpStreamWriter.skip` so the timestamps still say when the audio was
meant to play.

`RtpStreamWriter` says *what* the packets carry. Sequence numbers go up by one per packet
and timestamps by one frame per tick, across prompts and across silence: ticks without a
packet call `RtpStreamWriter.skip`, so the timestamp gap tells the receiver how long the
silence was (RFC 3550 §5.1). The marker bit is set on the first packet of a talkspurt
(RFC 3551 §4.1). The SSRC and the initial sequence number and timestamp are random
(RFC 3550 §5.1, §8) and injected, so tests are repeatable. Telephone events (RFC 4733 §2.3)
share the timestamp of the tick the event began on, for every packet of the event
including the repeated end packets, while the sequence number still goes up per packet.
"""

from __future__ import annotations

import math
from typing import Final

from rtp.errors import RtpError
from rtp.packet import pack_plain

_EPSILON_S: Final = 1e-9  # float slack, so a tick exactly on a deadline counts


class PacedSender:
    """Deadlines for a constant-rate stream of frames; see the module docstring."""

    def __init__(self, ptime: float, *, start: float, max_burst: int = 3) -> None:
        """Create a pacer whose frame 0 is due at ``start``.

        Args:
            ptime: Seconds per frame.
            start: When frame 0 is due (``loop.time()`` scale).
            max_burst: Most frames one `due` call returns after a stall.
        """
        if ptime <= 0 or max_burst < 1:
            raise RtpError("PacedSender needs ptime > 0 and max_burst >= 1")
        self.ptime = ptime
        self.start = start
        self.max_burst = max_burst
        self._next = 0  # index of the next frame to send
        self._sent = 0
        self._skipped = 0

    @property
    def sent(self) -> int:
        """Frames handed out by `due`."""
        return self._sent

    @property
    def skipped(self) -> int:
        """Frames skipped because they were too late to be worth sending."""
        return self._skipped

    def next_deadline(self) -> float:
        """When the next frame is due."""
        return self.start + self._next * self.ptime

    def due(self, now: float) -> int:
        """Return how many frames to send now (0 to ``max_burst``) and count them as sent.

        Frames more than ``max_burst`` behind are skipped: counted in `skipped`, not
        returned. The grid stays where it was, so the next deadline is the next grid point.
        """
        last_due = math.floor((now - self.start + _EPSILON_S) / self.ptime)
        count = last_due + 1 - self._next
        if count <= 0:
            return 0
        skipped = max(0, count - self.max_burst)
        self._skipped += skipped
        self._sent += count - skipped
        self._next = last_due + 1
        return count - skipped


class RtpStreamWriter:
    """Numbers and stamps the packets of one outgoing stream; see the module docstring."""

    def __init__(
        self, *, ssrc: int, initial_seq: int, initial_timestamp: int, samples_per_frame: int = 160
    ) -> None:
        """Create a writer.

        Args:
            ssrc: Random 32-bit SSRC (RFC 3550 §8).
            initial_seq: Random 16-bit first sequence number.
            initial_timestamp: Random 32-bit first timestamp.
            samples_per_frame: Timestamp units per tick (160 for 20 ms at 8 kHz).
        """
        if not (0 <= ssrc <= 0xFFFFFFFF and 0 <= initial_seq <= 0xFFFF):
            raise RtpError("SSRC must fit 32 bits and the sequence number 16 bits")
        if not 0 <= initial_timestamp <= 0xFFFFFFFF or samples_per_frame <= 0:
            raise RtpError("timestamp must fit 32 bits and samples_per_frame be positive")
        self.ssrc = ssrc
        self.samples_per_frame = samples_per_frame
        self._seq = initial_seq
        self._timestamp = initial_timestamp
        self._event_timestamp: int | None = None

    @property
    def timestamp(self) -> int:
        """Timestamp the next audio packet will carry."""
        return self._timestamp

    @property
    def sequence_number(self) -> int:
        """Sequence number the next packet will carry."""
        return self._seq

    def packet(self, payload: bytes, payload_type: int, talkspurt_start: bool) -> bytes:
        """Return the next audio packet and advance one tick.

        Args:
            payload: One frame of encoded audio.
            payload_type: RTP payload type (0 PCMU, 8 PCMA).
            talkspurt_start: True on the first packet after silence or at the start of a
                prompt: sets the marker bit (RFC 3551 §4.1).
        """
        data = self._build(payload, payload_type, self._timestamp, talkspurt_start)
        self.skip(1)
        return data

    def skip(self, frames: int = 1) -> None:
        """Advance the timestamp over ticks that send no audio (silence, events, stalls)."""
        if frames < 0:
            raise RtpError("cannot skip a negative number of frames")
        self._timestamp = (self._timestamp + frames * self.samples_per_frame) & 0xFFFFFFFF

    def telephone_event(self, payload: bytes, payload_type: int, event_start: bool) -> bytes:
        """Return one RFC 4733 packet; all packets of one event share its start timestamp.

        The event starts at the current tick (``event_start`` sets the marker bit, RFC 4733
        §2.5.1.1). This does not advance the audio timestamp: call `skip` for every tick the
        event takes, so audio resumes at the right time.

        Raises:
            RtpError: A continuation packet came with no event started.
        """
        if event_start:
            self._event_timestamp = self._timestamp
        if self._event_timestamp is None:
            raise RtpError("telephone-event continuation without an event start")
        return self._build(payload, payload_type, self._event_timestamp, event_start)

    def _build(self, payload: bytes, payload_type: int, timestamp: int, marker: bool) -> bytes:
        # bytes(RtpPacket(...)) without building the packet: this runs per call per tick
        data = pack_plain(payload_type, self._seq, timestamp, self.ssrc, payload, marker)
        self._seq = (self._seq + 1) & 0xFFFF
        return data
