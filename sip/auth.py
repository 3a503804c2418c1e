"""SIP digest authentication (RFC 3261 §22, RFC 7616, RFC 8760) as pure functions.

Theory of operation
-------------------
Digest is a challenge/response exchange with no state machine of its own. Nothing here reads a
clock or a random source: ``now`` and the client nonce (``cnonce``) are arguments. The code is
in three modules; this one is the public entry point and re-exports the other two:

* **The scheme** (`sip.digest`): `DigestChallenge` and `DigestCredentials` with their parsers
  (`parse_challenge`, `parse_credentials`), `Algorithm`, `Qop` and `compute_response`.
* **UAS side** (`sip.digest_verifier`). A request without acceptable credentials is answered
  401 (or 407 from a proxy) with one ``WWW-Authenticate`` value per algorithm, most preferred
  first (RFC 8760 §2.3), built by `DigestVerifier.challenge`. `DigestVerifier.verify` checks the
  ``Authorization`` value that comes back and returns `AuthResult.OK`, `AuthResult.STALE` (right
  password, expired nonce: challenge again with ``stale=true``, RFC 7616 §3.3) or
  `AuthResult.FAILED`. Its nonces are stateless HMACs of their issue time.
* **UAC side** (here). `parse_challenge` reads one challenge, `choose_challenge` picks the
  topmost one we support (RFC 8760 §2.4) and `build_authorization` answers it, preferring
  ``qop=auth``.
"""

from __future__ import annotations

from collections.abc import Iterable

from sip.digest import (
    SESSION_ALGORITHMS,
    Algorithm,
    DigestChallenge,
    DigestCredentials,
    Qop,
    UnsupportedAlgorithm,
    UnsupportedScheme,
    compute_response,
    digest_hash,
    parse_challenge,
    parse_credentials,
)
from sip.digest_verifier import AuthResult, DigestVerifier
from sip.errors import SipParseError

__all__ = [
    "Algorithm",
    "AuthResult",
    "DigestChallenge",
    "DigestCredentials",
    "DigestVerifier",
    "Qop",
    "UnsupportedAlgorithm",
    "UnsupportedScheme",
    "build_authorization",
    "choose_challenge",
    "compute_response",
    "parse_challenge",
    "parse_credentials",
]


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
    send_cnonce = qop is not None or challenge.algorithm in SESSION_ALGORITHMS
    digest_input = (challenge.algorithm, username, password, challenge.realm, method, uri)
    response = compute_response(
        *digest_input, challenge.nonce, qop=qop, nc=nc, cnonce=cnonce, body=body
    )
    if challenge.userhash:
        username = digest_hash(challenge.algorithm, f"{username}:{challenge.realm}")
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
