"""Header fields: an ordered, case-insensitive multimap that keeps raw values, and typed views.

Theory of operation
-------------------
`Headers` stores each header field as a `HeaderField` with the name as it came, the value
unfolded and trimmed (RFC 3261 §7.3.1), and the raw bytes of the original line(s). A message
that is only parsed and serialised again is byte-identical; a field that is added or changed
is written canonically (``Name: value``). Compact forms (``v``, ``i``, ``m``...) are expanded for
lookup from `COMPACT_FORMS` but kept as written on the wire. Unknown headers pass through
untouched.

Typed views (`Via`, `NameAddr`, `CSeq`) are parsed only when asked for, by
`sip.message.Request.via()` and friends (the drachtio model): a proxy-like path that never
looks at a header never pays for (or fails on) its parse.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace

from sip.errors import SipParseError
from sip.grammar import (
    DIGITS_RE,
    MAX_UINT32,
    QUOTED_STRING_RE,
    SENT_PROTOCOL_RE,
    TOKEN_RE,
)
from sip.uri import HostPort, Uri, parse_hostport, parse_params

# RFC 3261 §7.3.3 and the IANA registry of compact forms.
COMPACT_FORMS: dict[str, str] = {
    "a": "accept-contact",
    "b": "referred-by",
    "c": "content-type",
    "d": "request-disposition",
    "e": "content-encoding",
    "f": "from",
    "i": "call-id",
    "j": "reject-contact",
    "k": "supported",
    "l": "content-length",
    "m": "contact",
    "n": "identity-info",
    "o": "event",
    "r": "refer-to",
    "s": "subject",
    "t": "to",
    "u": "allow-events",
    "v": "via",
    "x": "session-expires",
    "y": "identity",
}

# Headers whose grammar is a comma-separated list (RFC 3261 §7.3.1), so several field values
# may be combined on one line. Any other header is never split on commas.
LIST_HEADERS: frozenset[str] = frozenset(
    {
        "via",
        "contact",
        "route",
        "record-route",
        "allow",
        "supported",
        "require",
        "proxy-require",
        "unsupported",
        "accept",
        "accept-encoding",
        "accept-language",
        "allow-events",
        "content-encoding",
        "content-language",
        "in-reply-to",
        "warning",
        "call-info",
        "alert-info",
        "error-info",
    }
)


def canonical_name(name: str) -> str:
    """The lower-case long form of a header name (``"V"`` -> ``"via"``)."""
    lname = name.lower()
    return COMPACT_FORMS.get(lname, lname)


@dataclass(frozen=True, slots=True)
class HeaderField:
    """One header field line as received (or as we will send it)."""

    name: str
    value: str
    raw: bytes | None = None

    @property
    def key(self) -> str:
        """The canonical lookup key."""
        return canonical_name(self.name)

    def __bytes__(self) -> bytes:
        if self.raw is not None:
            return self.raw
        return f"{self.name}: {self.value}\r\n".encode("utf-8", "surrogateescape")


class Headers:
    """An immutable, ordered, case-insensitive multimap of header fields."""

    __slots__ = ("_fields",)

    def __init__(self, fields: Iterable[HeaderField | tuple[str, str]] = ()) -> None:
        self._fields: tuple[HeaderField, ...] = tuple(
            f if isinstance(f, HeaderField) else HeaderField(f[0], f[1]) for f in fields
        )

    def __iter__(self) -> Iterator[HeaderField]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Headers):
            return NotImplemented
        return [(f.key, f.value) for f in self._fields] == [(f.key, f.value) for f in other._fields]

    def __hash__(self) -> int:
        return hash(tuple((f.key, f.value) for f in self._fields))

    def __repr__(self) -> str:
        return f"Headers({[(f.name, f.value) for f in self._fields]!r})"

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and any(f.key == canonical_name(name) for f in self._fields)

    def fields(self, name: str) -> list[HeaderField]:
        """Every field with this name, in order."""
        key = canonical_name(name)
        return [f for f in self._fields if f.key == key]

    def get(self, name: str) -> str | None:
        """The value of the first field with this name, or None."""
        key = canonical_name(name)
        for f in self._fields:
            if f.key == key:
                return f.value
        return None

    def values(self, name: str) -> list[str]:
        """All values of a header, list headers split on top-level commas."""
        key = canonical_name(name)
        out: list[str] = []
        for f in self._fields:
            if f.key == key:
                if key in LIST_HEADERS:
                    out.extend(split_list(f.value, header=key))
                else:
                    out.append(f.value)
        return out

    def with_added(self, name: str, value: str) -> Headers:
        """A copy with one field appended at the end."""
        return Headers((*self._fields, HeaderField(name, value)))

    def with_prepended(self, name: str, value: str) -> Headers:
        """A copy with one field inserted first (a new top Via)."""
        return Headers((HeaderField(name, value), *self._fields))

    def with_set(self, name: str, value: str) -> Headers:
        """A copy where the first field of this name gets ``value`` and the others go."""
        key = canonical_name(name)
        out: list[HeaderField] = []
        done = False
        for f in self._fields:
            if f.key == key:
                if not done:
                    out.append(HeaderField(f.name, value))
                    done = True
            else:
                out.append(f)
        if not done:
            out.append(HeaderField(name, value))
        return Headers(out)

    def without(self, name: str) -> Headers:
        """A copy with every field of this name removed."""
        key = canonical_name(name)
        return Headers(f for f in self._fields if f.key != key)

    def replace_first(self, name: str, value: str) -> Headers:
        """Replace only the first value of a (list) header, keeping the rest (top Via)."""
        key = canonical_name(name)
        out: list[HeaderField] = []
        done = False
        for f in self._fields:
            if f.key == key and not done:
                rest = split_list(f.value, header=key)[1:] if key in LIST_HEADERS else []
                out.append(HeaderField(f.name, ", ".join([value, *rest])))
                done = True
            else:
                out.append(f)
        return Headers(out)

    def __bytes__(self) -> bytes:
        return b"".join(bytes(f) for f in self._fields)


def split_list(value: str, *, header: str) -> list[str]:
    """Split a list header value on commas outside quotes and angle brackets.

    An empty element (``a,,b`` or a trailing comma) is malformed (RFC 4475 §3.1.2.1).
    """
    items: list[str] = []
    depth = 0
    in_quote = False
    escaped = False
    start = 0
    for i, ch in enumerate(value):
        if in_quote:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_quote = False
        elif ch == '"':
            in_quote = True
        elif ch == "<":
            depth += 1
        elif ch == ">":
            depth = max(0, depth - 1)
        elif ch == "," and depth == 0:
            items.append(value[start:i].strip(" \t"))
            start = i + 1
    if in_quote:
        raise SipParseError(f"unterminated quoted string in {header}")
    items.append(value[start:].strip(" \t"))
    if any(not item for item in items):
        raise SipParseError(f"empty element in {header}")
    return items


@dataclass(frozen=True, slots=True)
class Via:
    """One Via field value (RFC 3261 §20.42)."""

    transport: str
    sent_by: HostPort
    params: tuple[tuple[str, str | None], ...] = ()
    protocol: str = "SIP/2.0"

    def param(self, name: str) -> str | None:
        """A parameter's value (``""`` if present without value), None if absent."""
        lname = name.lower()
        for key, value in self.params:
            if key.lower() == lname:
                return "" if value is None else value
        return None

    @property
    def branch(self) -> str | None:
        """The branch parameter, the transaction identifier of RFC 3261 §17.2.3."""
        return self.param("branch")

    @property
    def has_rport(self) -> bool:
        """True when the client asked for rport (RFC 3581)."""
        return self.param("rport") is not None

    def with_params(self, **updates: str | None) -> Via:
        """A copy with parameters added or replaced (``received``, ``rport``)."""
        params = list(self.params)
        for name, value in updates.items():
            for i, (key, _) in enumerate(params):
                if key.lower() == name:
                    params[i] = (key, value)
                    break
            else:
                params.append((name, value))
        return replace(self, params=tuple(params))

    def __str__(self) -> str:
        params = "".join(f";{k}" if v is None else f";{k}={v}" for k, v in self.params)
        return f"{self.protocol}/{self.transport} {self.sent_by}{params}"

    @classmethod
    def parse(cls, value: str) -> Via:
        """Parse one via-parm: ``sent-protocol LWS sent-by *( SEMI via-params )``."""
        m = SENT_PROTOCOL_RE.match(value)
        if m is None:
            raise SipParseError("Via has an invalid sent-protocol")
        name, version, transport = m.groups()
        rest = value[m.end() :].lstrip(" \t")
        if rest == value[m.end() :]:
            raise SipParseError("Via lacks whitespace before sent-by")
        host_end = _hostport_end(rest)
        # sent-by = host [ COLON port ], COLON = SWS ":" SWS: LWS may surround the colon
        # before the port, and nowhere else ("ho st" is not the host "host").
        sent_by = parse_hostport(_PORT_COLON_RE.sub(":", rest[:host_end]))
        params = parse_params(rest[host_end:].strip(" \t"), what="Via")
        for key, val in params:
            if key.lower() in ("received", "maddr") and not val:
                raise SipParseError(f"Via {key} has no value")
        return cls(transport.upper(), sent_by, params, f"{name.upper()}/{version}")


