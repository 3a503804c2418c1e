"""The PROTOS c07-sip INVITE suite (shared/conformance/fuzz/protos-c07-sip, read in place)
through the real server on 127.0.0.1, one server for all 471 cases.

Each case is an INVITE template mutated in one place, plus a teardown request for the same
dialog. A case is sent over UDP (over TCP when it does not fit a datagram) and its verdict read
with the OPTIONS barrier of `tests.sip.conformance_support`: a legal INVITE rings and the case's
own teardown, sent as CANCEL, ends it; a broken one gets one 4xx/5xx final, or nothing when no
Via can be read. `test_a_loopback_call_is_answered_and_torn_down` answers the baseline case,
whose SDP is 127.0.0.1, and ends it with ACK and BYE.
"""

from __future__ import annotations

import socket
import time
from collections import Counter

import pytest

from sip.message import Response
from tests.loopback import LOOPBACK, ServerProcess, UdpPeer, voiceagent_serve
from tests.sip.conformance_support import (
    FORCE_RPORT,
    RING,
    RINGING,
    Exchange,
    ProtosCase,
    SipClient,
    assert_healthy,
    log_records,
    protos_cases,
    read_message,
)

MAX_UDP_PAYLOAD = 65_507


# SIP-group mutants that are still legal SIP, each checked by hand: these get a call (200).
LEGAL_MUTANTS: dict[int, str] = {
    194: "Request-URI names another user and host: a voice UAS answers any URI",
    **dict.fromkeys((234, 244), "Request-URI host is a long but legal name"),
    330: "Via host 10.10.10.1 is a valid address (never contacted: answers go to the source)",
    **dict.fromkeys((377, 388), "Via host is a long but legal name"),
    452: "Via port 0 is 1*DIGIT (answers go to the source port anyway)",
    **dict.fromkeys((461, 470), "Via port in range"),
    **dict.fromkeys((540, 551, 561, 572), "protocol-version = token (§25.1); a UAS never uses it"),
    **dict.fromkeys((630, 957), "empty display name"),
    **dict.fromkeys((643, 970), "a 33 KB token as display name"),
    **dict.fromkeys((668, 995), "a display name of LWS only"),
    **dict.fromkeys((720, 732, 1047, 1059), "'%', '.' and letters are token characters"),
    **dict.fromkeys(
        (842, 851),
        "a valueless param named with token characters: From has no tag (RFC 2543 style)",
    ),
    870: "a 33 KB tag token",
    **dict.fromkeys((896, 1150), "another valid SIP URI"),
    **dict.fromkeys((906, 1160), "an absoluteURI whose scheme is 33 KB of letters"),
    **dict.fromkeys((936, 946, 1190, 1200), "long but legal user or host"),
    **dict.fromkeys((1481, 1558, 1570), "Call-ID = word: '%', '.', '*' are word characters"),
    1661: "a Call-ID without '@' is legal",
    **dict.fromkeys((1677, 1689, 1700, 1712, 1724, 1735), "Call-ID host part is a legal word"),
    **dict.fromkeys((1783, 1792, 1801), "Expires in range"),
    **dict.fromkeys((1829, 1838), "Max-Forwards in range; a UAS does not forward"),
    **dict.fromkeys((1875, 1884, 1893), "CSeq in range"),
    **dict.fromkeys(
        (2361, 2370), "Content-Length shorter than the body: UDP octets past it are ignored (§18.3)"
    ),
    2410: "a bare CR ends the request line: tolerated like a bare LF",
    **dict.fromkeys(
        (2420, 2423, 2426),
        "the CR/LF runs are inside the body, which Content-Length frames; the SDP layer skips them",
    ),
}
# The request line runs into the next line (no Via readable), or stands alone: nothing to answer.
UNANSWERABLE_GROUPS = ("sip-request-crlf",)


def allowed_outcomes(case: ProtosCase, oversize: bool) -> set[int | None]:
    """The final status (None: no response) a case may get."""
    if oversize:
        # over TCP the framer's partial request is answered 513, then the stream is closed;
        # when the request line alone fills the partial window there is no Via to answer
        return {513, None}
    if case.group == "valid" or case.number in LEGAL_MUTANTS:
        return {RINGING}  # accepted: it rings until the teardown CANCEL
    if case.group.startswith("sdp-"):
        return {RINGING, 400, 488}  # the SIP layer parses; the SDP layer accepts or refuses
    allowed: set[int | None] = {400, 415, 416, 501, 505}
    if case.group in UNANSWERABLE_GROUPS:
        allowed.add(None)
    return allowed


def _send_over_tcp(server: ServerProcess, data: bytes) -> list[Response]:
    """Too big for a datagram: send on a stream; the server must answer (or not) and close."""
    with socket.create_connection((LOOPBACK, server.sip_port), timeout=5.0) as sock:
        try:
            sock.sendall(data)
        except OSError:
            pass  # the server may close as soon as the head is over the limit
        received = b""
        closed = False
        deadline = time.monotonic() + 5.0
        while not closed and time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                chunk = b""
            received += chunk
            closed = not chunk
    assert closed, "the server kept an unframeable stream open"
    if not received:
        return []
    message = read_message(received)
    assert isinstance(message, Response)
    return [message]


