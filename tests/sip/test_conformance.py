"""Conformance through the real server on 127.0.0.1: the RFC 4475 and RFC 5118 torture messages
and the pjproject SIP fuzz seeds (shared/conformance, read in place). The PROTOS c07-sip suite
is in `test_protos`; the corpus loaders and the barrier client both use are in
`tests.sip.conformance_support`, whose docstring explains how a verdict is read.

The RFC messages reuse branches (``z9hG4bKkdjuw`` in six of them), and a server must treat a
request that matches a live transaction as a retransmission (RFC 3261 §17.2.3). Each corpus is
therefore run in rounds, a fresh server per round, with no two messages of a round sharing a
transaction key. Most runs set VOICEAGENT_FORCE_RPORT so that answers come back to the sending
socket; `test_response_port_selection` checks the §18.2.2 rules without it. Accepted calls ring
and are cancelled, never answered (`RING`).
"""

from __future__ import annotations

import json
import socket
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from sip.call import IncomingCall
from sip.errors import SipParseError
from sip.layer import Address, LayerConfig, TransactionLayer
from sip.message import Request, Response, parse_message, partial_request
from sip.uac import Originator
from sip.useragent import UserAgent, UserAgentConfig
from tests.conformance import conformance_path
from tests.loopback import LOOPBACK, UdpPeer, voiceagent_serve
from tests.sip.conformance_support import (
    BARRIER_TIMEOUT_S,
    FORCE_RPORT,
    RING,
    RINGING,
    Exchange,
    SipClient,
    ack_for_failure,
    assert_healthy,
    manifest,
    options,
    protos_cases,
    read_message,
    rounds,
    seeds,
    to_crlf,
    torture_messages,
    wait_for_call_log,
)

AUTH = {
    "VOICEAGENT_SIP_AUTH_REALM": "voiceagent.test",
    "VOICEAGENT_SIP_AUTH_USERS": json.dumps({"alice": "secret"}),
}


# --------------------------------------------------------------------- expected answers


@dataclass(frozen=True)
class Verdict:
    """What a torture message deserves from a voice UAS/registrar on UDP."""

    status: int | None  # the one final response; None: no response at all
    why: str
    sdp_layer: tuple[int, ...] = ()  # other finals the SDP layer may choose (call_layer)
    call_layer: bool = False  # an INVITE that must reach the call runtime (100 Trying first)
    check: Callable[[Response], None] | None = None


def header(response: Response, name: str) -> str:
    value = response.headers.get(name)
    assert value is not None, f"{response.status} lacks {name}"
    return value


def allow_without(method: str) -> Callable[[Response], None]:
    def check(response: Response) -> None:
        allowed = [m.strip() for m in header(response, "Allow").split(",")]
        assert "INVITE" in allowed and method not in allowed, allowed

    return check


def contact_binding(
    uri: str, params: tuple[tuple[str, str | None], ...]
) -> Callable[[Response], None]:
    """The registrar's 200 names the binding with the right URI and header params."""

    def check(response: Response) -> None:
        (binding,) = response.contact()
        assert str(binding.uri) == uri
        assert [p for p in binding.params if p[0] != "expires"] == list(params)
        assert binding.param("expires") is not None

    return check


def check_escnull(response: Response) -> None:
    # two distinct bindings, %00 neither truncated nor unescaped
    assert [str(c.uri) for c in response.contact()] == [
        "sip:%00@host5.example.com",
        "sip:%00%00@host5.example.com",
    ]


def check_wsinv(response: Response) -> None:
    assert response.to().tag == "1918181833n"  # read through the folding and LWS
    assert response.from_().tag == "98asjd8"
    assert response.call_id() == "wsinv.ndaksdj@192.0.2.1"


def check_transports(response: Response) -> None:
    vias = response.via()
    assert [v.transport for v in vias] == ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]
    assert vias[0].param("received") == LOOPBACK


def check_bext01(response: Response) -> None:
    unsupported = [t.strip() for t in header(response, "Unsupported").split(",")]
    assert unsupported == ["nothingSupportsThis", "nothingSupportsThisEither"]  # not Proxy-Require


