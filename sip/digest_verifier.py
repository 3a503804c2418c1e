"""The server side of Digest authentication (RFC 3261 §22, RFC 7616, RFC 8760): `DigestVerifier`.

Theory of operation
-------------------
A UAS (registrar, or a server that authenticates INVITE) answers a request without acceptable
credentials with 401 (or 407 from a proxy) carrying one ``WWW-Authenticate`` value per
algorithm, most preferred first (RFC 8760 §2.3), built by `DigestVerifier.challenge`.
`DigestVerifier.verify` checks the ``Authorization`` value that comes back and returns
`AuthResult.OK`, `AuthResult.STALE` (right password, expired nonce: challenge again with
``stale=true``, RFC 7616 §3.3) or `AuthResult.FAILED`. Like the rest of the digest code it is
pure: ``now`` is an argument.

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
"""

from __future__ import annotations

import base64
import hmac
import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum

from sip.digest import Algorithm, DigestChallenge, DigestCredentials, Qop, compute_response

_NONCE_STAMP = struct.Struct(">d")
_NONCE_TAG_BYTES = 16


class AuthResult(Enum):
    """What `DigestVerifier.verify` concluded."""

    OK = "ok"
    STALE = "stale"  # right digest on an expired nonce: challenge again with stale=true
    FAILED = "failed"  # unknown user, wrong password, forged nonce, or unusable parameters


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