@pytest.mark.slow
def test_protos_c07_sip_against_the_live_server() -> None:
    cases = protos_cases()
    assert len(cases) == 471
    outcomes: Counter[str] = Counter()
    by_group: dict[str, Counter[str]] = {}
    failures: list[str] = []
    started = time.monotonic()
    with voiceagent_serve(env=RING) as server, UdpPeer() as peer:
        client = SipClient(server, peer)
        for case in cases:
            invite = case.invite(peer.port)
            oversize = len(invite) > MAX_UDP_PAYLOAD
            if oversize:
                exchange = Exchange(invite, _send_over_tcp(server, invite))
                exchange.responses += client.barrier()[0]  # and UDP still serves
            else:  # the case's own teardown request, as CANCEL, ends a ringing call
                exchange = client.exchange(invite, cancel=case.cancel(peer.port))
            finals = exchange.finals
            outcome = exchange.outcome
            label = f"{outcome or 'none'}/{'tcp' if oversize else 'udp'}"
            outcomes[label] += 1
            by_group.setdefault(case.group, Counter())[label] += 1
            if len(finals) > 1 or outcome not in allowed_outcomes(case, oversize):
                failures.append(f"{case.number} ({case.group}): {finals}")
            sip_parsed = exchange.provisionals[:1] == [100]  # the INVITE opened a transaction
            if (case.group.startswith("sdp-") or outcome == RINGING) and not (
                oversize or sip_parsed
            ):
                failures.append(f"{case.number} ({case.group}): the SIP layer did not take it")
            if exchange.requests:
                failures.append(f"{case.number}: server sent requests {exchange.requests}")
        client.barrier()
        assert_healthy(server)
        assert not any(e.get("event") == "rtp_ports_exhausted" for e in log_records(server))
    elapsed = time.monotonic() - started
    print(f"\nPROTOS c07-sip: {len(cases)} cases in {elapsed:.1f}s: {dict(outcomes)}")
    for group, counts in by_group.items():
        print(f"  {group}: {dict(counts)}")
    assert failures == [], "\n".join(failures)
    assert elapsed < 60.0


def test_a_loopback_call_is_answered_and_torn_down() -> None:
    """The PROTOS baseline INVITE, its SDP on 127.0.0.1, without an answer delay: 200 with an
    SDP answer, then our ACK and BYE (200), and the server ends the call."""
    case = protos_cases()[0]
    with voiceagent_serve(env=FORCE_RPORT) as server, UdpPeer() as peer:
        exchange = SipClient(server, peer).exchange(case.invite(peer.port))
        assert exchange.provisionals == [100] and exchange.finals == [200]
        ok = next(r for r in exchange.responses if r.status == 200)
        assert ok.content_type() == "application/sdp"
        assert b"c=IN IP4 127.0.0.1" in ok.body and b"RTP/AVP 0" in ok.body  # PCMU, on loopback
        assert ok.to().tag is not None and ok.contact()
        assert [r.status for r in exchange.teardown] == [200]  # the BYE (the ACK has no answer)
        ended = server.wait_for_event("call_ended")
        assert ended[0]["call_id"] == "protos-0@127.0.0.1" and ended[0]["reason"] == "remote_bye"
        assert_healthy(server)


def test_protos_teardown_templates_are_clean() -> None:
    # The teardown request is the same dialog as the case; CANCEL for a call we never
    # answered is 481 (RFC 3261 §9.2), which also shows no state was left behind.
    cases = [c for c in protos_cases() if c.group == "sip-method"][:3]
    with voiceagent_serve(env=FORCE_RPORT) as server, UdpPeer() as peer:
        client = SipClient(server, peer)
        for case in cases:
            exchange = client.exchange(case.invite(peer.port))
            assert exchange.finals in ([400], [501], [])
            cancel = case.cancel(peer.port)
            assert cancel.startswith(b"CANCEL sip:va@127.0.0.1 SIP/2.0\r\n")
            assert client.exchange(cancel).finals == [481]
        assert_healthy(server)


def test_protos_sample_and_legal_mutant_table_match_the_corpus() -> None:
    cases = {c.number: c for c in protos_cases()}
    assert len(cases) == 471 and cases[0].group == "valid"
    assert set(LEGAL_MUTANTS) <= set(cases)
    assert all(cases[n].group.startswith(("sip-", "crlf-")) for n in LEGAL_MUTANTS)
    # each teardown is the same dialog: a <Teardown-Method> request with the case's Call-ID
    for case in cases.values():
        assert case.teardown.startswith(b"<Teardown-Method> ")
        call_id = [line for line in case.teardown.split(b"\r\n") if line.startswith(b"Call-ID")]
        assert len(call_id) == 1 and call_id[0] + b"\r\n" in case.template, case.number
