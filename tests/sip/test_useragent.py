"""Tier 2: our UserAgent as UAC and as UAS, joined by a virtual network on a virtual clock.

Each test reads like a call-flow diagram: the UAC places a call with ``ua.invite``, the test
plays the UAS application (answer, hold off answering, reject), and the assertions are on
what crossed the wire (``net.wire``) and the call events each side reported. Timers run on
the `FakeClock`; nothing sleeps and nothing opens a socket.
"""

from __future__ import annotations

import secrets

import pytest

from sip.auth import DigestVerifier, build_authorization, parse_challenge
from sip.call import (
    CallConfirmed,
    CallEnded,
    CallProgress,
    CallState,
    EndReason,
    IncomingCall,
    InDialogResponse,
    InfoReceived,
    OfferReceived,
    RegistrationResult,
)
from sip.errors import SipStateError
from sip.layer import Address, LayerConfig
from sip.message import Request, Response
from sip.transaction import SipTimers
from sip.uac import Credentials
from sip.useragent import UserAgentConfig
from tests.fakes import (
    UAC_ADDRESS,
    UAS_ADDRESS,
    Datagram,
    Pair,
    is_,
    make_node,
    originator,
    pair,
    summaries,
)

T1, T2 = 0.5, 4.0
AGENT_URI = f"sip:agent@{UAS_ADDRESS.host}:{UAS_ADDRESS.port}"
OTHER = Address("udp", "127.0.0.30", 5070)  # a hand-driven peer for raw requests


def sdp(owner: str, host: str, port: int, direction: str = "sendrecv", version: int = 1) -> bytes:
    return (
        f"v=0\r\no={owner} 1 {version} IN IP4 {host}\r\ns=-\r\nc=IN IP4 {host}\r\nt=0 0\r\n"
        f"m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na={direction}\r\n"
    ).encode()


OFFER = sdp("uac", UAC_ADDRESS.host, 40000)
ANSWER = sdp("uas", UAS_ADDRESS.host, 50000)
HOLD_OFFER = sdp("uac", UAC_ADDRESS.host, 40000, "sendonly", 2)
HOLD_ANSWER = sdp("uas", UAS_ADDRESS.host, 50000, "recvonly", 2)
RESUME_OFFER = sdp("uac", UAC_ADDRESS.host, 40000, "sendrecv", 3)
RESUME_ANSWER = sdp("uas", UAS_ADDRESS.host, 50000, "sendrecv", 3)


def place_call(p: Pair, offer: bytes = OFFER) -> str:
    """UAC sends INVITE; returns the Call-ID once the UAS has reported IncomingCall."""
    call_id = p.uac.ua.invite(AGENT_URI, UAS_ADDRESS, offer, p.now)
    p.flush()
    assert p.uas.one(IncomingCall).call_id == call_id
    return call_id


def establish(p: Pair) -> str:
    """A confirmed call: INVITE, 100, 200, ACK."""
    call_id = place_call(p)
    p.uas.ua.answer(call_id, ANSWER, p.now)
    p.flush()
    assert p.uac.one(CallConfirmed) == CallConfirmed(call_id, ANSWER)
    assert p.uas.one(CallConfirmed) == CallConfirmed(call_id, OFFER)
    return call_id


def parsed(d: Datagram) -> Request | Response:
    return d.message()


def request_of(d: Datagram) -> Request:
    msg = d.message()
    assert isinstance(msg, Request), msg
    return msg


def response_of(d: Datagram) -> Response:
    msg = d.message()
    assert isinstance(msg, Response), msg
    return msg


def rebranched(request: Request, branch: str) -> bytes:
    """``request`` as a new transaction: the same bytes with another top Via branch."""
    old = request.top_via().branch
    assert old is not None
    return bytes(request).replace(old.encode(), f"z9hG4bK{branch}".encode())


def only(datagrams: list[Datagram]) -> Datagram:
    assert len(datagrams) == 1, summaries(datagrams)
    return datagrams[0]


def raw(
    method: str,
    *,
    call_id: str,
    cseq: int,
    branch: str,
    via_host: str = OTHER.host,
    via_port: int | None = OTHER.port,
    rport: bool = False,
    to_tag: str | None = None,
    extra: str = "",
    uri: str = AGENT_URI,
) -> bytes:
    """A request as a third party would write it by hand."""
    sent_by = via_host if via_port is None else f"{via_host}:{via_port}"
    to = f"<{AGENT_URI}>" + (f";tag={to_tag}" if to_tag else "")
    return (
        f"{method} {uri} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {sent_by};branch=z9hG4bK{branch}{';rport' if rport else ''}\r\n"
        f"Max-Forwards: 70\r\nFrom: <sip:peer@{OTHER.host}>;tag=peer1\r\nTo: {to}\r\n"
        f"Call-ID: {call_id}\r\nCSeq: {cseq} {method}\r\n{extra}Content-Length: 0\r\n\r\n"
    ).encode()


