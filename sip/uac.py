"""Requests we originate outside a dialog (RFC 3261 §8.1.1): INVITE, REGISTER, CANCEL, ACK.

Pure builders. Identifiers (branch, tag, Call-ID) are passed in, so tests are deterministic
and the `UserAgent` owns the randomness.
"""

from __future__ import annotations

from dataclasses import dataclass

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

    def via(self, branch: str) -> str:
        """A Via value with ``branch`` and rport (RFC 3581) requested."""
        return f"SIP/2.0/{self.transport} {self.sent_by};branch={branch};rport"

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


def build_ack_for_2xx(invite: Request, response: Response, *, via: str) -> Request:
    """ACK for a 2xx (§13.2.2.4): its own branch, the dialog's route set and remote target."""
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
    return Request(method="ACK", uri=target, headers=Headers(fields))
