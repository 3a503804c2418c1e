"""Conformance through the real server on 127.0.0.1: the RFC 4475 and RFC 5118 torture messages,
the pjproject SIP fuzz seeds and the PROTOS c07-sip INVITE suite (shared/conformance, read in
place).

How a verdict is read. The server handles one datagram at a time, and answers a request inside
the same step (the SIP core and the call runtime are synchronous). So after each message we send
an OPTIONS "barrier" from the same socket: when its 200 arrives, everything the message caused
has already arrived before it. "No response" is therefore an observation, not a timeout, and
every barrier also proves the server still serves.

The RFC messages reuse branches (``z9hG4bKkdjuw`` in six of them), and a server must treat a
request that matches a live transaction as a retransmission (RFC 3261 §17.2.3). Each corpus is
therefore run in rounds, a fresh server per round, with no two messages of a round sharing a
transaction key. Most runs set VOICEAGENT_FORCE_RPORT so that answers come back to the sending
socket; `test_response_port_selection` checks the §18.2.2 rules without it.

Calls the server accepts are not answered in these runs: an answered call starts media to the
address in its SDP, and the corpus SDP names 192.0.2.x, example hosts and PROTOS garbage. So
the servers run with an answer delay (`RING`): an accepted INVITE gets 180 Ringing and we CANCEL
it (487, then ACK). `test_a_loopback_call_is_answered_and_torn_down` answers a call whose SDP
is 127.0.0.1 and ends it with ACK and BYE.
"""

from __future__ import annotations

import csv
import json
import socket
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

from sip.call import IncomingCall
from sip.errors import SipParseError
from sip.headers import Headers
from sip.layer import Address, LayerConfig, TransactionLayer
from sip.message import Request, Response, parse_message, partial_request
from sip.transaction import TransactionKey, server_key
from sip.uac import Originator
from sip.useragent import UserAgent, UserAgentConfig
from tests.conformance import conformance_path
from tests.loopback import LOOPBACK, ServerProcess, UdpPeer, voiceagent_serve

BARRIER_TIMEOUT_S = 5.0
FORCE_RPORT = {"VOICEAGENT_FORCE_RPORT": "true"}
# Accepted calls ring and are cancelled, never answered: no media to the corpus' SDP addresses.
RING = FORCE_RPORT | {"VOICEAGENT_ANSWER_DELAY_SECONDS": "60"}
RINGING = 180  # the verdict for an INVITE the server accepts (it would answer after the delay)
AUTH = {
    "VOICEAGENT_SIP_AUTH_REALM": "voiceagent.test",
    "VOICEAGENT_SIP_AUTH_USERS": json.dumps({"alice": "secret"}),
}


# --------------------------------------------------------------------------- the corpus


