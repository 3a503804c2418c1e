"""SDP (RFC 4566) and the RFC 3264 offer/answer model, for one audio stream.

Theory of operation
-------------------
*Representation.* A `SessionDescription` is the list of its lines, kept verbatim as `SdpLine`
values and grouped into the session section and one `MediaDescription` per ``m=`` line. The
lines are the only state: typed views (`Origin`, `Connection`, `MediaLine`, `RtpMap`,
`Attribute`, `Direction`) are parsed from them on demand, so ``str(parse(x)) == x`` holds
byte for byte for any CRLF-terminated input that parses, unknown attributes and unusual line
orders included. Bare LF line ends and a missing final CRLF are accepted on input; output
always uses CRLF.

*Validation.* Every line is checked when its `SdpLine` is built, and the section structure
when a `MediaDescription` or `SessionDescription` is built, so a value that exists is valid
and its typed accessors never raise. Any defect raises `SipParseError` (status hint 400) with
an exact message; nothing else escapes `SessionDescription.parse`, for any input. The line
order of RFC 4566 §5 is not enforced beyond ``v=`` first (real stacks put ``a=tool`` before
``t=``, ``b=`` before ``c=``), but each type letter must be legal where it stands.

*Offer/answer.* `negotiate` answers an offer (RFC 3264 §6), `build_offer` writes our offer
(for UAC calls and for INVITEs without SDP, RFC 3261 §13.2.1), and `accept_answer` reads the
answer to that offer (RFC 3264 §7). All three are pure. We use one RTP/AVP audio stream: the
first audio ``m=`` line with a codec in common; every other stream is refused with port 0 and
kept in place, because the answer must have as many ``m=`` lines as the offer, in the same
order (§6). Hold is read from the offer's direction (RFC 3264 §8.4) and from the legacy
``c=0.0.0.0`` (RFC 2543, still sent by some PBXs). The ``o=`` version comes from `LocalMedia`,
and the caller bumps it with `LocalMedia.next_version` for each new offer or changed answer
(RFC 3264 §8).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from enum import Enum, StrEnum
from types import MappingProxyType

from sip.errors import SipParseError

# RFC 4566 §5: type letters allowed only in the session section, and those allowed anywhere.
_SESSION_ONLY = frozenset("vosuepzrt")
_MEDIA_LEVEL = frozenset("icbka")
_KNOWN_TYPES = _SESSION_ONLY | _MEDIA_LEVEL | {"m"}

# Numbers are bounded so that hostile input cannot reach int()'s 4300-digit limit.
_NUMBER_RE = re.compile(r"[0-9]{1,20}")
_WSP_RE = re.compile(r"[ \t]+")
# hostname as in RFC 4566 §9 (FQDN = 4*(alpha-numeric / "-" / ".")), read as DNS labels.
_HOSTNAME_RE = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.?)+")
_DOTTED_RE = re.compile(r"[0-9.]+")
# A ptime of "20.0" has been seen in the wild; the fraction is dropped.
_PTIME_RE = re.compile(r"([0-9]{1,6})(?:\.[0-9]*)?")


def _fields(value: str) -> list[str]:
    """Split a line value on runs of SP/HTAB, ignoring stray ones at either end."""
    stripped = value.strip(" \t")
    return _WSP_RE.split(stripped) if stripped else []


def _number(text: str, message: str) -> int:
    if not _NUMBER_RE.fullmatch(text):
        raise SipParseError(message)
    return int(text)


def _address_type(address: str) -> str:
    """Return ``IP6`` for an IPv6 literal and ``IP4`` for anything else."""
    return "IP6" if ":" in address else "IP4"


def _check_address(addr_type: str, address: str) -> None:
    if addr_type not in ("IP4", "IP6"):
        return  # an address type we do not know (RFC 4566 §5.7 allows extensions): pass it on
    message = f"SDP c= address is not a valid {addr_type} address"
    try:
        if addr_type == "IP4" and _DOTTED_RE.fullmatch(address):
            ipaddress.IPv4Address(address)
        elif addr_type == "IP6" and ":" in address:
            # Covers IPv4-mapped (::ffff:192.0.2.2) and embedded-IPv4 forms (RFC 5118 §4.9).
            ipaddress.IPv6Address(address)
        elif _DOTTED_RE.fullmatch(address) or not _HOSTNAME_RE.fullmatch(address):
            raise SipParseError(message)
    except ValueError as exc:
        raise SipParseError(message) from exc


class Direction(Enum):
    """Media direction attributes (RFC 3264 §5.1); sendrecv is the default."""

    SENDRECV = "sendrecv"
    SENDONLY = "sendonly"
    RECVONLY = "recvonly"
    INACTIVE = "inactive"

    @classmethod
    def from_flags(cls, *, sends: bool, receives: bool) -> Direction:
        """Return the direction that sends and receives as given."""
        if sends:
            return cls.SENDRECV if receives else cls.SENDONLY
        return cls.RECVONLY if receives else cls.INACTIVE

    @property
    def sends(self) -> bool:
        """Whether this side sends media."""
        return self in (Direction.SENDRECV, Direction.SENDONLY)

    @property
    def receives(self) -> bool:
        """Whether this side receives media."""
        return self in (Direction.SENDRECV, Direction.RECVONLY)

    def opposite(self) -> Direction:
        """The same stream seen from the other end (RFC 3264 §6.1 answer mapping)."""
        return Direction.from_flags(sends=self.receives, receives=self.sends)


_DIRECTIONS = MappingProxyType({d.value: d for d in Direction})


@dataclass(frozen=True, slots=True)
class Origin:
    """The ``o=`` line (RFC 4566 §5.2)."""

    username: str
    session_id: int
    session_version: int
    net_type: str
    addr_type: str
    address: str

    @classmethod
    def parse(cls, value: str) -> Origin:
        """Parse the value of an ``o=`` line."""
        parts = _fields(value)
        if len(parts) != 6:
            raise SipParseError("SDP o= line needs 6 fields")
        user, sess_id, version, net_type, addr_type, address = parts
        return cls(
            user,
            _number(sess_id, "SDP o= session id is not a number"),
            _number(version, "SDP o= session version is not a number"),
            net_type,
            addr_type,
            address,
        )

    def __str__(self) -> str:
        return (
            f"{self.username} {self.session_id} {self.session_version} "
            f"{self.net_type} {self.addr_type} {self.address}"
        )


@dataclass(frozen=True, slots=True)
class Connection:
    """The ``c=`` line (RFC 4566 §5.7); ``ttl`` and ``address_count`` are for multicast."""

    net_type: str
    addr_type: str
    address: str
    ttl: int | None = None
    address_count: int | None = None

    @classmethod
    def parse(cls, value: str) -> Connection:
        """Parse the value of a ``c=`` line."""
        parts = _fields(value)
        if len(parts) != 3:
            raise SipParseError("SDP c= line needs 3 fields")
        net_type, addr_type, spec = parts
        address, *suffix = spec.split("/")
        _check_address(addr_type, address)
        numbers = [_number(s, "SDP c= multicast suffix is not a number") for s in suffix]
        # IP4 multicast is addr/ttl[/count]; IP6 has no TTL, so addr[/count] (RFC 4566 §5.7).
        if len(numbers) > (1 if addr_type == "IP6" else 2):
            raise SipParseError("SDP c= line has too many multicast fields")
        if addr_type == "IP6":
            return cls(net_type, addr_type, address, None, numbers[0] if numbers else None)
        ttl = numbers[0] if numbers else None
        count = numbers[1] if len(numbers) == 2 else None
        return cls(net_type, addr_type, address, ttl, count)

    @property
    def is_unspecified(self) -> bool:
        """True for 0.0.0.0 or ::, the RFC 2543 way of saying "do not send to me"."""
        try:
            return ipaddress.ip_address(self.address).is_unspecified
        except ValueError:
            return False

    def __str__(self) -> str:
        suffix = "".join(f"/{n}" for n in (self.ttl, self.address_count) if n is not None)
        return f"{self.net_type} {self.addr_type} {self.address}{suffix}"


@dataclass(frozen=True, slots=True)
class MediaLine:
    """The ``m=`` line (RFC 4566 §5.14)."""

    media: str
    port: int
    proto: str
    formats: tuple[str, ...]
    port_count: int | None = None

    @classmethod
    def parse(cls, value: str) -> MediaLine:
        """Parse the value of an ``m=`` line."""
        parts = _fields(value)
        if len(parts) < 4:
            raise SipParseError("SDP m= line needs media, port, proto and formats")
        media, port_spec, proto, *formats = parts
        port_text, slash, count_text = port_spec.partition("/")
        port = _number(port_text, "SDP m= port is not a number")
        if port > 65535:
            raise SipParseError("SDP m= port is out of range")
        count = _number(count_text, "SDP m= port count is not a number") if slash else None
        return cls(media, port, proto, tuple(formats), count)

    def __str__(self) -> str:
        count = "" if self.port_count is None else f"/{self.port_count}"
        return f"{self.media} {self.port}{count} {self.proto} {' '.join(self.formats)}"


@dataclass(frozen=True, slots=True)
class Attribute:
    """An ``a=`` line (RFC 4566 §5.13): a property (no value) or ``name:value``."""

    name: str
    value: str | None = None

    @classmethod
    def parse(cls, text: str) -> Attribute:
        """Parse the value of an ``a=`` line."""
        name, colon, value = text.partition(":")
        if not name or _WSP_RE.search(name):
            raise SipParseError("SDP a= line has no attribute name")
        return cls(name, value if colon else None)

    def __str__(self) -> str:
        return self.name if self.value is None else f"{self.name}:{self.value}"


@dataclass(frozen=True, slots=True)
class RtpMap:
    """An ``a=rtpmap`` value (RFC 4566 §6): payload type, encoding, clock rate, channels."""

    payload_type: int
    encoding_name: str
    clock_rate_hz: int
    channels: int | None = None

    @classmethod
    def parse(cls, value: str) -> RtpMap:
        """Parse the value of an ``a=rtpmap`` attribute."""
        parts = _fields(value)
        encoding = parts[1].split("/") if len(parts) == 2 else []
        if len(encoding) not in (2, 3) or not encoding[0]:
            raise SipParseError("SDP rtpmap attribute is malformed")
        pt = _number(parts[0], "SDP rtpmap payload type is not a number")
        if pt > 127:
            raise SipParseError("SDP rtpmap payload type is out of range")
        clock = _number(encoding[1], "SDP rtpmap clock rate is not a number")
        channels = None
        if len(encoding) == 3:
            channels = _number(encoding[2], "SDP rtpmap channel count is not a number")
        return cls(pt, encoding[0], clock, channels)

    def __str__(self) -> str:
        channels = "" if self.channels is None else f"/{self.channels}"
        return f"{self.payload_type} {self.encoding_name}/{self.clock_rate_hz}{channels}"


# RFC 3551 §6 Table 4: static audio payload types, which an offer may list without a=rtpmap.
STATIC_AUDIO_PAYLOADS = MappingProxyType(
    {
        pt: RtpMap(pt, name, clock, channels)
        for pt, name, clock, channels in (
            (0, "PCMU", 8000, None), (3, "GSM", 8000, None), (4, "G723", 8000, None),
            (5, "DVI4", 8000, None), (6, "DVI4", 16000, None), (7, "LPC", 8000, None),
            (8, "PCMA", 8000, None), (9, "G722", 8000, None), (10, "L16", 44100, 2),
            (11, "L16", 44100, None), (12, "QCELP", 8000, None), (13, "CN", 8000, None),
            (14, "MPA", 90000, None), (15, "G728", 8000, None), (16, "DVI4", 11025, None),
            (17, "DVI4", 22050, None), (18, "G729", 8000, None),
        )
    }
)  # fmt: skip


def _check_attribute(text: str) -> None:
    attr = Attribute.parse(text)
    if attr.name == "rtpmap":
        RtpMap.parse(attr.value or "")
    elif attr.name == "fmtp" and not _fields(attr.value or ""):
        raise SipParseError("SDP fmtp attribute has no format")
    elif attr.name in ("ptime", "maxptime") and not _PTIME_RE.fullmatch(attr.value or ""):
        raise SipParseError(f"SDP {attr.name} attribute is not a number")


def _check_value(line_type: str, value: str) -> None:
    if line_type == "v" and value != "0":
        raise SipParseError("unsupported SDP version")
    if line_type == "o":
        Origin.parse(value)
    elif line_type == "c":
        Connection.parse(value)
    elif line_type == "m":
        MediaLine.parse(value)
    elif line_type == "a":
        _check_attribute(value)
    elif line_type == "t":
        times = _fields(value)
        if len(times) != 2 or not all(_NUMBER_RE.fullmatch(t) for t in times):
            raise SipParseError("SDP t= line needs start and stop times")


@dataclass(frozen=True, slots=True)
class SdpLine:
    """One ``<type>=<value>`` line (RFC 4566 §5), kept verbatim; validated when built."""

    type: str
    value: str

    def __post_init__(self) -> None:
        if len(self.type) != 1 or not "a" <= self.type <= "z":
            raise SipParseError("SDP line is not of the form <type>=<value>")
        if self.type not in _KNOWN_TYPES:
            # RFC 4566 §5: a description with a type letter we do not know is ignored whole.
            raise SipParseError(f"unknown SDP line type '{self.type}'")
        if any(c in self.value for c in "\r\n\x00"):
            raise SipParseError("SDP line contains CR, LF or NUL")
        _check_value(self.type, self.value)

    @classmethod
    def parse(cls, text: str) -> SdpLine:
        """Parse one line without its line end."""
        if text[1:2] != "=":
            raise SipParseError("SDP line is not of the form <type>=<value>")
        return cls(text[0], text[2:])

    def __str__(self) -> str:
        return f"{self.type}={self.value}"


def _attributes(lines: Iterable[SdpLine]) -> tuple[Attribute, ...]:
    return tuple(Attribute.parse(line.value) for line in lines if line.type == "a")


def _direction(lines: Iterable[SdpLine]) -> Direction | None:
    return next((_DIRECTIONS[a.name] for a in _attributes(lines) if a.name in _DIRECTIONS), None)


@dataclass(frozen=True, slots=True)
class MediaDescription:
    """A media section: its ``m=`` line followed by its ``i=``, ``c=``, ``b=``, ``k=``, ``a=``."""

    lines: tuple[SdpLine, ...]

    def __post_init__(self) -> None:
        if not self.lines or self.lines[0].type != "m":
            raise SipParseError("SDP media description does not start with an m= line")
        for line in self.lines[1:]:
            if line.type not in _MEDIA_LEVEL:
                raise SipParseError(f"SDP {line.type}= line is not allowed in a media description")

    @classmethod
    def build(
        cls,
        media_line: MediaLine,
        attributes: Iterable[Attribute] = (),
        connection: Connection | None = None,
    ) -> MediaDescription:
        """Build a media section from typed parts, in RFC 4566 §5 order."""
        lines = [SdpLine("m", str(media_line))]
        if connection is not None:
            lines.append(SdpLine("c", str(connection)))
        lines += [SdpLine("a", str(a)) for a in attributes]
        return cls(tuple(lines))

    @property
    def media_line(self) -> MediaLine:
        """The typed ``m=`` line."""
        return MediaLine.parse(self.lines[0].value)

    @property
    def media(self) -> str:
        """Media type: ``audio``, ``video``, ``image``, ..."""
        return self.media_line.media

    @property
    def port(self) -> int:
        """Transport port; 0 means the stream is refused or disabled (RFC 3264 §5.1)."""
        return self.media_line.port

    @property
    def port_count(self) -> int | None:
        """The ``/<number of ports>`` suffix, if any."""
        return self.media_line.port_count

    @property
    def proto(self) -> str:
        """Transport protocol, such as ``RTP/AVP``."""
        return self.media_line.proto

    @property
    def formats(self) -> tuple[str, ...]:
        """Media formats in the offerer's order of preference (payload types for RTP)."""
        return self.media_line.formats

    @property
    def connection(self) -> Connection | None:
        """The first media-level ``c=`` line, if any."""
        return next((Connection.parse(x.value) for x in self.lines if x.type == "c"), None)

    @property
    def attributes(self) -> tuple[Attribute, ...]:
        """Media-level attributes, in order."""
        return _attributes(self.lines)

    @property
    def direction(self) -> Direction | None:
        """The media-level direction attribute, if present."""
        return _direction(self.lines)

    def attribute(self, name: str) -> str | None:
        """Value of the first attribute ``name`` ("" for a property attribute), or None."""
        found = next((a for a in self.attributes if a.name == name), None)
        return None if found is None else found.value or ""

    def rtpmap(self, payload_type: int) -> RtpMap | None:
        """The ``a=rtpmap`` for ``payload_type``, if present."""
        maps = (RtpMap.parse(a.value or "") for a in self.attributes if a.name == "rtpmap")
        return next((m for m in maps if m.payload_type == payload_type), None)

    def encoding(self, fmt: str) -> RtpMap | None:
        """The encoding of ``fmt``: its ``a=rtpmap``, else the RFC 3551 static assignment."""
        if not _NUMBER_RE.fullmatch(fmt) or int(fmt) > 127:
            return None
        return self.rtpmap(int(fmt)) or STATIC_AUDIO_PAYLOADS.get(int(fmt))

    def fmtp(self, payload_type: int) -> str | None:
        """Format parameters of the ``a=fmtp`` for ``payload_type``, if present."""
        for attr in self.attributes:
            fmt, _, params = (attr.value or "").strip(" \t").partition(" ")
            if attr.name == "fmtp" and fmt == str(payload_type):
                return params.strip(" \t")
        return None

    @property
    def ptime_ms(self) -> int | None:
        """The ``a=ptime`` packet time in milliseconds, if present."""
        return self._milliseconds("ptime")

    @property
    def maxptime_ms(self) -> int | None:
        """The ``a=maxptime`` packet time in milliseconds, if present."""
        return self._milliseconds("maxptime")

    def _milliseconds(self, name: str) -> int | None:
        match = _PTIME_RE.fullmatch(self.attribute(name) or "")
        return int(match[1]) if match else None

    def __str__(self) -> str:
        return "".join(f"{line}\r\n" for line in self.lines)