# ---------------------------------------------------------------------------- basic calls
def test_call_set_up_and_hung_up_by_the_caller() -> None:
    p = pair()
    call_id = establish(p)
    assert summaries(p.net.wire) == ["INVITE", "100 INVITE", "200 INVITE", "ACK"]
    p.uac.ua.hangup(call_id, p.now)
    p.flush()
    assert summaries(p.net.wire)[4:] == ["BYE", "200 BYE"]
    assert p.uac.one(CallEnded) == CallEnded(call_id, EndReason.LOCAL_BYE)
    assert p.uas.one(CallEnded) == CallEnded(call_id, EndReason.REMOTE_BYE)
    assert not p.uac.ua.calls and not p.uas.ua.calls
    # The dialog's CSeq: the BYE is the caller's second request.
    bye = parsed(only(p.net.sent("BYE")))
    assert bye.cseq().seq == 2 and bye.to().tag == parsed(p.net.sent("200 INVITE")[0]).to().tag
    p.net.run_for(64 * T1 + 1)  # every transaction winds down without resending anything
    assert summaries(p.net.wire) == ["INVITE", "100 INVITE", "200 INVITE", "ACK", "BYE", "200 BYE"]
    assert len(p.uac.ua.layer) == 0 and len(p.uas.ua.layer) == 0


def test_call_hung_up_by_the_callee() -> None:
    p = pair()
    call_id = establish(p)
    p.uas.ua.hangup(call_id, p.now)
    p.flush()
    bye = parsed(only(p.net.sent("BYE", by=p.uas)))
    assert bye.cseq().seq == 2  # the callee's dialog CSeq starts after the INVITE's
    assert p.net.sent("200 BYE", by=p.uac)
    assert p.uas.one(CallEnded) == CallEnded(call_id, EndReason.LOCAL_BYE)
    assert p.uac.one(CallEnded) == CallEnded(call_id, EndReason.REMOTE_BYE)


def test_ringing_is_reported_to_the_caller() -> None:
    p = pair()
    call_id = place_call(p)
    p.uas.ua.ring(call_id, p.now)
    p.flush()
    assert p.uac.of(CallProgress) == [CallProgress(call_id, 100), CallProgress(call_id, 180)]


# ---------------------------------------------------------------------------- lost ACKs
def test_lost_ack_makes_the_uas_resend_200_with_t1_doubling_to_t2() -> None:
    p = pair(timers=SipTimers(t1=T1, t2=T2))
    call_id = place_call(p)
    p.net.drop(is_("ACK"), times=5)
    p.uas.ua.answer(call_id, ANSWER, p.now)
    p.net.run_until(30.0)
    sent_200 = [d.at for d in p.net.sent("200 INVITE")]
    # §13.3.1.4: first send at 0, then T1, 2*T1, 4*T1 ... capped at T2.
    assert sent_200 == [0.0, 0.5, 1.5, 3.5, 7.5, 11.5]
    assert [b - a for a, b in zip(sent_200, sent_200[1:], strict=False)] == [0.5, 1, 2, 4, 4]
    acks = p.net.sent("ACK")
    assert len(acks) == 6 and len(p.net.dropped) == 5
    assert len({d.data for d in acks}) == 1  # each 2xx is ACKed with the same ACK
    assert p.uas.one(CallConfirmed).call_id == call_id  # the sixth ACK got through
    assert p.uac.one(CallConfirmed).call_id == call_id  # retransmitted 2xx: no new events
    assert not p.uas.of(CallEnded) and not p.uac.of(CallEnded)


def test_ack_never_arriving_ends_the_call_with_bye_after_64_t1() -> None:
    p = pair(timers=SipTimers(t1=T1, t2=T2))
    call_id = place_call(p)
    p.net.drop(is_("ACK"), times=1000)
    p.uas.ua.answer(call_id, ANSWER, p.now)
    p.net.run_until(40.0)
    assert p.uas.one(CallEnded) == CallEnded(call_id, EndReason.NO_ACK)
    bye = only(p.net.sent("BYE"))
    assert bye.at == 64 * T1 and bye.source == UAS_ADDRESS
    assert max(d.at for d in p.net.sent("200 INVITE")) < 64 * T1  # no 200 after giving up
    # The caller thought the call was up; the BYE ends it there too.
    assert p.uac.one(CallEnded) == CallEnded(call_id, EndReason.REMOTE_BYE)


