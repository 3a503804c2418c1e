"""SIP, SIPS and tel URIs (RFC 3261 §19.1, RFC 3966), and other absolute URIs kept opaque.

``Uri.parse`` validates structure strictly enough for the RFC 4475 torture tests (a bare
IPv6 reference, three colons in an IPv6 address, embedded whitespace are rejected) while
keeping the original text, so ``str(uri)`` always returns exactly what was parsed.

Escapes (``%HH``) are left as they came: comparison helpers unescape once, never
recursively (RFC 4475 §3.1.1.3: ``value%2541`` is not ``valueA``).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from sip.errors import SipParseError
from sip.grammar import HOSTNAME_RE, IPV4_RE, PORT_RE, TOKEN_RE

# scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*")
# Characters legal anywhere in a URI (reserved / unreserved / escaped, RFC 2396), plus the
# characters RFC 4475 §3.1.1.2 shows in user parts. Whitespace, '<', '>' and '"' never are.
_URI_CHARS_RE = re.compile(r"[A-Za-z0-9\-_.!~*'()%;/?:@&=+$,\[\]`]+")
_ESCAPE_RE = re.compile(r"%([0-9A-Fa-f]{2})")
# A parameter value: URI paramchar (RFC 3261 §25.1: param-unreserved / unreserved / escaped)
# or a header gen-value (token / host / quoted-string). Never '=', ';', ',', '<', '>' or LWS
# outside quotes (PROTOS c07-sip 860: "tag====...").
_PARAM_VALUE_RE = re.compile(r"[A-Za-z0-9\-_.!~*'()%/:&+$\[\]`]+" + r'|"(?:[^"\\]|\\.)*"')


def unescape(text: str) -> str:
    """Decode ``%HH`` escapes once (never recursively)."""
    return _ESCAPE_RE.sub(lambda m: chr(int(m.group(1), 16)), text)


@dataclass(frozen=True, slots=True)
class HostPort:
    """A host (name, IPv4 address or bracketed IPv6 reference) and an optional port."""

    host: str
    port: int | None = None

    def __str__(self) -> str:
        return self.host if self.port is None else f"{self.host}:{self.port}"

    @property
    def is_ipv6(self) -> bool:
        """True when the host is an IPv6 reference (``[…]``)."""
        return self.host.startswith("[")


def parse_hostport(text: str) -> HostPort:
    """Parse ``hostport = host [ ":" port ]`` (RFC 3261 §25.1)."""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise SipParseError("IPv6 reference lacks its closing ']'")
        host, rest = text[: end + 1], text[end + 1 :]
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise SipParseError("invalid IPv6 address in host") from None
    else:
        host, sep, port_text = text.partition(":")
        rest = sep + port_text
        if IPV4_RE.fullmatch(host):
            if any(int(octet) > 255 for octet in host.split(".")):
                raise SipParseError("invalid IPv4 address in host")
        elif not HOSTNAME_RE.fullmatch(host):
            raise SipParseError("invalid host")
    if not rest:
        return HostPort(host)
    if rest[0] != ":" or not PORT_RE.fullmatch(rest[1:]) or int(rest[1:]) > 65535:
        raise SipParseError("invalid port")
    return HostPort(host, int(rest[1:]))


def parse_params(text: str, *, what: str) -> tuple[tuple[str, str | None], ...]:
    """Parse ``*( ";" pname [ "=" pvalue ] )`` where ``text`` starts at the first ``;``.

    Empty parameters (``;;``) are malformed (RFC 4475 §3.1.2.1).
    """
    params: list[tuple[str, str | None]] = []
    if not text:
        return ()
    if text[0] != ";":
        raise SipParseError(f"unexpected text after {what}")
    for item in text[1:].split(";"):
        name, eq, value = item.partition("=")
        name = name.strip(" \t")
        if not name or not _URI_CHARS_RE.fullmatch(name):
            raise SipParseError(f"empty or invalid parameter in {what}")
        if eq:
            value = value.strip(" \t")
            if not value:
                raise SipParseError(f"parameter {name!r} has no value in {what}")
            if not _PARAM_VALUE_RE.fullmatch(value):
                raise SipParseError(f"parameter {name[:32]!r} has an invalid value in {what}")
            params.append((name, value))
        else:
            params.append((name, None))
    return tuple(params)


@dataclass(frozen=True, slots=True)
class Uri:
    """A parsed URI that keeps its original text.

    For ``sip``/``sips`` the user, password, host, port, parameters and headers are split
    out; for ``tel`` the number and parameters; any other scheme is kept as an opaque
    ``absoluteURI`` (``opaque`` holds everything after the colon).
    """

    text: str
    scheme: str
    user: str | None = None
    password: str | None = None
    hostport: HostPort | None = None
    params: tuple[tuple[str, str | None], ...] = ()
    headers: str | None = None
    opaque: str | None = None

    def __str__(self) -> str:
        return self.text

    @property
    def is_sip(self) -> bool:
        """True for ``sip:`` and ``sips:`` URIs."""
        return self.scheme in ("sip", "sips")

    @property
    def host(self) -> str | None:
        """The host part of a SIP URI."""
        return None if self.hostport is None else self.hostport.host

    @property
    def port(self) -> int | None:
        """The explicit port of a SIP URI, if any."""
        return None if self.hostport is None else self.hostport.port

    def param(self, name: str) -> str | None:
        """The value of a URI parameter (case-insensitive name); ``""`` when valueless."""
        lname = name.lower()
        for key, value in self.params:
            if key.lower() == lname:
                return "" if value is None else value
        return None

    @classmethod
    def parse(cls, text: str) -> Uri:
        """Parse ``text`` as a SIP-URI, SIPS-URI, tel URI or absoluteURI.

        Raises:
            SipParseError: the text is not a URI (whitespace, angle brackets, bad host...).
        """
        scheme, colon, rest = text.partition(":")
        if not colon or not _SCHEME_RE.fullmatch(scheme):
            raise SipParseError("URI lacks a scheme")
        if not rest or not _URI_CHARS_RE.fullmatch(rest):
            raise SipParseError("URI contains characters that are not allowed")
        lscheme = scheme.lower()
        if lscheme in ("sip", "sips"):
            return cls._parse_sip(text, lscheme, rest)
        if lscheme == "tel":
            number, _, params = rest.partition(";")
            if not number:
                raise SipParseError("tel URI lacks a number")
            return cls(
                text,
                lscheme,
                user=number,
                params=parse_params(";" + params, what="tel URI") if params else (),
            )
        return cls(text, lscheme, opaque=rest)

    @classmethod
    def _parse_sip(cls, text: str, scheme: str, rest: str) -> Uri:
        # RFC 3261 §25.1: '@' cannot appear unescaped in user, password, params or headers,
        # so one '@' separates userinfo from hostport; ';' and '?' may appear in the user.
        if rest.count("@") > 1:
            raise SipParseError("SIP URI has more than one '@'")
        user: str | None = None
        password: str | None = None
        if "@" in rest:
            userinfo, _, rest = rest.partition("@")
            user, colon, pw = userinfo.partition(":")
            password = pw if colon else None
            if not user:
                raise SipParseError("SIP URI has an empty user part")
        hostpart, qmark, headers = rest.partition("?")
        if hostpart.startswith("["):
            close = hostpart.find("]")
            split_at = hostpart.find(";", close if close >= 0 else 0)
        else:
            split_at = hostpart.find(";")
        if split_at < 0:
            hostport_text, params_text = hostpart, ""
        else:
            hostport_text, params_text = hostpart[:split_at], hostpart[split_at:]
        if not hostport_text:
            raise SipParseError("SIP URI lacks a host")
        hostport = parse_hostport(hostport_text)
        params = parse_params(params_text, what="SIP URI")
        if qmark and not headers:
            raise SipParseError("SIP URI has an empty header part")
        return cls(
            text,
            scheme,
            user=user,
            password=password,
            hostport=hostport,
            params=params,
            headers=headers if qmark else None,
        )


def is_token(text: str) -> bool:
    """True when ``text`` is an RFC 3261 token."""
    return TOKEN_RE.fullmatch(text) is not None