def check_received_rewritten(response: Response) -> None:
    assert response.via()[0].param("received") == LOOPBACK


def reason_is(reason: str) -> Callable[[Response], None]:
    def check(response: Response) -> None:
        assert response.reason == reason

    return check


def accepts_sdp(response: Response) -> None:
    assert "application/sdp" in header(response, "Accept")


def warning_399(response: Response) -> None:
    assert header(response, "Warning").startswith("399 ")


def check_sdp_refusal(response: Response) -> None:
    if response.status == 400:  # from the SDP layer, never the SIP parser
        assert "SDP" in header(response, "Warning"), header(response, "Warning")


R = Verdict
CALL_VIA_SDP = (
    "accepted (rings); or the SDP layer refuses its a=rtpmap:31 LPC (no clock rate): RFC 4475 "
    "asks only the SIP layer to take it"
)
EXPECTED: dict[str, Verdict] = {
    # RFC 4475 §3.1.1: valid messages
    "wsinv": R(
        481, "valid, but its To-tag names no dialog of ours (RFC 3261 §12.2.2)", check=check_wsinv
    ),
    "intmeth": R(501, "legal but unknown method", check=allow_without("!interesting")),
    "esc01": R(RINGING, CALL_VIA_SDP, sdp_layer=(400,), call_layer=True, check=check_sdp_refusal),
    "escnull": R(200, "REGISTER with two %00 bindings", check=check_escnull),
    "esc02": R(
        501, "RE%47IST%45R is an unknown method, not REGISTER", check=allow_without("RE%47IST%45R")
    ),
    "lwsdisp": R(200, "no LWS before '<' is a known grammar bug: accepted"),
    "longreq": R(
        RINGING,
        "long but legal (not 513); " + CALL_VIA_SDP,
        sdp_layer=(400,),
        call_layer=True,
        check=check_sdp_refusal,
    ),
    "dblreq": R(200, "the REGISTER; the INVITE octets past Content-Length are ignored"),
    "semiuri": R(200, "';' before '@' belongs to the user part"),
    "transports": R(200, "unknown transports are extension tokens", check=check_transports),
    "mpart01": R(
        405, "MESSAGE is known but not served by a voice UAS", check=allow_without("MESSAGE")
    ),
    "unreason": R(None, "a response: never answered"),
    "noreason": R(None, "a response: never answered"),
    # RFC 4475 §3.1.2: invalid messages
    "badinv01": R(400, "empty Via/Contact elements"),
    "clerr": R(400, "Content-Length beyond the datagram"),
    "ncl": R(400, "negative Content-Length"),
    "scalar02": R(400, "CSeq beyond 2**32-1"),
    "scalarlg": R(None, "an invalid response: dropped"),
    "quotbal": R(400, "unterminated quoted display name"),
    "ltgtruri": R(400, "Request-URI in <>"),
    "lwsruri": R(400, "whitespace inside the Request-URI"),
    "lwsstart": R(400, "several SPs in the request line: our deliberate strict choice"),
    "trws": R(400, "trailing SP after the version: our deliberate strict choice"),
    "escruri": R(
        400,
        "URI headers in a Request-URI (§8.2 inspection, not the parser)",
        check=reason_is("Request-URI Carries Headers"),
    ),
    "baddate": R(
        RINGING,
        "a non-GMT Date is ignored; " + CALL_VIA_SDP,
        sdp_layer=(400,),
        call_layer=True,
        check=check_sdp_refusal,
    ),
    "regbadct": R(400, "an addr-spec with '?' outside <>"),
    "badaspec": R(400, "whitespace inside <addr-spec>"),
    "baddn": R(400, "unquoted display name with ',' and '.'"),
    "badvers": R(505, "SIP/7.0"),
    "mismatch01": R(400, "CSeq method differs from the request method"),
    "mismatch02": R(501, "unknown method with a mismatched CSeq prefers 501"),
    "bigcode": R(None, "an invalid response: dropped"),
    "badbranch": R(200, "a bare magic cookie branch is still processed"),
    # RFC 4475 §3.3: transaction layer and application
    "insuf": R(400, "no Call-ID, From or To"),
    "unkscm": R(416, "unknown Request-URI scheme"),
    "novelsc": R(416, "soap.beep is not a scheme we serve"),
    "unksm2": R(416, "a registrar cannot bind an isbn: AOR"),
    "bext01": R(420, "Require lists extensions we lack", check=check_bext01),
    "invut": R(415, "an INVITE body we cannot read", check=accepts_sdp),
    "regaut01": R(200, "no authentication configured (see test_regaut01_is_challenged)"),
    "multi01": R(400, "From, To, Call-ID, CSeq twice"),
    "mcl01": R(400, "two different Content-Lengths"),
    "bcast": R(None, "a response: never answered, never sent to 255.255.255.255"),
    "zeromf": R(200, "Max-Forwards: 0 only forbids forwarding"),
    "cparam01": R(
        200,
        "unknownparam binds to the header, not the URI",
        check=contact_binding("sip:+19725552222@gw1.example.net", (("unknownparam", None),)),
    ),
    "cparam02": R(
        200,
        "unknownparam is a URI parameter inside <>",
        check=contact_binding("sip:+19725552222@gw1.example.net;unknownparam", ()),
    ),
    "regescrt": R(
        200,
        "an escaped Route header inside <> stays in the binding",
        check=contact_binding("sip:user@example.com?Route=%3Csip:sip.example.com%3E", ()),
    ),
    "sdp01": R(406, "Accept excludes application/sdp", check=warning_399),
    "inv2543": R(RINGING, "RFC 2543: no branch, no tags, no Content-Length", call_layer=True),
    # RFC 5118
    "ipv6-good": R(200, "IPv6 references in R-URI, Via and Contact"),
    "ipv6-bad": R(400, "an IPv6 address without [ ]"),
    "port-ambiguous": R(200, "the 'port' inside the brackets is part of the address"),
    "port-unambiguous": R(200, "the port after ']'"),
    "via-received-param-with-delim": R(
        481, "a BYE for no dialog; received is rewritten", check=check_received_rewritten
    ),
    "via-received-param-no-delim": R(200, "received without brackets"),
    "ipv6-in-sdp": R(400, "printed Content-Length 268 > 251-byte body"),
    "mult-ip-in-header": R(481, "a BYE for no dialog", check=check_received_rewritten),
    "mult-ip-in-sdp": R(
        RINGING,
        "printed Content-Length truncates the last SDP line; the SDP layer refuses what is left",
        sdp_layer=(400, 488),
        call_layer=True,
        check=check_sdp_refusal,
    ),
    "ipv4-mapped-ipv6": R(
        488,
        "printed Content-Length cuts the last rtpmap to 'H263-19' "
        "(no clock rate): the SDP layer refuses it; else G726-32 only",
        sdp_layer=(400,),
        call_layer=True,
        check=check_sdp_refusal,
    ),
    "ipv6-bug-abnf-3-colons": R(400, "three colons is not IPv6"),
    "ipv6-correct-abnf-2-colons": R(200, "IPv6 with an embedded IPv4"),
    "ipv6-in-sdp.cl-fixed": R(488, "G726-32 only: no common codec", call_layer=True),
    "mult-ip-in-sdp.cl-fixed": R(RINGING, "PCMU on the IPv4 stream", call_layer=True),
    "ipv4-mapped-ipv6.cl-fixed": R(488, "G726-32 only: no common codec", call_layer=True),
}


