"""SDP session descriptions (RFC 4566): parse, inspect and serialise, byte-exact.

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

Offer/answer (RFC 3264) lives in `sip.offer_answer`.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
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


def address_type(address: str) -> str:
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


def static_encoding(fmt: str, rtpmaps: Mapping[int, RtpMap]) -> RtpMap | None:
    """The encoding of format ``fmt``: its a=rtpmap, else the RFC 3551 static payload type."""
    if not _NUMBER_RE.fullmatch(fmt) or int(fmt) > 127:
        return None
    return rtpmaps.get(int(fmt)) or STATIC_AUDIO_PAYLOADS.get(int(fmt))


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

    @property
    def rtpmaps(self) -> dict[int, RtpMap]:
        """Every ``a=rtpmap`` by payload type; the first one wins if a type is mapped twice."""
        maps = (RtpMap.parse(a.value or "") for a in self.attributes if a.name == "rtpmap")
        return {m.payload_type: m for m in reversed(list(maps))}

    def rtpmap(self, payload_type: int) -> RtpMap | None:
        """The ``a=rtpmap`` for ``payload_type``, if present."""
        return self.rtpmaps.get(payload_type)

    def encoding(self, fmt: str) -> RtpMap | None:
        """The encoding of ``fmt``: its ``a=rtpmap``, else the RFC 3551 static assignment."""
        return static_encoding(fmt, self.rtpmaps)

    def fmtp(self, payload_type: int) -> str | None:
        """Format parameters of the ``a=fmtp`` for ``payload_type``, if present."""
        for attr in self.attributes:
            fmt, *params = _WSP_RE.split((attr.value or "").strip(" \t"), maxsplit=1)
            if attr.name == "fmtp" and fmt == str(payload_type):
                return params[0] if params else ""
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