def test_bye_overtaking_the_ack_still_ends_the_call_cleanly() -> None:
    p = pair()
    call_id = place_call(p)
    p.net.hold(is_("ACK"))
    p.uas.ua.answer(call_id, ANSWER, p.now)
    p.flush()
    p.uac.ua.hangup(call_id, p.now)
    p.flush()  # the BYE arrives before the ACK
    p.net.release()
    assert p.uas.one(CallEnded) == CallEnded(call_id, EndReason.REMOTE_BYE)
    assert summaries(p.net.wire)[3:] == ["ACK", "BYE", "200 BYE"]
    p.net.run_for(64 * T1 + 1)
    assert not p.net.sent("BYE", by=p.uas)  # the late ACK did not revive anything


def test_stray_ack_with_a_foreign_to_tag_is_absorbed_silently() -> None:
    """pyVoIP ACKs every 2xx with a To-tag of its own; late ones find no transaction."""
    p = pair()
    call_id = establish(p)
    p.net.run_for(64 * T1 + 1)  # the INVITE transaction has ended (Timer L)
    assert len(p.uas.ua.layer) == 0
    ack = request_of(p.net.sent("ACK")[0])
    foreign = bytes(ack).replace(f"tag={ack.to().tag}".encode(), b"tag=pyvoip42")
    before = len(p.net.wire)
    p.net.inject(foreign, UAC_ADDRESS, p.uas)
    assert len(p.net.wire) == before + 1  # the ACK itself: no response, nothing else
    assert p.uas.ua.calls[call_id].state is CallState.CONFIRMED and not p.uas.of(CallEnded)
    assert not p.uas.ua.rejected


# ---------------------------------------------------------------------------- CANCEL
def test_cancel_before_answer() -> None:
    p = pair()
    call_id = place_call(p)
    p.uas.ua.ring(call_id, p.now)  # the application holds off answering
    p.flush()
    p.uac.ua.hangup(call_id, p.now)
    p.flush()
    assert summaries(p.net.wire) == [
        "INVITE",
        "100 INVITE",
        "180 INVITE",
        "CANCEL",
        "200 CANCEL",
        "487 INVITE",
        "ACK",
    ]
    cancel, ack = parsed(p.net.sent("CANCEL")[0]), parsed(p.net.sent("ACK")[0])
    invite = parsed(p.net.sent("INVITE")[0])
    assert cancel.top_via().branch == ack.top_via().branch == invite.top_via().branch
    assert p.uas.one(CallEnded) == CallEnded(call_id, EndReason.CANCELLED, 487)
    assert p.uac.one(CallEnded) == CallEnded(call_id, EndReason.FAILED, 487)
    p.net.run_for(64 * T1 + 1)
    assert len(p.net.sent("487 INVITE")) == 1  # the ACK was absorbed: no 487 resent
    assert len(p.uas.ua.layer) == 0


def test_cancel_crossing_the_200_gets_ack_then_bye() -> None:
    p = pair()
    call_id = place_call(p)
    p.net.hold(is_("200 INVITE"))
    p.uas.ua.answer(call_id, ANSWER, p.now)
    p.flush()
    p.uac.ua.hangup(call_id, p.now)  # CANCEL goes out while the 200 is in flight
    p.flush()
    assert p.net.sent("200 CANCEL") and not p.net.sent("487 INVITE")  # too late to cancel
    p.net.release()
    assert summaries(p.net.wire)[-3:] == ["ACK", "BYE", "200 BYE"]
    assert p.uac.one(CallEnded) == CallEnded(call_id, EndReason.LOCAL_BYE)
    assert p.uas.one(CallEnded) == CallEnded(call_id, EndReason.REMOTE_BYE)


def test_cancel_for_no_pending_invite_gets_481() -> None:
    p = pair()
    p.net.inject(raw("CANCEL", call_id="nothing@here", cseq=1, branch="x1"), OTHER, p.uas)
    assert response_of(only(p.net.unrouted)).status == 481


# ---------------------------------------------------------------------------- offers in the call
def test_reinvite_hold_and_resume() -> None:
    p = pair()
    call_id = establish(p)
    for offer, answer in ((HOLD_OFFER, HOLD_ANSWER), (RESUME_OFFER, RESUME_ANSWER)):
        p.uac.ua.send_in_dialog(call_id, "INVITE", p.now, body=offer)
        p.flush()
        assert p.uas.of(OfferReceived)[-1] == OfferReceived(call_id, offer)
        p.uas.ua.answer(call_id, answer, p.now)
        p.flush()
        assert p.uac.of(InDialogResponse)[-1] == InDialogResponse(call_id, "INVITE", 200, answer)
    assert summaries(p.net.wire)[4:] == ["INVITE", "100 INVITE", "200 INVITE", "ACK"] * 2
    reinvites = [parsed(d) for d in p.net.sent("INVITE")[1:]]
    assert [r.cseq().seq for r in reinvites] == [2, 3]
    acks = [parsed(d) for d in p.net.sent("ACK")[1:]]
    assert [a.cseq().seq for a in acks] == [2, 3]
    assert len(p.uas.of(CallConfirmed)) == 1  # re-INVITE ACKs do not re-confirm
    p.net.run_for(64 * T1 + 1)
    assert not p.uac.of(CallEnded) and not p.uas.of(CallEnded)  # still up, nothing timed out
    p.uac.ua.hangup(call_id, p.now)
    p.flush()
    assert parsed(p.net.sent("BYE")[0]).cseq().seq == 4


