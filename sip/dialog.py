"""Dialog state (RFC 3261 §12): identifiers, CSeq, route set, remote target.

Theory of operation
-------------------
A `Dialog` is a frozen value; every change returns a new one. States:

    EARLY ──(2xx sent or received, ACK)──> CONFIRMED ──(BYE either way)──> TERMINATED
      └───────────(non-2xx final, CANCEL)─────────────────────────────────────┘

The UAS creates it from an INVITE (§12.1.1): the route set is the Record-Route list in order,
the remote target is the Contact, the remote sequence number is the INVITE's CSeq. The UAC
creates it from a 2xx (§12.1.2): route set reversed. In-dialog requests we send (§12.2.1.1)
take the next local CSeq, the remote target as Request-URI, and the route set as Route.
In-dialog requests we receive must carry a CSeq above the last one (§12.2.2), otherwise 500.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum

from sip.errors import SipStateError
from sip.headers import Headers
from sip.message import Request, Response


class DialogState(Enum):
    """Where a dialog is in its life."""

    EARLY = "early"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


@dataclass(frozen=True, slots=True)
class DialogId:
    """Call-ID plus the two tags (§12): how in-dialog requests find their dialog."""

    call_id: str
    local_tag: str
    remote_tag: str


@dataclass(frozen=True, slots=True)
class Dialog:
    """One side's view of a dialog."""

    id: DialogId
    state: DialogState
    local_uri: str  # the From (ours) or To (theirs) name-addr text, without tag
    remote_uri: str
    remote_target: str
    route_set: tuple[str, ...]
    local_cseq: int
    remote_cseq: int | None
    secure: bool = False

    @classmethod
    def as_uas(cls, invite: Request, *, local_tag: str, initial_cseq: int) -> Dialog:
        """The dialog a UAS creates when it answers ``invite`` (§12.1.1)."""
        contacts = invite.contact()
        remote_target = str(contacts[0].uri) if contacts else str(invite.from_().uri)
        from_ = invite.from_()
        to = invite.to()
        return cls(
            id=DialogId(invite.call_id(), local_tag, from_.tag or ""),
            state=DialogState.EARLY,
            local_uri=str(replace(to, params=_no_tag(to.params))),
            remote_uri=str(replace(from_, params=_no_tag(from_.params))),
            remote_target=remote_target,
            route_set=tuple(str(rr) for rr in invite.record_route()),
            local_cseq=initial_cseq,
            remote_cseq=invite.cseq().seq,
            secure=invite.request_uri().scheme == "sips",
        )

    @classmethod
    def as_uac(cls, invite: Request, response: Response) -> Dialog:
        """The dialog a UAC creates from a 2xx (or 1xx with To tag) to ``invite`` (§12.1.2)."""
        contacts = response.contact()
        to = response.to()
        from_ = invite.from_()
        return cls(
            id=DialogId(invite.call_id(), from_.tag or "", to.tag or ""),
            state=DialogState.CONFIRMED if 200 <= response.status < 300 else DialogState.EARLY,
            local_uri=str(replace(from_, params=_no_tag(from_.params))),
            remote_uri=str(replace(to, params=_no_tag(to.params))),
            remote_target=str(contacts[0].uri) if contacts else invite.uri,
            route_set=tuple(str(rr) for rr in reversed(response.record_route())),
            local_cseq=invite.cseq().seq,
            remote_cseq=None,
        )

    def confirmed(self) -> Dialog:
        """The dialog after the 2xx/ACK exchange."""
        if self.state is DialogState.TERMINATED:
            raise SipStateError("cannot confirm a terminated dialog")
        return replace(self, state=DialogState.CONFIRMED)

    def terminated(self) -> Dialog:
        """The dialog after BYE (or a failed INVITE)."""
        return replace(self, state=DialogState.TERMINATED)

    def accept_remote_cseq(self, request: Request) -> Dialog | None:
        """Check an in-dialog request's CSeq (§12.2.2); None when it is out of order."""
        seq = request.cseq().seq
        if request.method in ("ACK", "CANCEL"):
            return self
        if self.remote_cseq is not None and seq <= self.remote_cseq:
            return None
        return replace(self, remote_cseq=seq)

    def with_remote_target(self, request_or_response: Request | Response) -> Dialog:
        """A target refresh (§12.2.2): a re-INVITE's or its 2xx's Contact replaces it."""
        contacts = request_or_response.contact()
        if not contacts:
            return self
        return replace(self, remote_target=str(contacts[0].uri))

    def next_request(
        self,
        method: str,
        *,
        via: str,
        contact: str | None = None,
        extra_headers: tuple[tuple[str, str], ...] = (),
        body: bytes = b"",
        ack_for: int | None = None,
    ) -> tuple[Dialog, Request]:
        """Build an in-dialog request (§12.2.1.1) and the dialog with its CSeq taken.

        An ACK takes no CSeq of its own: it carries its INVITE's number (§13.2.2.4), which is
        ``ack_for`` when given (another request may have been sent since), else the last one.
        """
        if self.state is DialogState.TERMINATED and method != "ACK":
            raise SipStateError(f"cannot send {method} in a terminated dialog")
        if method == "ACK":
            seq = self.local_cseq if ack_for is None else ack_for
        else:
            seq = self.local_cseq + 1
        fields: list[tuple[str, str]] = [
            ("Via", via),
            ("Max-Forwards", "70"),
            ("From", f"{self.local_uri};tag={self.id.local_tag}"),
            ("To", f"{self.remote_uri};tag={self.id.remote_tag}"),
            ("Call-ID", self.id.call_id),
            ("CSeq", f"{seq} {method}"),
        ]
        fields.extend(("Route", route) for route in self.route_set)
        if contact is not None:
            fields.append(("Contact", contact))
        fields.extend(extra_headers)
        request = Request(method=method, uri=self.remote_target, headers=Headers(fields), body=body)
        return replace(self, local_cseq=max(seq, self.local_cseq)), request


def _no_tag(params: tuple[tuple[str, str | None], ...]) -> tuple[tuple[str, str | None], ...]:
    return tuple(p for p in params if p[0].lower() != "tag")
