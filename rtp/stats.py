"""RTP reception and transmission statistics for RTCP reports (RFC 3550 §6.4, A.1, A.3, A.8).

Theory of operation
-------------------
`ReceiverStats` follows one remote source. Each RTP packet goes through
`ReceiverStats.on_packet(packet, arrival_ts)`, where ``arrival_ts`` is the arrival time in
the stream's RTP clock units (the shell computes ``int(now * clock_rate_hz)``). It returns
a `PacketStatus`:

- *Sequence validation* is RFC 3550 A.1 ``update_seq``. A new source is on probation until
  ``min_sequential`` packets arrive in sequence (PROBATION); the counts start at the
  packet that ends probation, so the first packet of a source is not counted. A forward
  step of less than ``max_dropout`` is in order (ACCEPTED; a step past 65535 counts a wrap
  cycle). A step back of at most ``max_misorder`` is a duplicate or a reordered packet
  (LATE). Anything else is a jump (JUMP) and is ignored, unless the next packet follows it
  in sequence, which means the sender restarted its sequence: the counts restart there
  (RESTARTED). Another SSRC is a new source (the peer's media was re-anchored, e.g. after
  a transfer): it goes through probation on the side, and only when it passes does it
  replace the old source and its counts. A stray packet therefore changes nothing.
- *Loss* is RFC 3550 A.3: expected = extended highest - base + 1, lost = expected -
  received. Duplicates count as received, so lost can go negative (the RR field is signed).
  The fraction lost covers the interval since the previous `ReceiverStats.report`, and
  ``report`` is the only method that advances that interval: `ReceiverStats.snapshot` and
  every property only read (aiortc's ``fraction_lost`` property resets the interval).
- *Jitter* is RFC 3550 A.8: J += (|D| - J) / 16, with D the change in transit time
  (arrival - RTP timestamp) between consecutive counted packets in arrival order. It is kept
  as a float and rounded into the report, so a steady |D| = d reports exactly d.
- *LSR/DLSR* (§6.4.1): `ReceiverStats.on_sender_report` remembers when the source's last SR
  arrived, so that the report can say how long ago that was.

`SenderStats` counts what we send, for our sender reports. The NTP helpers convert between
seconds and the 64-bit NTP format; `round_trip_time_s` is the §6.4.1 computation A - LSR -
DLSR. Nothing here reads a clock: every time comes in as an argument.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum
from typing import Final

from rtp.errors import RtpError
from rtp.packet import ReportBlock, RtpPacket, SenderReport
from rtp.seq import SEQ_MOD, ts_add, ts_diff

NTP_UNIX_OFFSET_S: Final = 2_208_988_800  # 1900-01-01 to 1970-01-01
_JITTER_GAIN: Final = 1 / 16  # RFC 3550 A.8: a noise-reducing gain of 1/16


class PacketStatus(Enum):
    """What sequence validation (RFC 3550 A.1) made of one packet."""

    ACCEPTED = "accepted"  # in order, possibly after a gap
    LATE = "late"  # a duplicate or a reordered packet, at most max_misorder behind
    PROBATION = "probation"  # the source is not valid yet; not counted
    JUMP = "jump"  # a very large jump, held until the next packet confirms it; not counted
    RESTARTED = "restarted"  # the jump was confirmed: counts restart at this packet


@dataclass(frozen=True, slots=True)
class ReceptionStats:
    """A read-only view of one source's reception statistics.

    Attributes:
        ssrc: The source.
        received: Packets counted since the base, duplicates included.
        expected: Packets expected from the base to the extended highest sequence number.
        cumulative_lost: ``expected - received``, not clamped (negative with duplicates).
        extended_highest_seq: Wrap cycles << 16 | the highest sequence number.
        jitter: Interarrival jitter in timestamp units.
        restarts: Sequence restarts confirmed since the source appeared.
    """

    ssrc: int
    received: int
    expected: int
    cumulative_lost: int
    extended_highest_seq: int
    jitter: float
    restarts: int


@dataclass(frozen=True, slots=True)
class SequenceRules:
    """The constants of RFC 3550 A.1 sequence validation (defaults are the RFC's).

    Attributes:
        min_sequential: Packets in sequence a new source needs to become valid.
        max_dropout: Forward steps below this are a gap, not a jump.
        max_misorder: Backward steps up to this are a late packet, not a jump.
    """

    min_sequential: int = 2
    max_dropout: int = 3000
    max_misorder: int = 100

    def __post_init__(self) -> None:
        if self.min_sequential < 1:
            raise RtpError("min_sequential must be at least 1")
        if not 0 < self.max_dropout < SEQ_MOD - self.max_misorder:
            raise RtpError("max_dropout and max_misorder must split the sequence space")


class _Source:
    """One source's A.1 sequence state, A.3 counters and A.8 jitter (mutable state)."""

    __slots__ = (
        "bad_seq",
        "base_seq",
        "cycles",
        "expected_prior",
        "jitter",
        "last_arrival",
        "last_timestamp",
        "max_seq",
        "probation",
        "received",
        "received_prior",
        "restarts",
        "rules",
        "ssrc",
    )

    def __init__(self, ssrc: int, seq: int, rules: SequenceRules) -> None:
        self.ssrc = ssrc
        self.rules = rules
        self.restarts = 0
        self.jitter = 0.0
        self.init_seq(seq)
        self.max_seq = (seq - 1) & 0xFFFF
        self.probation = rules.min_sequential

    def init_seq(self, seq: int) -> None:
        # RFC 3550 A.1 init_seq(), plus a fresh transit baseline for the jitter.
        self.base_seq = seq
        self.max_seq = seq
        self.bad_seq = SEQ_MOD + 1  # so that seq == bad_seq is false
        self.cycles = 0
        self.received = 0
        self.received_prior = 0
        self.expected_prior = 0
        self.last_arrival: int | None = None
        self.last_timestamp = 0

    def update_seq(self, seq: int) -> PacketStatus:
        # RFC 3550 A.1 update_seq(). Unlike the C, "max_seq + 1" is taken modulo 2**16,
        # so that probation also passes across a wrap.
        udelta = (seq - self.max_seq) & 0xFFFF
        if self.probation:
            if seq == (self.max_seq + 1) & 0xFFFF:
                self.probation -= 1
                self.max_seq = seq
                if self.probation == 0:
                    self.init_seq(seq)
                    self.received += 1
                    return PacketStatus.ACCEPTED
            else:
                self.probation = self.rules.min_sequential - 1
                self.max_seq = seq
            return PacketStatus.PROBATION
        if udelta == 0 or udelta > SEQ_MOD - self.rules.max_misorder:
            status = PacketStatus.LATE
        elif udelta < self.rules.max_dropout:
            if seq < self.max_seq:
                self.cycles += SEQ_MOD  # the sequence number wrapped
            self.max_seq = seq
            status = PacketStatus.ACCEPTED
        elif seq == self.bad_seq:
            # Two sequential packets after a big jump: the sender restarted; re-sync.
            self.init_seq(seq)
            self.restarts += 1
            status = PacketStatus.RESTARTED
        else:
            self.bad_seq = (seq + 1) & 0xFFFF
            return PacketStatus.JUMP
        self.received += 1
        return status

    def on_packet(self, packet: RtpPacket, arrival_ts: int) -> PacketStatus:
        status = self.update_seq(packet.sequence_number)
        if status in (PacketStatus.PROBATION, PacketStatus.JUMP):
            return status
        if self.last_arrival is not None:
            # RFC 3550 A.8: D is the change in transit time, with the RTP timestamps
            # compared modulo 2**32 so that a timestamp wrap is not a jump.
            transit_change = (arrival_ts - self.last_arrival) - ts_diff(
                packet.timestamp, self.last_timestamp
            )
            self.jitter += (abs(transit_change) - self.jitter) * _JITTER_GAIN
        self.last_arrival = arrival_ts
        self.last_timestamp = packet.timestamp
        return status

    def snapshot(self) -> ReceptionStats | None:
        if self.probation:
            return None
        extended_max = self.cycles + self.max_seq
        expected = extended_max - self.base_seq + 1
        return ReceptionStats(
            ssrc=self.ssrc,
            received=self.received,
            expected=expected,
            cumulative_lost=expected - self.received,
            extended_highest_seq=extended_max,
            jitter=self.jitter,
            restarts=self.restarts,
        )


class ReceiverStats:
    """RFC 3550 A.1/A.3/A.8 statistics for the one source a call receives from."""

    __slots__ = ("_candidate", "_rules", "_source", "_sr_arrival", "_sr_lsr")

    def __init__(self, rules: SequenceRules | None = None) -> None:
        self._rules = rules or SequenceRules()
        self._source: _Source | None = None
        self._candidate: _Source | None = None
        self._sr_lsr = 0
        self._sr_arrival = 0.0

    def on_packet(self, packet: RtpPacket, arrival_ts: int) -> PacketStatus:
        """Account for one received RTP packet.

        Args:
            packet: The packet.
            arrival_ts: Its arrival time in RTP timestamp units of the same clock rate.

        Returns:
            What sequence validation made of it; only ACCEPTED, LATE and RESTARTED packets
            are counted and enter the jitter estimate.
        """
        source = self._source
        if source is None or (packet.ssrc != source.ssrc and source.probation):
            source = self._source = _Source(packet.ssrc, packet.sequence_number, self._rules)
        elif packet.ssrc != source.ssrc:
            # Another SSRC must pass probation before it replaces a valid source, so that a
            # stray packet cannot wipe the statistics.
            candidate = self._candidate
            if candidate is None or candidate.ssrc != packet.ssrc:
                candidate = _Source(packet.ssrc, packet.sequence_number, self._rules)
                self._candidate = candidate
            status = candidate.on_packet(packet, arrival_ts)
            if status is PacketStatus.ACCEPTED:
                self._source, self._candidate, self._sr_lsr = candidate, None, 0
            return status
        return source.on_packet(packet, arrival_ts)

    def on_sender_report(self, report: SenderReport, now: float) -> None:
        """Remember an SR from this source for the LSR and DLSR of our next report."""
        if self._source is not None and report.ssrc == self._source.ssrc:
            self._sr_lsr = ntp_short(report.ntp_timestamp)
            self._sr_arrival = now

    @property
    def ssrc(self) -> int | None:
        """The source being followed, once a packet has arrived."""
        return None if self._source is None else self._source.ssrc

    def snapshot(self) -> ReceptionStats | None:
        """The statistics so far, or None while no source has passed probation."""
        return None if self._source is None else self._source.snapshot()

    def report(self, now: float) -> ReportBlock | None:
        """Build the report block for this source and start a new loss interval.

        Args:
            now: The current time, on the clock ``on_sender_report`` was given.

        Returns:
            The block, or None while no source has passed probation (nothing to report).
        """
        source = self._source
        stats = self.snapshot()
        if source is None or stats is None:
            return None
        # RFC 3550 A.3: the fraction lost over the interval since the last report.
        expected_interval = stats.expected - source.expected_prior
        received_interval = stats.received - source.received_prior
        source.expected_prior = stats.expected
        source.received_prior = stats.received
        lost_interval = expected_interval - received_interval
        fraction = 0
        if expected_interval > 0 and lost_interval > 0:
            fraction = (lost_interval << 8) // expected_interval
        dlsr = 0
        if self._sr_lsr:
            dlsr = min(0xFFFFFFFF, max(0, round((now - self._sr_arrival) * 65536)))
        return ReportBlock(
            ssrc=stats.ssrc,
            fraction_lost=fraction,
            cumulative_lost=max(-0x800000, min(0x7FFFFF, stats.cumulative_lost)),
            highest_seq=stats.extended_highest_seq & 0xFFFFFFFF,
            jitter=min(0xFFFFFFFF, round(stats.jitter)),
            lsr=self._sr_lsr,
            dlsr=dlsr,
        )


class SenderStats:
    """Counts of what we send, and the sender reports built from them (RFC 3550 §6.4.1)."""

    __slots__ = ("_clock_rate_hz", "_last_sent", "_last_timestamp", "_octets", "_packets", "_ssrc")

    def __init__(self, clock_rate_hz: int) -> None:
        self._clock_rate_hz = clock_rate_hz
        self._packets = 0
        self._octets = 0
        self._ssrc = 0
        self._last_timestamp = 0
        self._last_sent: float | None = None

    def on_packet_sent(self, packet: RtpPacket, now: float) -> None:
        """Count one sent packet: its payload octets only, as §6.4.1 asks."""
        self.count_sent(len(packet.payload), packet.timestamp, packet.ssrc, now)

    def count_sent(self, payload_octets: int, timestamp: int, ssrc: int, now: float) -> None:
        """Count a packet from its fields (the send path never builds an `RtpPacket`)."""
        self._packets = (self._packets + 1) & 0xFFFFFFFF
        self._octets = (self._octets + payload_octets) & 0xFFFFFFFF
        self._ssrc = ssrc
        self._last_timestamp = timestamp
        self._last_sent = now

    @property
    def packet_count(self) -> int:
        """Packets sent, modulo 2**32."""
        return self._packets

    @property
    def octet_count(self) -> int:
        """Payload octets sent, modulo 2**32."""
        return self._octets

    def sender_report(
        self, now: float, ntp_timestamp: int, reports: tuple[ReportBlock, ...] = ()
    ) -> SenderReport:
        """Build an SR for the instant ``now``, which ``ntp_timestamp`` gives in NTP format.

        The RTP timestamp is the last packet's, advanced by the time since it was sent, so
        that it names the same instant as the NTP timestamp (§6.4.1).

        Raises:
            RtpError: Nothing was sent yet; a source that sends nothing sends RRs instead.
        """
        if self._last_sent is None:
            raise RtpError("no RTP packet sent yet: send a receiver report instead")
        elapsed_ts = round((now - self._last_sent) * self._clock_rate_hz)
        return SenderReport(
            ssrc=self._ssrc,
            ntp_timestamp=ntp_timestamp,
            rtp_timestamp=ts_add(self._last_timestamp, elapsed_ts),
            packet_count=self._packets,
            octet_count=self._octets,
            reports=reports,
        )


def ntp_from_unix(unix_s: float) -> int:
    """Convert seconds since 1970 to a 64-bit NTP timestamp (wraps in 2036, RFC 5905 era 1)."""
    seconds = math.floor(unix_s)
    fraction = round((unix_s - seconds) * (1 << 32))
    return (((seconds + NTP_UNIX_OFFSET_S) << 32) + fraction) & 0xFFFFFFFFFFFFFFFF


def ntp_to_unix(ntp: int) -> float:
    """Convert a 64-bit NTP timestamp to seconds since 1970.

    Seconds fields with the top bit clear are taken to be after the 2036 wrap (RFC 4330 §3).
    """
    seconds = ntp >> 32
    if seconds < 1 << 31:
        seconds += 1 << 32
    return seconds - NTP_UNIX_OFFSET_S + (ntp & 0xFFFFFFFF) / (1 << 32)


def ntp_short(ntp: int) -> int:
    """The middle 32 bits of an NTP timestamp: the LSR form (16.16 fixed point seconds)."""
    return (ntp >> 16) & 0xFFFFFFFF


def round_trip_time_s(block: ReportBlock, arrival_ntp: int) -> float | None:
    """Round-trip time from a report block about our stream (RFC 3550 §6.4.1).

    Args:
        block: A report block whose LSR echoes one of our SRs.
        arrival_ntp: When the report arrived, as an NTP timestamp on our SR clock.

    Returns:
        A - LSR - DLSR in seconds; 0.0 if that is negative (clock granularity), None if
        the peer has not received an SR yet (LSR 0).
    """
    if block.lsr == 0:
        return None
    rtt = (ntp_short(arrival_ntp) - block.lsr - block.dlsr) & 0xFFFFFFFF
    if rtt >= 1 << 31:
        return 0.0
    return rtt / 65536
