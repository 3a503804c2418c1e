"""Tier 3: the asyncio `SipEndpoint` on real 127.0.0.1 sockets, in process.

The UA behind the endpoint is the real `UserAgent`; the far side is a plain socket that
writes SIP by hand, so these tests see exactly the bytes on the wire. Every read is bounded
by `WAIT_S`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from sip.call import CallConfirmed, CallEnded, CallEvent, EndReason, IncomingCall
from sip.framing import KeepAlive, StreamFramer, Unframeable
from sip.layer import LayerConfig, TransactionLayer
from sip.message import Request, Response, parse_message
from sip.transport import SipEndpoint
from sip.uac import Originator
from sip.useragent import UserAgent, UserAgentConfig
from tests.loopback import LOOPBACK, free_port

WAIT_S = 3.0
SDP = (
    b"v=0\r\no=agent 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)


@dataclass
class Agent:
    """A UserAgent behind a SipEndpoint that answers every call with `SDP`."""

    endpoint: SipEndpoint
    ua: UserAgent
    port: int
    events: list[CallEvent] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def on_activity(self) -> None:
        now = asyncio.get_running_loop().time()
        while (event := self.ua.next_event()) is not None:
            self.events.append(event)
            if isinstance(event, IncomingCall):
                self.ua.answer(event.call_id, SDP, now)
        self.changed.set()

    async def wait_for(self, kind: type[CallEvent]) -> CallEvent:
        async with asyncio.timeout(WAIT_S):
            while True:
                found = [e for e in self.events if isinstance(e, kind)]
                if found:
                    return found[0]
                self.changed.clear()
                await self.changed.wait()


@pytest.fixture
async def agent() -> AsyncIterator[Agent]:
    port = free_port()
    me = Originator(
        from_uri=f"sip:agent@{LOOPBACK}",
        contact_uri=f"sip:agent@{LOOPBACK}:{port}",
        sent_by=f"{LOOPBACK}:{port}",
    )
    ua = UserAgent(UserAgentConfig(me=me), TransactionLayer(LayerConfig()))
    holder: list[Agent] = []
    endpoint = SipEndpoint(ua, on_activity=lambda: holder[0].on_activity())
    holder.append(Agent(endpoint, ua, port))
    await endpoint.start(LOOPBACK, port)
    try:
        yield holder[0]
    finally:
        endpoint.close()


def request(
    method: str,
    port: int,
    transport: str,
    *,
    local: tuple[str, int],
    branch: str,
    call_id: str = "t1@127.0.0.1",
    cseq: int = 1,
    to_tag: str | None = None,
    body: bytes = b"",
    extra: str = "",
) -> bytes:
    to = f"<sip:agent@{LOOPBACK}:{port}>" + (f";tag={to_tag}" if to_tag else "")
    content_type = "Content-Type: application/sdp\r\n" if body else ""
    return (
        f"{method} sip:agent@{LOOPBACK}:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/{transport} {local[0]}:{local[1]};branch=z9hG4bK{branch};rport\r\n"
        f"Max-Forwards: 70\r\nFrom: <sip:tester@{LOOPBACK}>;tag=tt1\r\nTo: {to}\r\n"
        f"Call-ID: {call_id}\r\nCSeq: {cseq} {method}\r\n"
        f"Contact: <sip:tester@{local[0]}:{local[1]};transport={transport.lower()}>\r\n"
        f"{extra}{content_type}Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


class UdpClient(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str | bytes, int]) -> None:
        self.queue.put_nowait(data)

    async def next(self) -> Request | Response:
        async with asyncio.timeout(WAIT_S):
            return parse_message(await self.queue.get())


class TcpClient:
    """One TCP connection that frames what it reads with our own `StreamFramer`."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.framer = StreamFramer()
        self.items: list[bytes | KeepAlive | Unframeable] = []
        self.local: tuple[str, int] = writer.get_extra_info("sockname")[:2]

    @classmethod
    async def connect(cls, port: int) -> TcpClient:
        async with asyncio.timeout(WAIT_S):
            reader, writer = await asyncio.open_connection(LOOPBACK, port)
        return cls(reader, writer)

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    async def next(self) -> Request | Response:
        async with asyncio.timeout(WAIT_S):
            while not self.items:
                data = await self.reader.read(65536)
                assert data, "connection closed while waiting for a message"
                self.items += self.framer.feed(data)
        item = self.items.pop(0)
        assert isinstance(item, bytes), item
        return parse_message(item, stream=True)

    async def closed(self) -> bytes:
        """Everything read until the server closes the connection."""
        out = b""
        async with asyncio.timeout(WAIT_S):
            while data := await self.reader.read(65536):
                out += data
        return out

    def close(self) -> None:
        self.writer.close()


def status(msg: Request | Response) -> int:
    assert isinstance(msg, Response), msg
    return msg.status


async def test_options_over_udp(agent: Agent) -> None:
    loop = asyncio.get_running_loop()
    transport, client = await loop.create_datagram_endpoint(UdpClient, local_addr=(LOOPBACK, 0))
    try:
        local = transport.get_extra_info("sockname")[:2]
        transport.sendto(
            request("OPTIONS", agent.port, "UDP", local=local, branch="u1"), (LOOPBACK, agent.port)
        )
        ok = await client.next()
        assert status(ok) == 200
        assert "INVITE" in ok.headers.values("allow")
        assert ok.top_via().param("rport") == str(local[1])  # RFC 3581 over a real socket
    finally:
        transport.close()


