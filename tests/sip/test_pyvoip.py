"""Interop: pyVoIP 1.6.8, an independent SIP stack, calls `voiceagent serve` and hangs up.

The first test runs the server as deployed and checks the call's life in its JSON log. The
second puts `CapturingRelay`, a UDP relay on 127.0.0.1 that records every datagram both ways,
between the two: the capture is how it sees what pyVoIP actually sent. pyVoIP's INVITE and
BYE carry no ``rport``, so §18.2.2 sends their responses to the Via port, around the relay;
that test therefore runs the server with ``force_rport`` (what a NATed trunk needs anyway),
which keeps every response on the relay's path.

Two pyVoIP habits shape the exchange (read from pyVoIP/SIP.py and VoIP/VoIP.py):

* ``VoIPPhone.start()`` always REGISTERs first and gives up unless it gets a 200. The server
  answers as a registrar that stores nothing (`UserAgent`, REGISTER 200 echoing the Contact
  with its expires); the capture shows that exchange, and the de-REGISTER (Expires: 0) that
  ``stop()`` sends.
* ``gen_ack`` puts a fresh random To-tag of its own in every ACK (one ACK per 200 it
  receives, retransmissions included; the first 200 often arrives before pyVoIP has filed
  the call, and only the retransmission is ACKed) and copies the INVITE's Via, branch and
  all. The
  server matches that ACK to the INVITE server transaction by branch, so the first confirms
  the call and any later one is absorbed (by the transaction, or once it is gone, as a
  stray ACK that gets no response): ACKs are never answered, and none is rejected.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from types import TracebackType

import pytest
from pyVoIP.VoIP import CallState, PhoneStatus, VoIPPhone

from sip.message import Request, Response, parse_message
from tests.loopback import LOOPBACK, ServerProcess, free_port, voiceagent_serve

pytestmark = pytest.mark.peer

WAIT_S = 10.0


class CapturingRelay:
    """Forwards UDP between one client and the server, recording each datagram."""

    def __init__(self, server_port: int) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((LOOPBACK, 0))
        self.sock.settimeout(0.05)
        self.port = int(self.sock.getsockname()[1])
        self.server = (LOOPBACK, server_port)
        self.client: tuple[str, int] | None = None
        self.log: list[tuple[str, Request | Response]] = []  # ("in"|"out", message)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="relay", daemon=True)

    def __enter__(self) -> CapturingRelay:
        self._thread.start()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, addr = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            if addr == self.server:
                direction, target = "out", self.client
            else:
                self.client = addr
                direction, target = "in", self.server
            if target is None:
                continue
            self.sock.sendto(data, target)
            with self._lock:
                self.log.append((direction, parse_message(data)))

    def messages(self, direction: str) -> list[Request | Response]:
        """What went to the server ("in") or came from it ("out"), in order."""
        with self._lock:
            return [m for d, m in self.log if d == direction]

    def requests(self, method: str) -> list[Request]:
        return [m for m in self.messages("in") if isinstance(m, Request) and m.method == method]

    def responses(self, status: int, method: str) -> list[Response]:
        return [
            m
            for m in self.messages("out")
            if isinstance(m, Response) and m.status == status and m.cseq().method == method
        ]


def wait_until(condition: Callable[[], bool], what: str, timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def events_for(server: ServerProcess, name: str, call_id: str) -> list[dict[str, object]]:
    return [e for e in server.events(name) if e.get("call_id") == call_id]


def phone_for(port: int) -> VoIPPhone:
    """A pyVoIP phone on 127.0.0.1 whose SIP server is ``127.0.0.1:port``."""
    rtp_port = free_port(both=False)
    return VoIPPhone(
        LOOPBACK,
        port,
        "patient",
        "unused-password",
        myIP=LOOPBACK,
        sipPort=free_port(both=False),
        rtpPortLow=rtp_port,
        rtpPortHigh=rtp_port,
    )


def call_and_hang_up(phone: VoIPPhone, server: ServerProcess) -> str:
    """Register, call, wait for the answer, hang up; returns pyVoIP's Call-ID."""
    phone.start()  # blocks until its REGISTER got a final response
    # pyVoIP raises unless that response was 200: being here means we answered REGISTER.
    assert phone.get_status() is PhoneStatus.REGISTERED
    call = phone.call("agent")
    call_id = str(call.call_id)
    wait_until(lambda: call.state is CallState.ANSWERED, "pyVoIP to see the 200")
    wait_until(lambda: bool(events_for(server, "call_confirmed", call_id)), "call_confirmed")
    call.hangup()
    wait_until(lambda: bool(events_for(server, "call_ended", call_id)), "call_ended")
    return call_id


def assert_logged_whole_call(server: ServerProcess, call_id: str) -> None:
    assert len(events_for(server, "call_answered", call_id)) == 1
    assert len(events_for(server, "call_confirmed", call_id)) == 1
    [ended] = events_for(server, "call_ended", call_id)
    assert ended["reason"] == "remote_bye"
    assert server.events("message_rejected") == []


def test_pyvoip_calls_the_agent_and_hangs_up() -> None:
    with voiceagent_serve() as server:
        phone = phone_for(server.sip_port)
        try:
            call_id = call_and_hang_up(phone, server)
        finally:
            phone.stop()  # de-REGISTERs, then closes its sockets
    assert_logged_whole_call(server, call_id)


def test_pyvoip_exchange_as_captured() -> None:
    env = {"VOICEAGENT_FORCE_RPORT": "true"}
    with voiceagent_serve(env=env) as server, CapturingRelay(server.sip_port) as relay:
        phone = phone_for(relay.port)
        try:
            call_id = call_and_hang_up(phone, server)
            wait_until(lambda: bool(relay.responses(200, "BYE")), "the 200 for the BYE")
        finally:
            phone.stop()
        wait_until(lambda: len(relay.responses(200, "REGISTER")) == 2, "the de-REGISTER's 200")
    assert_logged_whole_call(server, call_id)

    # Registration happened first and was answered deliberately, as a registrar that keeps
    # nothing: 200 echoing pyVoIP's Contact with the expiry it asked for (120 s).
    first = relay.messages("in")[0]
    assert isinstance(first, Request) and first.method == "REGISTER"
    registers = relay.requests("REGISTER")
    assert [r.headers.get("expires") for r in registers] == ["120", "0"]  # start, stop
    oks = relay.responses(200, "REGISTER")
    assert len(oks) == 2
    [contact] = oks[0].contact()
    assert str(contact.uri) == str(registers[0].contact()[0].uri)
    assert contact.param("expires") == "120"

    assert oks[1].contact()[0].param("expires") == "0"

    # pyVoIP's ACKs each carry a fresh To-tag of their own, never ours, and the INVITE's
    # branch, which is what lets the INVITE transaction absorb them. None is answered.
    [invite] = relay.requests("INVITE")
    [ok] = [r for r in relay.responses(200, "INVITE") if r.call_id() == call_id][:1]
    acks = [a for a in relay.requests("ACK") if a.call_id() == call_id]
    assert acks and all(a.to().tag != ok.to().tag for a in acks)
    assert len({a.to().tag for a in acks}) == len(acks)
    assert all(a.top_via().branch == invite.top_via().branch for a in acks)
    assert not [m for m in relay.messages("out") if m.cseq().method == "ACK"]
    bye = relay.requests("BYE")[0]
    assert bye.to().tag == ok.to().tag  # its BYE does use our tag, so the dialog matches
