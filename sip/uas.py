"""UAS request inspection, RFC 3261 §8.2: what a request we cannot serve gets as an answer.

The checks run in the RFC's order, on a request that has already parsed and validated:
method (§8.2.1: 405 with Allow, or 501 for a method nobody knows), Request-URI scheme
(§8.2.2.1: 416), URI headers in a Request-URI (RFC 4475 §3.1.2.11: 400), Require (§8.2.2.3:
420 with Unsupported), then content (§8.2.3: 415 with Accept for a body we cannot read; 406
when the request's Accept excludes the SDP we would answer with, RFC 4475 §3.3.15).
Each check is a pure function of the request and a `UasPolicy`.
"""

from __future__ import annotations

from dataclasses import dataclass

from sip.headers import split_list
from sip.message import KNOWN_METHODS, Request

SUPPORTED_EXTENSIONS: tuple[str, ...] = ("replaces", "timer")


@dataclass(frozen=True, slots=True)
class UasPolicy:
    """What this UAS serves."""

    allow: tuple[str, ...] = (
        "INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "UPDATE", "INFO", "REGISTER",
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