def test_every_corpus_message_has_a_verdict() -> None:
    assert sorted(EXPECTED) == sorted(torture_messages())
    assert len([r for r in manifest("rfc4475")]) == 49
    assert len([r for r in manifest("rfc5118")]) == 12


# ------------------------------------------------------------------------- RFC 4475/5118


@dataclass
class CorpusRun:
    exchanges: dict[str, Exchange]
    logs: dict[str, dict[str, object]]
    rounds: int
    seconds: float


@pytest.fixture(scope="module")
def corpus_run() -> Iterator[CorpusRun]:
    messages = torture_messages()
    exchanges: dict[str, Exchange] = {}
    logs: dict[str, dict[str, object]] = {}
    started = time.monotonic()
    plan = rounds(messages)
    for names in plan:
        with voiceagent_serve(env=RING) as server, UdpPeer() as peer:
            client = SipClient(server, peer)
            cursor = 0
            for name in names:
                exchanges[name] = client.exchange(messages[name])
                if EXPECTED[name].call_layer:
                    partial = partial_request(messages[name])
                    call_id = partial.headers.get("call-id") if partial else None
                    index, logs[name] = wait_for_call_log(server, call_id or "", cursor)
                    cursor = index + 1
            client.barrier()  # the whole round behind it, the server still answers
            assert_healthy(server)
    yield CorpusRun(exchanges, logs, len(plan), time.monotonic() - started)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_torture_message_gets_its_answer(name: str, corpus_run: CorpusRun) -> None:
    verdict = EXPECTED[name]
    exchange = corpus_run.exchanges[name]
    assert exchange.requests == []  # the server never turned a message into a request to us
    if verdict.status is None:
        assert exchange.responses == [], f"{name}: {verdict.why}"
        return
    allowed = (verdict.status, *verdict.sdp_layer)
    assert len(exchange.finals) <= 1 and exchange.outcome in allowed, (
        f"{name} got {exchange.finals or exchange.provisionals}, deserves {allowed}: {verdict.why}"
    )
    sent = partial_request(exchange.sent)
    is_invite = sent is not None and sent.method == "INVITE"
    # provisionals: 100 Trying for an INVITE that opened a transaction, 180 when it rings
    expected = [100, RINGING] if exchange.outcome == RINGING else [100] if is_invite else []
    assert exchange.provisionals in ([], expected), exchange.provisionals
    decisive = next(r for r in exchange.responses if r.status >= 200 or r.status == RINGING)
    if verdict.call_layer:
        assert exchange.provisionals[:1] == [100]  # parsed and given a transaction
        record = corpus_run.logs[name]
        expected_event = "call_ringing" if exchange.outcome == RINGING else "call_rejected"
        assert record["event"] == expected_event, record
    if verdict.check is not None:
        verdict.check(decisive)


