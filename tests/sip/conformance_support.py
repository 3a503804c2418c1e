"""Shared by the conformance tests (`test_conformance`, `test_protos`): the corpora in
shared/conformance (read in place) and a UDP client that reads the server's verdict.

How a verdict is read. The server handles one datagram at a time, and answers a request inside
the same step (the SIP core and the call runtime are synchronous). So after each message we send
an OPTIONS "barrier" from the same socket: when its 200 arrives, everything the message caused
has already arrived before it. "No response" is therefore an observation, not a timeout, and
every barrier also proves the server still serves.

Calls the server accepts are not answered in these runs: an answered call starts media to the
address in its SDP, and the corpus SDP names 192.0.2.x, example hosts and PROTOS garbage. So
the servers run with an answer delay (`RING`): an accepted INVITE gets 180 Ringing and
`SipClient.tear_down` CANCELs it (487, then ACK).
"""

from __future__ import annotations

import csv
import json
import time
import uuid
from dataclasses import dataclass, field

from sip.errors import SipParseError
from sip.headers import Headers
from sip.message import Request, Response, parse_message, partial_request
from sip.transaction import TransactionKey, server_key
from tests.conformance import conformance_path
from tests.loopback import LOOPBACK, ServerProcess, UdpPeer

BARRIER_TIMEOUT_S = 5.0
FORCE_RPORT = {"VOICEAGENT_FORCE_RPORT": "true"}
# Accepted calls ring and are cancelled, never answered: no media to the corpus' SDP addresses.
RING = FORCE_RPORT | {"VOICEAGENT_ANSWER_DELAY_SECONDS": "60"}
RINGING = 180  # the verdict for an INVITE the server accepts (it would answer after the delay)


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


SEED_DIR = ("fuzz", "pjproject-fuzz-seeds", "sip")


def seeds() -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(conformance_path(*SEED_DIR).glob("*.sip"))}


def to_crlf(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


PROTOS_DIR = ("fuzz", "protos-c07-sip")


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
