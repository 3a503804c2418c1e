"""DTMF over RTP: RFC 4733 telephone-event payloads, a receiver and a sender.

Theory of operation
-------------------
A key press travels as one *event*: a run of packets sharing one RTP timestamp (the event
start), each carrying the event code, the duration so far and, on the last ones, the E
(end) bit (RFC 4733 §2.5.1). The first packet has the marker bit; the end packet is sent
three times (§2.5.1.4); packets get lost, duplicated and reordered.

`DtmfDetector.push(packet)` turns that into one `Digit` per key press, reported when the
event ends, so that the digit carries its duration:

- The RTP timestamp identifies the event. Once an event is reported, every packet with
  that timestamp or an earlier one is ignored: the redundant end copies, duplicates, and
  late stragglers from earlier events.
- The start packets may all be lost: any packet of the event starts it.
- The end packets may all be lost: the event is then reported when a later event starts,
  or when a packet of another payload type (audio) of the stream shows that the sender's
  clock has run ``end_timeout_ts`` past the event's last reported duration, or at the end
  of the call by `DtmfDetector.flush`.
- Each SSRC has its own timestamp space, so "already reported" is kept per source (for the
  last few). An event packet from another source ends the event in progress, as when the
  call's media is re-anchored; a stray audio packet from another source ends nothing.
- An event longer than 65535 timestamp units is sent as segments whose timestamps are
  65535 apart (§2.5.1.3); a segment that continues the same event extends it.
- `push` returns at most one digit. In the rare case that one packet completes two (a new
  event's only surviving packet is its end, and the previous event's ends were all lost),
  the second is returned by the next `push` (usually a redundant end copy) or by `flush`.

Only the DTMF events 0-15 (0-9 * # A-D, §3.2) become digits. Other events, such as 16
(flash), are tracked so that they end correctly, and then dropped.

`DtmfSender` does the reverse: the packets for one key press, to be sent one per update
interval: marker on the first, durations growing by the interval, three end packets.
"""

from __future__ import annotations

import struct
from collections import deque
from dataclasses import dataclass
from typing import Final, Self

from rtp.errors import RtpError, RtpParseError
from rtp.packet import RtpPacket
from rtp.seq import seq_add, ts_diff, ts_gt

DTMF_DIGITS: Final = "0123456789*#ABCD"  # RFC 4733 §3.2 Table 1: event codes 0-15
FLASH_EVENT: Final = 16
MAX_DURATION: Final = 0xFFFF
END_PACKET_COPIES: Final = 3  # RFC 4733 §2.5.1.4
_PAYLOAD: Final = struct.Struct("!BBH")
_REMEMBERED_SOURCES: Final = 4


@dataclass(frozen=True, slots=True)
class DtmfEvent:
    """One RFC 4733 §2.3 telephone-event payload.

    Attributes:
        event: The event code (0-15 are the DTMF digits, `DTMF_DIGITS`).
        end: The E bit: the event has ended.
        volume: Power level in -dBm0 (0..63); DTMF events must carry one.
        duration: Duration so far, in timestamp units from the event's RTP timestamp.
        reserved: The R bit; sent as 0, kept on receipt so the payload round-trips.
    """

    event: int
    end: bool = False
    volume: int = 10
    duration: int = 0
    reserved: bool = False

    @classmethod
    def parse(cls, payload: bytes) -> Self:
        """Parse a 4-octet telephone-event payload.

        Raises:
            RtpParseError: ``"RFC 4733 event payload must be 4 octets"``.
        """
        if len(payload) != _PAYLOAD.size:
            raise RtpParseError("RFC 4733 event payload must be 4 octets")
        event, flags, duration = _PAYLOAD.unpack(payload)
        return cls(event, bool(flags & 0x80), flags & 0x3F, duration, bool(flags & 0x40))

    def __bytes__(self) -> bytes:
        """Serialise to the 4-octet payload."""
        if not 0 <= self.volume <= 0x3F:
            raise RtpError("RFC 4733 volume must be in 0..63")
        flags = (0x80 if self.end else 0) | (0x40 if self.reserved else 0) | self.volume
        try:
            return _PAYLOAD.pack(self.event, flags, self.duration)
        except struct.error:
            raise RtpError("RFC 4733 event must be 0..255 and duration 0..65535") from None

    @property
    def digit(self) -> str | None:
        """The DTMF character of this event, or None for a non-DTMF event."""
        return DTMF_DIGITS[self.event] if self.event < len(DTMF_DIGITS) else None


def event_code(digit: str) -> int:
    """Return the RFC 4733 event code of a DTMF character (case-insensitive for A-D).

    Raises:
        RtpError: ``digit`` is not one of 0-9 * # A-D.
    """
    code = DTMF_DIGITS.find(digit.upper()) if len(digit) == 1 else -1
    if code < 0:
        raise RtpError(f"not a DTMF digit: {digit!r}")
    return code


@dataclass(frozen=True, slots=True)
class Digit:
    """A key press, reported once.

    Attributes:
        digit: One of 0-9 * # A-D.
        duration: How long the key was held, in timestamp units.
        timestamp: The RTP timestamp of the event (its start).
    """

    digit: str
    duration: int
    timestamp: int


@dataclass(slots=True)
class _Event:
    """The event in progress (mutable detector state, not a value)."""

    ssrc: int
    code: int
    first_timestamp: int
    segment_timestamp: int
    segment_duration: int

    def to_digit(self) -> Digit | None:
        if self.code >= len(DTMF_DIGITS):
            return None
        duration = ts_diff(self.segment_timestamp, self.first_timestamp) + self.segment_duration
        return Digit(DTMF_DIGITS[self.code], duration, self.first_timestamp)