@dataclass(frozen=True, slots=True)
class SessionDescription:
    """A whole SDP body: the session section and the media sections, all lines verbatim."""

    session: tuple[SdpLine, ...]
    media: tuple[MediaDescription, ...] = ()

    def __post_init__(self) -> None:
        if not self.session or self.session[0].type != "v":
            raise SipParseError("SDP does not start with a v= line")
        counts = {t: sum(line.type == t for line in self.session) for t in "vostcm"}
        for line_type in "vos":
            if counts[line_type] != 1:
                raise SipParseError(f"SDP needs exactly one {line_type}= line")
        if counts["t"] == 0:
            raise SipParseError("SDP needs at least one t= line")
        if counts["c"] > 1:
            raise SipParseError("SDP has more than one session-level c= line")
        if counts["m"]:
            raise SipParseError("SDP m= line is not allowed in the session section")

    @classmethod
    def parse(cls, text: str) -> SessionDescription:
        """Parse an SDP body.

        Args:
            text: the body, decoded; CRLF or bare LF line ends, the last one optional.

        Returns:
            The description; ``str()`` of it gives ``text`` back for CRLF input.

        Raises:
            SipParseError: the body is not valid SDP (status hint 400).
        """
        raw = text.split("\n")
        lines = [line.removesuffix("\r") for line in raw]
        while lines and not lines[-1]:
            lines.pop()  # the final line end, and blank lines some UAs append
        if not lines:
            raise SipParseError("SDP body is empty")
        session: list[SdpLine] = []
        sections: list[list[SdpLine]] = []
        for line in map(SdpLine.parse, lines):
            if line.type == "m":
                sections.append([line])
            else:
                (sections[-1] if sections else session).append(line)
        return cls(tuple(session), tuple(MediaDescription(tuple(s)) for s in sections))

    @classmethod
    def build(
        cls,
        origin: Origin,
        connection: Connection | None,
        media: Iterable[MediaDescription],
        session_name: str = "-",
    ) -> SessionDescription:
        """Build a description with ``t=0 0`` from typed parts, in RFC 4566 §5 order."""
        lines = [SdpLine("v", "0"), SdpLine("o", str(origin)), SdpLine("s", session_name)]
        if connection is not None:
            lines.append(SdpLine("c", str(connection)))
        lines.append(SdpLine("t", "0 0"))
        return cls(tuple(lines), tuple(media))

    @property
    def origin(self) -> Origin:
        """The typed ``o=`` line."""
        return Origin.parse(next(x.value for x in self.session if x.type == "o"))

    @property
    def session_name(self) -> str:
        """The ``s=`` text."""
        return next(x.value for x in self.session if x.type == "s")

    @property
    def connection(self) -> Connection | None:
        """The session-level ``c=`` line, if any."""
        return next((Connection.parse(x.value) for x in self.session if x.type == "c"), None)

    @property
    def attributes(self) -> tuple[Attribute, ...]:
        """Session-level attributes, in order."""
        return _attributes(self.session)

    def effective_connection(self, media: MediaDescription) -> Connection | None:
        """The ``c=`` that applies to ``media``: its own, else the session's (RFC 4566 §5.7)."""
        return media.connection or self.connection

    def effective_direction(self, media: MediaDescription) -> Direction:
        """The direction of ``media``: its own, the session's, or sendrecv (RFC 3264 §5.1)."""
        return media.direction or _direction(self.session) or Direction.SENDRECV

    def __str__(self) -> str:
        return "".join(f"{line}\r\n" for line in self.session) + "".join(map(str, self.media))