def test_corpus_summary(corpus_run: CorpusRun) -> None:
    counts = Counter(e.outcome or "none" for e in corpus_run.exchanges.values())
    print(
        f"\nRFC 4475/5118: {len(corpus_run.exchanges)} messages in {corpus_run.rounds} rounds, "
        f"{corpus_run.seconds:.1f}s; finals {dict(sorted(counts.items(), key=str))}"
    )
    assert len(corpus_run.exchanges) == len(EXPECTED)


def test_regaut01_is_challenged_when_digest_is_configured() -> None:
    # RFC 4475 §3.3.7: the unknown scheme in Authorization is ignored and we challenge
    data = conformance_path("rfc4475", "regaut01.dat").read_bytes()
    with voiceagent_serve(env=FORCE_RPORT | AUTH) as server, UdpPeer() as peer:
        exchange = SipClient(server, peer).exchange(data)
        assert exchange.finals == [401]
        challenge = header(exchange.responses[0], "WWW-Authenticate")
        assert challenge.startswith("Digest ") and 'realm="voiceagent.test"' in challenge
        assert_healthy(server)


# ------------------------------------------------------------------ §18.2.2 port selection


@pytest.fixture
def bound() -> Iterator[Callable[[int], UdpPeer]]:
    """Bind fixed ports on 127.0.0.1 (waiting a bounded time if another test holds one)."""
    peers: list[UdpPeer] = []

    def bind(port: int) -> UdpPeer:
        deadline = time.monotonic() + 15.0
        while True:
            try:
                peer = UdpPeer(port)
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"udp 127.0.0.1:{port} stayed busy; this test needs it "
                        "to receive the answers RFC 3261 §18.2.2 sends there"
                    ) from None
                time.sleep(0.2)
                continue
            peers.append(peer)
            return peer

    yield bind
    for peer in peers:
        peer.close()