def test_callee_can_put_the_caller_on_hold_too() -> None:
    p = pair()
    call_id = establish(p)
    p.uas.ua.send_in_dialog(call_id, "INVITE", p.now, body=HOLD_ANSWER)
    p.flush()
    assert p.uac.one(OfferReceived) == OfferReceived(call_id, HOLD_ANSWER)
    p.uac.ua.answer(call_id, HOLD_OFFER, p.now)
    p.flush()
    assert p.uas.one(InDialogResponse) == InDialogResponse(call_id, "INVITE", 200, HOLD_OFFER)
    assert p.net.sent("ACK", by=p.uas)


def test_session_refresh_without_sdp_is_answered_with_the_current_sdp() -> None:
    p = pair()
    call_id = establish(p)
    p.uac.ua.send_in_dialog(call_id, "INVITE", p.now)  # RFC 4028 refresh: no body
    p.flush()
    assert not p.uas.of(OfferReceived)  # nothing for the application to decide
    assert p.uac.one(InDialogResponse) == InDialogResponse(call_id, "INVITE", 200, ANSWER)
    ok = parsed(p.net.sent("200 INVITE")[-1])
    assert ok.content_type() == "application/sdp" and ok.contact()


def test_update_with_and_without_an_offer() -> None:
    p = pair()
    call_id = establish(p)
    p.uac.ua.send_in_dialog(call_id, "UPDATE", p.now, body=HOLD_OFFER)
    p.flush()
    assert p.uas.one(OfferReceived) == OfferReceived(call_id, HOLD_OFFER)
    p.uas.ua.answer(call_id, HOLD_ANSWER, p.now)
    p.flush()
    p.uac.ua.send_in_dialog(call_id, "UPDATE", p.now)
    p.flush()
    assert p.uac.of(InDialogResponse) == [
        InDialogResponse(call_id, "UPDATE", 200, HOLD_ANSWER),
        InDialogResponse(call_id, "UPDATE", 200, b""),
    ]
    assert summaries(p.net.wire)[4:] == ["UPDATE", "200 UPDATE", "UPDATE", "200 UPDATE"]


def test_info_is_passed_up() -> None:
    p = pair()
    call_id = establish(p)
    body = b"Signal=5\r\nDuration=160\r\n"
    p.uac.ua.send_in_dialog(
        call_id, "INFO", p.now, body=body, content_type="application/dtmf-relay"
    )
    p.flush()
    assert p.uas.one(InfoReceived) == InfoReceived(call_id, "application/dtmf-relay", body)
    assert p.uac.one(InDialogResponse) == InDialogResponse(call_id, "INFO", 200)


def test_glare_both_reinvites_get_491_and_a_retry_succeeds() -> None:
    p = pair()
    call_id = establish(p)
    p.uac.ua.send_in_dialog(call_id, "INVITE", p.now, body=HOLD_OFFER)
    p.uas.ua.send_in_dialog(call_id, "INVITE", p.now, body=HOLD_ANSWER)
    p.flush()  # the two re-INVITEs cross
    assert p.uac.one(InDialogResponse) == InDialogResponse(call_id, "INVITE", 491)
    assert p.uas.one(InDialogResponse) == InDialogResponse(call_id, "INVITE", 491)
    assert not p.uac.of(OfferReceived) and not p.uas.of(OfferReceived)
    # §14.1: the callee (not Call-ID owner) waits 0-2 s, the caller 2.1-4 s; here: retry once.
    p.net.run_for(1.0)
    p.uas.ua.send_in_dialog(call_id, "INVITE", p.now, body=HOLD_ANSWER)
    p.flush()
    p.uac.ua.answer(call_id, HOLD_OFFER, p.now)
    p.flush()
    assert p.uas.of(InDialogResponse)[-1].status == 200
    assert not p.uac.of(CallEnded) and not p.uas.of(CallEnded)


