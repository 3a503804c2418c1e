"""Blind transfer by REFER: the referrer's side of RFC 3515, with sipfrag NOTIFYs (RFC 3420).

Theory of operation
-------------------
We are in a confirmed dialog with the caller (the *transferee*) and want it to call staff
(the *transfer target*) instead of us. We send REFER in that dialog with ``Refer-To:
<target>`` and ``Referred-By: <us>`` (RFC 3515 §2.4.1, RFC 3892); the REFER is a plain
non-INVITE client transaction. A 2xx (202 Accepted) creates an implicit subscription to the
``refer`` event (§2.4.4), and the transferee reports how its INVITE to the target fares in
NOTIFYs whose body is a ``message/sipfrag`` holding that INVITE's status line (§2.4.5):
``SIP/2.0 100 Trying``, then ``SIP/2.0 200 OK`` or a failure such as ``SIP/2.0 503 Service
Unavailable``. ``Subscription-State: terminated`` ends the subscription (§2.4.7).

`ReferSubscription` is one transfer, sans-I/O: the UA feeds it the REFER's final response
(``on_response``), each NOTIFY in the dialog (`answer_notify`), the passing of time
(``handle_timer``) and the end of the call (``on_call_ended``); it returns the events below
and the status to answer each NOTIFY with. States and inputs:

    TRYING ──2xx to REFER / first NOTIFY──> ACCEPTED ──sipfrag 2xx──> SUCCEEDED
       │                                       ├──sipfrag 1xx──> ACCEPTED
       │                                       ├──transferee's BYE──> SUCCEEDED
       │                                       └──sipfrag >= 300, terminated without a
       │                                          final status, no final NOTIFY in time,
       │                                          call ended──> FAILED
       └──3xx-6xx to REFER, Timer F (408), call ended──> FAILED

SUCCEEDED and FAILED take every later input and stay put: the outcome is reported once.

A transferee that hangs up on us after accepting is counted a success: many phones and
PBXs send BYE to the transferor as soon as their call to the target is up, before (or
instead of) the final NOTIFY. A failure leaves the call as it was: the UA keeps the dialog
and the application goes on talking to the caller.

Timers. The REFER transaction has Timer F (64*T1) of its own. Once accepted, the final NOTIFY
must come within ``notify_timeout_s`` (30 s by default: long enough for the target to ring
a few times, short enough that a caller left waiting is soon spoken to again). After that
deadline the subscription is dropped, so a late NOTIFY gets 481, which ends the
subscription on the transferee's side too (RFC 6665 §4.1.3).

NOTIFY matching (RFC 3515 §2.4.6, RFC 6665 §4.1.3, §8.2.1): ``Event: refer``, and an ``id``
parameter, when present, equal to the REFER's CSeq number; another event package gets 489
Bad Event, a refer NOTIFY with no subscription it belongs to gets 481, a sipfrag we cannot
read gets 400 (the subscription state in its headers is still honoured).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum
from typing import Final, TypeAlias

from sip.errors import SipStateError
from sip.message import Request

NOTIFY_TIMEOUT_SECONDS: Final = 30.0

# RFC 3420 §3: a sipfrag starts with a start line; for refer it is the Status-Line
# (RFC 3261 §25.1: Status-Line = SIP-Version SP Status-Code SP Reason-Phrase CRLF).
_STATUS_LINE: Final = re.compile(rb"\A\s*SIP/2\.0[ \t]+([1-6][0-9]{2})(?:[ \t]|\r|\n|\Z)")


class ReferState(Enum):
    """Where a transfer is."""

    TRYING = "trying"  # REFER sent, no final response yet
    ACCEPTED = "accepted"  # 2xx to REFER (or a NOTIFY): waiting for the final sipfrag
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class ReferInput(Enum):
    """What moves a transfer."""

    ACCEPT = "accept"  # a 2xx to the REFER
    REJECT = "reject"  # a 3xx-6xx to the REFER, or Timer F
    PROGRESS = "progress"  # a NOTIFY with a 1xx sipfrag
    SUCCESS = "success"  # a NOTIFY with a 2xx sipfrag, or the transferee's BYE once accepted
    FAILURE = "failure"  # a failed sipfrag, a subscription ended early, a deadline, the call


_DECIDED: Final = (ReferState.SUCCEEDED, ReferState.FAILED)

TRANSITIONS: dict[tuple[ReferState, ReferInput], ReferState] = {
    (ReferState.TRYING, ReferInput.ACCEPT): ReferState.ACCEPTED,
    (ReferState.TRYING, ReferInput.REJECT): ReferState.FAILED,
    # A NOTIFY may overtake the 202 (RFC 6665 §4.1.2.4): it implies the acceptance.
    (ReferState.TRYING, ReferInput.PROGRESS): ReferState.ACCEPTED,
    (ReferState.TRYING, ReferInput.SUCCESS): ReferState.SUCCEEDED,
    (ReferState.TRYING, ReferInput.FAILURE): ReferState.FAILED,
    (ReferState.ACCEPTED, ReferInput.ACCEPT): ReferState.ACCEPTED,  # the 202 after a NOTIFY
    (ReferState.ACCEPTED, ReferInput.REJECT): ReferState.FAILED,
    (ReferState.ACCEPTED, ReferInput.PROGRESS): ReferState.ACCEPTED,
    (ReferState.ACCEPTED, ReferInput.SUCCESS): ReferState.SUCCEEDED,
    (ReferState.ACCEPTED, ReferInput.FAILURE): ReferState.FAILED,
}
for _decided in _DECIDED:  # the outcome is final: late inputs change nothing
    for _input in ReferInput:
        TRANSITIONS[(_decided, _input)] = _decided


class TransferFailure(Enum):
    """Why a transfer failed (a metric label: no PHI)."""

    REJECTED = "rejected"  # 3xx-6xx to REFER (405/501: the peer does not do REFER; 603)
    TIMEOUT = "timeout"  # no final response to REFER (Timer F), or 408
    TARGET_FAILED = "target_failed"  # the transferee's INVITE to the target failed
    SUBSCRIPTION_ENDED = "subscription_ended"  # terminated before a final status
    NO_NOTIFY = "no_notify"  # accepted, but no final NOTIFY within the deadline
    CALL_ENDED = "call_ended"  # the call ended before an outcome


@dataclass(frozen=True, slots=True)
class TransferAccepted:
    """The transferee accepted our REFER; ``status`` is None when a NOTIFY said so first."""

    call_id: str
    status: int | None


@dataclass(frozen=True, slots=True)
class TransferSucceeded:
    """The caller reached the target; we end our leg (unless the transferee did).

    ``status`` is the sipfrag's 2xx, or None when the transferee hung up after accepting.
    """

    call_id: str
    status: int | None


@dataclass(frozen=True, slots=True)
class TransferFailed:
    """The transfer did not happen; the call goes on. ``status`` where one applies."""

    call_id: str
    reason: TransferFailure
    status: int | None = None


TransferEvent: TypeAlias = TransferAccepted | TransferSucceeded | TransferFailed


@dataclass(frozen=True, slots=True)
class NotifyAnswer:
    """How to answer one NOTIFY, and what it told us."""

    status: int
    events: tuple[TransferEvent, ...] = field(default=())


def sipfrag_status(body: bytes) -> int | None:
    """The status code of a ``message/sipfrag`` Status-Line (RFC 3420), or None."""
    match = _STATUS_LINE.match(body)
    return int(match.group(1)) if match else None


def _token(value: str | None) -> tuple[str, dict[str, str]]:
    """``"terminated;reason=noresource"`` -> ``("terminated", {"reason": "noresource"})``."""
    parts = (value or "").split(";")
    params: dict[str, str] = {}
    for part in parts[1:]:
        name, _, val = part.partition("=")
        params[name.strip().lower()] = val.strip().strip('"')
    return parts[0].strip().lower(), params


class ReferSubscription:
    """One blind transfer: our REFER and the implicit subscription it creates."""

    def __init__(
        self,
        call_id: str,
        refer_cseq: int,
        *,
        notify_timeout_s: float = NOTIFY_TIMEOUT_SECONDS,
    ) -> None:
        """Start tracking a REFER with CSeq number ``refer_cseq``."""
        self.call_id = call_id
        self.refer_cseq = refer_cseq
        self.state = ReferState.TRYING
        self.subscribed = True  # NOTIFYs for it are still expected (and answered 200)
        self._notify_timeout_s = notify_timeout_s
        self._deadline: float | None = None

    @property
    def decided(self) -> bool:
        """Whether the outcome has been reported."""
        return self.state in _DECIDED

    # ----------------------------------------------------------------- inputs
    def on_response(self, status: int, now: float) -> list[TransferEvent]:
        """The REFER's final response (408 also for Timer F)."""
        if 200 <= status < 300:
            return self._arm(now, self._advance(ReferInput.ACCEPT, status))
        self.subscribed = False
        reason = TransferFailure.TIMEOUT if status == 408 else TransferFailure.REJECTED
        return self._advance(ReferInput.REJECT, status, reason)

    def on_notify(self, request: Request, now: float) -> NotifyAnswer:
        """A refer NOTIFY that `matches` this subscription."""
        state, _ = _token(request.headers.get("subscription-state"))
        status = sipfrag_status(request.body)
        events: list[TransferEvent] = []
        if status is not None and status < 200:
            events = self._arm(now, self._advance(ReferInput.PROGRESS, status))
        elif status is not None and status < 300:
            events = self._advance(ReferInput.SUCCESS, status)
        elif status is not None:
            events = self._advance(ReferInput.FAILURE, status, TransferFailure.TARGET_FAILED)
        if state == "terminated":  # RFC 3515 §2.4.7: the last NOTIFY of this subscription
            self.subscribed = False
            if not self.decided:
                failure = TransferFailure.SUBSCRIPTION_ENDED
                events += self._advance(ReferInput.FAILURE, None, failure)
        return NotifyAnswer(400 if status is None else 200, tuple(events))

    def handle_timer(self, now: float) -> list[TransferEvent]:
        """No final NOTIFY by the deadline: give up, and stop answering NOTIFYs 200."""
        if self._deadline is None or now < self._deadline:
            return []
        self._deadline = None
        self.subscribed = False
        return self._advance(ReferInput.FAILURE, None, TransferFailure.NO_NOTIFY)

    def on_call_ended(self, *, by_transferee: bool) -> list[TransferEvent]:
        """The call ended; ``by_transferee``: its BYE, which after acceptance means success."""
        self.subscribed = False
        if by_transferee and self.state is ReferState.ACCEPTED:
            return self._advance(ReferInput.SUCCESS, None)
        return self._advance(ReferInput.FAILURE, None, TransferFailure.CALL_ENDED)

    def next_deadline(self) -> float | None:
        """When we stop waiting for the final NOTIFY (Timer F covers the REFER itself)."""
        return self._deadline

    def matches(self, request: Request) -> bool:
        """Whether a refer NOTIFY belongs to this subscription (RFC 3515 §2.4.6 ``id``)."""
        if not self.subscribed:
            return False
        _, params = _token(request.headers.get("event"))
        return "id" not in params or params["id"] == str(self.refer_cseq)

    # ----------------------------------------------------------------- transitions
    def _arm(self, now: float, events: list[TransferEvent]) -> list[TransferEvent]:
        """Once accepted, the final NOTIFY is due within ``notify_timeout_s``."""
        if self.state is ReferState.ACCEPTED and self._deadline is None:
            self._deadline = now + self._notify_timeout_s
        return events

    def _advance(
        self, step: ReferInput, status: int | None, failure: TransferFailure | None = None
    ) -> list[TransferEvent]:
        try:
            new = TRANSITIONS[(self.state, step)]
        except KeyError:  # pragma: no cover - the table is total
            raise SipStateError(
                f"transfer cannot take {step.value!r} in state {self.state.value!r}"
            ) from None
        old, self.state = self.state, new
        if old is new:
            return []
        events: list[TransferEvent] = []
        if old is ReferState.TRYING and new is not ReferState.FAILED:
            accepted_by = status if step is ReferInput.ACCEPT else None
            events.append(TransferAccepted(self.call_id, accepted_by))
        if new is ReferState.SUCCEEDED:
            self._deadline = None
            events.append(TransferSucceeded(self.call_id, status))
        elif new is ReferState.FAILED:
            self._deadline = None
            events.append(TransferFailed(self.call_id, failure or TransferFailure.REJECTED, status))
        return events


def answer_notify(
    subscription: ReferSubscription | None, request: Request, now: float
) -> NotifyAnswer:
    """How to answer an in-dialog NOTIFY, given the call's transfer (if any)."""
    package, _ = _token(request.headers.get("event"))
    if package != "refer":
        return NotifyAnswer(489)  # RFC 6665 §8.2.1: we subscribe to no other package
    if subscription is None or not subscription.matches(request):
        return NotifyAnswer(481)  # RFC 6665 §4.1.3: no such subscription
    return subscription.on_notify(request, now)


__all__ = [
    "NOTIFY_TIMEOUT_SECONDS",
    "TRANSITIONS",
    "NotifyAnswer",
    "ReferInput",
    "ReferState",
    "ReferSubscription",
    "TransferAccepted",
    "TransferEvent",
    "TransferFailed",
    "TransferFailure",
    "TransferSucceeded",
    "answer_notify",
    "sipfrag_status",
]