@pytest.mark.parametrize(
    ("name", "target_port", "status"),
    [
        ("zeromf", 5060, 200),  # no port in sent-by: the default port
        ("quotbal", 5050, 400),  # a stateless rejection uses the same rule
        ("ipv4-mapped-ipv6.cl-fixed", 19823, 488),  # sent-by [::ffff:192.0.2.10]:19823
        ("mpart01", None, 405),  # rport: the source port, not the sent-by 5070
    ],
)
def test_response_port_selection(
    name: str, target_port: int | None, status: int, bound: Callable[[int], UdpPeer]
) -> None:
    """RFC 3261 §18.2.2 / RFC 3581: the source IP always; the Via port unless rport."""
    data = torture_messages()[name]
    decoy = bound(5070)  # mpart01's sent-by port: must stay silent
    target = bound(target_port) if target_port is not None else None
    with (
        voiceagent_serve(env={"VOICEAGENT_ANSWER_DELAY_SECONDS": "60"}) as server,
        UdpPeer() as sender,
    ):
        client = SipClient(server, sender)
        client.send(data)
        at_sender, _ = client.barrier()  # the barrier asks for rport, so its 200 comes back
        received = at_sender if target is None else _drain(target)
        assert [r.status for r in received if r.status >= 200] == [status]
        if target is not None:
            assert at_sender == []  # nothing went to the source port
        assert _drain(decoy) == []
        if status == 488:  # stateful: ACK it so the 488 stops
            sender.send(ack_for_failure(received[-1], "sip:user@example.com"), server.sip_port)
            client.barrier()
        assert_healthy(server)


def _drain(peer: UdpPeer) -> list[Response]:
    out = []
    while (data := peer.recv(timeout=0.3)) is not None:
        message = read_message(data)
        assert isinstance(message, Response)
        out.append(message)
    return out


# --------------------------------------------------------------------------- over TCP


def _tcp_options(call_id: str, port: int) -> bytes:
    return options(call_id, port).replace(b"SIP/2.0/UDP", b"SIP/2.0/TCP")


def _read_until(sock: socket.socket, marker: bytes) -> bytes:
    received = b""
    deadline = time.monotonic() + BARRIER_TIMEOUT_S
    while marker not in received and time.monotonic() < deadline:
        chunk = sock.recv(65536)
        if not chunk:
            break
        received += chunk
    return received


def test_framing_over_tcp_through_the_server() -> None:
    """RFC 3261 §18.3 on a stream: split and pipelined messages, a RFC 5626 ping, then an
    unframeable message (RFC 4475 mcl01) that is answered 400 before the stream closes."""
    mcl01 = torture_messages()["mcl01"]
    clerr = torture_messages()["clerr"]
    with voiceagent_serve(env=FORCE_RPORT) as server:
        with socket.create_connection((LOOPBACK, server.sip_port), timeout=5.0) as sock:
            port = sock.getsockname()[1]
            first, second = _tcp_options("tcp-1", port), _tcp_options("tcp-2", port)
            sock.sendall(first[:30])
            sock.sendall(first[30:] + b"\r\n\r\n" + second)  # ping between two requests
            received = _read_until(sock, b"Call-ID: tcp-2")
            assert received.startswith(b"SIP/2.0 200 OK\r\n")
            assert b"Call-ID: tcp-1" in received and b"\r\n\r\n\r\nSIP/2.0 200" in received
            sock.sendall(mcl01)
            answer = _read_until(sock, b"\r\n\r\n")
            assert answer.startswith(b"SIP/2.0 400 "), answer[:40]
            assert b"mcl01" in answer  # its own Call-ID: answered from the partial request
            assert sock.recv(65536) == b""  # then closed
        # clerr on a stream: Content-Length 9999 means "wait for the rest", not 400
        with socket.create_connection((LOOPBACK, server.sip_port), timeout=5.0) as sock:
            sock.sendall(clerr)
            sock.settimeout(0.5)
            with pytest.raises(TimeoutError):
                sock.recv(65536)
        with UdpPeer() as peer:
            SipClient(server, peer).barrier()
        assert_healthy(server)


# ------------------------------------------------------------------- pjproject fuzz seeds

# The two multipart seeds carry a Content-Length larger than their body (301 for 253 octets,
# 245 for 212 once normalised to CRLF): rejected like RFC 4475 clerr. input.4 is truncated.
SEEDS_REJECTED = {
    "input.4.sip": "message has no empty line after the headers",
    "multipart_alternative.sip": "Content-Length is larger than the body",
    "multipart_basic.sip": "Content-Length is larger than the body",
}


