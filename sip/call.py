"""Per-call signalling state and the events a `UserAgent` reports about calls.

Theory of operation
-------------------
A `Call` is the UA's record of one INVITE dialog, ours or theirs:

    OFFERED ──answer()──> ANSWERED ──ACK──> CONFIRMED ──BYE (either side)──> ENDED
       │                     └──no ACK in 64*T1──> (we send BYE) ──> ENDED
       └──reject() / CANCEL──> ENDED
    CALLING ──1xx──> CALLING ──2xx (we ACK)──> CONFIRMED          (our own INVITE)
       └──3xx-6xx / timeout / cancel()──> ENDED

A confirmed call may be transferred with REFER (`sip.refer`); a successful transfer ends it
with our BYE. The transitions live in `CALL_TRANSITIONS`; `Call.advance` looks them up, so
an impossible step (answering a call twice, ACK before an answer) is a clear
`SipStateError`. SDP is carried as opaque bytes: the media layer, not signalling,
negotiates it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from sip.dialog import Dialog
from sip.errors import SipStateError
from sip.layer import Address
from sip.message import Request, Response
from sip.refer import ReferSubscription, TransferAccepted, TransferFailed, TransferSucceeded
from sip.transaction import TransactionKey


class CallState(Enum):
    """Where a call is."""

    OFFERED = "offered"  # INVITE received, not answered yet
    ANSWERED = "answered"  # 2xx sent, waiting for ACK
    CALLING = "calling"  # our INVITE sent, no final response yet
    CONFIRMED = "confirmed"
    ENDED = "ended"


class CallInput(Enum):
    """What moves a call."""

    ANSWER = "answer"
    ACK = "ack"
    ACCEPTED = "2xx"  # a 2xx to our INVITE
    END = "end"


CALL_TRANSITIONS: dict[tuple[CallState, CallInput], CallState] = {
    (CallState.OFFERED, CallInput.ANSWER): CallState.ANSWERED,
    (CallState.OFFERED, CallInput.END): CallState.ENDED,
    (CallState.ANSWERED, CallInput.ACK): CallState.CONFIRMED,
    (CallState.ANSWERED, CallInput.END): CallState.ENDED,
    (CallState.CALLING, CallInput.ACCEPTED): CallState.CONFIRMED,
    (CallState.CALLING, CallInput.END): CallState.ENDED,
    (CallState.CONFIRMED, CallInput.ACCEPTED): CallState.CONFIRMED,  # retransmitted 2xx
    (CallState.CONFIRMED, CallInput.END): CallState.ENDED,
    (CallState.ENDED, CallInput.END): CallState.ENDED,
}


class EndReason(Enum):
    """Why a call ended (a metric label: no PHI)."""

    REMOTE_BYE = "remote_bye"
    LOCAL_BYE = "local_bye"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    NO_ACK = "no_ack"
    FAILED = "failed"
    TIMEOUT = "timeout"
    MAX_DURATION = "max_duration"
    TRANSFERRED = "transferred"  # we sent BYE after a successful REFER (RFC 5589 §6.1)
    DIALOG_GONE = "dialog_gone"  # 481 to our in-dialog request: the peer has no such dialog


@dataclass(slots=True)
class Call:
    """Mutable per-call record kept by the UserAgent (not shared outside it)."""

    call_id: str
    state: CallState
    peer: Address  # where in-dialog requests go: the address the INVITE came from
    invite: Request
    invite_key: TransactionKey | None = None
    dialog: Dialog | None = None
    local_sdp: bytes = b""
    remote_sdp: bytes = b""
    pending_reinvite: TransactionKey | None = None
    hangup_at: float | None = None
    bye_key: TransactionKey | None = None
    cancel_key: TransactionKey | None = None
    last_2xx: Response | None = None  # our offerless INVITE's 2xx, ACKed when we answer it
    ack: Request | None = None  # our ACK for the 2xx, re-sent for each retransmission
    own_offer: TransactionKey | None = None  # our re-INVITE/UPDATE offer awaiting its answer
    auth_attempted: bool = False
    refer: ReferSubscription | None = None  # our blind transfer (sip.refer), the latest one

    def dialog_tag(self) -> str | None:
        """Our tag in this call's dialog (the To tag of our responses)."""
        return self.dialog.id.local_tag if self.dialog is not None else None

    def advance(self, event: CallInput) -> None:
        """Apply ``event`` through `CALL_TRANSITIONS`."""
        try:
            self.state = CALL_TRANSITIONS[(self.state, event)]
        except KeyError:
            raise SipStateError(
                f"call cannot take {event.value!r} in state {self.state.value!r}"
            ) from None


# ---------------------------------------------------------------- events for the application
@dataclass(frozen=True, slots=True)
class IncomingCall:
    """A new INVITE passed §8.2 inspection; answer, ring or reject it.

    ``offer`` is the SDP body (empty for an offerless INVITE: then `UserAgent.answer` must
    be given an offer, and the answer arrives in `CallConfirmed.remote_sdp`).
    """

    call_id: str
    request: Request
    offer: bytes
    source: Address


@dataclass(frozen=True, slots=True)
class CallConfirmed:
    """The dialog is confirmed: ACK received (UAS) or 2xx received and ACKed (UAC)."""

    call_id: str
    remote_sdp: bytes


@dataclass(frozen=True, slots=True)
class OfferReceived:
    """A re-INVITE (or UPDATE) in a confirmed dialog carries a new offer; answer it."""

    call_id: str
    offer: bytes


@dataclass(frozen=True, slots=True)
class CallProgress:
    """A provisional response to our INVITE."""

    call_id: str
    status: int


@dataclass(frozen=True, slots=True)
class CallEnded:
    """The call is over. ``status`` is the final response code where one applies."""

    call_id: str
    reason: EndReason
    status: int | None = None


@dataclass(frozen=True, slots=True)
class RegistrationResult:
    """The outcome of our REGISTER."""

    aor: str
    status: int
    expires: int | None


@dataclass(frozen=True, slots=True)
class InDialogResponse:
    """The final response to a request we sent in a call (re-INVITE, UPDATE, INFO).

    ``status`` 408 also stands for a transaction timeout. ``body`` is the SDP answer to our
    offer when there was one.
    """

    call_id: str
    method: str
    status: int
    body: bytes = b""


@dataclass(frozen=True, slots=True)
class InfoReceived:
    """An in-dialog INFO (some trunks send DTMF as application/dtmf-relay)."""

    call_id: str
    content_type: str | None
    body: bytes


CallEvent = (
    IncomingCall
    | CallConfirmed
    | OfferReceived
    | CallProgress
    | CallEnded
    | RegistrationResult
    | InfoReceived
    | InDialogResponse
    | TransferAccepted
    | TransferSucceeded
    | TransferFailed
)