def test_second_offer_while_the_first_is_unanswered_gets_500_with_retry_after() -> None:
    p = pair()
    call_id = establish(p)
    p.uac.ua.send_in_dialog(call_id, "UPDATE", p.now, body=HOLD_OFFER)
    p.flush()
    assert p.uas.one(OfferReceived)  # the application has not answered yet
    p.uac.ua.send_in_dialog(call_id, "INVITE", p.now, body=RESUME_OFFER)
    p.flush()
    rejected = parsed(only(p.net.sent("500 INVITE")))
    retry_after = rejected.headers.get("retry-after")
    assert retry_after is not None and 0 <= int(retry_after) <= 10  # §14.2
    assert p.uac.one(InDialogResponse) == InDialogResponse(call_id, "INVITE", 500)


def test_in_dialog_request_needs_a_confirmed_call() -> None:
    p = pair()
    call_id = place_call(p)
    with pytest.raises(SipStateError, match="not confirmed"):
        p.uac.ua.send_in_dialog(call_id, "INFO", p.now)


# ---------------------------------------------------------------------------- dialog errors
def test_bye_for_an_unknown_dialog_gets_481() -> None:
    p = pair()
    call_id = establish(p)
    p.uac.ua.hangup(call_id, p.now)
    p.flush()
    # The same BYE again as a new transaction, after the dialog has ended.
    p.net.inject(rebranched(request_of(p.net.sent("BYE")[0]), "late"), UAC_ADDRESS, p.uas)
    assert summaries(p.net.wire)[-1] == "481 BYE"
    p.net.inject(raw("BYE", call_id="never@seen", cseq=5, branch="b2", to_tag="t9"), OTHER, p.uas)
    assert response_of(p.net.unrouted[-1]).status == 481


def test_cseq_going_backwards_gets_500_and_the_call_survives() -> None:
    p = pair()
    call_id = establish(p)
    p.uac.ua.send_in_dialog(call_id, "INFO", p.now, body=b"x", content_type="text/plain")
    p.flush()
    info = request_of(p.net.sent("INFO")[0])
    assert info.cseq().seq == 2
    stale = rebranched(info, "stale").replace(b"CSeq: 2 INFO", b"CSeq: 1 INFO")
    p.net.inject(stale, UAC_ADDRESS, p.uas)
    assert summaries(p.net.wire)[-1] == "500 INFO"  # §12.2.2
    assert len(p.uas.of(InfoReceived)) == 1
    p.uac.ua.hangup(call_id, p.now)
    p.flush()
    assert p.uas.one(CallEnded).reason is EndReason.REMOTE_BYE