# ---------------------------------------------------------------------------------------------
# Offer/answer (RFC 3264)


@dataclass(frozen=True, slots=True)
class Codec:
    """An audio codec we can use, and the payload type it goes by."""

    name: str
    payload_type: int
    clock_rate_hz: int = 8000


PCMU = Codec("PCMU", 0)
PCMA = Codec("PCMA", 8)
_TELEPHONE_EVENT = "telephone-event"


@dataclass(frozen=True, slots=True)
class LocalMedia:
    """Our side of the negotiation.

    Attributes:
        address: the address we receive RTP on (IPv4, IPv6 or host name).
        rtp_port: the port we receive RTP on.
        codecs: codecs we support, most preferred first; used as-is in our offers.
        telephone_event: whether we accept RFC 4733 telephone-event/8000.
        telephone_event_pt: the dynamic payload type we offer telephone-event on.
        ptime_ms: packet time we use unless the offer asks for another valid one.
        session_id, session_version, username: our ``o=`` fields (RFC 4566 §5.2).
    """

    address: str
    rtp_port: int
    codecs: tuple[Codec, ...] = (PCMU, PCMA)
    telephone_event: bool = True
    telephone_event_pt: int = 101
    ptime_ms: int = 20
    session_id: int = 0
    session_version: int = 0
    username: str = "-"

    def __post_init__(self) -> None:
        if not 0 < self.rtp_port <= 65535:
            raise ValueError(f"rtp_port {self.rtp_port} is not a port")
        if not self.codecs:
            raise ValueError("LocalMedia needs at least one codec")
        if not 96 <= self.telephone_event_pt <= 127:
            raise ValueError("telephone_event_pt must be dynamic (96-127)")

    def next_version(self) -> LocalMedia:
        """The same config with the ``o=`` version bumped, for a changed SDP (RFC 3264 §8)."""
        return replace(self, session_version=self.session_version + 1)


