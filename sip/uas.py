"""UAS request inspection, RFC 3261 §8.2: what a request we cannot serve gets as an answer.

The checks run in the RFC's order, on a request that has already parsed and validated:
method (§8.2.1: 405 with Allow, or 501 for a method nobody knows), Request-URI scheme
(§8.2.2.1: 416), URI headers in a Request-URI (RFC 4475 §3.1.2.11: 400), Require (§8.2.2.3:
420 with Unsupported), then content (§8.2.3: 415 with Accept for a body we cannot read; 406
when the request's Accept excludes the SDP we would answer with, RFC 4475 §3.3.15).
Each check is a pure function of the request and a `UasPolicy`.

The headers of the answers the UA core gives on its own are built here too: OPTIONS
capabilities (§11.2), the registrar's Contact echo (§10.3 step 8) and the digest challenge
(§22.1, RFC 7616).
"""

from __future__ import annotations

from dataclasses import dataclass

from sip.auth import AuthResult, DigestVerifier, parse_credentials
from sip.errors import SipParseError
from sip.headers import split_list
from sip.message import KNOWN_METHODS, Request, Response

SUPPORTED_EXTENSIONS: tuple[str, ...] = ("replaces", "timer")


@dataclass(frozen=True, slots=True)
class UasPolicy:
    """What this UAS serves."""

    allow: tuple[str, ...] = (
        "INVITE",
        "ACK",
        "BYE",
        "CANCEL",
        "OPTIONS",
        "UPDATE",
        "INFO",
        "REGISTER",
        "NOTIFY",  # in a dialog only: progress of our REFER (RFC 3515 §2.4.5)
    )
    supported: tuple[str, ...] = SUPPORTED_EXTENSIONS
    accept: tuple[str, ...] = ("application/sdp",)
    schemes: tuple[str, ...] = ("sip", "sips", "tel")


@dataclass(frozen=True, slots=True)
class Rejection:
    """A final response to send instead of processing the request."""

    status: int
    headers: tuple[tuple[str, str], ...] = ()
    reason: str | None = None


def inspect(request: Request, policy: UasPolicy) -> Rejection | None:
    """Return the §8.2 rejection for ``request``, or None when it can be processed."""
    for check in (_method, _uri, _require, _content):
        rejection = check(request, policy)
        if rejection is not None:
            return rejection
    return None


def _method(request: Request, policy: UasPolicy) -> Rejection | None:
    if request.method in policy.allow:
        return None
    allow = (("Allow", ", ".join(policy.allow)),)
    return Rejection(405 if request.method in KNOWN_METHODS else 501, allow)


def _uri(request: Request, policy: UasPolicy) -> Rejection | None:
    uri = request.request_uri()
    if uri.scheme not in policy.schemes:
        return Rejection(416)
    if request.method == "REGISTER":
        # A registrar also refuses an AOR it cannot store (RFC 4475 §3.3.4: isbn: in To).
        if request.to().uri.scheme not in policy.schemes:
            return Rejection(416)
    if uri.headers is not None:
        return Rejection(400, reason="Request-URI Carries Headers")
    return None


def _require(request: Request, policy: UasPolicy) -> Rejection | None:
    if request.method in ("ACK", "CANCEL"):
        return None  # §8.2.2.3: never rejected for Require
    unknown: list[str] = []
    for value in request.headers.values("require"):
        for tag in split_list(value, header="require"):
            if tag.lower() not in policy.supported and tag not in unknown:
                unknown.append(tag)
    if unknown:
        return Rejection(420, (("Unsupported", ", ".join(unknown)),))
    return None


def _content(request: Request, policy: UasPolicy) -> Rejection | None:
    if request.method not in ("INVITE", "UPDATE"):
        return None
    content_type = request.content_type()
    accept = (("Accept", ", ".join(policy.accept)),)
    if request.body and content_type is not None and content_type not in policy.accept:
        return Rejection(415, accept)
    encoding = request.headers.get("content-encoding")
    if request.body and encoding is not None and encoding.strip().lower() != "identity":
        return Rejection(415, (*accept, ("Accept-Encoding", "identity")))
    if request.method == "INVITE" and "accept" in request.headers:
        types = [t.split(";")[0].strip().lower() for t in request.headers.values("accept")]
        if not any(t in ("application/sdp", "application/*", "*/*") for t in types):
            return Rejection(406, (("Warning", '399 voiceagent "only application/sdp"'),))
    return None


Fields = tuple[tuple[str, str], ...]


def options_headers(policy: UasPolicy) -> Fields:
    """What a 200 to OPTIONS says about us (§11.2)."""
    return (
        ("Allow", ", ".join(policy.allow)),
        ("Accept", ", ".join(policy.accept)),
        ("Supported", ", ".join(policy.supported)),
        ("Accept-Encoding", "identity"),
        ("Accept-Language", "en"),
    )


def dialog_response(
    response: Response, contact_uri: str, policy: UasPolicy, body: bytes
) -> Response:
    """``response`` (1xx/2xx to an INVITE or UPDATE) with our Contact (§12.1.1) and body."""
    headers = response.headers.with_added("Contact", f"<{contact_uri}>")
    headers = headers.with_added("Allow", ", ".join(policy.allow))
    headers = headers.with_added("Supported", ", ".join(policy.supported))
    if body:
        headers = headers.with_added("Content-Type", "application/sdp")
    return Response(
        status=response.status,
        reason=response.reason,
        headers=headers.with_set("Content-Length", str(len(body))),
        body=body,
    )


def registrar_contacts(request: Request, default_expires: int) -> Fields:
    """The Contact fields a registrar's 200 echoes (§10.3 step 8), each with its expires.

    We keep no bindings, so the answer simply grants what was asked: a Contact's own
    ``expires``, else the Expires header, else ``default_expires``. ``*`` is not echoed.
    """
    expires = request.headers.get("expires")
    return tuple(
        ("Contact", c if "expires=" in c.lower() else f"{c};expires={expires or default_expires}")
        for c in request.headers.values("contact")
        if c.strip() != "*"
    )


def digest_challenge(request: Request, verifier: DigestVerifier, now: float) -> Fields | None:
    """None when ``request`` carries acceptable credentials, else the 401's challenges.

    Credentials in a scheme or algorithm we do not know are skipped, not refused (RFC 4475
    §3.3.7); a right digest on an expired nonce is challenged with ``stale=true``.
    """
    stale = False
    for value in request.headers.values("authorization"):
        try:
            credentials = parse_credentials(value)
        except SipParseError:  # UnsupportedScheme and UnsupportedAlgorithm included
            continue
        result = verifier.verify(credentials, request.method, now, body=request.body)
        if result is AuthResult.OK:
            return None
        stale = result is AuthResult.STALE
        break
    return tuple(("WWW-Authenticate", c) for c in verifier.challenge(now, stale=stale))
