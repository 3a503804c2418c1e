"""SIP digest authentication (RFC 3261 §22, RFC 7616, RFC 8760) as pure functions.

Theory of operation
-------------------
Digest is a challenge/response exchange with no state machine of its own. Nothing here reads a
clock or a random source: ``now`` and the client nonce (``cnonce``) are arguments.

* **UAS side.** A request without acceptable credentials is answered 401 (or 407 from a proxy)
  with one ``WWW-Authenticate`` value per algorithm, most preferred first (RFC 8760 §2.3), built
  by `DigestVerifier.challenge`. `DigestVerifier.verify` checks the ``Authorization`` value that
  comes back and returns `AuthResult.OK`, `AuthResult.STALE` (right password, expired nonce:
  challenge again with ``stale=true``, RFC 7616 §3.3) or `AuthResult.FAILED`.
* **UAC side.** `parse_challenge` reads one challenge, `choose_challenge` picks the topmost one
  we support (RFC 8760 §2.4) and `build_authorization` answers it, preferring ``qop=auth``.

Nonces are stateless, the construction RFC 7616 §3.3 suggests: ``base64url(stamp || tag)`` where
``stamp`` is ``now`` as a big-endian IEEE double and ``tag`` is the first 16 bytes of
HMAC-SHA256(secret, stamp || realm). Any process holding the secret can validate any nonce and
nothing is stored. ``now`` must come from a clock every validating process shares: ``loop.time()``
is fine for one process, several workers need wall-clock seconds. A nonce stamped in the future
(the clock moved) gets STALE, which costs the client one more round trip and nothing else.

Replay is **not** detected (RFC 7616 §5.5): ``nc`` is not tracked, so a captured request can be
replayed while its nonce lives (``nonce_lifetime_s``, 300 s by default as in Kamailio's auth
module). A caller that needs more can keep a set of ``(nonce, nc)`` pairs, dropping each pair when
its nonce expires.

Parsing follows RFC 3261 §25 (``challenge``/``credentials``), leniently where stacks differ: any
auth-param may be a token or a quoted-string, names and ``algorithm``/``qop`` values are
case-insensitive, folded lines are accepted, and unknown auth-params are kept. Every failure is a
`sip.errors.SipParseError` with an exact message; a foreign scheme or algorithm raises the
subclasses `UnsupportedScheme` and `UnsupportedAlgorithm` (``status_hint`` 401), because the
right answer there is to ignore the header and challenge (RFC 4475 §3.3.7, regaut01).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import re
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import TypeVar

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


class AuthResult(Enum):
    """What `DigestVerifier.verify` concluded."""

    OK = "ok"
    STALE = "stale"  # right digest on an expired nonce: challenge again with stale=true
    FAILED = "failed"  # unknown user, wrong password, forged nonce, or unusable parameters


_HASH_NAMES = {
    Algorithm.MD5: "md5",
    Algorithm.MD5_SESS: "md5",
    Algorithm.SHA_256: "sha256",
    Algorithm.SHA_256_SESS: "sha256",
}
_SESSION_ALGORITHMS = frozenset({Algorithm.MD5_SESS, Algorithm.SHA_256_SESS})
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
_NONCE_STAMP = struct.Struct(">d")
_NONCE_TAG_BYTES = 16


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


def choose_challenge(values: Iterable[str]) -> DigestChallenge | None:
    """Pick the challenge to answer among the header values of one 401/407 response.

    RFC 8760 §2.4: the UAC answers the topmost challenge it supports, since the UAS lists them
    most preferred first. Challenges we cannot use (another scheme or algorithm, malformed)
    are skipped rather than failing the whole response.

    Args:
        values: the ``WWW-Authenticate`` (or ``Proxy-Authenticate``) values, in message order.

    Returns:
        The first usable challenge, or None when there is none.
    """
    for value in values:
        try:
            return parse_challenge(value)
        except SipParseError:
            continue
    return None


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
    ha1 = _hash(algorithm, f"{username}:{realm}:{password}")
    if algorithm in _SESSION_ALGORITHMS:
        if cnonce is None:
            raise ValueError(f"{algorithm.value} needs a cnonce")
        ha1 = _hash(algorithm, f"{ha1}:{nonce}:{cnonce}")
    a2 = f"{method}:{uri}"
    if qop is Qop.AUTH_INT:
        a2 += ":" + _hash(algorithm, body)
    if qop is None:
        return _hash(algorithm, f"{ha1}:{nonce}:{_hash(algorithm, a2)}")
    if nc is None or cnonce is None:
        raise ValueError(f"qop={qop.value} needs nc and cnonce")
    return _hash(
        algorithm, f"{ha1}:{nonce}:{_nc_value(nc)}:{cnonce}:{qop.value}:{_hash(algorithm, a2)}"
    )


def build_authorization(
    challenge: DigestChallenge,
    *,
    username: str,
    password: str,
    method: str,
    uri: str,
    cnonce: str,
    nc: int = 1,
    body: bytes = b"",
) -> str:
    """Answer a challenge: the ``Authorization`` / ``Proxy-Authorization`` value to send.

    ``qop=auth`` is preferred when offered, then ``auth-int``; with neither the RFC 2069 form
    is sent. The username is hashed when the challenge sets ``userhash`` (RFC 7616 §3.4.4).

    Args:
        challenge: the parsed challenge being answered.
        username: the plain username.
        password: the shared secret.
        method: the method of the request being authorised.
        uri: the Request-URI of that request (RFC 3261 §22.4), as it will be sent.
        cnonce: fresh client randomness (for example ``secrets.token_urlsafe(16)``).
        nc: how many requests this nonce has now authorised, starting at 1.
        body: the request body, used when ``qop=auth-int`` is chosen.

    Returns:
        A header value starting with ``Digest``.

    Raises:
        ValueError: a value contains CR or LF, or nc is out of range.
    """
    qop = next((q for q in (Qop.AUTH, Qop.AUTH_INT) if q in challenge.qop), None)
    # A "-sess" challenge without qop is broken; sending the cnonce anyway is our best guess.
    send_cnonce = qop is not None or challenge.algorithm in _SESSION_ALGORITHMS
    digest_input = (challenge.algorithm, username, password, challenge.realm, method, uri)
    response = compute_response(
        *digest_input, challenge.nonce, qop=qop, nc=nc, cnonce=cnonce, body=body
    )
    if challenge.userhash:
        username = _hash(challenge.algorithm, f"{username}:{challenge.realm}")
    credentials = DigestCredentials(
        username=username,
        realm=challenge.realm,
        nonce=challenge.nonce,
        uri=uri,
        response=response,
        algorithm=challenge.algorithm,
        cnonce=cnonce if send_cnonce else None,
        opaque=challenge.opaque,
        qop=qop,
        nc=nc if qop is not None else None,
        userhash=challenge.userhash,
    )
    return str(credentials)


@dataclass(frozen=True, slots=True)
class DigestVerifier:
    """The UAS (registrar or proxy) side: issue challenges and check credentials.

    Attributes:
        realm: our protection space, usually the SIP domain (RFC 3261 §22.1).
        passwords: username -> password.
        secret: key for the nonce HMAC; at least 16 random bytes, shared by every process
            that must accept our nonces.
        algorithms: offered in this order, most preferred first (RFC 8760 §2.3).
        nonce_lifetime_s: how long a nonce is accepted before STALE.
        qop: qop options offered and accepted. ``auth`` only by default: ``auth-int`` needs
            the caller to pass each request's body to `verify`.
    """

    realm: str
    passwords: Mapping[str, str] = field(repr=False)
    secret: bytes = field(repr=False)
    algorithms: tuple[Algorithm, ...] = (Algorithm.SHA_256, Algorithm.MD5)
    nonce_lifetime_s: float = 300.0
    qop: tuple[Qop, ...] = (Qop.AUTH,)

    def __post_init__(self) -> None:
        if len(self.secret) < 16:
            raise ValueError("DigestVerifier.secret must be at least 16 bytes")
        if not self.algorithms or len(set(self.algorithms)) != len(self.algorithms):
            raise ValueError("DigestVerifier.algorithms must be non-empty and distinct")
        # RFC 7616 §3.3 makes qop mandatory; we do not accept the RFC 2069 form.
        if not self.qop:
            raise ValueError("DigestVerifier.qop must offer at least one qop")
        if not self.nonce_lifetime_s > 0:
            raise ValueError("DigestVerifier.nonce_lifetime_s must be positive")

    def challenge(self, now: float, stale: bool = False) -> list[str]:
        """Build the ``WWW-Authenticate`` (or ``Proxy-Authenticate``) values for a 401/407.

        Args:
            now: current time in seconds; stamped into the nonce.
            stale: set after `verify` returned STALE, so the client retries silently.

        Returns:
            One value per algorithm, most preferred first, all sharing one nonce.
        """
        nonce = self._nonce(now)
        return [
            str(DigestChallenge(self.realm, nonce, algorithm, self.qop, stale=stale))
            for algorithm in self.algorithms
        ]

    def verify(
        self, credentials: DigestCredentials, method: str, now: float, body: bytes = b""
    ) -> AuthResult:
        """Check credentials against a request.

        The digest covers ``credentials.uri``; comparing that with the Request-URI is left to
        the caller, since proxies and NATs make a strict comparison fail legitimate clients.
        Hashed usernames (``userhash``) are never offered, so they fail.

        Args:
            credentials: parsed from the request's Authorization or Proxy-Authorization.
            method: the request method.
            now: current time in seconds, on the clock given to `challenge`.
            body: the request body, needed only when ``auth-int`` is offered.

        Returns:
            OK, STALE (the digest is right but the nonce expired) or FAILED.
        """
        issued = self._nonce_issued_at(credentials.nonce)
        if (
            issued is None
            or credentials.realm != self.realm
            or credentials.algorithm not in self.algorithms
            or credentials.qop not in self.qop
            or credentials.nc is None
            or credentials.cnonce is None
            or credentials.userhash
        ):
            return AuthResult.FAILED
        c, password = credentials, self.passwords.get(credentials.username)
        # Hash even for an unknown user, so timing does not tell which users exist.
        digest_input = (c.algorithm, c.username, password or "", c.realm, method, c.uri, c.nonce)
        expected = compute_response(
            *digest_input, qop=c.qop, nc=c.nc, cnonce=c.cnonce, body=body
        ).encode("ascii")
        given = c.response.lower().encode("utf-8", "surrogateescape")
        if not hmac.compare_digest(expected, given) or password is None:
            return AuthResult.FAILED
        # RFC 7616 §3.3: stale only when the digest itself was right.
        if not 0.0 <= now - issued <= self.nonce_lifetime_s:
            return AuthResult.STALE
        return AuthResult.OK

    def _nonce(self, now: float) -> str:
        stamp = _NONCE_STAMP.pack(now)
        mac = hmac.digest(
            self.secret, stamp + self.realm.encode("utf-8", "surrogateescape"), "sha256"
        )
        return base64.urlsafe_b64encode(stamp + mac[:_NONCE_TAG_BYTES]).decode("ascii")

    def _nonce_issued_at(self, nonce: str) -> float | None:
        """The time stamped into one of our nonces, or None if it is not one."""
        if len(nonce) != 32 or not nonce.isascii():
            return None
        try:
            raw = base64.urlsafe_b64decode(nonce)
        except ValueError:  # binascii.Error
            return None
        if len(raw) != _NONCE_STAMP.size + _NONCE_TAG_BYTES:
            return None
        (issued,) = _NONCE_STAMP.unpack_from(raw)
        if not math.isfinite(issued):
            return None
        expected = self._nonce(issued)
        return issued if hmac.compare_digest(expected.encode("ascii"), nonce.encode()) else None


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


def _hash(algorithm: Algorithm, data: str | bytes) -> str:
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogateescape")
    return hashlib.new(_HASH_NAMES[algorithm], data).hexdigest()


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