# ---------------------------------------------------------------------------- outside a dialog
def test_options_is_answered_with_our_capabilities() -> None:
    p = pair()
    p.net.inject(raw("OPTIONS", call_id="ka@peer", cseq=1, branch="o1"), OTHER, p.uas)
    ok = parsed(only(p.net.unrouted))
    assert isinstance(ok, Response) and ok.status == 200
    allow = {m.strip() for m in ok.headers.values("allow")}
    assert {"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "UPDATE", "INFO"} <= allow
    assert ok.headers.values("accept") == ["application/sdp"]
    assert {"timer", "replaces"} <= set(ok.headers.values("supported"))
    assert ok.to().tag  # §8.2.6.2: a final response out of a dialog gets a To tag


def test_register_is_answered_200_echoing_the_contact_with_expires() -> None:
    p = pair()
    p.uac.ua.register(f"sip:{UAS_ADDRESS.host}", UAS_ADDRESS, p.now, expires=600)
    p.flush()
    assert summaries(p.net.wire) == ["REGISTER", "200 REGISTER"]
    ok = parsed(p.net.wire[1])
    [contact] = ok.contact()
    assert str(contact.uri) == f"sip:uac@{UAC_ADDRESS.host}:{UAC_ADDRESS.port}"
    assert contact.param("expires") == "600"
    assert p.uac.one(RegistrationResult) == RegistrationResult(
        f"sip:uac@{UAC_ADDRESS.host}", 200, 600
    )


def test_register_without_answer_reports_408() -> None:
    p = pair()
    p.net.drop(is_("REGISTER"), times=100)
    p.uac.ua.register(f"sip:{UAS_ADDRESS.host}", UAS_ADDRESS, p.now)
    p.net.run_until(64 * T1 + 1)
    assert p.uac.one(RegistrationResult).status == 408
    assert len(p.net.sent("REGISTER")) == 11  # Timer E: 0, .5, 1.5, 3.5, 7.5, then every T2


# ---------------------------------------------------------------------------- digest auth
def auth_pair(password: str = "s3cret") -> Pair:
    verifier = DigestVerifier(
        realm="clinic.test", passwords={"alice": "s3cret"}, secret=secrets.token_bytes(32)
    )
    me = originator(UAC_ADDRESS, "uac")
    return pair(
        uac=UserAgentConfig(me=me, credentials=Credentials("alice", password)),
        uas=UserAgentConfig(me=originator(UAS_ADDRESS, "uas"), verifier=verifier),
    )


def test_register_challenged_then_accepted_with_digest() -> None:
    p = auth_pair()
    p.uac.ua.register(f"sip:{UAS_ADDRESS.host}", UAS_ADDRESS, p.now)
    p.flush()
    assert summaries(p.net.wire) == ["REGISTER", "401 REGISTER", "REGISTER", "200 REGISTER"]
    first, retry = parsed(p.net.wire[0]), parsed(p.net.wire[2])
    challenge = parsed(p.net.wire[1]).headers.values("www-authenticate")
    assert challenge and all(c.startswith("Digest ") for c in challenge)
    assert retry.call_id() == first.call_id() and retry.from_().tag == first.from_().tag
    assert retry.cseq().seq == first.cseq().seq + 1
    assert retry.top_via().branch != first.top_via().branch
    authorization = retry.headers.get("authorization")
    assert authorization is not None and authorization.startswith('Digest username="alice"')
    assert p.uac.one(RegistrationResult).status == 200


def test_invite_challenged_then_accepted_with_digest() -> None:
    p = auth_pair()
    call_id = p.uac.ua.invite(AGENT_URI, UAS_ADDRESS, OFFER, p.now)
    p.flush()
    assert summaries(p.net.wire) == [
        "INVITE",
        "100 INVITE",
        "401 INVITE",
        "ACK",
        "INVITE",
        "100 INVITE",
    ]
    assert p.uas.one(IncomingCall).call_id == call_id  # only the authorised INVITE
    p.uas.ua.answer(call_id, ANSWER, p.now)
    p.flush()
    assert p.uac.one(CallConfirmed).call_id == call_id
    assert parsed(p.net.sent("ACK")[-1]).cseq().seq == 2  # the ACK follows the retry's CSeq
    p.uac.ua.hangup(call_id, p.now)
    p.flush()
    assert parsed(p.net.sent("BYE")[0]).cseq().seq == 3
    assert p.uas.one(CallEnded).reason is EndReason.REMOTE_BYE


def test_wrong_password_is_tried_once_only() -> None:
    p = auth_pair(password="wrong")
    call_id = p.uac.ua.invite(AGENT_URI, UAS_ADDRESS, OFFER, p.now)
    p.uac.ua.register(f"sip:{UAS_ADDRESS.host}", UAS_ADDRESS, p.now)
    p.flush()
    assert len(p.net.sent("401 INVITE")) == 2 and len(p.net.sent("401 REGISTER")) == 2
    assert p.uac.one(CallEnded) == CallEnded(call_id, EndReason.FAILED, 401)
    assert p.uac.one(RegistrationResult).status == 401
    assert not p.uas.of(IncomingCall)


def test_hand_built_authorization_is_accepted() -> None:
    """A third-party client answering the challenge with `sip.auth.build_authorization`."""
    p = auth_pair()
    register = raw(
        "REGISTER",
        call_id="reg@peer",
        cseq=1,
        branch="r1",
        extra=f"Contact: <sip:peer@{OTHER.host}:{OTHER.port}>\r\n",
        uri=f"sip:{UAS_ADDRESS.host}",
    )
    p.net.inject(register, OTHER, p.uas)
    challenged = response_of(p.net.unrouted[-1])
    assert challenged.status == 401
    challenge = parse_challenge(challenged.headers.values("www-authenticate")[0])
    answer = build_authorization(
        challenge,
        username="alice",
        password="s3cret",
        method="REGISTER",
        uri=f"sip:{UAS_ADDRESS.host}",
        cnonce="c0ffee",
    )
    contact = f"Contact: <sip:peer@{OTHER.host}:{OTHER.port}>\r\n"
    again = raw(
        "REGISTER",
        call_id="reg@peer",
        cseq=2,
        branch="r2",
        extra=f"{contact}Authorization: {answer}\r\n",
        uri=f"sip:{UAS_ADDRESS.host}",
    )
    p.net.inject(again, OTHER, p.uas)
    ok = response_of(p.net.unrouted[-1])
    assert ok.status == 200
    assert ok.contact()[0].param("expires") == "3600"


# ---------------------------------------------------------------------------- limits, offerless
def test_max_call_duration_ends_the_call_with_bye() -> None:
    p = pair(uas=UserAgentConfig(me=originator(UAS_ADDRESS, "uas"), max_call_seconds=30.0))
    call_id = establish(p)
    p.net.run_until(29.9)
    assert not p.uas.of(CallEnded)
    p.net.run_until(31.0)
    assert p.uas.one(CallEnded) == CallEnded(call_id, EndReason.MAX_DURATION)
    assert only(p.net.sent("BYE", by=p.uas)).at == 30.0
    assert p.uac.one(CallEnded) == CallEnded(call_id, EndReason.REMOTE_BYE)


def test_offerless_invite_offer_in_200_answer_in_ack() -> None:
    p = pair()
    call_id = place_call(p, offer=b"")
    assert p.uas.one(IncomingCall).offer == b""
    p.uas.ua.answer(call_id, ANSWER, p.now)  # the callee's 200 carries its offer
    p.flush()
    assert p.uac.one(OfferReceived) == OfferReceived(call_id, ANSWER)
    assert not p.net.sent("ACK")  # the caller owes an answer first
    p.uac.ua.answer(call_id, OFFER, p.now)
    p.flush()
    ack = parsed(only(p.net.sent("ACK")))
    assert ack.body == OFFER and ack.content_type() == "application/sdp"
    assert p.uas.one(CallConfirmed) == CallConfirmed(call_id, OFFER)  # the answer, from ACK
    assert p.uac.one(CallConfirmed) == CallConfirmed(call_id, ANSWER)


# ---------------------------------------------------------------------------- addressing
def test_in_dialog_requests_go_where_the_signalling_came_from_not_to_contact() -> None:
    p = pair(
        uac=UserAgentConfig(me=originator(UAC_ADDRESS, "uac", contact_host="192.0.2.1")),
        uas=UserAgentConfig(me=originator(UAS_ADDRESS, "uas", contact_host="192.0.2.2")),
    )
    call_id = establish(p)
    p.uas.ua.send_in_dialog(call_id, "INFO", p.now, body=b"x", content_type="text/plain")
    p.uac.ua.send_in_dialog(call_id, "INVITE", p.now, body=HOLD_OFFER)
    p.flush()
    p.uas.ua.answer(call_id, HOLD_ANSWER, p.now)
    p.flush()
    p.uas.ua.hangup(call_id, p.now)
    p.flush()
    assert request_of(p.net.sent("BYE")[0]).uri == "sip:uac@192.0.2.1:5060"  # the target URI...
    assert p.net.addressed_to_host("192.0.2.1") == []  # ...but never the destination
    assert p.net.addressed_to_host("192.0.2.2") == []
    assert not p.net.unrouted
    assert {d.destination for d in p.net.sent(by=p.uas)} == {UAC_ADDRESS}
    assert {d.destination for d in p.net.sent(by=p.uac)} == {UAS_ADDRESS}
    assert p.uac.one(CallEnded).reason is EndReason.REMOTE_BYE


def test_caller_behind_nat_gets_responses_and_requests_at_its_public_address() -> None:
    clock_pair = pair()
    nat = Address("udp", "127.0.0.99", 40000)
    net = clock_pair.net
    net.nodes.remove(clock_pair.uac)
    uac = net.add(make_node("uac", UAC_ADDRESS, public=nat))
    p = Pair(clock_pair.clock, net, uac, clock_pair.uas)
    call_id = establish(p)
    for d in p.net.sent(by=p.uas):
        assert d.destination == nat
    via = parsed(p.net.sent("200 INVITE")[0]).top_via()
    assert via.param("received") == nat.host and via.param("rport") == str(nat.port)
    p.uas.ua.hangup(call_id, p.now)
    p.flush()
    assert only(p.net.sent("BYE")).destination == nat
    assert not p.net.unrouted and p.uac.one(CallEnded).reason is EndReason.REMOTE_BYE


@pytest.mark.parametrize(
    ("via_host", "via_port", "rport", "force_rport", "expected", "received"),
    [
        # §18.2.2: no rport: the sent-by port at the source IP, received= when hosts differ
        (OTHER.host, 5070, False, False, Address("udp", OTHER.host, 5070), None),
        ("127.0.0.31", 5070, False, False, Address("udp", OTHER.host, 5070), OTHER.host),
        (OTHER.host, None, False, False, Address("udp", OTHER.host, 5060), None),
        # RFC 3581: rport asks for the source port
        (OTHER.host, 5070, True, False, Address("udp", OTHER.host, 40000), OTHER.host),
        # force_rport: the source port even when not asked (NATed trunks)
        (OTHER.host, 5070, False, True, Address("udp", OTHER.host, 40000), None),
        # a name in Via is never resolved: the response goes to the source IP
        ("pbx.invalid", 5070, False, False, Address("udp", OTHER.host, 5070), OTHER.host),
    ],
)
def test_responses_go_to_the_source_ip(
    via_host: str,
    via_port: int | None,
    rport: bool,
    force_rport: bool,
    expected: Address,
    received: str | None,
) -> None:
    p = pair(uas_layer=LayerConfig(force_rport=force_rport))
    source = Address("udp", OTHER.host, 40000)
    p.net.inject(
        raw(
            "OPTIONS",
            call_id="nat@peer",
            cseq=1,
            branch="n1",
            via_host=via_host,
            via_port=via_port,
            rport=rport,
        ),
        source,
        p.uas,
    )
    response = only(p.net.unrouted)
    assert response.destination == expected
    via = parsed(response).top_via()
    assert via.param("received") == received
    assert via.param("rport") == (str(source.port) if rport else None)


# ---------------------------------------------------------------------------- a lost dialog
def response_for(request: Request, status: int, reason: str) -> bytes:
    """A UAS's response to ``request``, built by hand (its To carries the dialog's tag)."""
    headers = "".join(
        f"{name}: {request.headers.get(name.lower())}\r\n"
        for name in ("Via", "From", "To", "Call-ID", "CSeq")
    )
    return f"SIP/2.0 {status} {reason}\r\n{headers}Content-Length: 0\r\n\r\n".encode()


@pytest.mark.parametrize("method", ["INFO", "INVITE"])
def test_481_to_our_in_dialog_request_ends_the_call_without_bye(method: str) -> None:
    """§12.2.1.2 / RFC 5057 §5.1: the peer has no such dialog; nothing is left to BYE."""
    p = pair()
    call_id = establish(p)
    p.net.drop(is_(method))
    p.uac.ua.send_in_dialog(call_id, method, p.now, body=HOLD_OFFER if method == "INVITE" else b"")
    p.flush()
    sent = request_of(p.net.dropped[-1])
    gone = response_for(sent, 481, "Call/Transaction Does Not Exist")
    p.net.inject(gone, UAS_ADDRESS, p.uac)
    assert p.uac.of(InDialogResponse)[-1] == InDialogResponse(call_id, method, 481)
    assert p.uac.one(CallEnded) == CallEnded(call_id, EndReason.DIALOG_GONE, 481)
    assert not p.net.sent("BYE")
    with pytest.raises(SipStateError):  # the call is over: nothing more can be sent in it
        p.uac.ua.send_in_dialog(call_id, "INFO", p.now)


def test_unanswered_in_dialog_request_ends_the_call_with_bye() -> None:
    """Timer F fires (a 408 of our own): the dialog is ended, and the peer told with BYE."""
    p = pair()
    call_id = establish(p)
    p.net.drop(is_("INFO"), times=100)
    p.uac.ua.send_in_dialog(call_id, "INFO", p.now, body=b"Signal=1\r\n", content_type="x/y")
    p.net.run_for(64 * T1 + 1)
    assert p.uac.of(InDialogResponse)[-1] == InDialogResponse(call_id, "INFO", 408)
    assert p.uac.one(CallEnded) == CallEnded(call_id, EndReason.TIMEOUT, 408)
    bye = only(p.net.sent("BYE"))
    assert bye.source == UAC_ADDRESS
    assert p.uas.one(CallEnded).reason is EndReason.REMOTE_BYE


def test_a_failed_in_dialog_request_keeps_the_call() -> None:
    """Any other failure (here 488 to a re-INVITE) leaves the call as it was (§14.1)."""
    p = pair()
    call_id = establish(p)
    p.uac.ua.send_in_dialog(call_id, "INVITE", p.now, body=HOLD_OFFER)
    p.flush()
    p.uas.ua.reject(call_id, 488, p.now)
    p.flush()
    assert p.uac.of(InDialogResponse)[-1].status == 488
    assert not p.uac.of(CallEnded) and not p.net.sent("BYE")


@pytest.mark.parametrize(
    ("field", "forged"),
    [("From tag", "tag=somebody-else"), ("CSeq", "CSeq: 99 ACK")],
)
def test_an_ack_for_another_invite_does_not_confirm_the_call(field: str, forged: str) -> None:
    """§13.2.2.4: only the ACK of this INVITE (From tag, CSeq number) confirms the call."""
    p = pair(timers=SipTimers(t1=T1, t2=T2))
    call_id = place_call(p)
    p.net.hold(is_("ACK"))
    p.uas.ua.answer(call_id, ANSWER, p.now)
    p.flush()
    ack = request_of(p.net.held[0])
    genuine = f"tag={ack.from_().tag}" if field == "From tag" else "CSeq: 1 ACK"
    assert genuine in bytes(ack).decode(), field
    stray = rebranched(ack, "stray1").replace(genuine.encode(), forged.encode())
    p.net.inject(stray, UAC_ADDRESS, p.uas)
    assert not p.uas.of(CallConfirmed)  # still answered, still resending the 2xx
    assert p.uas.ua.calls[call_id].state is CallState.ANSWERED
    p.net.release()  # the real ACK
    assert p.uas.one(CallConfirmed).call_id == call_id