def manifest(corpus: str) -> list[dict[str, str]]:
    with conformance_path(corpus, "MANIFEST.tsv").open(newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def torture_messages() -> dict[str, bytes]:
    """RFC 4475, RFC 5118 and the three RFC 5118 variants with corrected Content-Length."""
    out = {
        row["name"]: conformance_path("rfc4475", f"{row['name']}.dat").read_bytes()
        for row in manifest("rfc4475")
    }
    out |= {
        row["name"]: conformance_path("rfc5118", f"{row['name']}.dat").read_bytes()
        for row in manifest("rfc5118")
    }
    for path in sorted(conformance_path("rfc5118", "variants").glob("*.dat")):
        out[path.name.removesuffix(".dat")] = path.read_bytes()
    return out


def transaction_key(data: bytes) -> TransactionKey | None:
    try:
        message = parse_message(data)
    except SipParseError:
        return None  # answered statelessly: no transaction to collide with
    return server_key(message) if isinstance(message, Request) else None


def rounds(messages: dict[str, bytes]) -> list[list[str]]:
    """Split messages so that no round holds two with the same server transaction key."""
    plan: list[tuple[set[TransactionKey], list[str]]] = []
    for name, data in messages.items():
        key = transaction_key(data)
        slot = next((r for r in plan if key is None or key not in r[0]), None)
        if slot is None:
            slot = (set(), [])
            plan.append(slot)
        if key is not None:
            slot[0].add(key)
        slot[1].append(name)
    return [names for _, names in plan]


# --------------------------------------------------------------------------- the client


@dataclass
class Exchange:
    """What one message caused: the responses that arrived before the barrier's 200."""

    sent: bytes
    responses: list[Response]
    requests: list[Request] = field(default_factory=list)  # the server should send none
    teardown: list[Response] = field(default_factory=list)  # answers to our CANCEL/ACK/BYE
    cancelled: bool = False  # it rang, and our CANCEL ended it with 487

    @property
    def outcome(self) -> int | None:
        """The final status; RINGING for a call that rang until we cancelled it; None."""
        if self.finals:
            return self.finals[0]
        return RINGING if self.cancelled else None

    @property
    def finals(self) -> list[int]:
        return [r.status for r in self.responses if r.status >= 200]

    @property
    def provisionals(self) -> list[int]:
        return [r.status for r in self.responses if r.status < 200]


class SipClient:
    """A UDP socket on 127.0.0.1 that sends to the server and reads up to a barrier."""

    def __init__(self, server: ServerProcess, peer: UdpPeer) -> None:
        self.server = server
        self.peer = peer

    def send(self, data: bytes) -> None:
        self.peer.send(data, self.server.sip_port)

    def barrier(self) -> tuple[list[Response], list[Request]]:
        """Send OPTIONS; return what arrived before its 200 (within BARRIER_TIMEOUT_S)."""
        call_id = f"barrier-{uuid.uuid4().hex}"
        self.send(options(call_id, self.peer.port))
        responses: list[Response] = []
        requests: list[Request] = []
        deadline = time.monotonic() + BARRIER_TIMEOUT_S
        while (left := deadline - time.monotonic()) > 0:
            data = self.peer.recv(timeout=left)
            if data is None:
                break
            message = read_message(data)
            if isinstance(message, Request):
                requests.append(message)
            elif message.headers.get("call-id") == call_id:
                assert message.status == 200, f"OPTIONS got {message.status}"
                return responses, requests
            else:
                responses.append(message)
        alive = self.server.proc.poll() is None
        raise AssertionError(
            f"no 200 for OPTIONS within {BARRIER_TIMEOUT_S}s (server "
            f"{'running' if alive else 'exited'}): {self.server.log_lines[-5:]}"
        )

    def exchange(self, data: bytes, cancel: bytes | None = None) -> Exchange:
        self.send(data)
        responses, requests = self.barrier()
        exchange = Exchange(data, responses, requests)
        self.tear_down(exchange, cancel)
        return exchange

    def tear_down(self, exchange: Exchange, cancel: bytes | None = None) -> None:
        """End what an INVITE started: CANCEL a ringing call (487, then ACK), ACK a failure,
        ACK and BYE a 2xx (expecting 200). ``cancel`` replaces the CANCEL we would build."""
        invite = [r for r in exchange.responses if _cseq_method(r) == "INVITE"]
        final = next((r for r in invite if r.status >= 200), None)
        if final is None and any(r.status == RINGING for r in invite):
            self.send(cancel or cancel_for(exchange.sent))
            responses, requests = self.barrier()
            exchange.teardown += responses
            exchange.requests += requests
            statuses = sorted((r.status, _cseq_method(r)) for r in responses)
            assert statuses == [(200, "CANCEL"), (487, "INVITE")], statuses
            final = next(r for r in responses if r.status == 487)
            exchange.cancelled = True
        if final is None:
            return
        if final.status < 300:
            self.send(ack_for_2xx(final, self.peer.port))
            self.send(bye_for_2xx(final, self.peer.port))
        elif 100 in exchange.provisionals:  # stateful: the final is retransmitted until ACKed
            partial = partial_request(exchange.sent)
            self.send(ack_for_failure(final, partial.uri if partial else "sip:invalid"))
        else:
            return  # a stateless rejection: nothing to clean up
        responses, requests = self.barrier()
        exchange.teardown += responses
        exchange.requests += requests
        if final.status < 300:
            assert [r.status for r in responses] == [200], f"BYE got {responses}"


def read_message(data: bytes) -> Request | Response:
    """Parse what the server sent. An answer to a broken request copies its broken Via, From,
    To, Call-ID and CSeq (RFC 3261 §8.2.6.2), so a response may be read leniently: its
    status line must still be exact, and its headers are taken as they are."""
    try:
        return parse_message(data)
    except SipParseError:
        head, _, body = data.partition(b"\r\n\r\n")
        start, *lines = head.decode("utf-8", "surrogateescape").split("\r\n")
        version, status, reason = start.split(" ", 2)
        assert version == "SIP/2.0" and status.isdigit() and len(status) == 3, start
        fields: list[tuple[str, str]] = []
        for line in lines:
            if line[:1] in (" ", "\t") and fields:
                fields[-1] = (fields[-1][0], f"{fields[-1][1]} {line.strip()}")
            else:
                name, colon, value = line.partition(":")
                assert colon, f"unreadable header line {line!r} in a response"
                fields.append((name.strip(), value.strip()))
        return Response(status=int(status), reason=reason, headers=Headers(fields), body=body)


def _cseq_method(response: Response) -> str | None:
    try:
        return response.cseq().method
    except SipParseError:
        return None


def options(call_id: str, port: int) -> bytes:
    return (
        f"OPTIONS sip:va@{LOOPBACK} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {LOOPBACK}:{port};branch=z9hG4bK{call_id};rport\r\n"
        f"From: <sip:probe@{LOOPBACK}>;tag=probe\r\nTo: <sip:va@{LOOPBACK}>\r\n"
        f"Call-ID: {call_id}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
        f"Content-Length: 0\r\n\r\n"
    ).encode()


def _dialog_request(method: str, response: Response, port: int, cseq: int) -> bytes:
    target = response.contact()[0].uri if response.contact() else "sip:va@127.0.0.1"
    return (
        f"{method} {target} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {LOOPBACK}:{port};branch=z9hG4bK{uuid.uuid4().hex};rport\r\n"
        f"From: {response.headers.get('from')}\r\nTo: {response.headers.get('to')}\r\n"
        f"Call-ID: {response.call_id()}\r\nCSeq: {cseq} {method}\r\nMax-Forwards: 70\r\n"
        f"Content-Length: 0\r\n\r\n"
    ).encode("utf-8", "surrogateescape")


def cancel_for(invite: bytes) -> bytes:
    """§9.1: the INVITE's Request-URI, top Via, From, To, Call-ID and CSeq number."""
    request = parse_message(invite)  # it opened a transaction, so it parses
    assert isinstance(request, Request)
    return (
        f"CANCEL {request.uri} SIP/2.0\r\nVia: {request.headers.values('via')[0]}\r\n"
        f"From: {request.headers.get('from')}\r\nTo: {request.headers.get('to')}\r\n"
        f"Call-ID: {request.call_id()}\r\nCSeq: {request.cseq().seq} CANCEL\r\n"
        f"Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    ).encode("utf-8", "surrogateescape")


def ack_for_2xx(response: Response, port: int) -> bytes:
    """§13.2.2.4: an ACK of its own (new branch) in the dialog the 2xx created."""
    return _dialog_request("ACK", response, port, response.cseq().seq)


def bye_for_2xx(response: Response, port: int) -> bytes:
    return _dialog_request("BYE", response, port, response.cseq().seq + 1)


def ack_for_failure(response: Response, request_uri: str) -> bytes:
    """§17.1.1.3: same branch (top Via) as the INVITE, the To of the response."""
    return (
        f"ACK {request_uri} SIP/2.0\r\nVia: {response.headers.values('via')[0]}\r\n"
        f"From: {response.headers.get('from')}\r\nTo: {response.headers.get('to')}\r\n"
        f"Call-ID: {response.call_id()}\r\nCSeq: {response.cseq().seq} ACK\r\n"
        f"Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    ).encode("utf-8", "surrogateescape")


def log_records(server: ServerProcess) -> list[dict[str, object]]:
    records = []
    for line in list(server.log_lines):
        try:
            records.append(json.loads(line))
        except ValueError:
            records.append({"event": "unparsed", "line": line})
    return records


def assert_healthy(server: ServerProcess) -> None:
    """Still running, still serving, and nothing went wrong inside."""
    assert server.proc.poll() is None, "the server exited"
    bad = [
        r
        for r in log_records(server)
        if r.get("level") in ("error", "critical", "exception") or "Traceback" in str(r)
    ]
    assert bad == [], bad[:3]


def wait_for_call_log(
    server: ServerProcess, call_id: str, after: int
) -> tuple[int, dict[str, object]]:
    """The call layer's verdict on an INVITE (call_ringing, _answered or _rejected) logged after
    record ``after``, and its index; bounded. Several RFC 5118 INVITEs share one Call-ID."""
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        for index, record in enumerate(log_records(server)[after:], start=after):
            if record.get("call_id") == call_id and record.get("event") in (
                "call_ringing",
                "call_answered",
                "call_rejected",
            ):
                return index, record
        time.sleep(0.02)
    raise AssertionError(f"no call_ringing/answered/rejected logged for {call_id}")


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

SEED_DIR = ("fuzz", "pjproject-fuzz-seeds", "sip")
# The two multipart seeds carry a Content-Length larger than their body (301 for 253 octets,
# 245 for 212 once normalised to CRLF): rejected like RFC 4475 clerr. input.4 is truncated.
SEEDS_REJECTED = {
    "input.4.sip": "message has no empty line after the headers",
    "multipart_alternative.sip": "Content-Length is larger than the body",
    "multipart_basic.sip": "Content-Length is larger than the body",
}


def seeds() -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(conformance_path(*SEED_DIR).glob("*.sip"))}


def to_crlf(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


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


# ------------------------------------------------------------------------ PROTOS c07-sip

PROTOS_DIR = ("fuzz", "protos-c07-sip")
MAX_UDP_PAYLOAD = 65_507


@dataclass(frozen=True)
class ProtosCase:
    number: int
    group: str
    template: bytes
    teardown: bytes

    def invite(self, port: int) -> bytes:
        return _substitute(self.template, self.number, port)

    def cancel(self, port: int) -> bytes:
        return _substitute(self.teardown, self.number, port, b"CANCEL")


def _substitute(template: bytes, case: int, port: int, method: bytes = b"CANCEL") -> bytes:
    values = {
        b"<To>": b"va@127.0.0.1",
        b"<From>": b"protos@127.0.0.1",
        b"<From-Address>": b"127.0.0.1",
        b"<From-IP>": b"127.0.0.1",
        b"<Local-Port>": str(port).encode(),
        b"<Branch-ID>": b"c%d" % case,
        b"<Call-ID>": b"protos-%d" % case,
        b"<CSeq>": b"1",
        b"<Teardown-Method>": method,
    }
    for placeholder, value in values.items():
        template = template.replace(placeholder, value)
    head_end = template.find(b"\r\n\r\n")  # Content-Length last, over the substituted body
    length = len(template) - head_end - 4 if head_end >= 0 else 0
    return template.replace(b"<Content-Length>", str(length).encode())


def protos_cases() -> list[ProtosCase]:
    cases = []
    for row in manifest(PROTOS_DIR[0] + "/" + PROTOS_DIR[1]):
        data = conformance_path(*PROTOS_DIR, row["file"]).read_bytes()
        size, rest = data.split(b" ", 1)
        template, rest = rest[: int(size)], rest[int(size) :]
        size, rest = rest.split(b" ", 1)
        assert len(rest) == int(size), row["file"]
        cases.append(ProtosCase(int(row["case"]), row["group"], template, rest))
    return cases


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
            cancel = _substitute(case.teardown, case.number, peer.port)
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