class DtmfDetector:
    """Turns the telephone-event packets of one stream into digits, each exactly once."""

    __slots__ = ("_current", "_done", "_end_timeout_ts", "_payload_type", "_ready")

    def __init__(self, payload_type: int, *, end_timeout_ts: int = 1600) -> None:
        """Create a detector.

        Args:
            payload_type: The telephone-event payload type negotiated in SDP.
            end_timeout_ts: How far past an event's last reported duration a packet of
                another payload type must be to end the event when its end packets are
                lost (default 200 ms at 8 kHz: four 50 ms updates).
        """
        self._payload_type = payload_type
        self._end_timeout_ts = end_timeout_ts
        self._current: _Event | None = None
        # SSRC -> timestamp of its last finished event, for the few most recent sources.
        self._done: dict[int, int] = {}
        self._ready: deque[Digit] = deque()

    def push(self, packet: RtpPacket) -> Digit | None:
        """Feed one RTP packet of the stream (any payload type).

        Returns:
            The digit whose event this packet completed, if any.

        Raises:
            RtpParseError: A telephone-event packet has a malformed payload.
        """
        current = self._current
        if packet.payload_type == self._payload_type:
            self._on_event(packet.ssrc, packet.timestamp, DtmfEvent.parse(packet.payload))
        elif current is not None and packet.ssrc == current.ssrc:
            overrun = ts_diff(packet.timestamp, current.segment_timestamp)
            if overrun > current.segment_duration + self._end_timeout_ts:
                self._finish(current)
        return self._ready.popleft() if self._ready else None

    def flush(self) -> list[Digit]:
        """End the event in progress, if any, and return every digit not yet returned."""
        if self._current is not None:
            self._finish(self._current)
        ready = list(self._ready)
        self._ready.clear()
        return ready

    def _on_event(self, ssrc: int, timestamp: int, event: DtmfEvent) -> None:
        done = self._done.get(ssrc)
        if done is not None and not ts_gt(timestamp, done):
            return  # a redundant end, a duplicate, or a straggler of a reported event
        current = self._current
        if current is not None and (ssrc, timestamp) != (current.ssrc, current.segment_timestamp):
            same_source = ssrc == current.ssrc
            if same_source and not ts_gt(timestamp, current.segment_timestamp):
                return  # a straggler from before the event in progress
            step = ts_diff(timestamp, current.segment_timestamp)
            if same_source and step == MAX_DURATION and event.event == current.code:
                # RFC 4733 §2.5.1.3: the next segment of a long event.
                current.segment_timestamp = timestamp
                current.segment_duration = 0
            else:
                self._finish(current)  # its end packets were all lost
                current = None
        if current is None:
            current = _Event(ssrc, event.event, timestamp, timestamp, 0)
            self._current = current
        current.segment_duration = max(current.segment_duration, event.duration)
        if event.end:
            self._finish(current)

    def _finish(self, event: _Event) -> None:
        self._current = None
        self._done.pop(event.ssrc, None)
        self._done[event.ssrc] = event.segment_timestamp
        if len(self._done) > _REMEMBERED_SOURCES:
            del self._done[next(iter(self._done))]
        digit = event.to_digit()
        if digit is not None:
            self._ready.append(digit)


class DtmfSender:
    """Builds the RFC 4733 packets of one key press; sending them is the caller's job."""

    __slots__ = ("_interval_ts", "_payload_type", "_ssrc", "_volume")

    def __init__(
        self, *, ssrc: int, payload_type: int, interval_ts: int = 160, volume: int = 10
    ) -> None:
        """Create a sender.

        Args:
            ssrc: The SSRC of the audio stream the events share.
            payload_type: The telephone-event payload type negotiated in SDP.
            interval_ts: Time between packets in timestamp units: the audio ptime (160 is
                20 ms at 8 kHz), or 400 for RFC 4733's suggested 50 ms.
            volume: Power level in -dBm0 for the events.
        """
        if interval_ts <= 0:
            raise RtpError("DTMF update interval must be positive")
        self._ssrc = ssrc
        self._payload_type = payload_type
        self._interval_ts = interval_ts
        self._volume = volume

    def packets(
        self, digit: str, *, sequence_number: int, timestamp: int, duration_ts: int = 800
    ) -> list[RtpPacket]:
        """Return the packets of one key press, in order, to be sent one per interval.

        The first has the marker bit and one interval of duration; each next one adds an
        interval; the last three carry the E bit and the full duration. All share
        ``timestamp``; sequence numbers run on from ``sequence_number`` (the next free one
        afterwards is ``seq_add(sequence_number, len(packets))``).

        Raises:
            RtpError: ``digit`` is not a DTMF digit, or ``duration_ts`` is not 1..65535.
        """
        code = event_code(digit)
        if not 0 < duration_ts <= MAX_DURATION:
            raise RtpError("DTMF duration must be 1..65535 timestamp units")
        durations = list(range(self._interval_ts, duration_ts, self._interval_ts))
        events = [DtmfEvent(code, volume=self._volume, duration=d) for d in durations]
        end = DtmfEvent(code, end=True, volume=self._volume, duration=duration_ts)
        events += [end] * END_PACKET_COPIES
        return [
            RtpPacket(
                payload_type=self._payload_type,
                sequence_number=seq_add(sequence_number, index),
                timestamp=timestamp,
                ssrc=self._ssrc,
                payload=bytes(event),
                marker=index == 0,
            )
            for index, event in enumerate(events)
        ]
