"""RFC 3261 §17 transactions (with RFC 6026) on a virtual clock, and §17.1.3/§17.2.3 matching.

With the default SipTimers (T1 = 0.5 s, T2 = 4 s, T4 = 5 s) the schedules are:
    Timer A (doubling):            0.5, 1.5, 3.5, 7.5, 15.5, 31.5     B at 32
    Timers E, G (doubling to T2):  0.5, 1.5, 3.5, 7.5, 11.5, ..., 31.5  F/H/L at 32
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sip.errors import SipError, SipParseError, SipStateError
from sip.message import Request, Response, make_response, parse_message
from sip.transaction import (
    AckReceived,
    ClientInvite,
    ClientNonInvite,
    Event,
    ResponseReceived,
    ServerInvite,
    ServerNonInvite,
    SipTimers,
    Transaction,
    TransactionKey,
    TransactionState,
    TransactionTerminated,
    TransactionTimedOut,
    client_key,
    server_key,
    transaction_key,
)

S = TransactionState
TIMERS = SipTimers()
TO_TAG = "8321234356"

# RFC 3261 §24.2 F1, with two Route headers and a second Via to show what the ACK keeps.
INVITE = (
    b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bKnashds8\r\n"
    b"Via: SIP/2.0/UDP ua.atlanta.example.com;branch=z9hG4bKfirst\r\n"
    b"Max-Forwards: 69\r\n"
    b"Route: <sip:p1.example.com;lr>\r\n"
    b"Route: <sip:p2.example.com;lr>\r\n"
    b"To: Bob <sip:bob@biloxi.example.com>\r\n"
    b"From: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl\r\n"
    b"Call-ID: 3848276298220188511@atlanta.example.com\r\n"
    b"CSeq: 314159 INVITE\r\n"
    b"Contact: <sip:alice@pc33.atlanta.example.com>\r\n"
    b"Content-Length: 0\r\n"
    b"\r\n"
)
EXPECTED_ACK = (
    b"ACK sip:bob@biloxi.example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bKnashds8\r\n"
    b"Max-Forwards: 70\r\n"
    b"Route: <sip:p1.example.com;lr>\r\n"
    b"Route: <sip:p2.example.com;lr>\r\n"
    b"From: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl\r\n"
    b"To: Bob <sip:bob@biloxi.example.com>;tag=8321234356\r\n"
    b"Call-ID: 3848276298220188511@atlanta.example.com\r\n"
    b"CSeq: 314159 ACK\r\n"
    b"Content-Length: 0\r\n"
    b"\r\n"
)
# The ACK for a 2xx is a transaction of its own: new branch (RFC 3261 §13.2.2.4).
ACK_FOR_2XX = (
    b"ACK sip:bob@192.0.2.4 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bKnashds9\r\n"
    b"Max-Forwards: 70\r\n"
    b"To: Bob <sip:bob@biloxi.example.com>;tag=8321234356\r\n"
    b"From: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl\r\n"
    b"Call-ID: 3848276298220188511@atlanta.example.com\r\n"
    b"CSeq: 314159 ACK\r\n"
    b"Content-Length: 0\r\n"
    b"\r\n"
)
CANCEL = (
    b"CANCEL sip:bob@biloxi.example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bKnashds8\r\n"
    b"Max-Forwards: 70\r\n"
    b"To: Bob <sip:bob@biloxi.example.com>\r\n"
    b"From: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl\r\n"
    b"Call-ID: 3848276298220188511@atlanta.example.com\r\n"
    b"CSeq: 314159 CANCEL\r\n"
    b"Content-Length: 0\r\n"
    b"\r\n"
)
BYE = (
    b"BYE sip:alice@pc33.atlanta.example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.4;branch=z9hG4bKnashds10\r\n"
    b"Max-Forwards: 70\r\n"
    b"From: Bob <sip:bob@biloxi.example.com>;tag=8321234356\r\n"
    b"To: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl\r\n"
    b"Call-ID: 3848276298220188511@atlanta.example.com\r\n"
    b"CSeq: 231 BYE\r\n"
    b"Content-Length: 0\r\n"
    b"\r\n"
)


def request(data: bytes) -> Request:
    message = parse_message(data)
    assert isinstance(message, Request)
    return message


def rfc2543(data: bytes) -> Request:
    """The same request from an RFC 2543 element: its Via has no branch."""
    return request(data.replace(b";branch=z9hG4bKnashds8", b"", 1))


@pytest.fixture
def invite() -> Request:
    return request(INVITE)


@pytest.fixture
def bye() -> Request:
    return request(BYE)


def answer(req: Request, status: int, *, to_tag: str | None = TO_TAG) -> Response:
    return make_response(req, status, to_tag=to_tag)


def wire(tx: Transaction) -> list[Request | Response]:
    """Drain the datagrams and parse them."""
    return [parse_message(data) for data in tx.datagrams_to_send()]


def events(tx: Transaction) -> list[Event]:
    out: list[Event] = []
    while (event := tx.next_event()) is not None:
        out.append(event)
    return out


def state(tx: Transaction) -> TransactionState:
    """The state, read through a call so that mypy does not narrow it between steps."""
    return tx.state


def fire(tx: Transaction, at: float) -> None:
    """Check that the next timer is due at ``at``, then fire it."""
    assert tx.next_deadline() == at
    tx.handle_timer(now=at)


ENDED = [TransactionTerminated()]


# --- SipTimers --------------------------------------------------------------------------------


def test_timer_values_follow_rfc3261_table_4() -> None:
    timers = SipTimers(t1=0.5, t2=4.0, t4=5.0)
    assert (timers.timer_a, timers.timer_e, timers.timer_g) == (0.5, 0.5, 0.5)
    assert {timers.timer_b, timers.timer_f, timers.timer_h, timers.timer_j} == {32.0}
    assert (timers.timer_l, timers.timer_m, timers.timer_d) == (32.0, 32.0, 32.0)
    assert (timers.timer_i, timers.timer_k) == (5.0, 5.0)


@pytest.mark.parametrize("kwargs", [{"t1": 0.0}, {"t1": 5.0, "t2": 4.0}, {"t4": 0.0}])
def test_timer_values_are_validated(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="SipTimers needs"):
        SipTimers(**kwargs)


# --- ClientInvite (§17.1.1) -------------------------------------------------------------------


def test_client_invite_retransmits_then_times_out(invite: Request) -> None:
    tx = ClientInvite(invite, timers=TIMERS, now=0.0)
    assert state(tx) is S.CALLING
    assert wire(tx) == [invite]
    for fire_at in (0.5, 1.5, 3.5, 7.5, 15.5, 31.5):  # Timer A doubles from T1, no cap
        fire(tx, fire_at)
        assert wire(tx) == [invite]
    fire(tx, 32.0)  # Timer B = 64*T1
    assert events(tx) == [TransactionTimedOut("B"), TransactionTerminated()]
    assert state(tx) is S.TERMINATED
    assert tx.next_deadline() is None
    assert wire(tx) == []


def test_client_invite_on_reliable_transport_only_runs_timer_b(invite: Request) -> None:
    tx = ClientInvite(invite, timers=TIMERS, now=10.0, reliable=True)
    assert wire(tx) == [invite]
    fire(tx, 42.0)
    assert wire(tx) == []
    assert events(tx) == [TransactionTimedOut("B"), TransactionTerminated()]


def test_a_timeout_wins_a_tie_with_a_retransmission(bye: Request) -> None:
    tx = ClientNonInvite(bye, timers=SipTimers(t1=1.0, t2=1.0), now=0.0)
    for fire_at in range(1, 64):  # Timer E every second...
        fire(tx, float(fire_at))
    assert tx.next_deadline() == 64.0  # ...and at 64 both E and F are due
    tx.handle_timer(now=64.0)
    assert len(tx.datagrams_to_send()) == 1 + 63  # no copy sent in the call that gives up
    assert events(tx) == [TransactionTimedOut("F"), TransactionTerminated()]


def test_late_wakeup_catches_up_without_shifting_the_schedule(invite: Request) -> None:
    tx = ClientInvite(invite, timers=TIMERS, now=0.0)
    wire(tx)
    tx.handle_timer(now=4.0)  # A was due at 0.5, 1.5 and 3.5
    assert wire(tx) == [invite] * 3
    assert tx.next_deadline() == 7.5


def test_client_invite_provisional_stops_timers_a_and_b(invite: Request) -> None:
    tx = ClientInvite(invite, timers=TIMERS, now=0.0)
    wire(tx)
    fire(tx, 0.5)
    trying, ringing = answer(invite, 100, to_tag=None), answer(invite, 180)
    tx.receive(trying, now=0.7)
    assert state(tx) is S.PROCEEDING
    assert tx.next_deadline() is None  # §17.1.1.2: B guards Calling only
    tx.receive(ringing, now=60.0)
    assert events(tx) == [ResponseReceived(trying), ResponseReceived(ringing)]
    assert wire(tx) == [invite]  # the one retransmission at 0.5


def test_client_invite_acks_a_non_2xx_final(invite: Request) -> None:
    tx = ClientInvite(invite, timers=TIMERS, now=0.0)
    wire(tx)
    busy = answer(invite, 486)
    tx.receive(busy, now=1.0)
    assert state(tx) is S.COMPLETED
    assert tx.datagrams_to_send() == [EXPECTED_ACK]  # §17.1.1.3, byte for byte
    assert events(tx) == [ResponseReceived(busy)]
    ack = request(EXPECTED_ACK)
    assert ack.method == "ACK"
    assert ack.uri == invite.uri
    assert len(ack.via()) == 1 and ack.top_via() == invite.top_via()
    assert ack.headers.values("route") == invite.headers.values("route")
    assert ack.to().tag == TO_TAG and ack.from_() == invite.from_()
    assert str(ack.cseq()) == "314159 ACK"


def test_client_invite_re_acks_retransmitted_finals_until_timer_d(invite: Request) -> None:
    tx = ClientInvite(invite, timers=SipTimers(timer_d=40.0), now=0.0)
    wire(tx)
    busy = answer(invite, 486)
    tx.receive(busy, now=1.0)
    tx.datagrams_to_send()
    events(tx)
    for at in (1.5, 2.5, 4.5):  # the server's Timer G resends; each gets the ACK again
        tx.receive(busy, now=at)
        assert tx.datagrams_to_send() == [EXPECTED_ACK]
    tx.receive(answer(invite, 180), now=5.0)  # a late provisional is absorbed
    assert events(tx) == []
    assert wire(tx) == []
    fire(tx, 41.0)  # Timer D from the first final (its own value, not 64*T1)
    assert events(tx) == ENDED


def test_client_invite_on_reliable_transport_terminates_at_once(invite: Request) -> None:
    tx = ClientInvite(invite, timers=TIMERS, now=0.0, reliable=True)
    wire(tx)
    busy = answer(invite, 486)
    tx.receive(busy, now=1.0)  # Timer D = 0
    assert state(tx) is S.TERMINATED
    assert tx.datagrams_to_send() == [EXPECTED_ACK]
    assert events(tx) == [ResponseReceived(busy), TransactionTerminated()]
    assert tx.next_deadline() is None


def test_client_invite_passes_every_2xx_up_until_timer_m(invite: Request) -> None:
    tx = ClientInvite(invite, timers=TIMERS, now=0.0)
    wire(tx)
    ok = answer(invite, 200)
    tx.receive(ok, now=2.0)
    assert state(tx) is S.ACCEPTED  # RFC 6026 §7.2
    assert tx.next_deadline() == 34.0  # Timer M = 64*T1
    forked = answer(invite, 200, to_tag="other-fork")
    tx.receive(ok, now=2.5)
    tx.receive(forked, now=3.0)
    tx.receive(answer(invite, 180), now=3.1)  # absorbed
    tx.receive(answer(invite, 486), now=3.2)  # absorbed
    assert wire(tx) == []  # the TU ACKs a 2xx itself
    assert events(tx) == [ResponseReceived(ok), ResponseReceived(ok), ResponseReceived(forked)]
    fire(tx, 34.0)
    assert events(tx) == ENDED  # not a timeout


def test_client_invite_refuses_responses_after_terminated(invite: Request) -> None:
    tx = ClientInvite(invite, timers=TIMERS, now=0.0, reliable=True)
    tx.receive(answer(invite, 486), now=1.0)
    with pytest.raises(SipStateError, match="ClientInvite in state TERMINATED cannot take"):
        tx.receive(answer(invite, 486), now=1.5)


# --- ClientNonInvite (§17.1.2) ----------------------------------------------------------------


def test_client_non_invite_backs_off_to_t2_then_times_out(bye: Request) -> None:
    tx = ClientNonInvite(bye, timers=TIMERS, now=0.0)
    assert state(tx) is S.TRYING
    assert wire(tx) == [bye]
    schedule = (0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5)
    for fire_at in schedule:  # Timer E: T1, 2*T1, 4*T1, then capped at T2
        fire(tx, fire_at)
        assert wire(tx) == [bye]
    fire(tx, 32.0)  # Timer F = 64*T1
    assert events(tx) == [TransactionTimedOut("F"), TransactionTerminated()]
    assert state(tx) is S.TERMINATED


def test_client_non_invite_retransmits_every_t2_when_proceeding(bye: Request) -> None:
    tx = ClientNonInvite(bye, timers=TIMERS, now=0.0)
    wire(tx)
    fire(tx, 0.5)
    assert wire(tx) == [bye]
    trying = answer(bye, 100, to_tag=None)
    tx.receive(trying, now=1.0)
    assert state(tx) is S.PROCEEDING
    assert events(tx) == [ResponseReceived(trying)]
    fire(tx, 1.5)  # the Timer E armed in Trying still runs out...
    assert wire(tx) == [bye]
    for fire_at in (5.5, 9.5, 13.5, 17.5, 21.5, 25.5, 29.5):  # ...then it fires every T2
        fire(tx, fire_at)
        assert wire(tx) == [bye]
    fire(tx, 32.0)
    assert events(tx) == [TransactionTimedOut("F"), TransactionTerminated()]


def test_client_non_invite_on_reliable_transport_only_runs_timer_f(bye: Request) -> None:
    tx = ClientNonInvite(bye, timers=TIMERS, now=0.0, reliable=True)
    assert wire(tx) == [bye]
    fire(tx, 32.0)
    assert wire(tx) == []
    assert events(tx) == [TransactionTimedOut("F"), TransactionTerminated()]


def test_client_non_invite_absorbs_final_retransmissions_until_timer_k(bye: Request) -> None:
    tx = ClientNonInvite(bye, timers=TIMERS, now=0.0)
    wire(tx)
    ok = answer(bye, 200, to_tag=None)
    tx.receive(ok, now=0.2)
    assert state(tx) is S.COMPLETED
    assert tx.next_deadline() == 5.2  # Timer K = T4; Timers E and F stopped
    tx.receive(ok, now=0.7)
    tx.receive(answer(bye, 100, to_tag=None), now=0.8)
    assert wire(tx) == []
    assert events(tx) == [ResponseReceived(ok)]
    fire(tx, 5.2)
    assert events(tx) == ENDED


def test_client_non_invite_on_reliable_transport_terminates_at_once(bye: Request) -> None:
    tx = ClientNonInvite(bye, timers=TIMERS, now=0.0, reliable=True)
    ok = answer(bye, 200, to_tag=None)
    tx.receive(ok, now=0.2)  # Timer K = 0
    assert state(tx) is S.TERMINATED
    assert events(tx) == [ResponseReceived(ok), TransactionTerminated()]
    with pytest.raises(SipStateError, match="cannot take a 2xx response"):
        tx.receive(ok, now=0.3)


@pytest.mark.parametrize(
    ("machine", "data", "message"),
    [
        (ClientInvite, BYE, "ClientInvite cannot carry a request with method BYE"),
        (ClientNonInvite, INVITE, "ClientNonInvite cannot carry a request with method INVITE"),
        (ClientNonInvite, ACK_FOR_2XX, "ACK has no transaction of its own"),
        (ServerNonInvite, ACK_FOR_2XX, "ACK has no transaction of its own"),
        (ServerNonInvite, INVITE, "ServerNonInvite cannot carry a request with method INVITE"),
    ],
)
def test_machines_refuse_the_wrong_method(machine: type, data: bytes, message: str) -> None:
    with pytest.raises(SipError, match=message):
        machine(request(data), timers=TIMERS, now=0.0)


# --- ServerInvite (§17.2.1) -------------------------------------------------------------------


def test_server_invite_answers_100_and_repeats_the_last_provisional(invite: Request) -> None:
    tx = ServerInvite(invite, timers=TIMERS, now=0.0, to_tag=TO_TAG)
    assert state(tx) is S.PROCEEDING and tx.to_tag == TO_TAG
    trying = make_response(invite, 100)
    assert wire(tx) == [trying]
    assert tx.last_response == trying
    assert tx.next_deadline() is None
    tx.receive(invite, now=0.5)
    assert wire(tx) == [trying]
    ringing = answer(invite, 180)
    tx.respond(ringing, now=0.6)
    tx.receive(invite, now=1.5)
    assert wire(tx) == [ringing, ringing]
    assert events(tx) == []


def test_server_invite_without_100_absorbs_retransmissions(invite: Request) -> None:
    tx = ServerInvite(invite, timers=TIMERS, now=0.0, to_tag=TO_TAG, send_trying=False)
    tx.receive(invite, now=0.5)
    assert wire(tx) == []
    assert tx.last_response is None


def test_server_invite_retransmits_2xx_until_timer_l_then_times_out(invite: Request) -> None:
    tx = ServerInvite(invite, timers=TIMERS, now=0.0, to_tag=TO_TAG)
    wire(tx)
    ok = answer(invite, 200)
    tx.respond(ok, now=0.0)
    assert state(tx) is S.ACCEPTED
    assert wire(tx) == [ok]
    schedule = (0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5)
    for fire_at in schedule:  # §13.3.1.4: T1 doubling, capped at T2
        fire(tx, fire_at)
        assert wire(tx) == [ok]
    tx.receive(invite, now=31.7)  # absorbed in Accepted
    assert wire(tx) == []
    fire(tx, 32.0)  # no ACK within 64*T1: the TU sends BYE
    assert events(tx) == [TransactionTimedOut("H"), TransactionTerminated()]
    assert state(tx) is S.TERMINATED


def test_server_invite_retransmits_2xx_on_reliable_transport_too(invite: Request) -> None:
    tx = ServerInvite(invite, timers=TIMERS, now=0.0, to_tag=TO_TAG, reliable=True)
    wire(tx)
    ok = answer(invite, 200)
    tx.respond(ok, now=0.0)
    for fire_at in (0.5, 1.5, 3.5, 7.5):  # end to end, across any UDP hop (§13.3.1.4)
        fire(tx, fire_at)
    assert wire(tx) == [ok] * 5


def test_server_invite_ack_stops_2xx_retransmission(invite: Request) -> None:
    tx = ServerInvite(invite, timers=TIMERS, now=0.0, to_tag=TO_TAG)
    wire(tx)
    ok = answer(invite, 200)
    tx.respond(ok, now=0.0)
    fire(tx, 0.5)
    fire(tx, 1.5)
    assert wire(tx) == [ok, ok, ok]
    ack = request(ACK_FOR_2XX)
    tx.receive(ack, now=2.0)
    tx.receive(ack, now=2.1)  # a retransmitted ACK is absorbed
    tx.receive(invite, now=2.2)  # and so is a late INVITE
    assert events(tx) == [AckReceived(ack)]
    assert state(tx) is S.ACCEPTED
    fire(tx, 32.0)  # Timer L, no Timer G left before it
    assert wire(tx) == []
    assert events(tx) == ENDED  # ACKed: no timeout


def test_server_invite_retransmits_non_2xx_then_times_out(invite: Request) -> None:
    tx = ServerInvite(invite, timers=TIMERS, now=0.0, to_tag=TO_TAG)
    wire(tx)
    busy = answer(invite, 486)
    tx.respond(busy, now=0.0)
    assert state(tx) is S.COMPLETED
    assert wire(tx) == [busy]
    schedule = (0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5)
    for fire_at in schedule:  # Timer G: T1 doubling, capped at T2
        fire(tx, fire_at)
        assert wire(tx) == [busy]
    tx.receive(invite, now=31.8)  # a retransmitted INVITE gets the final again
    assert wire(tx) == [busy]
    fire(tx, 32.0)  # Timer H = 64*T1
    assert events(tx) == [TransactionTimedOut("H"), TransactionTerminated()]


def test_server_invite_ack_to_non_2xx_confirms_until_timer_i(invite: Request) -> None:
    tx = ServerInvite(invite, timers=TIMERS, now=0.0, to_tag=TO_TAG)
    busy = answer(invite, 486)
    tx.respond(busy, now=0.0)
    fire(tx, 0.5)
    ack = request(EXPECTED_ACK)
    tx.receive(ack, now=1.0)
    assert state(tx) is S.CONFIRMED
    assert tx.next_deadline() == 6.0  # Timer I = T4; G and H stopped
    tx.receive(ack, now=1.5)
    tx.receive(invite, now=1.6)
    assert wire(tx) == [make_response(invite, 100), busy, busy]
    assert events(tx) == []  # an ACK to a non-2xx stays in the transaction
    fire(tx, 6.0)
    assert events(tx) == ENDED


def test_server_invite_on_reliable_transport(invite: Request) -> None:
    tx = ServerInvite(invite, timers=TIMERS, now=0.0, to_tag=TO_TAG, reliable=True)
    busy = answer(invite, 486)
    tx.respond(busy, now=0.0)
    assert tx.next_deadline() == 32.0  # no Timer G, Timer H only
    tx.receive(request(EXPECTED_ACK), now=0.1)  # Timer I = 0
    assert state(tx) is S.TERMINATED
    assert events(tx) == ENDED
    assert wire(tx) == [make_response(invite, 100), busy]


def test_server_invite_on_reliable_transport_times_out_without_ack(invite: Request) -> None:
    tx = ServerInvite(invite, timers=TIMERS, now=0.0, to_tag=TO_TAG, reliable=True)
    tx.respond(answer(invite, 486), now=0.0)
    fire(tx, 32.0)
    assert events(tx) == [TransactionTimedOut("H"), TransactionTerminated()]


def test_server_invite_refuses_illegal_inputs(invite: Request) -> None:
    tx = ServerInvite(invite, timers=TIMERS, now=0.0, to_tag=TO_TAG)
    with pytest.raises(SipStateError, match="PROCEEDING cannot take an ACK"):
        tx.receive(request(EXPECTED_ACK), now=0.1)
    with pytest.raises(SipStateError, match="for INVITE cannot take a CANCEL request"):
        tx.receive(request(CANCEL), now=0.1)
    tx.respond(answer(invite, 486), now=0.2)
    with pytest.raises(SipStateError, match="COMPLETED cannot take a 2xx response"):
        tx.respond(answer(invite, 200), now=0.3)
    with pytest.raises(SipStateError, match="COMPLETED cannot take a 1xx response"):
        tx.respond(answer(invite, 180), now=0.3)
    assert wire(tx) == [make_response(invite, 100), answer(invite, 486)]


def test_server_invite_refuses_a_second_final_after_2xx(invite: Request) -> None:
    tx = ServerInvite(invite, timers=TIMERS, now=0.0, to_tag=TO_TAG)
    tx.respond(answer(invite, 200), now=0.0)
    with pytest.raises(SipStateError, match="ServerInvite in state ACCEPTED cannot take a 2xx"):
        tx.respond(answer(invite, 200), now=0.1)
    fire(tx, 0.5)
    tx.handle_timer(now=40.0)
    with pytest.raises(SipStateError, match="TERMINATED cannot take a retransmitted request"):
        tx.receive(invite, now=40.1)


# --- ServerNonInvite (§17.2.2) ----------------------------------------------------------------


def test_server_non_invite_repeats_the_last_response_until_timer_j(bye: Request) -> None:
    tx = ServerNonInvite(bye, timers=TIMERS, now=0.0)
    assert state(tx) is S.TRYING
    tx.receive(bye, now=0.5)  # nothing to repeat yet
    assert wire(tx) == []
    trying = answer(bye, 100, to_tag=None)
    tx.respond(trying, now=0.6)
    assert state(tx) is S.PROCEEDING
    tx.receive(bye, now=1.5)
    assert wire(tx) == [trying, trying]
    ok = answer(bye, 200, to_tag=None)
    tx.respond(ok, now=2.0)
    assert state(tx) is S.COMPLETED
    assert tx.last_response == ok
    tx.receive(bye, now=3.5)
    assert wire(tx) == [ok, ok]
    fire(tx, 34.0)  # Timer J = 64*T1
    assert events(tx) == ENDED


def test_server_non_invite_on_reliable_transport_terminates_at_once(bye: Request) -> None:
    tx = ServerNonInvite(bye, timers=TIMERS, now=0.0, reliable=True)
    ok = answer(bye, 200, to_tag=None)
    tx.respond(ok, now=0.1)  # Timer J = 0
    assert state(tx) is S.TERMINATED
    assert wire(tx) == [ok]
    assert events(tx) == ENDED


def test_server_non_invite_refuses_illegal_inputs(bye: Request) -> None:
    tx = ServerNonInvite(bye, timers=TIMERS, now=0.0)
    with pytest.raises(SipStateError, match="TRYING cannot take an ACK"):
        tx.receive(request(ACK_FOR_2XX), now=0.1)
    tx.respond(answer(bye, 481, to_tag=None), now=0.2)
    with pytest.raises(SipStateError, match="ServerNonInvite in state COMPLETED cannot take a"):
        tx.respond(answer(bye, 200, to_tag=None), now=0.3)


# --- tables -----------------------------------------------------------------------------------


@pytest.mark.parametrize("machine", [ClientInvite, ClientNonInvite, ServerInvite, ServerNonInvite])
def test_terminated_has_no_way_out(machine: type[Transaction]) -> None:
    assert machine.TRANSITIONS
    assert all(source is not S.TERMINATED for source, _ in machine.TRANSITIONS)


# --- a Hypothesis property: waking late never changes what is sent ----------------------------


@given(st.lists(st.floats(min_value=0.0, max_value=40.0), max_size=30))
def test_late_timer_calls_send_what_punctual_calls_send(wakeups: list[float]) -> None:
    punctual = ClientNonInvite(request(BYE), timers=TIMERS, now=0.0)
    while (deadline := punctual.next_deadline()) is not None:
        punctual.handle_timer(now=deadline)
    sleepy = ClientNonInvite(request(BYE), timers=TIMERS, now=0.0)
    for now in [*sorted(wakeups), 40.0]:
        sleepy.handle_timer(now=now)
    assert sleepy.datagrams_to_send() == punctual.datagrams_to_send()
    assert events(sleepy) == events(punctual) == [TransactionTimedOut("F"), *ENDED]


# --- matching (§17.1.3, §17.2.3) --------------------------------------------------------------


def test_server_key_matches_retransmission_and_non_2xx_ack(invite: Request) -> None:
    key = server_key(invite)
    assert key == TransactionKey(
        "INVITE", branch="z9hG4bKnashds8", sent_by="pc33.atlanta.example.com:5060"
    )
    assert server_key(request(INVITE)) == key
    assert server_key(request(EXPECTED_ACK)) == key  # ACK counts as INVITE
    assert transaction_key(invite) == key


def test_server_key_keeps_cancel_and_2xx_ack_apart(invite: Request) -> None:
    cancel = server_key(request(CANCEL))
    assert cancel.branch == server_key(invite).branch
    assert cancel != server_key(invite)  # §9.2: CANCEL is its own transaction
    assert replace(cancel, method="INVITE") == server_key(invite)  # how CANCEL finds its INVITE
    assert server_key(request(ACK_FOR_2XX)) != server_key(invite)  # new branch


def test_server_key_compares_sent_by_host_case_insensitively() -> None:
    shouting = INVITE.replace(b"UDP pc33.atlanta.example.com", b"UDP PC33.Atlanta.Example.COM")
    other_port = INVITE.replace(b"example.com:5060;", b"example.com:5070;")
    assert server_key(request(shouting)) == server_key(request(INVITE))
    assert server_key(request(other_port)) != server_key(request(INVITE))


def test_server_key_falls_back_to_rfc2543_matching() -> None:
    invite = rfc2543(INVITE)
    key = server_key(invite)
    assert key == TransactionKey(
        "INVITE",
        request_uri="sip:bob@biloxi.example.com",
        call_id="3848276298220188511@atlanta.example.com",
        from_tag="9fxced76sl",
        cseq=314159,
        top_via="SIP/2.0/UDP pc33.atlanta.example.com:5060",
    )
    assert server_key(rfc2543(INVITE)) == key
    assert server_key(rfc2543(EXPECTED_ACK)) == key  # the To tag is checked via .to_tag
    assert server_key(rfc2543(CANCEL)) != key
    assert server_key(rfc2543(CANCEL)).method == "CANCEL"
    other_cseq = rfc2543(INVITE.replace(b"314159 INVITE", b"314160 INVITE"))
    assert server_key(other_cseq) != key


def test_rfc2543_key_includes_the_to_tag_outside_invite(bye: Request) -> None:
    legacy = request(BYE.replace(b";branch=z9hG4bKnashds10", b""))
    assert server_key(legacy).to_tag == "9fxced76sl"
    assert server_key(legacy).branch is None
    magic_less = request(BYE.replace(b"z9hG4bKnashds10", b"nashds10"))  # old-style branch
    assert server_key(magic_less).branch is None


def test_client_key_matches_responses_by_branch_and_cseq_method(invite: Request) -> None:
    key = client_key(invite)
    assert key == TransactionKey("INVITE", branch="z9hG4bKnashds8")
    assert client_key(answer(invite, 180)) == key
    assert transaction_key(answer(invite, 486)) == key
    cancel = request(CANCEL)
    assert client_key(make_response(cancel, 200)) == client_key(cancel) != key


def test_client_key_needs_a_branch() -> None:
    with pytest.raises(SipParseError, match="top Via has no branch"):
        client_key(make_response(rfc2543(INVITE), 180))