def test_pjproject_seeds_parse_or_are_rejected_cleanly() -> None:
    found = seeds()
    assert len(found) == 15
    parsed = 0
    for name, raw in found.items():
        for data in (raw, to_crlf(raw)):  # stored with LF line ends; CRLF is the wire form
            try:
                message = parse_message(data)
            except SipParseError as exc:
                assert str(exc) == SEEDS_REJECTED.get(name), (name, str(exc))
                continue
            assert name not in SEEDS_REJECTED
            parsed += 1
            if data is not raw:
                assert bytes(message) == data, name  # the CRLF form round-trips exactly
    assert parsed == 2 * (15 - len(SEEDS_REJECTED))
    # with an honest Content-Length the multipart seeds are fine
    for name in ("multipart_alternative.sip", "multipart_basic.sip"):
        data = to_crlf(found[name])
        head, body = data.split(b"\r\n\r\n", 1)
        fixed = (
            b"\r\n".join(
                f"Content-Length: {len(body)}".encode()
                if line.startswith(b"Content-Length")
                else line
                for line in head.split(b"\r\n")
            )
            + b"\r\n\r\n"
            + body
        )
        message = parse_message(fixed)
        assert message.content_type() == "multipart/mixed" if "basic" in name else True
        assert bytes(message) == fixed


def test_pjproject_seeds_through_the_server() -> None:
    # raw and CRLF forms share their branches: a second one would be a retransmission
    messages = {name: raw for name, raw in seeds().items()}
    messages |= {f"{name}/crlf": to_crlf(raw) for name, raw in seeds().items()}
    answered = 0
    for names in rounds(messages):
        with voiceagent_serve(env=RING) as server, UdpPeer() as peer:
            client = SipClient(server, peer)
            for name in names:
                exchange = client.exchange(messages[name])
                try:
                    message = parse_message(messages[name])
                except SipParseError:
                    message = None
                if isinstance(message, Request) and message.method != "ACK":
                    assert exchange.outcome is not None and len(exchange.finals) <= 1, name
                    answered += 1
                else:
                    # broken requests are answered statelessly; responses are never answered
                    assert all(s >= 400 for s in exchange.finals), (name, exchange.finals)
                    assert len(exchange.finals) <= 1
                assert exchange.requests == []
            client.barrier()
            assert_healthy(server)
    assert answered >= 15


# ------------------------------------------------- sans-I/O: answers only ever go to the source


def _every_corpus_input() -> Iterator[tuple[str, bytes]]:
    for name, data in torture_messages().items():
        yield name, data
    for name, data in seeds().items():
        yield name, data
        yield f"{name}/crlf", to_crlf(data)
    for case in protos_cases():
        yield f"protos/{case.number}", case.invite(port=40000)


def test_answers_never_go_anywhere_but_the_source_address() -> None:
    """Every corpus input through the UA core without force_rport, timers run to the end:
    every datagram goes to 127.0.0.1, whatever hosts the headers and SDP name."""
    me = Originator(
        from_uri="sip:va@127.0.0.1", contact_uri="sip:va@127.0.0.1:5060", sent_by="127.0.0.1:5060"
    )
    ua = UserAgent(UserAgentConfig(me=me), TransactionLayer(LayerConfig()))
    source = Address("udp", LOOPBACK, 40000)
    now = 0.0
    sent = Counter[str]()
    for _, data in _every_corpus_input():
        now += 0.01
        ua.receive_datagram(data, source, now)
        while (event := ua.next_event()) is not None:
            if isinstance(event, IncomingCall):  # answer: exercises 2xx retransmission and BYE
                ua.answer(event.call_id, b"v=0\r\n", now)
        for _, address in ua.datagrams_to_send():
            sent[address.host] += 1
    for _ in range(600):  # 5 virtual minutes: retransmissions, Timer H, BYE, Timer F...
        now += 0.5
        ua.handle_timer(now)
        for _, address in ua.datagrams_to_send():
            sent[address.host] += 1
    assert ua.next_deadline() is None  # every transaction and call ran to its end
    assert set(sent) == {LOOPBACK} and sent[LOOPBACK] > 500