class RejectReason(StrEnum):
    """Why an offer or answer gave no usable audio stream."""

    NO_AUDIO = "no audio stream"
    BAD_PROTO = "audio stream is not RTP/AVP"
    NO_CODEC = "no common audio codec"
    NO_ADDRESS = "audio stream has no connection address"
    MISMATCH = "answer does not match the offer"


# When several audio streams fail, report the one that got furthest.
_REASON_ORDER = tuple(RejectReason)


@dataclass(frozen=True, slots=True)
class Rejection:
    """No usable audio stream; a UAS answers ``status`` (488, RFC 3261 §21.4.26, RFC 3264 §6)."""

    reason: RejectReason
    status: int = 488


@dataclass(frozen=True, slots=True)
class Answer:
    """A successful negotiation, seen from our side.

    Attributes:
        sdp: the answer: ours from `negotiate`, the peer's from `accept_answer`.
        codec: the one audio codec to send, with the payload type to send it under.
        telephone_event_pt: payload type for RFC 4733 events, or None if not agreed.
        ptime_ms: packet time to send with.
        remote_address: where to send RTP (the peer's ``c=``).
        remote_port: the peer's RTP port.
        direction: our direction: whether we send and/or receive.
        on_hold: the peer has put us on hold (sendonly/inactive, or ``c=0.0.0.0``).
    """

    sdp: SessionDescription
    codec: Codec
    telephone_event_pt: int | None
    ptime_ms: int
    remote_address: str
    remote_port: int
    direction: Direction
    on_hold: bool


