"""Tier 2: blind transfer by REFER (RFC 3515) from our UA, on a virtual network and clock.

The UAS node is VoiceAgent: it answered the caller and then transfers them. The UAC node is
the caller's UserAgent (ours too). It does not serve REFER, which is exactly how a peer
without transfer support behaves (405); for the other flows the test plays the transferee by
hand: the REFER is taken off the wire, answered with a status of the test's choosing, and
NOTIFYs are sent as the caller's dialog would send them (its own CSeq, tags and Via, through
its own transaction layer so they are retransmitted and answered like real ones).
"""

from __future__ import annotations

import itertools

import pytest

from sip.call import CallConfirmed, CallEnded, CallState, EndReason, IncomingCall
from sip.errors import SipStateError
from sip.message import Request, Response, make_response
from sip.refer import (
    TRANSITIONS,
    ReferInput,
    ReferState,
    TransferAccepted,
    TransferEvent,
    TransferFailed,
    TransferFailure,
    TransferSucceeded,
    sipfrag_status,
)
from sip.transaction import SipTimers
from sip.useragent import UserAgentConfig
from tests.fakes import (
    UAC_ADDRESS,
    UAS_ADDRESS,
    Datagram,
    Pair,
    is_,
    originator,
    pair,
    summaries,
)

T1 = 0.5
TARGET = "sip:frontdesk@127.0.0.40:5090"
AGENT_URI = f"sip:agent@{UAS_ADDRESS.host}:{UAS_ADDRESS.port}"
SDP = (
    b"v=0\r\no=x 1 1 IN IP4 127.0.0.10\r\ns=-\r\nc=IN IP4 127.0.0.10\r\nt=0 0\r\n"
    b"m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)
TRANSFER_EVENTS = (TransferAccepted, TransferSucceeded, TransferFailed)


class Transferee:
    """The caller's side of a confirmed call, playing the transferee by hand."""

    def __init__(self, p: Pair, call_id: str) -> None:
        self.p = p
        self.call_id = call_id
        self._branches = itertools.count(1)

    def take_refer(self) -> Request:
        """Our REFER, taken off the wire before the caller's UA could answer it."""
        dropped = [d for d in self.p.net.dropped if d.summary == "REFER"]
        assert len(dropped) == 1, summaries(self.p.net.dropped)
        refer = dropped[0].message()
        assert isinstance(refer, Request)
        return refer

    def answer(self, refer: Request, status: int) -> None:
        """Answer the REFER (to the address it came from)."""
        self.p.net.inject(bytes(make_response(refer, status)), UAC_ADDRESS, self.p.uas)

    def notify(
        self,
        sipfrag: str,
        state: str = "active;expires=60",
        *,
        event: str = "refer",
        content_type: str = "message/sipfrag;version=2.0",
    ) -> Request:
        """A NOTIFY in the caller's dialog, sent through the caller's transaction layer."""
        call = self.p.uac.ua.calls[self.call_id]
        assert call.dialog is not None
        branch = f"z9hG4bKn{next(self._branches)}"
        via = f"SIP/2.0/UDP {UAC_ADDRESS.host}:{UAC_ADDRESS.port};branch={branch}"
        headers = (
            ("Event", event),
            ("Subscription-State", state),
            ("Content-Type", content_type),
        )
        call.dialog, request = call.dialog.next_request(
            "NOTIFY", via=via, extra_headers=headers, body=sipfrag.encode()
        )
        self.p.uac.ua.layer.send_request(request, UAS_ADDRESS, self.p.now)
        self.p.flush()
        return request

    def answers_to_notify(self) -> list[int]:
        """The statuses our UA gave the NOTIFYs, in order."""
        return [r.status for r in responses(self.p.net.sent(by=self.p.uas)) if is_notify(r)]


def responses(datagrams: list[Datagram]) -> list[Response]:
    return [m for d in datagrams if isinstance(m := d.message(), Response)]


def is_notify(response: Response) -> bool:
    return response.cseq().method == "NOTIFY"


def transfer_events(p: Pair) -> list[TransferEvent]:
    """What VoiceAgent's UA reported about the transfer, in order."""
    return [e for e in p.uas.events if isinstance(e, TRANSFER_EVENTS)]


def confirmed_call(uas: UserAgentConfig | None = None) -> tuple[Pair, str]:
    """The caller INVITEs VoiceAgent, which answers; both sides confirmed."""
    p = pair(timers=SipTimers(t1=T1), uas=uas)
    call_id = p.uac.ua.invite(AGENT_URI, UAS_ADDRESS, SDP, p.now)
    p.flush()
    assert p.uas.one(IncomingCall).call_id == call_id
    p.uas.ua.answer(call_id, SDP, p.now)
    p.flush()
    assert p.uac.one(CallConfirmed) and p.uas.one(CallConfirmed)
    return p, call_id


def refer_sent(uas: UserAgentConfig | None = None) -> tuple[Pair, Transferee, Request]:
    """VoiceAgent has sent REFER; the transferee holds it, unanswered."""
    p, call_id = confirmed_call(uas)
    p.net.drop(is_("REFER"))
    p.uas.ua.refer(call_id, TARGET, p.now)
    p.flush()
    transferee = Transferee(p, call_id)
    return p, transferee, transferee.take_refer()


def accepted() -> tuple[Pair, Transferee]:
    p, transferee, refer = refer_sent()
    transferee.answer(refer, 202)
    assert transfer_events(p) == [TransferAccepted(transferee.call_id, 202)]
    return p, transferee


def call_goes_on(p: Pair, call_id: str) -> None:
    """The call is still up on both sides, and ends normally when the caller hangs up."""
    assert p.uas.ua.calls[call_id].state is CallState.CONFIRMED
    assert not p.net.sent("BYE", by=p.uas)
    p.uac.ua.hangup(call_id, p.now)
    p.flush()
    assert p.uas.one(CallEnded) == CallEnded(call_id, EndReason.REMOTE_BYE)


# ---------------------------------------------------------------------------- the REFER
def test_refer_is_sent_in_the_callers_dialog_naming_the_target_and_us() -> None:
    p, transferee, refer = refer_sent()
    invite = p.net.sent("INVITE")[0].message()
    ok = p.net.sent("200 INVITE")[0].message()
    assert refer.method == "REFER" and refer.uri == str(invite.contact()[0].uri)
    assert refer.call_id() == transferee.call_id
    assert refer.from_().tag == ok.to().tag and refer.to().tag == invite.from_().tag
    assert refer.cseq().seq == 2  # our dialog's first request after the INVITE's CSeq
    assert refer.headers.values("refer-to") == [f"<{TARGET}>"]
    assert refer.headers.values("referred-by") == [f"<sip:uas@{UAS_ADDRESS.host}>"]
    assert refer.headers.values("contact") == [f"<sip:uas@{UAS_ADDRESS.host}:5060>"]
    assert transfer_events(p) == []


def test_refer_accepted_then_notify_100_and_200_succeeds_and_we_hang_up() -> None:
    p, transferee = accepted()
    call_id = transferee.call_id
    transferee.notify("SIP/2.0 100 Trying\r\n")
    assert transferee.answers_to_notify() == [200]
    assert transfer_events(p) == [TransferAccepted(call_id, 202)]  # progress is no outcome
    assert not p.net.sent("BYE")
    transferee.notify("SIP/2.0 200 OK\r\n", "terminated;reason=noresource")
    assert transferee.answers_to_notify() == [200, 200]
    assert transfer_events(p) == [TransferAccepted(call_id, 202), TransferSucceeded(call_id, 200)]
    flow = summaries(p.net.wire)
    assert flow[flow.index("REFER") :] == [
        "REFER", "202 REFER", "NOTIFY", "200 NOTIFY", "NOTIFY", "200 NOTIFY", "BYE", "200 BYE"
    ]  # fmt: skip
    assert p.uas.one(CallEnded) == CallEnded(call_id, EndReason.TRANSFERRED)
    assert p.uac.one(CallEnded) == CallEnded(call_id, EndReason.REMOTE_BYE)
    assert not p.uas.ua.calls and not p.uac.ua.calls
    # the success is reported before the call ends, so the application learns both in order
    assert p.uas.events.index(transfer_events(p)[-1]) < p.uas.events.index(p.uas.one(CallEnded))


@pytest.mark.parametrize("status", [603, 486, 403])
def test_refer_declined_fails_and_the_call_goes_on(status: int) -> None:
    p, transferee, refer = refer_sent()
    transferee.answer(refer, status)
    assert transfer_events(p) == [
        TransferFailed(transferee.call_id, TransferFailure.REJECTED, status)
    ]
    transferee.notify("SIP/2.0 200 OK\r\n", "terminated")  # no subscription was created
    assert transferee.answers_to_notify() == [481]
    call_goes_on(p, transferee.call_id)


def test_a_peer_without_refer_answers_405_and_the_call_goes_on() -> None:
    """The caller's own UserAgent, which serves no REFER, is that peer: no hand-played part."""
    p, call_id = confirmed_call()
    p.uas.ua.refer(call_id, TARGET, p.now)
    p.flush()
    (refused,) = [r for r in responses(p.net.sent(by=p.uac)) if r.cseq().method == "REFER"]
    allowed = ",".join(refused.headers.values("allow"))
    assert refused.status == 405 and "INVITE" in allowed and "REFER" not in allowed
    assert transfer_events(p) == [TransferFailed(call_id, TransferFailure.REJECTED, 405)]
    p.net.run_for(64 * T1 + 1)  # nothing is retried or timed out later
    assert len(p.net.sent("REFER")) == 1 and len(transfer_events(p)) == 1
    call_goes_on(p, call_id)


def test_an_unanswered_refer_times_out_with_timer_f_and_the_call_goes_on() -> None:
    p, call_id = confirmed_call()
    p.net.drop(is_("REFER"), times=100)
    p.uas.ua.refer(call_id, TARGET, p.now)
    p.net.run_until(64 * T1 - 0.01)
    assert transfer_events(p) == []
    # RFC 3261 §17.1.2.2: Timer E from T1 doubling to T2 (4 s): 0, .5, 1.5, 3.5, 7.5, 11.5...
    sent_at = [d.at for d in p.net.sent("REFER")]
    assert sent_at[:6] == [0.0, 0.5, 1.5, 3.5, 7.5, 11.5]
    p.net.run_until(64 * T1)
    assert transfer_events(p) == [TransferFailed(call_id, TransferFailure.TIMEOUT, 408)]
    call_goes_on(p, call_id)


# ---------------------------------------------------------------------------- NOTIFYs
def test_a_failed_sipfrag_fails_the_transfer_and_the_call_goes_on() -> None:
    p, transferee = accepted()
    call_id = transferee.call_id
    transferee.notify("SIP/2.0 100 Trying\r\n")
    transferee.notify("SIP/2.0 503 Service Unavailable\r\n")
    assert transfer_events(p)[1:] == [TransferFailed(call_id, TransferFailure.TARGET_FAILED, 503)]
    # The subscription is still active, so its last NOTIFY is answered 200, not 481.
    transferee.notify("SIP/2.0 503 Service Unavailable\r\n", "terminated;reason=noresource")
    assert transferee.answers_to_notify() == [200, 200, 200]
    assert len(transfer_events(p)) == 2  # reported once
    call_goes_on(p, call_id)


def test_no_final_notify_within_30_s_fails_and_a_late_notify_gets_481() -> None:
    p, transferee = accepted()
    transferee.notify("SIP/2.0 100 Trying\r\n")
    p.net.run_until(29.99)  # the REFER's 202 arrived at 0: the final NOTIFY is due by 30
    assert transfer_events(p) == [TransferAccepted(transferee.call_id, 202)]
    p.net.run_until(30.0)
    assert transfer_events(p)[1:] == [TransferFailed(transferee.call_id, TransferFailure.NO_NOTIFY)]
    transferee.notify("SIP/2.0 200 OK\r\n", "terminated")
    assert transferee.answers_to_notify() == [200, 481]  # RFC 6665 §4.1.3: no subscription
    call_goes_on(p, transferee.call_id)


def test_the_notify_deadline_is_configurable() -> None:
    config = UserAgentConfig(me=originator(UAS_ADDRESS, "uas"), refer_notify_seconds=5.0)
    p, transferee, refer = refer_sent(uas=config)
    p.clock.advance(1.0)
    transferee.answer(refer, 202)  # the deadline runs from the acceptance
    p.net.run_until(5.99)
    assert len(transfer_events(p)) == 1
    p.net.run_until(6.0)
    assert transfer_events(p)[-1] == TransferFailed(transferee.call_id, TransferFailure.NO_NOTIFY)


def test_subscription_terminated_without_a_final_status_fails() -> None:
    p, transferee = accepted()
    transferee.notify("SIP/2.0 100 Trying\r\n", "terminated;reason=noresource")
    assert transfer_events(p)[1:] == [
        TransferFailed(transferee.call_id, TransferFailure.SUBSCRIPTION_ENDED)
    ]
    call_goes_on(p, transferee.call_id)


def test_a_notify_that_overtakes_the_202_implies_acceptance() -> None:
    p, transferee, refer = refer_sent()
    call_id = transferee.call_id
    transferee.notify("SIP/2.0 100 Trying\r\n")
    assert transfer_events(p) == [TransferAccepted(call_id, None)]
    transferee.answer(refer, 202)  # late: nothing new
    assert transfer_events(p) == [TransferAccepted(call_id, None)]
    transferee.notify("SIP/2.0 200 OK\r\n", "terminated")
    assert transfer_events(p)[-1] == TransferSucceeded(call_id, 200)
    assert p.uas.one(CallEnded).reason is EndReason.TRANSFERRED


def test_the_transferee_hanging_up_after_202_counts_as_success() -> None:
    p, transferee = accepted()
    transferee.notify("SIP/2.0 100 Trying\r\n")
    p.uac.ua.hangup(transferee.call_id, p.now)  # its call to the target is up: it leaves us
    p.flush()
    assert transfer_events(p)[1:] == [TransferSucceeded(transferee.call_id, None)]
    assert p.uas.one(CallEnded) == CallEnded(transferee.call_id, EndReason.REMOTE_BYE)
    assert not p.net.sent("BYE", by=p.uas)


def test_hanging_up_before_the_202_fails_the_transfer_once() -> None:
    p, transferee, refer = refer_sent()
    p.uac.ua.hangup(transferee.call_id, p.now)
    p.flush()
    assert transfer_events(p) == [TransferFailed(transferee.call_id, TransferFailure.CALL_ENDED)]
    transferee.answer(refer, 202)  # the call is gone: the late 202 changes nothing
    assert len(transfer_events(p)) == 1


def test_notify_in_a_dialog_with_no_transfer_gets_481() -> None:
    p, call_id = confirmed_call()
    Transferee(p, call_id).notify("SIP/2.0 200 OK\r\n", "terminated")
    assert Transferee(p, call_id).answers_to_notify() == [481]
    assert transfer_events(p) == []
    call_goes_on(p, call_id)


def test_notify_matching_and_bodies() -> None:
    """Another event package gets 489, another subscription's id 481, no sipfrag 400."""
    p, transferee, refer = refer_sent()
    transferee.answer(refer, 202)
    transferee.notify("SIP/2.0 100 Trying\r\n", event="dialog")
    transferee.notify("SIP/2.0 100 Trying\r\n", event=f"refer;id={refer.cseq().seq + 7}")
    transferee.notify("not a status line\r\n")
    transferee.notify("SIP/2.0 100 Trying\r\n", event=f"refer;id={refer.cseq().seq}")
    assert transferee.answers_to_notify() == [489, 481, 400, 200]
    assert transfer_events(p) == [TransferAccepted(transferee.call_id, 202)]


def test_refer_needs_a_confirmed_call_and_one_transfer_at_a_time() -> None:
    p, transferee, _ = refer_sent()
    with pytest.raises(SipStateError, match="already under way"):
        p.uas.ua.refer(transferee.call_id, TARGET, p.now)
    with pytest.raises(SipStateError, match="not confirmed"):
        p.uas.ua.refer("no-such-call", TARGET, p.now)


def test_a_second_transfer_may_follow_a_failed_one() -> None:
    p, transferee, refer = refer_sent()
    transferee.answer(refer, 603)
    p.net.drop(is_("REFER"))
    p.uas.ua.refer(transferee.call_id, TARGET, p.now)
    p.flush()
    second = [d.message() for d in p.net.dropped if d.summary == "REFER"][-1]
    assert isinstance(second, Request)
    assert second.cseq().seq == refer.cseq().seq + 1
    transferee.answer(second, 202)
    transferee.notify("SIP/2.0 200 OK\r\n", "terminated;reason=noresource")
    assert transfer_events(p)[-1] == TransferSucceeded(transferee.call_id, 200)


# ---------------------------------------------------------------------------- pure parts
@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"SIP/2.0 100 Trying\r\n", 100),
        (b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n", 200),
        (b"SIP/2.0 603 Declined", 603),
        (b"SIP/2.0 180 \r\n", 180),  # an empty Reason-Phrase is legal
        (b"\r\nSIP/2.0 486 Busy Here\r\n", 486),
        (b"INVITE sip:x@127.0.0.1 SIP/2.0\r\n", None),  # a request line: not a status
        (b"SIP/2.0 2000 OK\r\n", None),
        (b"SIP/2.0 700 Nope\r\n", None),
        (b"SIP/1.0 200 OK\r\n", None),
        (b"", None),
    ],
)
def test_sipfrag_status_line(body: bytes, status: int | None) -> None:
    assert sipfrag_status(body) == status


def test_the_transition_table_is_total_and_outcomes_are_final() -> None:
    for state in ReferState:
        for step in ReferInput:
            assert (state, step) in TRANSITIONS
    for state in (ReferState.SUCCEEDED, ReferState.FAILED):
        assert {TRANSITIONS[(state, step)] for step in ReferInput} == {state}
