"""Dialog state (RFC 3261 §12): creation on both sides, CSeq rules, route set, target refresh."""

from __future__ import annotations

import pytest

from sip.dialog import Dialog, DialogId, DialogState
from sip.errors import SipStateError
from sip.message import Request, Response, parse_message

INVITE = (
    b"INVITE sip:agent@127.0.0.20:5060 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.2:5060;branch=z9hG4bKp1\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.10:5060;branch=z9hG4bKc1;rport\r\n"
    b"Record-Route: <sip:127.0.0.2;lr>\r\n"
    b"Record-Route: <sip:127.0.0.3;lr>\r\n"
    b"Max-Forwards: 69\r\n"
    b'From: "Caller" <sip:caller@127.0.0.10>;tag=ctag\r\n'
    b"To: <sip:agent@127.0.0.20>\r\n"
    b"Call-ID: dlg-1@127.0.0.10\r\n"
    b"CSeq: 314 INVITE\r\n"
    b"Contact: <sip:caller@192.0.2.1:5060;transport=udp>\r\n"
    b"Content-Length: 0\r\n\r\n"
)

OK = (
    b"SIP/2.0 200 OK\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.10:5060;branch=z9hG4bKc1;rport=5060\r\n"
    b"Record-Route: <sip:127.0.0.2;lr>\r\n"
    b"Record-Route: <sip:127.0.0.3;lr>\r\n"
    b'From: "Caller" <sip:caller@127.0.0.10>;tag=ctag\r\n'
    b"To: <sip:agent@127.0.0.20>;tag=stag\r\n"
    b"Call-ID: dlg-1@127.0.0.10\r\n"
    b"CSeq: 314 INVITE\r\n"
    b"Contact: <sip:agent@192.0.2.2:5060>\r\n"
    b"Content-Length: 0\r\n\r\n"
)


def request(data: bytes) -> Request:
    msg = parse_message(data)
    assert isinstance(msg, Request)
    return msg


def response(data: bytes) -> Response:
    msg = parse_message(data)
    assert isinstance(msg, Response)
    return msg


def in_dialog(method: str, cseq: int) -> Request:
    return request(
        f"{method} sip:agent@127.0.0.20:5060 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.10:5060;branch=z9hG4bK{method}{cseq}\r\n"
        f"From: <sip:caller@127.0.0.10>;tag=ctag\r\nTo: <sip:agent@127.0.0.20>;tag=stag\r\n"
        f"Call-ID: dlg-1@127.0.0.10\r\nCSeq: {cseq} {method}\r\n"
        f"Contact: <sip:caller@192.0.2.9:5062>\r\nContent-Length: 0\r\n\r\n".encode()
    )


@pytest.fixture
def uas() -> Dialog:
    return Dialog.as_uas(request(INVITE), local_tag="stag", initial_cseq=1)


@pytest.fixture
def uac() -> Dialog:
    invite = request(INVITE)
    return Dialog.as_uac(invite, response(OK))


def test_uas_dialog_from_invite(uas: Dialog) -> None:
    # §12.1.1: route set = Record-Route in order; remote target = Contact; remote CSeq = INVITE's
    assert uas.id == DialogId("dlg-1@127.0.0.10", local_tag="stag", remote_tag="ctag")
    assert uas.state is DialogState.EARLY
    assert uas.route_set == ("<sip:127.0.0.2;lr>", "<sip:127.0.0.3;lr>")
    assert uas.remote_target == "sip:caller@192.0.2.1:5060;transport=udp"
    assert uas.remote_cseq == 314 and uas.local_cseq == 1
    assert uas.local_uri == "<sip:agent@127.0.0.20>"
    assert uas.remote_uri == '"Caller" <sip:caller@127.0.0.10>'
    assert not uas.secure


def test_uac_dialog_from_2xx(uac: Dialog) -> None:
    # §12.1.2: route set = Record-Route reversed; remote target = the 2xx's Contact
    assert uac.id == DialogId("dlg-1@127.0.0.10", local_tag="ctag", remote_tag="stag")
    assert uac.state is DialogState.CONFIRMED
    assert uac.route_set == ("<sip:127.0.0.3;lr>", "<sip:127.0.0.2;lr>")
    assert uac.remote_target == "sip:agent@192.0.2.2:5060"
    assert uac.local_cseq == 314 and uac.remote_cseq is None


def test_uac_dialog_from_provisional_is_early() -> None:
    ringing = response(OK.replace(b"200 OK", b"180 Ringing"))
    assert Dialog.as_uac(request(INVITE), ringing).state is DialogState.EARLY