@dataclass(frozen=True, slots=True)
class _Stream:
    """What we agreed on for one audio stream, before we know which side we are."""

    codec: Codec
    telephone_event_pt: int | None
    telephone_event_fmtp: str | None
    ptime_ms: int
    connection: Connection
    port: int
    direction: Direction  # the peer's, as written in its SDP


def _ptime_ms(media: MediaDescription, default_ms: int) -> int:
    # Honour the peer's ptime if G.711 framing allows it (10..60 ms in 10 ms steps, the range
    # Asterisk and FreeSWITCH accept), never above its maxptime (RFC 4566 §6).
    ptime = media.ptime_ms
    chosen = ptime if ptime is not None and 10 <= ptime <= 60 and ptime % 10 == 0 else default_ms
    maxptime = media.maxptime_ms
    if maxptime is not None and maxptime >= 10 and chosen > maxptime:
        chosen = maxptime - maxptime % 10
    return chosen


def _match(
    sdp: SessionDescription,
    media: MediaDescription,
    codecs: Sequence[Codec],
    telephone_event: bool,
    default_ptime_ms: int,
) -> _Stream | RejectReason:
    if media.proto.upper() != "RTP/AVP":
        return RejectReason.BAD_PROTO  # RTP/SAVP and friends need SRTP, which we lack
    codec: Codec | None = None
    te_pt: int | None = None
    for fmt in media.formats:  # in the peer's order of preference (RFC 3264 §6.1)
        enc = media.encoding(fmt)
        if enc is None:
            continue
        if enc.encoding_name.casefold() == _TELEPHONE_EVENT:
            if telephone_event and te_pt is None and enc.clock_rate_hz == 8000:
                te_pt = enc.payload_type
        elif codec is None:
            codec = _find_codec(enc, codecs)
    if codec is None:
        return RejectReason.NO_CODEC
    connection = sdp.effective_connection(media)
    if connection is None:
        return RejectReason.NO_ADDRESS
    return _Stream(
        codec,
        te_pt,
        None if te_pt is None else media.fmtp(te_pt),
        _ptime_ms(media, default_ptime_ms),
        connection,
        media.port,
        sdp.effective_direction(media),
    )


