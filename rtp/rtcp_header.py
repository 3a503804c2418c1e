"""The RTCP common header (RFC 3550 §6.4.1) and the packet types this stack does not decode.

Every RTCP packet starts with the same 4 octets: V=2, P, a 5-bit count (the FMT of RFC 4585
feedback, the subtype of APP), the packet type, and the length in 32-bit words minus one.
`read_frame` cuts one packet out of a compound datagram and strips its padding;
`write_packet` puts the header back. `UnknownRtcp` keeps APP, RTPFB, PSFB, XR and any other
type whole, so that they can be logged or forwarded byte for byte. The typed packets built
on top live in `rtp.rtcp`; this module is split out to keep both under the size rule.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import ClassVar, Final, Self

from rtp.errors import RtpError, RtpParseError

RTCP_VERSION: Final = 2
MAX_RTCP_COUNT: Final = 31
_HEADER: Final = struct.Struct("!BBH")


class RtcpType(IntEnum):
    """RTCP packet types (RFC 3550 §12.1, RFC 4585 §6.1, RFC 3611)."""

    SR = 200
    RR = 201
    SDES = 202
    BYE = 203
    APP = 204
    RTPFB = 205
    PSFB = 206
    XR = 207


def is_rtcp(data: bytes) -> bool:
    """Tell RTCP from RTP on a shared port (RFC 5761 §4: second octet in 192..223)."""
    return len(data) >= 2 and 192 <= data[1] <= 223


@dataclass(frozen=True, slots=True)
class RtcpFrame:
    """One packet cut out of a compound by `read_frame`.

    Attributes:
        packet_type: The packet type octet.
        count: The 5-bit count field.
        body: The octets after the common header, without padding.
        padding: The padding octets as on the wire, the last being their count.
        end: Offset in the datagram just past this packet.
    """

    packet_type: int
    count: int
    body: bytes
    padding: bytes
    end: int


def read_frame(data: bytes, pos: int) -> RtcpFrame:
    """Read the packet starting at ``data[pos]``.

    Raises:
        RtpParseError: ``"RTCP packet is too short"`` (no room for a header), ``"RTCP version
            must be 2"``, ``"RTCP packet length is invalid"`` (runs past the datagram), or
            ``"RTCP padding length is invalid"``.
    """
    if len(data) - pos < 4:
        raise RtpParseError("RTCP packet is too short")
    first, packet_type, words = _HEADER.unpack_from(data, pos)
    if first >> 6 != RTCP_VERSION:
        raise RtpParseError("RTCP version must be 2")
    end = pos + 4 * (words + 1)
    if end > len(data):
        raise RtpParseError("RTCP packet length is invalid")
    body_end = end
    if first & 0x20:
        pad = data[end - 1]
        # RFC 3550 §6.4.1: the count includes itself and lies within this packet's body.
        if pad == 0 or pad > end - pos - 4:
            raise RtpParseError("RTCP padding length is invalid")
        body_end -= pad
    return RtcpFrame(packet_type, first & 0x1F, data[pos + 4 : body_end], data[body_end:end], end)


def write_packet(packet_type: int, count: int, body: bytes, padding: bytes) -> bytes:
    """Prefix ``body`` and ``padding`` with the common header.

    Raises:
        RtpError: The count exceeds 31, the padding does not end in its own length, or the
            packet is not whole 32-bit words.
    """
    if not 0 <= count <= MAX_RTCP_COUNT:
        raise RtpError("RTCP packet holds more than 31 items")
    if not 0 <= packet_type <= 255:
        raise RtpError("RTCP packet type must be in 0..255")
    if padding and padding[-1] != len(padding):
        raise RtpError("RTCP padding must end in its own length")
    size = 4 + len(body) + len(padding)
    if size % 4:
        raise RtpError("RTCP packet must be whole 32-bit words")
    first = 0x80 | (0x20 if padding else 0) | count
    return _HEADER.pack(first, packet_type, size // 4 - 1) + body + padding


def pack_words(values: tuple[int, ...], what: str) -> bytes:
    """Pack 32-bit unsigned words, naming ``what`` in the error if one is out of range."""
    try:
        return struct.pack(f"!{len(values)}I", *values)
    except struct.error:
        raise RtpError(f"{what} must be 32 bits") from None


def check_extension(extension: bytes) -> None:
    """Check that a profile-specific extension of an SR or RR is whole 32-bit words."""
    if len(extension) % 4:
        raise RtpError("RTCP profile extension must be whole 32-bit words")


class TypedRtcp:
    """``parse(data)`` for one packet of a decoded type; the base of `rtp.rtcp`'s classes."""

    __slots__ = ()
    PACKET_TYPE: ClassVar[RtcpType]
    NAME: ClassVar[str]

    @classmethod
    def parse(cls, data: bytes) -> Self:
        """Parse a datagram holding exactly one packet of this type.

        Raises:
            RtpParseError: The packet is invalid (``"RTCP packet is not a <type>"`` when of
                another type, ``"RTCP packet has trailing octets"`` when octets follow).
        """
        frame = read_frame(data, 0)
        if frame.packet_type != cls.PACKET_TYPE:
            raise RtpParseError(f"RTCP packet is not a {cls.NAME}")
        if frame.end != len(data):
            raise RtpParseError("RTCP packet has trailing octets")
        return cls.from_frame(frame)

    @classmethod
    def from_frame(cls, frame: RtcpFrame) -> Self:
        """Decode the body of a frame already known to be of this type."""
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class UnknownRtcp:
    """Any other RTCP packet (APP, RTPFB, PSFB, XR, ...), kept whole.

    Attributes:
        packet_type: The packet type octet.
        count: The 5-bit count field (the FMT of RFC 4585 feedback, the subtype of APP).
        body: Everything after the common header, without padding.
        padding: Padding octets as on the wire, the last being their count.
    """

    packet_type: int
    count: int
    body: bytes
    padding: bytes = b""

    @classmethod
    def parse(cls, data: bytes) -> Self:
        """Parse a datagram holding exactly one RTCP packet, of any type, without decoding it.

        Raises:
            RtpParseError: The common header is invalid, or octets follow the packet.
        """
        frame = read_frame(data, 0)
        if frame.end != len(data):
            raise RtpParseError("RTCP packet has trailing octets")
        return cls.from_frame(frame)

    @classmethod
    def from_frame(cls, frame: RtcpFrame) -> Self:
        """Keep a frame's fields without decoding its body."""
        return cls(frame.packet_type, frame.count, frame.body, frame.padding)

    def __bytes__(self) -> bytes:
        """Serialise to wire format."""
        return write_packet(self.packet_type, self.count, self.body, self.padding)