def test_sips_request_uri_makes_a_secure_dialog() -> None:
    invite = request(INVITE.replace(b"INVITE sip:", b"INVITE sips:"))
    assert Dialog.as_uas(invite, local_tag="s", initial_cseq=1).secure


def test_next_request_takes_the_next_cseq_and_the_route_set(uac: Dialog) -> None:
    after, bye = uac.next_request("BYE", via="SIP/2.0/UDP 127.0.0.10:5060;branch=z9hG4bKb1")
    assert after.local_cseq == 315 and uac.local_cseq == 314  # frozen: a new value returned
    assert bye.method == "BYE" and bye.uri == "sip:agent@192.0.2.2:5060"
    assert bye.cseq().seq == 315 and bye.cseq().method == "BYE"
    assert bye.headers.values("route") == ["<sip:127.0.0.3;lr>", "<sip:127.0.0.2;lr>"]
    assert bye.from_().tag == "ctag" and bye.to().tag == "stag"
    assert bye.call_id() == "dlg-1@127.0.0.10"
    assert bytes(parse_message(bytes(bye))) == bytes(bye)  # it parses back byte for byte


def test_uas_side_requests_swap_from_and_to(uas: Dialog) -> None:
    _, bye = uas.next_request("BYE", via="SIP/2.0/UDP 127.0.0.20:5060;branch=z9hG4bKb2")
    assert bye.from_().tag == "stag" and str(bye.from_().uri) == "sip:agent@127.0.0.20"
    assert bye.to().tag == "ctag" and str(bye.to().uri) == "sip:caller@127.0.0.10"
    assert bye.cseq().seq == 2  # the UAS's own CSeq space, independent of the caller's 314


def test_ack_reuses_the_invite_cseq(uac: Dialog) -> None:
    after, reinvite = uac.next_request("INVITE", via="v", contact="<sip:caller@127.0.0.10>")
    assert reinvite.cseq().seq == 315 and reinvite.contact()
    after, info = after.next_request("INFO", via="v")
    assert info.cseq().seq == 316
    # The re-INVITE's 2xx arrives after the INFO went out: its ACK still says 315.
    after, ack = after.next_request("ACK", via="v", ack_for=315)
    assert ack.cseq().seq == 315 and ack.cseq().method == "ACK"
    assert after.local_cseq == 316  # an ACK never moves the counter
    _, plain_ack = after.next_request("ACK", via="v")
    assert plain_ack.cseq().seq == 316


def test_remote_cseq_must_increase(uas: Dialog) -> None:
    # §12.2.2: lower or equal is out of order (500); higher is taken
    assert uas.accept_remote_cseq(in_dialog("INFO", 314)) is None
    assert uas.accept_remote_cseq(in_dialog("INFO", 313)) is None
    taken = uas.accept_remote_cseq(in_dialog("INFO", 400))
    assert taken is not None and taken.remote_cseq == 400
    assert taken.accept_remote_cseq(in_dialog("BYE", 399)) is None
    # ACK and CANCEL carry the INVITE's number and are never out of order
    assert taken.accept_remote_cseq(in_dialog("ACK", 314)) is taken


def test_uac_side_takes_the_first_remote_cseq_whatever_it_is(uac: Dialog) -> None:
    taken = uac.accept_remote_cseq(in_dialog("BYE", 1))
    assert taken is not None and taken.remote_cseq == 1


def test_target_refresh(uas: Dialog) -> None:
    refreshed = uas.with_remote_target(in_dialog("INVITE", 315))
    assert refreshed.remote_target == "sip:caller@192.0.2.9:5062"
    no_contact = request(
        bytes(in_dialog("INFO", 316)).replace(b"Contact: <sip:caller@192.0.2.9:5062>\r\n", b"")
    )
    assert refreshed.with_remote_target(no_contact) is refreshed


def test_terminated_dialog_sends_nothing_but_ack(uac: Dialog) -> None:
    ended = uac.terminated()
    assert ended.state is DialogState.TERMINATED
    with pytest.raises(SipStateError, match="cannot send BYE in a terminated dialog"):
        ended.next_request("BYE", via="v")
    with pytest.raises(SipStateError, match="cannot confirm a terminated dialog"):
        ended.confirmed()
    _, ack = ended.next_request("ACK", via="v")
    assert ack.method == "ACK"


def test_confirm(uas: Dialog) -> None:
    assert uas.confirmed().state is DialogState.CONFIRMED
    assert uas.state is DialogState.EARLY