_PORT_COLON_RE = re.compile(r"[ \t]*:[ \t]*(?=[0-9]*$)")


def _hostport_end(text: str) -> int:
    """Index where ``host [ ":" port ]`` (with optional LWS around the colon) ends."""
    i = 0
    if text.startswith("["):
        i = text.find("]") + 1 if "]" in text else len(text)
    while i < len(text) and text[i] not in ";":
        i += 1
    return len(text[:i].rstrip(" \t"))


@dataclass(frozen=True, slots=True)
class NameAddr:
    """``( name-addr / addr-spec ) *( SEMI param )`` as in From, To, Contact, Route."""

    uri: Uri
    display_name: str | None = None
    params: tuple[tuple[str, str | None], ...] = ()
    bracketed: bool = True

    def param(self, name: str) -> str | None:
        """A header parameter's value (``""`` if valueless), None if absent."""
        lname = name.lower()
        for key, value in self.params:
            if key.lower() == lname:
                return "" if value is None else value
        return None

    @property
    def tag(self) -> str | None:
        """The tag parameter (RFC 3261 §19.3)."""
        return self.param("tag")

    def with_tag(self, tag: str) -> NameAddr:
        """A copy carrying ``tag`` (replacing any tag)."""
        params = tuple(p for p in self.params if p[0].lower() != "tag") + (("tag", tag),)
        return replace(self, params=params, bracketed=True)

    def __str__(self) -> str:
        params = "".join(f";{k}" if v is None else f";{k}={v}" for k, v in self.params)
        if not self.bracketed and self.display_name is None:
            return f"{self.uri}{params}"
        display = f"{self.display_name} " if self.display_name else ""
        return f"{display}<{self.uri}>{params}"

    @classmethod
    def parse(cls, value: str, *, header: str) -> NameAddr:
        """Parse a name-addr or addr-spec with header parameters."""
        text = value.strip(" \t")
        display: str | None = None
        if text.startswith('"'):
            m = QUOTED_STRING_RE.match(text)
            if m is None:
                raise SipParseError(f"unterminated quoted display name in {header}")
            display = m.group(0)
            text = text[m.end() :].lstrip(" \t")
            if not text.startswith("<"):
                raise SipParseError(f"quoted display name without <addr-spec> in {header}")
        elif "<" in text:
            lt = text.index("<")
            words = text[:lt].split()
            # RFC 4475 §3.1.2.15: display names with ',' or '.' must be quoted.
            if any(TOKEN_RE.fullmatch(w) is None for w in words):
                raise SipParseError(f"unquoted display name is not a token list in {header}")
            display = " ".join(words) if words else None
            text = text[lt:]
        if text.startswith("<"):
            gt = text.find(">")
            if gt < 0:
                raise SipParseError(f"missing '>' in {header}")
            uri_text = text[1:gt]
            if uri_text != uri_text.strip(" \t"):
                raise SipParseError(f"whitespace inside <addr-spec> in {header}")
            uri = Uri.parse(uri_text)
            params = parse_params(text[gt + 1 :].strip(" \t"), what=header)
            return cls(uri, display, params, True)
        # addr-spec without brackets: parameters after ';' belong to the header, and the
        # URI may then not contain ',', '?' or ';' (RFC 3261 §20.10).
        uri_text, semi, params_text = text.partition(";")
        if "?" in uri_text or "," in uri_text:
            raise SipParseError(f"addr-spec with '?' or ',' must be in <> in {header}")
        uri = Uri.parse(uri_text.rstrip(" \t"))
        params = parse_params(semi + params_text, what=header) if semi else ()
        return cls(uri, None, params, False)


@dataclass(frozen=True, slots=True)
class CSeq:
    """``CSeq = 1*DIGIT LWS Method`` (RFC 3261 §20.16)."""

    seq: int
    method: str

    def __str__(self) -> str:
        return f"{self.seq} {self.method}"

    @classmethod
    def parse(cls, value: str) -> CSeq:
        """Parse a CSeq value; the number must fit in 32 bits (RFC 4475 §3.1.2.4)."""
        parts = value.split()
        if len(parts) != 2 or not DIGITS_RE.fullmatch(parts[0]) or not TOKEN_RE.fullmatch(parts[1]):
            raise SipParseError("CSeq is malformed")
        seq = int(parts[0])
        if seq > MAX_UINT32:
            raise SipParseError("CSeq number exceeds 2**32-1")
        return cls(seq, parts[1])


def parse_uint(value: str, *, header: str, maximum: int) -> int:
    """Parse ``1*DIGIT`` bounded by ``maximum``."""
    text = value.strip(" \t")
    if not DIGITS_RE.fullmatch(text):
        raise SipParseError(f"{header} is not a number")
    number = int(text[:20]) if len(text) <= 20 else maximum + 1
    if number > maximum:
        raise SipParseError(f"{header} is out of range")
    return number