async def test_options_over_tcp_answered_on_the_same_connection(agent: Agent) -> None:
    client = await TcpClient.connect(agent.port)
    try:
        client.send(request("OPTIONS", agent.port, "TCP", local=client.local, branch="t1"))
        ok = await client.next()
        assert status(ok) == 200 and ok.cseq().method == "OPTIONS"
        assert ok.headers.values("accept") == ["application/sdp"]
        # A second request, split awkwardly across writes, is framed all the same.
        second = request("OPTIONS", agent.port, "TCP", local=client.local, branch="t2", cseq=2)
        client.send(second[:10])
        await asyncio.sleep(0)  # let the first piece go out on its own
        client.send(second[10:])
        assert (await client.next()).cseq().seq == 2
    finally:
        client.close()


async def test_tcp_keepalive_ping_gets_a_pong(agent: Agent) -> None:
    client = await TcpClient.connect(agent.port)
    try:
        client.send(b"\r\n\r\n")  # RFC 5626 §3.5.1
        async with asyncio.timeout(WAIT_S):
            assert await client.reader.readexactly(2) == b"\r\n"
        client.send(request("OPTIONS", agent.port, "TCP", local=client.local, branch="k1"))
        assert status(await client.next()) == 200  # the connection is still good
    finally:
        client.close()


async def test_tcp_conflicting_content_length_gets_400_and_close(agent: Agent) -> None:
    client = await TcpClient.connect(agent.port)
    try:
        bad = request("OPTIONS", agent.port, "TCP", local=client.local, branch="c1").replace(
            b"Content-Length: 0\r\n", b"Content-Length: 0\r\nContent-Length: 12\r\n"
        )
        client.send(bad)
        rest = await client.closed()
        response = parse_message(rest, stream=True)
        assert status(response) == 400
        assert response.top_via().branch == "z9hG4bKc1"
        assert agent.endpoint.framing_errors == 1
    finally:
        client.close()


async def test_tcp_good_request_then_garbage_in_one_segment_both_answered(agent: Agent) -> None:
    """The OPTIONS ahead of an unframeable message in the same segment is still served."""
    client = await TcpClient.connect(agent.port)
    try:
        good = request("OPTIONS", agent.port, "TCP", local=client.local, branch="g1")
        bad = request("OPTIONS", agent.port, "TCP", local=client.local, branch="g2", cseq=2)
        bad = bad.replace(b"Content-Length: 0\r\n", b"Content-Length: zero\r\n")
        client.send(good + bad)
        rest = await client.closed()
        framed = StreamFramer().feed(rest)
        responses = [parse_message(m, stream=True) for m in framed if isinstance(m, bytes)]
        assert [(status(r), r.top_via().branch) for r in responses] == [
            (200, "z9hG4bKg1"),
            (400, "z9hG4bKg2"),
        ]
        assert agent.endpoint.framing_errors == 1
    finally:
        client.close()


async def test_full_call_over_tcp(agent: Agent) -> None:
    client = await TcpClient.connect(agent.port)
    try:
        client.send(
            request(
                "INVITE",
                agent.port,
                "TCP",
                local=client.local,
                branch="i1",
                call_id="tcp-call@127.0.0.1",
                body=SDP,
            )
        )
        assert status(await client.next()) == 100
        ok = await client.next()
        assert status(ok) == 200 and ok.body == SDP
        tag = ok.to().tag
        assert tag is not None
        client.send(
            request(
                "ACK",
                agent.port,
                "TCP",
                local=client.local,
                branch="a1",
                call_id="tcp-call@127.0.0.1",
                to_tag=tag,
            )
        )
        await agent.wait_for(CallConfirmed)
        client.send(
            request(
                "BYE",
                agent.port,
                "TCP",
                local=client.local,
                branch="b1",
                call_id="tcp-call@127.0.0.1",
                cseq=2,
                to_tag=tag,
            )
        )
        bye_ok = await client.next()
        assert status(bye_ok) == 200 and bye_ok.cseq().method == "BYE"
        ended = await agent.wait_for(CallEnded)
        assert ended == CallEnded("tcp-call@127.0.0.1", EndReason.REMOTE_BYE)
    finally:
        client.close()


async def test_agent_hangs_up_on_the_callers_tcp_connection(agent: Agent) -> None:
    client = await TcpClient.connect(agent.port)
    try:
        client.send(
            request(
                "INVITE",
                agent.port,
                "TCP",
                local=client.local,
                branch="i2",
                call_id="tcp-bye@127.0.0.1",
                body=SDP,
            )
        )
        await client.next()  # 100
        ok = await client.next()
        client.send(
            request(
                "ACK",
                agent.port,
                "TCP",
                local=client.local,
                branch="a2",
                call_id="tcp-bye@127.0.0.1",
                to_tag=ok.to().tag,
            )
        )
        await agent.wait_for(CallConfirmed)
        agent.ua.hangup("tcp-bye@127.0.0.1", asyncio.get_running_loop().time())
        agent.endpoint.pump()
        bye = await client.next()
        assert isinstance(bye, Request) and bye.method == "BYE"
        assert bye.top_via().transport == "TCP"  # Via names the transport it went over
        reply = (
            b"SIP/2.0 200 OK\r\n"
            + b"".join(
                f"{f.name}: {f.value}\r\n".encode()
                for f in bye.headers
                if f.key in ("via", "from", "to", "call-id", "cseq")
            )
            + b"Content-Length: 0\r\n\r\n"
        )
        client.send(reply)
        ended = await agent.wait_for(CallEnded)
        assert ended == CallEnded("tcp-bye@127.0.0.1", EndReason.LOCAL_BYE)
    finally:
        client.close()