def _find_codec(encoding: RtpMap, codecs: Sequence[Codec]) -> Codec | None:
    name = encoding.encoding_name.casefold()
    for codec in codecs:
        if name == codec.name.casefold() and encoding.clock_rate_hz == codec.clock_rate_hz:
            return replace(codec, payload_type=encoding.payload_type)
    return None


def _worst(reasons: Iterable[RejectReason]) -> RejectReason:
    return max(reasons, key=_REASON_ORDER.index, default=RejectReason.NO_AUDIO)


def _refused(media: MediaDescription) -> MediaDescription:
    # RFC 3264 §6: a refused stream keeps its media type and formats, with port 0.
    line = media.media_line
    return MediaDescription.build(replace(line, port=0, port_count=None))


def _audio_section(
    local: LocalMedia,
    codecs: Sequence[Codec],
    te: tuple[int, str | None] | None,
    ptime_ms: int,
    direction: Direction,
) -> MediaDescription:
    formats = [str(c.payload_type) for c in codecs]
    attributes = [
        Attribute("rtpmap", str(RtpMap(c.payload_type, c.name, c.clock_rate_hz))) for c in codecs
    ]
    if te is not None:
        te_pt, te_fmtp = te
        formats.append(str(te_pt))
        attributes.append(Attribute("rtpmap", f"{te_pt} {_TELEPHONE_EVENT}/8000"))
        if te_fmtp is not None:
            attributes.append(Attribute("fmtp", f"{te_pt} {te_fmtp}"))
    attributes += [Attribute("ptime", str(ptime_ms)), Attribute(direction.value)]
    line = MediaLine("audio", local.rtp_port, "RTP/AVP", tuple(formats))
    return MediaDescription.build(line, attributes)


