"""One call's RTP/RTCP media session, sans-I/O (RFC 3550, RFC 4733, symmetric RTP).

Theory of operation
-------------------
In: datagrams from the RTP and RTCP sockets with their source and ``now``; payloads to send.
Out: frames for playout (`JitterBuffer`), DTMF digits, packets to send with their address,
RTCP compounds when due, and a `MediaReport` of loss and jitter both ways.

Receiving (``receive_rtp``): a datagram that does not parse is dropped and counted
(``invalid``), never raised. A packet from an address the `Latch` refuses is counted
(``rejected_source``). A telephone-event packet goes to the `DtmfDetector`, an audio packet of
the negotiated payload type to the jitter buffer, anything else is counted (``wrong_payload``).
Every accepted packet feeds the RFC 3550 A.1/A.8 `ReceiverStats`, except DTMF, whose repeated
timestamps would inflate the jitter figure.

Sending: `send_audio` stamps the payload with continuous sequence numbers and timestamps
(`RtpStreamWriter`), marker at each talkspurt start, to the latched source (symmetric RTP,
RFC 4961) or, before anything arrived, to the SDP address.

RTCP (§6): a compound SR (or RR while we have sent nothing) + SDES CNAME every
``rtcp_interval_s`` times a factor in [0.5, 1.5] drawn from the injected random source
(§6.3.1); BYE when the session closes. Received SR feed LSR/DLSR; received report blocks about
our SSRC are the far end's view of our stream (loss and jitter of what we send).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from rtp.dtmf import Digit, DtmfDetector
from rtp.errors import RtpError, RtpParseError
from rtp.jitter import Frame, Gap, JitterBuffer, JitterConfig
from rtp.latching import Address, Latch, LatchConfig
from rtp.pacer import RtpStreamWriter
from rtp.packet import RtpPacket
from rtp.rtcp import (
    Bye,
    ReceiverReport,
    ReportBlock,
    RtcpPacket,
    Sdes,
    SenderReport,
    parse_rtcp_compound,
)
from rtp.stats import ReceiverStats, SenderStats, ntp_from_unix


@dataclass(frozen=True, slots=True)
class SessionConfig:
    """What was negotiated for one call, and our identifiers (random, injected)."""

    ssrc: int
    initial_seq: int
    initial_timestamp: int
    cname: str
    payload_type: int = 0
    telephone_event_pt: int | None = 101
    ptime_s: float = 0.020
    clock_rate_hz: int = 8000
    remote_rtp: Address | None = None
    remote_rtcp: Address | None = None
    # Send to the SDP address before the peer's first packet arrives. The runtime allows it
    # only when the SDP names the host the signalling came from (the trunk): anything else
    # waits for latching, so an SDP cannot aim our RTP at a third party (reflection).
    send_before_latch: bool = True
    rtcp_interval_s: float = 5.0
    wall_offset_s: float = 0.0  # Unix time minus loop time, for NTP timestamps in SRs
    jitter: JitterConfig = field(default_factory=JitterConfig)
    latch: LatchConfig = field(default_factory=LatchConfig)

    @property
    def samples_per_frame(self) -> int:
        """RTP timestamp units per packet."""
        return round(self.ptime_s * self.clock_rate_hz)


@dataclass(slots=True)
class SessionCounters:
    """Drops and totals; each drop reason separately (metrics read these)."""

    received: int = 0
    invalid: int = 0
    rejected_source: int = 0
    wrong_payload: int = 0
    rtcp_received: int = 0
    rtcp_invalid: int = 0
    sent: int = 0


@dataclass(frozen=True, slots=True)
class MediaReport:
    """Loss and jitter both ways, for metrics, logs and tests.

    ``received_*`` is what we measure on the caller's stream; ``remote_*`` is what the far end
    reported (RTCP report blocks) about ours, None until a report arrived.
    """

    packets_received: int
    packets_expected: int
    received_lost: int
    received_jitter_ms: float
    packets_sent: int
    remote_fraction_lost: float | None
    remote_cumulative_lost: int | None
    remote_jitter_ms: float | None


class MediaSession:
    """RTP and RTCP of one call."""

    def __init__(self, config: SessionConfig, now: float, *, rng: random.Random | None = None):
        self.config = config
        self.counters = SessionCounters()
        self._rng = rng or random.Random(config.ssrc)
        self.jitter = JitterBuffer(config.jitter)
        self.latch = Latch(config.remote_rtp, config.latch)
        self._rtcp_latch = Latch(config.remote_rtcp, config.latch)
        self._stats = ReceiverStats()
        self._sender = SenderStats(config.clock_rate_hz)
        self._writer = RtpStreamWriter(
            ssrc=config.ssrc,
            initial_seq=config.initial_seq,
            initial_timestamp=config.initial_timestamp,
            samples_per_frame=config.samples_per_frame,
        )
        self._dtmf = (
            DtmfDetector(config.telephone_event_pt)
            if config.telephone_event_pt is not None
            else None
        )
        self._digits: list[Digit] = []
        self._remote_block: ReportBlock | None = None
        self._next_rtcp = now + self._interval()

    # ----------------------------------------------------------------- receiving
    def receive_rtp(self, data: bytes, source: Address, now: float) -> None:
        """Take one datagram from the RTP socket."""
        try:
            packet = RtpPacket.parse(data)
        except RtpParseError:
            self.counters.invalid += 1
            return
        if not self.latch.accept(source, now):
            self.counters.rejected_source += 1
            return
        self.counters.received += 1
        pt = packet.payload_type
        if self._dtmf is not None and pt == self.config.telephone_event_pt:
            try:
                digit = self._dtmf.push(packet)
            except RtpParseError:  # an event payload that is not 4 octets
                self.counters.invalid += 1
                return
            if digit is not None:
                self._digits.append(digit)
            return
        if pt != self.config.payload_type:
            self.counters.wrong_payload += 1  # comfort noise, a codec we did not agree
            return
        if self._dtmf is not None:
            digit = self._dtmf.push(packet)  # audio can end an event whose end packets died
            if digit is not None:
                self._digits.append(digit)
        self._stats.on_packet(packet, round(now * self.config.clock_rate_hz) & 0xFFFFFFFF)
        self.jitter.push(packet, now)

    def receive_rtcp(self, data: bytes, source: Address, now: float) -> None:
        """Take one datagram from the RTCP socket."""
        try:
            compound = parse_rtcp_compound(data)
        except RtpParseError:
            self.counters.rtcp_invalid += 1
            return
        if not self._rtcp_latch.accept(source, now):  # after parsing: garbage never latches
            self.counters.rejected_source += 1
            return
        self.counters.rtcp_received += 1
        if compound.trailing_error is not None:
            self.counters.rtcp_invalid += 1
        for packet in compound.packets:
            self._on_rtcp(packet, now)

    def _on_rtcp(self, packet: RtcpPacket, now: float) -> None:
        if isinstance(packet, SenderReport):
            self._stats.on_sender_report(packet, now)
        if isinstance(packet, SenderReport | ReceiverReport):
            for block in packet.reports:
                if block.ssrc == self.config.ssrc:
                    self._remote_block = block

    def playout(self, now: float) -> Frame | Gap | None:
        """The caller's frame due at ``now`` (called once per ptime by the media clock)."""
        return self.jitter.pop(now)

    def digits(self) -> list[Digit]:
        """Drain RFC 4733 digits received since the last call."""
        out, self._digits = self._digits, []
        return out

    @property
    def has_digits(self) -> bool:
        """Whether `digits` has anything to return (the media engine asks every tick)."""
        return bool(self._digits)

    # ----------------------------------------------------------------- sending
    @property
    def destination(self) -> Address | None:
        """Where our RTP goes: the latched source, else (if allowed) the SDP address."""
        if self.latch.latched is None and not self.config.send_before_latch:
            return None
        return self.latch.destination()

    def send_audio(self, payload: bytes, talkspurt_start: bool, now: float) -> bytes:
        """Our next RTP packet carrying ``payload`` (one ptime of audio)."""
        timestamp = self._writer.timestamp
        data = self._writer.packet(payload, self.config.payload_type, talkspurt_start)
        self._sender.count_sent(len(payload), timestamp, self.config.ssrc, now)
        self.counters.sent += 1
        return data

    def skip(self, frames: int) -> None:
        """Move the outgoing timestamp over ``frames`` ticks that sent nothing (a stall)."""
        self._writer.skip(frames)

    def send_event(self, payload: bytes, event_start: bool, now: float) -> bytes:
        """An RFC 4733 telephone-event packet (the caller builds ``payload``)."""
        if self.config.telephone_event_pt is None:
            raise RtpError("telephone-event was not negotiated")
        data = self._writer.telephone_event(payload, self.config.telephone_event_pt, event_start)
        self.counters.sent += 1
        return data

    def skip_frame(self) -> None:
        """Advance the audio timestamp over a tick that carried a telephone-event instead."""
        self._writer.skip(1)

    # ----------------------------------------------------------------- RTCP
    def next_rtcp_deadline(self) -> float:
        """When the next report is due."""
        return self._next_rtcp

    def rtcp_due(self, now: float) -> bytes | None:
        """A compound report when one is due at ``now`` (§6.4), else None."""
        if now < self._next_rtcp:
            return None
        self._next_rtcp = now + self._interval()
        return self._compound(now, bye=False)

    def close(self, now: float) -> bytes:
        """The final compound report with BYE (§6.6)."""
        return self._compound(now, bye=True)

    @property
    def rtcp_destination(self) -> Address | None:
        """Where RTCP goes: the latched RTCP source, else (if allowed) the SDP's RTP port + 1."""
        if self._rtcp_latch.latched is None and not self.config.send_before_latch:
            return None
        return self._rtcp_latch.destination()

    def _compound(self, now: float, *, bye: bool) -> bytes:
        blocks = tuple(b for b in [self._stats.report(now)] if b is not None)
        first: SenderReport | ReceiverReport
        if self._sender.packet_count:
            ntp = ntp_from_unix(now + self.config.wall_offset_s)
            first = self._sender.sender_report(now, ntp, blocks)
        else:
            first = ReceiverReport(ssrc=self.config.ssrc, reports=blocks)
        packets: list[bytes] = [
            bytes(first),
            bytes(Sdes.with_cname(self.config.ssrc, self.config.cname)),
        ]
        if bye:
            packets.append(bytes(Bye(sources=(self.config.ssrc,))))
        return b"".join(packets)

    def _interval(self) -> float:
        return self.config.rtcp_interval_s * self._rng.uniform(0.5, 1.5)

    # ----------------------------------------------------------------- figures
    def report(self) -> MediaReport:
        """Loss and jitter both ways, now."""
        snap = self._stats.snapshot()
        rate = self.config.clock_rate_hz
        block = self._remote_block
        return MediaReport(
            packets_received=snap.received if snap else 0,
            packets_expected=snap.expected if snap else 0,
            received_lost=snap.cumulative_lost if snap else 0,
            received_jitter_ms=(snap.jitter / rate * 1000.0) if snap else 0.0,
            packets_sent=self._sender.packet_count,
            remote_fraction_lost=block.fraction_lost / 256.0 if block else None,
            remote_cumulative_lost=block.cumulative_lost if block else None,
            remote_jitter_ms=block.jitter / rate * 1000.0 if block else None,
        )
