"""The Digest scheme in SIP (RFC 3261 §22.4, RFC 7616, RFC 8760): its values and the hash.

Theory of operation
-------------------
Digest is a challenge/response exchange with no state machine of its own. This module holds
what both ends of it share, as pure functions and frozen values: the two header values
(`DigestChallenge` for ``WWW-Authenticate``/``Proxy-Authenticate``, `DigestCredentials` for
``Authorization``/``Proxy-Authorization``), their parsers, and the request-digest
(`compute_response`, RFC 7616 §3.4.1). The client side that answers a challenge is in
`sip.auth`; the server side that issues challenges and checks credentials is
`sip.digest_verifier.DigestVerifier`. Nothing here reads a clock or a random source.

Parsing follows RFC 3261 §25 (``challenge``/``credentials``), leniently where stacks differ: any
auth-param may be a token or a quoted-string, names and ``algorithm``/``qop`` values are
case-insensitive, folded lines are accepted, and unknown auth-params are kept. Every failure is a
`sip.errors.SipParseError` with an exact message; a foreign scheme or algorithm raises the
subclasses `UnsupportedScheme` and `UnsupportedAlgorithm` (``status_hint`` 401), because the
right answer there is to ignore the header and challenge (RFC 4475 §3.3.7, regaut01).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from enum import Enum
from typing import Final, TypeVar

from sip.errors import SipParseError
from sip.grammar import TOKEN


class UnsupportedScheme(SipParseError):
    """The header uses a scheme other than Digest: ignore it (and challenge, on a UAS)."""

    def __init__(self, scheme: str) -> None:
        super().__init__(f"unsupported auth scheme {scheme!r}", status_hint=401)
        self.scheme = scheme


class UnsupportedAlgorithm(SipParseError):
    """The ``algorithm`` is not one we implement: skip this challenge, or challenge again."""

    def __init__(self, algorithm: str) -> None:
        super().__init__(f"unsupported digest algorithm {algorithm!r}", status_hint=401)
        self.algorithm = algorithm


class Algorithm(Enum):
    """Digest algorithms (RFC 7616 §3.2; "-sess" variants hash the cnonce into A1, §3.4.2)."""

    MD5 = "MD5"
    MD5_SESS = "MD5-sess"
    SHA_256 = "SHA-256"
    SHA_256_SESS = "SHA-256-sess"


class Qop(Enum):
    """Quality of protection (RFC 7616 §3.3): ``auth-int`` also covers the message body."""

    AUTH = "auth"
    AUTH_INT = "auth-int"


_HASH_NAMES = {
    Algorithm.MD5: "md5",
    Algorithm.MD5_SESS: "md5",
    Algorithm.SHA_256: "sha256",
    Algorithm.SHA_256_SESS: "sha256",
}
# "-sess" variants hash the cnonce into A1 (RFC 7616 §3.4.2).
SESSION_ALGORITHMS: Final = frozenset({Algorithm.MD5_SESS, Algorithm.SHA_256_SESS})
_ALGORITHMS_BY_NAME = {a.value.lower(): a for a in Algorithm}
_QOPS_BY_NAME = {q.value: q for q in Qop}

# LWS = [*WSP CRLF] 1*WSP ; SWS = [LWS]   (RFC 3261 §25.1)
# Written so that each character can be consumed in only one way: no backtracking blow-up.
_SWS = r"(?:[ \t]|\r\n[ \t])*"
_LWS_RE = re.compile(r"(?:[ \t]|\r\n[ \t])+")
# quoted-string = SWS DQUOTE *(qdtext / quoted-pair ) DQUOTE
# qdtext        = LWS / %x21 / %x23-5B / %x5D-7E / UTF8-NONASCII
# quoted-pair   = "\" (%x00-09 / %x0B-0C / %x0E-7F)
_QUOTED = (
    r'"((?:[ \t\x21\x23-\x5b\x5d-\x7e]|\r\n[ \t]|[^\x00-\x7f]|\\[\x00-\x09\x0b\x0c\x0e-\x7f])*)"'
)
# challenge   = ("Digest" LWS digest-cln *(COMMA digest-cln)) / other-challenge
# credentials = ("Digest" LWS dig-resp *(COMMA dig-resp)) / other-response
_SCHEME_RE = re.compile(rf"{_SWS}({TOKEN})")
# auth-param = auth-param-name EQUAL ( token / quoted-string ) ; EQUAL = SWS "=" SWS
_PARAM_RE = re.compile(rf"({TOKEN}){_SWS}={_SWS}(?:{_QUOTED}|({TOKEN}))")
_COMMA_RE = re.compile(rf"{_SWS},{_SWS}")
_END_RE = re.compile(rf"{_SWS}\Z")
_UNESCAPE_RE = re.compile(r"\\(.)|\r\n", re.DOTALL)
_ESCAPE_RE = re.compile(r'[\x00-\x08\x0b\x0c\x0e-\x1f"\\\x7f]')
_TOKEN_RE = re.compile(TOKEN)
# nc-value = 8LHEX ; request-digest = LDQUOT *LHEX RDQUOT (RFC 8760 §2.7 lifts the 32)
_NC_RE = re.compile(r"[0-9a-fA-F]{8}")
_HEX_RE = re.compile(r"[0-9a-fA-F]+")

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class DigestChallenge:
    """A ``WWW-Authenticate`` / ``Proxy-Authenticate`` Digest challenge (RFC 7616 §3.3).

    Attributes:
        realm: protection space; shown to users and hashed into A1.
        nonce: server-chosen value the response must be computed over.
        algorithm: MD5 when the header leaves it out (RFC 2617 §3.2.1).
        qop: the recognised qop options, in the server's order; unknown ones are dropped
            as RFC 2617 §3.2.1 requires. Empty means an RFC 2069 style challenge.
        opaque: returned verbatim in the credentials when present.
        stale: true when the previous nonce expired but the password was right.
        domain: URIs of the protection space (space-separated in the header).
        userhash: the server accepts a hashed username (RFC 7616 §3.4.4).
        params: unknown auth-params as ``(name, value)`` pairs, unquoted, in header order.
    """

    realm: str
    nonce: str
    algorithm: Algorithm = Algorithm.MD5
    qop: tuple[Qop, ...] = ()
    opaque: str | None = None
    stale: bool = False
    domain: tuple[str, ...] = ()
    userhash: bool = False
    params: tuple[tuple[str, str], ...] = ()

    def __str__(self) -> str:
        # The order of RFC 7616 §3.9.1, so that its examples round-trip exactly.
        parts = [f"realm={_quote(self.realm)}"]
        if self.domain:
            parts.append(f"domain={_quote(' '.join(self.domain))}")
        if self.qop:
            parts.append(f"qop={_quote(', '.join(q.value for q in self.qop))}")
        parts += [f"algorithm={self.algorithm.value}", f"nonce={_quote(self.nonce)}"]
        if self.opaque is not None:
            parts.append(f"opaque={_quote(self.opaque)}")
        if self.stale:
            parts.append("stale=true")
        if self.userhash:
            parts.append("userhash=true")
        return "Digest " + ", ".join(parts + [_param(n, v) for n, v in self.params])


@dataclass(frozen=True, slots=True)
class DigestCredentials:
    """An ``Authorization`` / ``Proxy-Authorization`` Digest response (RFC 7616 §3.4).

    Attributes:
        username: the user, or H(username:realm) when ``userhash`` is true.
        realm: echoed from the challenge.
        nonce: echoed from the challenge.
        uri: the digest-uri: the Request-URI as the client sent it (RFC 3261 §22.4).
        response: the request-digest in hex (compared case-insensitively).
        algorithm: MD5 when the header leaves it out.
        cnonce: client nonce; present whenever ``qop`` is.
        opaque: echoed from the challenge.
        qop: the protection the client applied; None for RFC 2069 style credentials.
        nc: nonce count, sent as eight hex digits; present whenever ``qop`` is.
        userhash: ``username`` is hashed.
        params: unknown auth-params as ``(name, value)`` pairs, unquoted, in header order.
    """

    username: str
    realm: str
    nonce: str
    uri: str
    response: str
    algorithm: Algorithm = Algorithm.MD5
    cnonce: str | None = None
    opaque: str | None = None
    qop: Qop | None = None
    nc: int | None = None
    userhash: bool = False
    params: tuple[tuple[str, str], ...] = ()

    def __str__(self) -> str:
        parts = [
            f"username={_quote(self.username)}",
            f"realm={_quote(self.realm)}",
            f"uri={_quote(self.uri)}",
            f"algorithm={self.algorithm.value}",
            f"nonce={_quote(self.nonce)}",
        ]
        if self.nc is not None:
            parts.append(f"nc={_nc_value(self.nc)}")
        if self.cnonce is not None:
            parts.append(f"cnonce={_quote(self.cnonce)}")
        if self.qop is not None:
            parts.append(f"qop={self.qop.value}")
        parts.append(f"response={_quote(self.response)}")
        if self.opaque is not None:
            parts.append(f"opaque={_quote(self.opaque)}")
        if self.userhash:
            parts.append("userhash=true")
        return "Digest " + ", ".join(parts + [_param(n, v) for n, v in self.params])


def parse_challenge(value: str) -> DigestChallenge:
    """Parse a ``WWW-Authenticate`` or ``Proxy-Authenticate`` header value.

    Raises:
        UnsupportedScheme: the scheme is not Digest.
        UnsupportedAlgorithm: the algorithm is not one of `Algorithm`.
        SipParseError: the value is malformed or lacks realm or nonce.
    """
    params = _parse_digest(value)
    realm, nonce = _require(params, "realm", "challenge"), _require(params, "nonce", "challenge")
    qop_names = (q.strip(" \t").lower() for q in _pop(params, "qop", "").split(","))
    return DigestChallenge(
        realm=realm,
        nonce=nonce,
        algorithm=_algorithm(_pop(params, "algorithm", "MD5")),
        qop=tuple(dict.fromkeys(_QOPS_BY_NAME[q] for q in qop_names if q in _QOPS_BY_NAME)),
        opaque=_pop(params, "opaque", None),
        # RFC 2617 §3.2.1: anything other than "true" (any case) means false.
        stale=_pop(params, "stale", "").lower() == "true",
        domain=tuple(u for u in re.split(r"[ \t]+", _pop(params, "domain", "")) if u),
        userhash=_pop(params, "userhash", "").lower() == "true",
        params=tuple(params.values()),
    )


def parse_credentials(value: str) -> DigestCredentials:
    """Parse an ``Authorization`` or ``Proxy-Authorization`` header value.

    Raises:
        UnsupportedScheme: the scheme is not Digest (RFC 4475 regaut01): ignore the header.
        UnsupportedAlgorithm: the algorithm is not one of `Algorithm`.
        SipParseError: the value is malformed or lacks a required auth-param.
    """
    params = _parse_digest(value)
    username, realm, nonce, uri, response = (
        _require(params, name, "credentials") for name in _REQUIRED_CREDENTIALS
    )
    if not _HEX_RE.fullmatch(response):
        raise SipParseError(f"invalid digest response {response!r}")
    qop_name, nc_value = _pop(params, "qop", None), _pop(params, "nc", None)
    qop = None if qop_name is None else _QOPS_BY_NAME.get(qop_name.lower())
    if qop_name is not None and qop is None:
        raise SipParseError(f"unsupported qop {qop_name!r}")
    if nc_value is not None and not _NC_RE.fullmatch(nc_value):
        raise SipParseError(f"invalid nc {nc_value!r}")
    cnonce = _pop(params, "cnonce", None)
    if qop is not None and (nc_value is None or cnonce is None):
        # RFC 7616 §3.4: cnonce and nc MUST be sent with qop.
        raise SipParseError("digest credentials with qop lack nc or cnonce")
    return DigestCredentials(
        username,
        realm,
        nonce,
        uri,
        response,
        algorithm=_algorithm(_pop(params, "algorithm", "MD5")),
        cnonce=cnonce,
        opaque=_pop(params, "opaque", None),
        qop=qop,
        nc=None if nc_value is None else int(nc_value, 16),
        userhash=_pop(params, "userhash", "").lower() == "true",
        params=tuple(params.values()),
    )


def compute_response(
    algorithm: Algorithm,
    username: str,
    password: str,
    realm: str,
    method: str,
    uri: str,
    nonce: str,
    *,
    qop: Qop | None = None,
    nc: int | None = None,
    cnonce: str | None = None,
    body: bytes = b"",
) -> str:
    """Compute the request-digest (RFC 7616 §3.4.1; RFC 2617 §3.2.2.1 when ``qop`` is None).

    ``username`` is the plain name even when the header carries its hash, ``password`` is hashed
    as UTF-8, ``uri`` is the digest-uri exactly as sent and ``method`` the request's SIP method
    (RFC 3261 §22.4). ``nc`` and ``cnonce`` are required with a qop, ``cnonce`` also with a
    "-sess" algorithm; ``body`` is hashed into A2 for ``auth-int`` only.

    Returns:
        The digest in lowercase hex.

    Raises:
        ValueError: nc or cnonce missing where required, or nc out of range.
    """
    ha1 = digest_hash(algorithm, f"{username}:{realm}:{password}")
    if algorithm in SESSION_ALGORITHMS:
        if cnonce is None:
            raise ValueError(f"{algorithm.value} needs a cnonce")
        ha1 = digest_hash(algorithm, f"{ha1}:{nonce}:{cnonce}")
    a2 = f"{method}:{uri}"
    if qop is Qop.AUTH_INT:
        a2 += ":" + digest_hash(algorithm, body)
    if qop is None:
        return digest_hash(algorithm, f"{ha1}:{nonce}:{digest_hash(algorithm, a2)}")
    if nc is None or cnonce is None:
        raise ValueError(f"qop={qop.value} needs nc and cnonce")
    return digest_hash(
        algorithm,
        f"{ha1}:{nonce}:{_nc_value(nc)}:{cnonce}:{qop.value}:{digest_hash(algorithm, a2)}",
    )


def digest_hash(algorithm: Algorithm, data: str | bytes) -> str:
    """H(data) of RFC 7616 §3.4.1 in lowercase hex; a str is hashed as UTF-8."""
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogateescape")
    return hashlib.new(_HASH_NAMES[algorithm], data).hexdigest()


_REQUIRED_CREDENTIALS = ("username", "realm", "nonce", "uri", "response")


def _parse_digest(value: str) -> dict[str, tuple[str, str]]:
    """Split a Digest header value into ``{lowercase name: (name, unquoted value)}``."""
    match = _SCHEME_RE.match(value)
    if match is None:
        raise SipParseError("auth header value has no scheme")
    if match.group(1).lower() != "digest":
        raise UnsupportedScheme(match.group(1))
    params: dict[str, tuple[str, str]] = {}
    pos, separator = match.end(), _LWS_RE
    while not _END_RE.match(value, pos):
        gap = separator.match(value, pos)
        param = None if gap is None else _PARAM_RE.match(value, gap.end())
        if param is None:
            raise SipParseError(f"malformed auth-param at offset {pos}")
        name, quoted, token = param.groups()
        if name.lower() in params:
            raise SipParseError(f"duplicate auth-param {name!r}")
        unquoted = None if quoted is None else _UNESCAPE_RE.sub(lambda m: m.group(1) or "", quoted)
        params[name.lower()] = (name, token if unquoted is None else unquoted)
        pos, separator = param.end(), _COMMA_RE
    return params


def _require(params: dict[str, tuple[str, str]], name: str, what: str) -> str:
    if name not in params:
        raise SipParseError(f"no {name} in digest {what}")
    return params.pop(name)[1]


def _pop(params: dict[str, tuple[str, str]], name: str, default: _T) -> str | _T:
    item = params.pop(name, None)
    return default if item is None else item[1]


def _algorithm(name: str) -> Algorithm:
    try:
        return _ALGORITHMS_BY_NAME[name.lower()]
    except KeyError:
        raise UnsupportedAlgorithm(name) from None


def _nc_value(nc: int) -> str:
    if not 0 <= nc <= 0xFFFFFFFF:
        raise ValueError(f"nc {nc} does not fit in 8 hex digits")
    return f"{nc:08x}"


def _quote(value: str) -> str:
    """Serialise a quoted-string, escaping what qdtext cannot carry."""
    if "\r" in value or "\n" in value:
        raise ValueError(f"{value!r} cannot be sent as a quoted-string: it contains CR or LF")
    return '"' + _ESCAPE_RE.sub(lambda m: "\\" + m.group(0), value) + '"'


def _param(name: str, value: str) -> str:
    return f"{name}={value if _TOKEN_RE.fullmatch(value) else _quote(value)}"