def _session(local: LocalMedia, media: Iterable[MediaDescription]) -> SessionDescription:
    addr_type = _address_type(local.address)
    origin = Origin(
        local.username, local.session_id, local.session_version, "IN", addr_type, local.address
    )
    return SessionDescription.build(origin, Connection("IN", addr_type, local.address), media)


def build_offer(local: LocalMedia, direction: Direction = Direction.SENDRECV) -> SessionDescription:
    """Build our offer: one audio stream with all our codecs (RFC 3264 §5).

    Args:
        local: our address, port, codecs and ``o=`` fields; bump ``session_version`` with
            `LocalMedia.next_version` for every re-offer (RFC 3264 §8).
        direction: ``SENDONLY`` or ``INACTIVE`` to put the peer on hold (RFC 3264 §8.4).

    Returns:
        The offer, for an INVITE or for a 200 OK to an INVITE without SDP.
    """
    # RFC 4733 §3.2: events 0-15 are the DTMF digits and 16 is flash; Asterisk offers 0-16 too.
    te = (local.telephone_event_pt, "0-16") if local.telephone_event else None
    return _session(local, [_audio_section(local, local.codecs, te, local.ptime_ms, direction)])


def negotiate(offer: SessionDescription, local: LocalMedia) -> Answer | Rejection:
    """Answer an offer (RFC 3264 §6) with one audio stream and one codec.

    Args:
        offer: the peer's offer, from an INVITE, re-INVITE or UPDATE.
        local: our side; its ``session_version`` goes into the answer's ``o=``.

    Returns:
        An `Answer` whose ``sdp`` has one ``m=`` line per offered one, or a `Rejection`
        (488) when no audio stream is usable.
    """
    reasons: list[RejectReason] = []
    chosen: _Stream | None = None
    sections: list[MediaDescription] = []
    for media in offer.media:
        if chosen is None and media.media == "audio" and media.port != 0:
            result = _match(offer, media, local.codecs, local.telephone_event, local.ptime_ms)
            if isinstance(result, _Stream):
                chosen = result
                sections.append(_answer_section(local, chosen))
                continue
            reasons.append(result)
        sections.append(_refused(media))
    if chosen is None:
        return Rejection(_worst(reasons))
    return Answer(
        _session(local, sections),
        chosen.codec,
        chosen.telephone_event_pt,
        chosen.ptime_ms,
        chosen.connection.address,
        chosen.port,
        _our_direction(chosen),
        _held(chosen),
    )


