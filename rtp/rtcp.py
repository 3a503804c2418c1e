"""RTCP packets (RFC 3550 §6): SR, RR, SDES, BYE, and every other type passed through.

Theory of operation
-------------------
One UDP datagram carries a *compound* RTCP packet: several packets back to back, each with
the common 4-octet header (V=2, P, a 5-bit count, packet type, length in 32-bit words minus
one; RFC 3550 §6.4.1). `parse_rtcp(data)` splits a datagram into typed packets:
`SenderReport` (200), `ReceiverReport` (201), `Sdes` (202) and `Bye` (203). Every other
type (APP 204, the RFC 4585 feedback types RTPFB 205 and PSFB 206, XR 207, ...) is kept
whole as `UnknownRtcp`, so it can be logged or forwarded. ``bytes()`` of each packet writes
it back; ``b"".join(map(bytes, parse_rtcp(x))) == x`` for every datagram that parses. For
that, every octet the RFC lets vary is kept: report-block profile extensions, padding, the
distinction between a BYE without a reason and one with an empty reason.

Trailing octets. Real senders get the framing wrong: the conformance capture
SIP_CALL_RTP_G711 has compounds with two stray zero octets after the last packet. The rule:

- `parse_rtcp` is strict. Every octet must belong to a valid packet, or it raises
  `RtpParseError` with the message of the first packet that failed (for two stray octets,
  ``"RTCP packet is too short"``: they cannot hold a header).
- `parse_rtcp_compound` is what a receiver uses. If the *first* packet is invalid the
  datagram is not RTCP and it raises, as above. Otherwise it keeps every packet that parsed
  and stops at the first one that does not, reporting the unparsed rest in
  `RtcpCompound.trailing` and the reason in `RtcpCompound.trailing_error` (libwebrtc's
  RTCPReceiver does the same: it keeps the packets before a bad block and counts it skipped).

A.2's compound checks (first packet SR or RR, padding only in the last) are not enforced:
RFC 5506 reduced-size RTCP and RFC 4585 feedback send lone BYE, SDES or feedback packets,
as the pjproject fuzz seeds do.

Parse errors carry exact messages: those of `rtp.rtcp_header.read_frame` for the common
header, then ``"RTCP sender report length is invalid"``, ``"RTCP receiver report length is
invalid"``, ``"RTCP SDES item is truncated"``, ``"RTCP SDES length is invalid"`` and
``"RTCP bye length is invalid"``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import ClassVar, Final, Self

from rtp.errors import RtpError, RtpParseError
from rtp.rtcp_header import (
    RtcpFrame,
    RtcpType,
    TypedRtcp,
    UnknownRtcp,
    check_extension,
    pack_words,
    read_frame,
    write_packet,
)

_SENDER_INFO: Final = struct.Struct("!IQIII")
_REPORT_BLOCK: Final = struct.Struct("!IIIIII")
_WORD: Final = struct.Struct("!I")


class SdesItemType(IntEnum):
    """SDES item types (RFC 3550 §6.5). Unknown types are kept as plain ints."""

    CNAME = 1
    NAME = 2
    EMAIL = 3
    PHONE = 4
    LOC = 5
    TOOL = 6
    NOTE = 7
    PRIV = 8


@dataclass(frozen=True, slots=True)
class ReportBlock:
    """One reception report block (RFC 3550 §6.4.1).

    Attributes:
        ssrc: The source this block reports on.
        fraction_lost: Packets lost in the last interval as a fraction of 256 (0..255).
        cumulative_lost: Packets lost since the start, signed 24-bit (duplicates can make it
            negative).
        highest_seq: Extended highest sequence number received (cycles << 16 | seq).
        jitter: Interarrival jitter in timestamp units (RFC 3550 A.8).
        lsr: Middle 32 bits of the NTP timestamp of the last SR received, 0 if none.
        dlsr: Delay since that SR, in units of 1/65536 s.
    """

    ssrc: int
    fraction_lost: int = 0
    cumulative_lost: int = 0
    highest_seq: int = 0
    jitter: int = 0
    lsr: int = 0
    dlsr: int = 0

    def __bytes__(self) -> bytes:
        """Serialise to the 24-octet wire block."""
        if not -0x800000 <= self.cumulative_lost <= 0x7FFFFF:
            raise RtpError("RTCP cumulative lost must be a signed 24-bit number")
        if not 0 <= self.fraction_lost <= 0xFF:
            raise RtpError("RTCP fraction lost must be in 0..255")
        lost = (self.fraction_lost << 24) | (self.cumulative_lost & 0xFFFFFF)
        fields = (self.ssrc, lost, self.highest_seq, self.jitter, self.lsr, self.dlsr)
        try:
            return _REPORT_BLOCK.pack(*fields)
        except struct.error:
            raise RtpError("RTCP report block field must be 32 bits") from None

    @classmethod
    def unpack_from(cls, body: bytes, pos: int) -> Self:
        """Read a block at ``body[pos:pos + 24]``."""
        ssrc, lost, highest, jitter, lsr, dlsr = _REPORT_BLOCK.unpack_from(body, pos)
        cumulative = lost & 0xFFFFFF
        if cumulative & 0x800000:
            cumulative -= 0x1000000
        return cls(ssrc, lost >> 24, cumulative, highest, jitter, lsr, dlsr)


@dataclass(frozen=True, slots=True)
class SenderReport(TypedRtcp):
    """Sender report (RFC 3550 §6.4.1).

    Attributes:
        ssrc: The sender.
        ntp_timestamp: 64-bit NTP wall-clock time when this report was sent.
        rtp_timestamp: The same instant in RTP timestamp units.
        packet_count: Packets sent since the start (wraps at 2**32).
        octet_count: Payload octets sent since the start (wraps at 2**32).
        reports: Reception report blocks, at most 31.
        extension: Profile-specific extension after the blocks, whole 32-bit words.
        padding: Padding octets as on the wire, the last being their count.
    """

    PACKET_TYPE: ClassVar[RtcpType] = RtcpType.SR
    NAME: ClassVar[str] = "sender report"

    ssrc: int
    ntp_timestamp: int
    rtp_timestamp: int
    packet_count: int = 0
    octet_count: int = 0
    reports: tuple[ReportBlock, ...] = ()
    extension: bytes = b""
    padding: bytes = b""

    @classmethod
    def from_frame(cls, frame: RtcpFrame) -> Self:
        """Decode an SR body."""
        body = frame.body
        blocks_end = _SENDER_INFO.size + _REPORT_BLOCK.size * frame.count
        if len(body) < blocks_end:
            raise RtpParseError("RTCP sender report length is invalid")
        ssrc, ntp, rtp_ts, packets, octets = _SENDER_INFO.unpack_from(body)
        reports = tuple(
            ReportBlock.unpack_from(body, _SENDER_INFO.size + _REPORT_BLOCK.size * i)
            for i in range(frame.count)
        )
        return cls(ssrc, ntp, rtp_ts, packets, octets, reports, body[blocks_end:], frame.padding)

    def __bytes__(self) -> bytes:
        """Serialise to wire format."""
        check_extension(self.extension)
        fields = (self.ssrc, self.ntp_timestamp, self.rtp_timestamp)
        try:
            info = _SENDER_INFO.pack(*fields, self.packet_count, self.octet_count)
        except struct.error:
            raise RtpError("RTCP sender info field is out of range") from None
        body = b"".join([info, *map(bytes, self.reports), self.extension])
        return write_packet(RtcpType.SR, len(self.reports), body, self.padding)


@dataclass(frozen=True, slots=True)
class ReceiverReport(TypedRtcp):
    """Receiver report (RFC 3550 §6.4.2).

    Attributes:
        ssrc: The reporter.
        reports: Reception report blocks, at most 31 (none is legal: "I am here").
        extension: Profile-specific extension after the blocks, whole 32-bit words.
        padding: Padding octets as on the wire, the last being their count.
    """

    PACKET_TYPE: ClassVar[RtcpType] = RtcpType.RR
    NAME: ClassVar[str] = "receiver report"

    ssrc: int
    reports: tuple[ReportBlock, ...] = ()
    extension: bytes = b""
    padding: bytes = b""

    @classmethod
    def from_frame(cls, frame: RtcpFrame) -> Self:
        """Decode an RR body."""
        body = frame.body
        blocks_end = 4 + _REPORT_BLOCK.size * frame.count
        if len(body) < blocks_end:
            raise RtpParseError("RTCP receiver report length is invalid")
        reports = tuple(
            ReportBlock.unpack_from(body, 4 + _REPORT_BLOCK.size * i) for i in range(frame.count)
        )
        (ssrc,) = _WORD.unpack_from(body)
        return cls(ssrc, reports, body[blocks_end:], frame.padding)

    def __bytes__(self) -> bytes:
        """Serialise to wire format."""
        check_extension(self.extension)
        ssrc = pack_words((self.ssrc,), "RTCP SSRC")
        body = b"".join([ssrc, *map(bytes, self.reports), self.extension])
        return write_packet(RtcpType.RR, len(self.reports), body, self.padding)


@dataclass(frozen=True, slots=True)
class SdesItem:
    """One SDES item: a type (`SdesItemType` or another int) and up to 255 octets."""

    item_type: int
    value: bytes

    @property
    def text(self) -> str:
        """The value as text (RFC 3550 §6.5: UTF-8), undecodable octets replaced."""
        return self.value.decode("utf-8", errors="replace")


@dataclass(frozen=True, slots=True)
class SdesChunk:
    """The SDES items describing one source."""

    ssrc: int
    items: tuple[SdesItem, ...] = ()

    def get(self, item_type: int) -> SdesItem | None:
        """Return the first item of ``item_type``, or None."""
        return next((item for item in self.items if item.item_type == item_type), None)

    def __bytes__(self) -> bytes:
        """Serialise, with the null terminator and null padding to a 32-bit boundary."""
        parts = [pack_words((self.ssrc,), "RTCP SSRC")]
        for item in self.items:
            if not 1 <= item.item_type <= 255 or len(item.value) > 255:
                raise RtpError("RTCP SDES item must have type 1..255 and at most 255 octets")
            parts += [bytes((item.item_type, len(item.value))), item.value]
        size = sum(map(len, parts))
        return b"".join(parts) + bytes(4 - size % 4)


@dataclass(frozen=True, slots=True)
class Sdes(TypedRtcp):
    """Source description (RFC 3550 §6.5)."""

    PACKET_TYPE: ClassVar[RtcpType] = RtcpType.SDES
    NAME: ClassVar[str] = "SDES"

    chunks: tuple[SdesChunk, ...] = ()
    padding: bytes = b""

    @classmethod
    def with_cname(cls, ssrc: int, cname: str) -> Self:
        """The usual SDES: one chunk with a CNAME (RFC 3550 §6.5.1, RFC 7022)."""
        return cls((SdesChunk(ssrc, (SdesItem(SdesItemType.CNAME, cname.encode()),)),))

    @classmethod
    def from_frame(cls, frame: RtcpFrame) -> Self:
        """Decode an SDES body: SC chunks of items, each ended by nulls."""
        body = frame.body
        chunks = []
        pos = 0
        for _ in range(frame.count):
            if pos + 4 > len(body):
                raise RtpParseError("RTCP SDES length is invalid")
            (ssrc,) = _WORD.unpack_from(body, pos)
            pos += 4
            items = []
            while pos < len(body) and body[pos]:
                if pos + 2 > len(body) or pos + 2 + body[pos + 1] > len(body):
                    raise RtpParseError("RTCP SDES item is truncated")
                end = pos + 2 + body[pos + 1]
                items.append(SdesItem(body[pos], body[pos + 2 : end]))
                pos = end
            # RFC 3550 §6.5: a null item type ends the list; null octets pad the chunk to
            # the next 32-bit boundary.
            end = (pos + 4) & ~3
            if end > len(body) or any(body[pos:end]):
                raise RtpParseError("RTCP SDES length is invalid")
            pos = end
            chunks.append(SdesChunk(ssrc, tuple(items)))
        if pos != len(body):
            raise RtpParseError("RTCP SDES length is invalid")
        return cls(tuple(chunks), frame.padding)

    def __bytes__(self) -> bytes:
        """Serialise to wire format."""
        body = b"".join(map(bytes, self.chunks))
        return write_packet(RtcpType.SDES, len(self.chunks), body, self.padding)


@dataclass(frozen=True, slots=True)
class Bye(TypedRtcp):
    """Goodbye (RFC 3550 §6.6).

    Attributes:
        sources: The SSRC/CSRCs leaving, at most 31.
        reason: Reason for leaving (UTF-8, at most 255 octets); None when absent, which is
            not the same packet as an empty reason.
        padding: Padding octets as on the wire, the last being their count.
    """

    PACKET_TYPE: ClassVar[RtcpType] = RtcpType.BYE
    NAME: ClassVar[str] = "bye"

    sources: tuple[int, ...] = ()
    reason: bytes | None = None
    padding: bytes = b""

    @classmethod
    def from_frame(cls, frame: RtcpFrame) -> Self:
        """Decode a BYE body: SC sources, then an optional reason."""
        body = frame.body
        pos = 4 * frame.count
        if pos > len(body):
            raise RtpParseError("RTCP bye length is invalid")
        sources = struct.unpack_from(f"!{frame.count}I", body)
        reason = None
        if pos < len(body):
            end = pos + 1 + body[pos]
            # The reason is padded with nulls to the next 32-bit boundary, and no further.
            if (end + 3) & ~3 != len(body) or any(body[end:]):
                raise RtpParseError("RTCP bye length is invalid")
            reason = body[pos + 1 : end]
        return cls(sources, reason, frame.padding)

    def __bytes__(self) -> bytes:
        """Serialise to wire format."""
        parts = [pack_words(self.sources, "RTCP SSRC")]
        if self.reason is not None:
            if len(self.reason) > 255:
                raise RtpError("RTCP bye reason must be at most 255 octets")
            size = 1 + len(self.reason)
            parts += [bytes((len(self.reason),)), self.reason, bytes(-size % 4)]
        return write_packet(RtcpType.BYE, len(self.sources), b"".join(parts), self.padding)


RtcpPacket = SenderReport | ReceiverReport | Sdes | Bye | UnknownRtcp

_DECODERS: Final[dict[int, type[RtcpPacket]]] = {
    RtcpType.SR: SenderReport,
    RtcpType.RR: ReceiverReport,
    RtcpType.SDES: Sdes,
    RtcpType.BYE: Bye,
}


@dataclass(frozen=True, slots=True)
class RtcpCompound:
    """What `parse_rtcp_compound` could read from one datagram.

    Attributes:
        packets: The packets that parsed, in order; never empty.
        trailing: The octets from the first packet that failed to the end; empty if none.
        trailing_error: Why ``trailing`` did not parse (a `RtpParseError` message), or None.
    """

    packets: tuple[RtcpPacket, ...]
    trailing: bytes = b""
    trailing_error: str | None = None


def parse_rtcp(data: bytes) -> list[RtcpPacket]:
    """Parse a compound RTCP datagram strictly: every octet must belong to a valid packet.

    Raises:
        RtpParseError: With the message of the first packet that failed.
    """
    compound = parse_rtcp_compound(data)
    if compound.trailing_error is not None:
        raise RtpParseError(compound.trailing_error)
    return list(compound.packets)


def parse_rtcp_compound(data: bytes) -> RtcpCompound:
    """Parse a compound RTCP datagram, keeping the valid packets before any bad octets.

    Raises:
        RtpParseError: The first packet is invalid, so nothing in the datagram is usable.
    """
    frame = read_frame(data, 0)
    packets = [_DECODERS.get(frame.packet_type, UnknownRtcp).from_frame(frame)]
    while frame.end < len(data):
        pos = frame.end
        try:
            frame = read_frame(data, pos)
            packets.append(_DECODERS.get(frame.packet_type, UnknownRtcp).from_frame(frame))
        except RtpParseError as error:
            return RtcpCompound(tuple(packets), data[pos:], str(error))
    return RtcpCompound(tuple(packets))
