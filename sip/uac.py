"""Requests we originate outside a dialog (RFC 3261 §8.1.1): INVITE, REGISTER, CANCEL, ACK.

Pure builders. Identifiers (branch, tag, Call-ID, cnonce) are passed in, so tests are
deterministic and the `UserAgent` owns the randomness. `with_authorization` answers a digest
challenge (§22.2) by rebuilding the request; `granted_expires` reads a registrar's answer
(§10.2.4).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sip.auth import build_authorization, choose_challenge
from sip.errors import SipParseError
from sip.headers import Headers
from sip.message import Request, Response

BRANCH_COOKIE = "z9hG4bK"  # RFC 3261 §8.1.1.7


@dataclass(frozen=True, slots=True)
class Originator:
    """Who we are on the wire: our address-of-record, contact and Via sent-by."""

    from_uri: str  # e.g. "sip:voiceagent@127.0.0.1"
    contact_uri: str  # e.g. "sip:voiceagent@127.0.0.1:5060"
    sent_by: str  # host:port for Via
    transport: str = "UDP"
    display_name: str | None = None
    user_agent: str = "VoiceAgent"

    def via(self, branch: str, transport: str | None = None) -> str:
        """A Via value with ``branch`` and rport (RFC 3581) requested.

        ``transport`` is the one the request goes over (§18.1.1), when not our default.
        """
        transport = (transport or self.transport).upper()
        return f"SIP/2.0/{transport} {self.sent_by};branch={branch};rport"

    def from_value(self, tag: str) -> str:
        """Our From header value."""
        name = f'"{self.display_name}" ' if self.display_name else ""
        return f"{name}<{self.from_uri}>;tag={tag}"


def build_invite(
    me: Originator,
    *,
    request_uri: str,
    to_uri: str,
    call_id: str,
    tag: str,
    branch: str,
    cseq: int = 1,
    sdp: bytes = b"",
    extra_headers: tuple[tuple[str, str], ...] = (),
) -> Request:
    """An initial INVITE (§8.1.1, §13.2.1), with an SDP offer when ``sdp`` is given."""
    fields = [
        ("Via", me.via(branch)),
        ("Max-Forwards", "70"),
        ("From", me.from_value(tag)),
        ("To", f"<{to_uri}>"),
        ("Call-ID", call_id),
        ("CSeq", f"{cseq} INVITE"),
        ("Contact", f"<{me.contact_uri}>"),
        ("User-Agent", me.user_agent),
        ("Allow", "INVITE, ACK, BYE, CANCEL, OPTIONS, UPDATE, INFO"),
        *extra_headers,
    ]
    if sdp:
        fields.append(("Content-Type", "application/sdp"))
    return Request(method="INVITE", uri=request_uri, headers=Headers(fields), body=sdp)


def build_register(
    me: Originator,
    *,
    registrar_uri: str,
    call_id: str,
    tag: str,
    branch: str,
    cseq: int,
    expires: int,
    extra_headers: tuple[tuple[str, str], ...] = (),
) -> Request:
    """A REGISTER binding our contact to our address-of-record (§10.2)."""
    fields = [
        ("Via", me.via(branch)),
        ("Max-Forwards", "70"),
        ("From", me.from_value(tag)),
        ("To", f"<{me.from_uri}>"),
        ("Call-ID", call_id),
        ("CSeq", f"{cseq} REGISTER"),
        ("Contact", f"<{me.contact_uri}>"),
        ("Expires", str(expires)),
        ("User-Agent", me.user_agent),
        *extra_headers,
    ]
    return Request(method="REGISTER", uri=registrar_uri, headers=Headers(fields))


def build_cancel(invite: Request) -> Request:
    """CANCEL for our pending INVITE (§9.1): same Request-URI, top Via, Call-ID, From, To."""
    keep = ("via", "from", "to", "call-id", "route")
    fields = [(f.name, f.value) for f in invite.headers if f.key in keep]
    # only the top Via: our own
    vias = [i for i, f in enumerate(fields) if f[0].lower() in ("via", "v")]
    fields = [f for i, f in enumerate(fields) if i not in vias[1:]]
    fields += [("Max-Forwards", "70"), ("CSeq", f"{invite.cseq().seq} CANCEL")]
    return Request(method="CANCEL", uri=invite.uri, headers=Headers(fields))


def build_ack_for_2xx(
    invite: Request, response: Response, *, via: str, body: bytes = b""
) -> Request:
    """ACK for a 2xx (§13.2.2.4): its own branch, the dialog's route set and remote target.

    ``body`` is the SDP answer when the INVITE had no offer and the 2xx carried one (RFC 3264
    §4).
    """
    contacts = response.contact()
    target = str(contacts[0].uri) if contacts else invite.uri
    fields: list[tuple[str, str]] = [
        ("Via", via),
        ("Max-Forwards", "70"),
        ("From", invite.headers.get("from") or ""),
        ("To", response.headers.get("to") or ""),
        ("Call-ID", invite.call_id()),
        ("CSeq", f"{invite.cseq().seq} ACK"),
    ]
    fields += [("Route", str(rr)) for rr in reversed(response.record_route())]
    if body:
        fields.append(("Content-Type", "application/sdp"))
    return Request(method="ACK", uri=target, headers=Headers(fields), body=body)


@dataclass(frozen=True, slots=True)
class Credentials:
    """What we answer a digest challenge with (RFC 3261 §22.2)."""

    username: str
    password: str = field(repr=False)


# RFC 3261 §22.2/§22.3: which header carries the challenge, and which the answer.
_AUTH_HEADERS = {
    401: ("www-authenticate", "Authorization"),
    407: ("proxy-authenticate", "Proxy-Authorization"),
}


def with_authorization(
    request: Request, response: Response, credentials: Credentials, *, via: str, cnonce: str
) -> Request | None:
    """``request`` resent with credentials for the 401/407 ``response`` (§22.2).

    The retry keeps Call-ID, From (tag) and To, takes a new branch (``via``) and the next
    CSeq number (§8.1.3.5). Returns None when the response carries no challenge we can answer.
    """
    if response.status not in _AUTH_HEADERS:
        return None
    challenge_header, answer_header = _AUTH_HEADERS[response.status]
    challenge = choose_challenge(response.headers.values(challenge_header))
    if challenge is None:
        return None
    answer = build_authorization(
        challenge,
        username=credentials.username,
        password=credentials.password,
        method=request.method,
        uri=request.uri,
        cnonce=cnonce,
        body=request.body,
    )
    cseq = request.cseq()
    headers = (
        request.headers.with_set("Via", via)
        .with_set("CSeq", f"{cseq.seq + 1} {cseq.method}")
        .without(answer_header)
        .with_added(answer_header, answer)
    )
    return Request(method=request.method, uri=request.uri, headers=headers, body=request.body)


def granted_expires(response: Response, contact_uri: str) -> int | None:
    """How long the registrar keeps our binding (§10.2.4), or None when it does not say.

    The ``expires`` parameter of the Contact naming us wins over the Expires header.
    """
    try:
        contacts = response.contact()
    except SipParseError:
        contacts = []
    for contact in contacts:
        value = contact.param("expires")
        if str(contact.uri) == contact_uri and value is not None and value.isdigit():
            return int(value)
    header = response.headers.get("expires")
    return int(header) if header is not None and header.strip().isdigit() else None