def _our_direction(stream: _Stream) -> Direction:
    ours = stream.direction.opposite()
    if stream.connection.is_unspecified:
        # RFC 3264 §8.4 legacy hold: we cannot send to 0.0.0.0, but may still receive.
        ours = Direction.from_flags(sends=False, receives=ours.receives)
    return ours


def _held(stream: _Stream) -> bool:
    return not stream.direction.receives or stream.connection.is_unspecified


def _answer_section(local: LocalMedia, stream: _Stream) -> MediaDescription:
    te = None
    if stream.telephone_event_pt is not None:
        te = (stream.telephone_event_pt, stream.telephone_event_fmtp)
    direction = _our_direction(stream)
    return _audio_section(local, [stream.codec], te, stream.ptime_ms, direction)


def accept_answer(
    offer_we_sent: SessionDescription, answer: SessionDescription
) -> Answer | Rejection:
    """Read the answer to our offer (RFC 3264 §7) and pick the codec the answerer chose.

    Args:
        offer_we_sent: our offer, as returned by `build_offer`.
        answer: the peer's answer, from a 200 OK or an ACK.

    Returns:
        The agreed stream (``sdp`` is the peer's answer), or a `Rejection` if the answer
        refuses our audio stream, breaks RFC 3264 §6, or names no codec we offered.
    """
    if len(answer.media) != len(offer_we_sent.media):
        return Rejection(RejectReason.MISMATCH)  # RFC 3264 §6: one m= line per offered one
    reasons: list[RejectReason] = []
    for ours, theirs in zip(offer_we_sent.media, answer.media, strict=True):
        if ours.media != "audio" or ours.port == 0:
            continue
        if theirs.media != ours.media:
            return Rejection(RejectReason.MISMATCH)
        encodings = [e for e in map(ours.encoding, ours.formats) if e is not None]
        codecs = [
            Codec(e.encoding_name, e.payload_type, e.clock_rate_hz)
            for e in encodings
            if e.encoding_name.casefold() != _TELEPHONE_EVENT
        ]
        te = len(codecs) < len(encodings)
        if theirs.port == 0:
            reasons.append(RejectReason.NO_CODEC)  # the answerer refused the stream
            continue
        result = _match(answer, theirs, codecs, te, ours.ptime_ms or 20)
        if isinstance(result, RejectReason):
            reasons.append(result)
            continue
        return Answer(
            answer,
            result.codec,
            result.telephone_event_pt,
            result.ptime_ms,
            result.connection.address,
            result.port,
            _our_direction(result),
            _held(result),
        )
    return Rejection(_worst(reasons))
