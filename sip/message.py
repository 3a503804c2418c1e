"""SIP requests and responses: parsing, validation and serialisation (RFC 3261 §7, §20, §25).

Theory of operation
-------------------
`parse_message(data)` takes one datagram (or one framed stream message) and returns a
`Request` or `Response`. It works in two stages:

1. *Structure*: skip leading CRLFs (§7.5), split the start line, unfold headers (§7.3.1),
   frame the body by Content-Length (§18.3; on a datagram, octets past Content-Length are
   discarded, and a missing Content-Length means "to the end of the datagram").
2. *Validation*: the mandatory headers exist exactly once and parse (Via, From, To, Call-ID,
   CSeq), CSeq's method matches the request method, numbers are in range.

A failure raises `SipParseError`. When stage 1 got far enough to know it was a request,
the error carries that partial request in ``error.request`` so the boundary can still form a
400 (or 505, or 513) response from its raw Via/From/To/Call-ID/CSeq. Everything else about
the message (unknown headers, odd but legal spacing) passes through untouched, and
``bytes(parse_message(x)) == x`` for every message that needed no repair.

`MAX_MESSAGE_BYTES` is 64 KiB, the largest UDP datagram: far above RFC 4475's 3.5 kB
longreq, and the same order as Kamailio's BUF_SIZE. Larger messages get 513 (§21.5.14).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Final

from sip.errors import SipParseError
from sip.grammar import (
    CALLID_RE,
    HEADER_LINE_RE,
    MAX_UINT32,
    REQUEST_LINE_RE,
    SIP_VERSION_RE,
    STATUS_CODE_RE,
    STATUS_LINE_RE,
)
from sip.headers import CSeq, HeaderField, Headers, NameAddr, Via, parse_uint
from sip.uri import Uri

MAX_MESSAGE_BYTES: Final = 65_535
SIP_VERSION: Final = "SIP/2.0"

# Methods this stack knows by name. An unknown method gets 501, a known one that a UAS does
# not support gets 405 (RFC 3261 §8.2.1, §21.5.2).
KNOWN_METHODS: Final = frozenset(
    {
        "INVITE",
        "ACK",
        "BYE",
        "CANCEL",
        "OPTIONS",
        "REGISTER",
        "PRACK",
        "SUBSCRIBE",
        "NOTIFY",
        "PUBLISH",
        "INFO",
        "REFER",
        "MESSAGE",
        "UPDATE",
    }
)

REASON_PHRASES: Final[dict[int, str]] = {
    100: "Trying",
    180: "Ringing",
    181: "Call Is Being Forwarded",
    182: "Queued",
    183: "Session Progress",
    200: "OK",
    202: "Accepted",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    413: "Request Entity Too Large",
    415: "Unsupported Media Type",
    416: "Unsupported URI Scheme",
    420: "Bad Extension",
    421: "Extension Required",
    423: "Interval Too Brief",
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    482: "Loop Detected",
    483: "Too Many Hops",
    484: "Address Incomplete",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    491: "Request Pending",
    500: "Server Internal Error",
    501: "Not Implemented",
    503: "Service Unavailable",
    504: "Server Time-out",
    505: "Version Not Supported",
    513: "Message Too Large",
    603: "Decline",
}

_MANDATORY: Final = ("via", "from", "to", "call-id", "cseq")
_SINGLETONS: Final = ("from", "to", "call-id", "cseq", "max-forwards", "content-length")


class _Message:
    """Typed views shared by requests and responses (parsed on demand)."""

    __slots__ = ()
    headers: Headers
    body: bytes

    def via(self) -> list[Via]:
        """Every Via value, top first."""
        return [Via.parse(v) for v in self.headers.values("via")]

    def top_via(self) -> Via:
        """The first Via value."""
        values = self.headers.values("via")
        if not values:
            raise SipParseError("missing Via")
        return Via.parse(values[0])

    def cseq(self) -> CSeq:
        """The CSeq header."""
        return CSeq.parse(self._required("cseq"))

    def from_(self) -> NameAddr:
        """The From header."""
        return NameAddr.parse(self._required("from"), header="From")

    def to(self) -> NameAddr:
        """The To header."""
        return NameAddr.parse(self._required("to"), header="To")

    def call_id(self) -> str:
        """The Call-ID header."""
        return self._required("call-id").strip(" \t")

    def contact(self) -> list[NameAddr]:
        """Contact values (empty for none; ``*`` is not a NameAddr and is refused here)."""
        return [NameAddr.parse(v, header="Contact") for v in self.headers.values("contact")]

    def record_route(self) -> list[NameAddr]:
        """Record-Route values, top first."""
        values = self.headers.values("record-route")
        return [NameAddr.parse(v, header="Record-Route") for v in values]

    def content_type(self) -> str | None:
        """The media type (lower case, parameters dropped), or None."""
        value = self.headers.get("content-type")
        if value is None:
            return None
        return value.split(";", 1)[0].replace(" ", "").replace("\t", "").lower()

    def _required(self, name: str) -> str:
        value = self.headers.get(name)
        if value is None:
            raise SipParseError(f"missing {name}")
        return value


@dataclass(frozen=True, slots=True)
class Request(_Message):
    """A SIP request. ``uri`` is the Request-URI text as received."""

    method: str = "OPTIONS"
    uri: str = "sip:invalid"
    version: str = SIP_VERSION
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""

    def request_uri(self) -> Uri:
        """The parsed Request-URI."""
        return Uri.parse(self.uri)

    def __bytes__(self) -> bytes:
        start = f"{self.method} {self.uri} {self.version}\r\n".encode("utf-8", "surrogateescape")
        return start + bytes(_framed(self.headers, self.body)) + b"\r\n" + self.body


@dataclass(frozen=True, slots=True)
class Response(_Message):
    """A SIP response."""

    status: int = 200
    reason: str = "OK"
    version: str = SIP_VERSION
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""

    def __bytes__(self) -> bytes:
        start = f"{self.version} {self.status} {self.reason}\r\n".encode("utf-8", "surrogateescape")
        return start + bytes(_framed(self.headers, self.body)) + b"\r\n" + self.body


Message = Request | Response


def _framed(headers: Headers, body: bytes) -> Headers:
    """Headers with a Content-Length that matches the body (kept raw when it already does)."""
    current = headers.get("content-length")
    if current is not None and current.strip().isdigit() and int(current) == len(body):
        return headers
    return headers.with_set("Content-Length", str(len(body)))


def _decode(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


@dataclass(frozen=True, slots=True)
class _Head:
    start: str
    fields: list[HeaderField]
    problems: list[str]
    body_offset: int | None


_LINE_RE = re.compile(rb"([^\r\n]*)(\r\n|\n|\r)?")


def _lines(data: bytes) -> tuple[list[bytes], int | None]:
    """Split the head into raw lines (each with its terminator); the body offset or None.

    RFC 3261 says CRLF; like pjsip and Kamailio we also take a bare LF (or CR) as a line end,
    which is what hand-written test messages and some embedded stacks send.
    """
    end = data.find(b"\r\n\r\n")
    if end >= 0 and b"\n" not in data[:end].replace(b"\r\n", b""):
        if b"\r" not in data[:end].replace(b"\r\n", b""):
            return [line + b"\r\n" for line in data[:end].split(b"\r\n")], end + 4
    lines: list[bytes] = []
    pos = 0
    while pos < len(data):
        m = _LINE_RE.match(data, pos)
        assert m is not None  # the pattern matches the empty string
        if m.group(2) is None:
            lines.append(m.group(0))
            return lines, None
        if not m.group(1):
            return lines, m.end()
        lines.append(m.group(0))
        pos = m.end()
    return lines, None


def _split_head(data: bytes) -> _Head:
    lines, body_offset = _lines(data)
    if not lines:
        return _Head("", [], ["message has no start line"], body_offset)
    start = _decode(lines[0].rstrip(b"\r\n"))
    fields: list[HeaderField] = []
    problems: list[str] = []
    raw: list[bytes] = []
    for line in lines[1:]:
        if line[:1] in (b" ", b"\t") and raw:
            raw.append(line)  # RFC 3261 §7.3.1: LWS at line start continues the field
            continue
        if raw:
            fields.append(_header_field(raw, problems))
        raw = [line]
    if raw:
        fields.append(_header_field(raw, problems))
    if body_offset is None:
        problems.append("message has no empty line after the headers")
    return _Head(start, fields, problems, body_offset)


def _header_field(raw_lines: list[bytes], problems: list[str]) -> HeaderField:
    text = " ".join(_decode(line.rstrip(b"\r\n")).strip(" \t") for line in raw_lines)
    raw = b"".join(raw_lines)
    m = HEADER_LINE_RE.fullmatch(text)
    if m is None:
        problems.append("malformed header line")
        return HeaderField("X-Malformed", text, raw)
    return HeaderField(m.group(1), m.group(2).rstrip(" \t"), raw)


def parse_message(data: bytes, *, stream: bool = False) -> Request | Response:
    """Parse one SIP message.

    Args:
        data: one UDP datagram, or one message framed by `sip.framing.StreamFramer`.
        stream: the message came over a stream transport, where Content-Length is mandatory
            (RFC 3261 §18.3) and ``data`` already holds exactly one message.

    Raises:
        SipParseError: with ``status_hint`` and, when the start line was a request line,
            ``request`` set to the partial request (headers as far as they were read).
    """
    if len(data) > MAX_MESSAGE_BYTES:
        raise _error("message is larger than 65535 bytes", 513, partial_request(data[:8192]))
    data = data.lstrip(b"\r\n")  # §7.5: ignore CRLFs before the start line
    if not data:
        raise SipParseError("empty message")
    head = _split_head(data)
    partial = _partial_from_head(head)
    if head.body_offset is None:
        raise _error(head.problems[-1], 400, partial)
    body = _frame_body(head, data[head.body_offset :], stream=stream, partial=partial)
    message = _build(head, body, partial)
    if head.problems:
        raise _error(head.problems[0], 400, partial)
    _validate(message, partial)
    return message


def partial_request(data: bytes) -> Request | None:
    """The request line and raw headers of ``data`` as far as they can be read, or None.

    Used where a message cannot be parsed whole (too large, unframeable on a stream) but an
    error response can still be formed from its Via, From, To, Call-ID and CSeq.
    """
    return _partial_from_head(_split_head(data.lstrip(b"\r\n")))


def _partial_from_head(head: _Head) -> Request | None:
    parts = head.start.split(" ")
    if len(parts) < 3 or SIP_VERSION_RE.match(parts[0]):
        return None
    return Request(method=parts[0], uri=parts[1], version=parts[-1], headers=Headers(head.fields))


def _error(text: str, status: int, partial: Request | None) -> SipParseError:
    return SipParseError(text, status_hint=status, request=partial)


def _frame_body(head: _Head, rest: bytes, *, stream: bool, partial: Request | None) -> bytes:
    lengths = [f.value for f in head.fields if f.key == "content-length"]
    if not lengths:
        if stream:
            raise _error("missing Content-Length on a stream transport", 400, partial)
        return rest  # §18.3: on UDP the body runs to the end of the datagram
    if len(set(lengths)) > 1:
        raise _error("conflicting Content-Length headers", 400, partial)
    try:
        length = parse_uint(lengths[0], header="Content-Length", maximum=MAX_UINT32)
    except SipParseError as exc:
        raise _error(str(exc), 400, partial) from None
    if length > len(rest):
        raise _error("Content-Length is larger than the body", 400, partial)
    return rest[:length]


def _build(head: _Head, body: bytes, partial: Request | None) -> Request | Response:
    headers = Headers(head.fields)
    m = REQUEST_LINE_RE.fullmatch(head.start)
    if m is not None and not SIP_VERSION_RE.match(m.group(1)):
        method, uri, version = m.groups()
        if not SIP_VERSION_RE.fullmatch(version):
            raise _error("malformed SIP-Version", 400, partial)
        if version.upper() != SIP_VERSION:
            raise _error(f"unsupported {version[:16]!r}", 505, partial)
        try:
            Uri.parse(uri)
        except SipParseError as exc:
            raise _error(f"invalid Request-URI: {exc}", 400, partial) from None
        return Request(method=method, uri=uri, version=SIP_VERSION, headers=headers, body=body)
    s = STATUS_LINE_RE.fullmatch(head.start)
    if s is not None:
        version, code, reason = s.groups()
        if version.upper() != SIP_VERSION:
            raise SipParseError("unsupported SIP version in a response", status_hint=505)
        if not STATUS_CODE_RE.fullmatch(code):
            raise SipParseError("status code is not in 100-699")
        return Response(
            status=int(code), reason=reason, version=SIP_VERSION, headers=headers, body=body
        )
    raise _error("malformed start line", 400, partial)


def _validate(message: Request | Response, partial: Request | None) -> None:
    try:
        keys = [f.key for f in message.headers]
        for name in _MANDATORY:
            if name not in keys:
                raise SipParseError(f"missing mandatory header {name}")
        for name in _SINGLETONS:
            if keys.count(name) > 1:
                raise SipParseError(f"{name} appears more than once")
        message.via()
        message.from_()
        message.to()
        if not CALLID_RE.fullmatch(message.call_id()):
            raise SipParseError("Call-ID is malformed")
        cseq = message.cseq()
        if isinstance(message, Request) and cseq.method != message.method:
            # RFC 4475 §3.1.2.18: an unknown method with a mismatched CSeq prefers 501.
            status = 400 if message.method in KNOWN_METHODS else 501
            raise SipParseError("CSeq method does not match the request method", status_hint=status)
        if isinstance(message, Request):
            max_forwards = message.headers.get("max-forwards")
            if max_forwards is not None:
                parse_uint(max_forwards, header="Max-Forwards", maximum=255)
            expires = message.headers.get("expires")
            if expires is not None:
                parse_uint(expires, header="Expires", maximum=MAX_UINT32)
            contacts = [] if message.headers.get("contact") == "*" else message.contact()
            for contact in contacts:
                contact_expires = contact.param("expires")
                if contact_expires is not None:
                    parse_uint(contact_expires, header="Contact expires", maximum=MAX_UINT32)
    except SipParseError as exc:
        raise _error(str(exc), exc.status_hint, partial) from None


def make_response(
    request: Request,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
    headers: tuple[tuple[str, str], ...] = (),
    body: bytes = b"",
) -> Response:
    """Build a response per RFC 3261 §8.2.6.2: copy Via, From, To, Call-ID and CSeq.

    Raw values are copied, so this also works on a partial request whose headers did not
    validate. ``to_tag`` is added to To when the request's To has no tag (never for 100).
    """
    fields: list[tuple[str, str]] = []
    for f in request.headers:
        if f.key in ("via", "from", "call-id", "cseq"):
            fields.append((f.name, f.value))
        elif f.key == "to":
            value = f.value
            has_tag = ";tag=" in value.replace(" ", "").lower()
            if to_tag is not None and status != 100 and not has_tag:
                value = f"{value};tag={to_tag}"
            fields.append((f.name, value))
        elif f.key == "timestamp" and status == 100:
            fields.append((f.name, f.value))  # §8.2.6.1
    fields.extend(headers)
    return Response(
        status=status,
        reason=reason if reason is not None else REASON_PHRASES.get(status, "Unknown"),
        headers=_framed(Headers(fields), body),
        body=body,
    )


def with_headers(message: Request | Response, headers: Headers) -> Request | Response:
    """A copy of ``message`` with other headers."""
    return replace(message, headers=headers)
