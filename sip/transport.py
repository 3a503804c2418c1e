"""The asyncio shell around the sans-I/O SIP core: UDP and TCP sockets and one timer.

`SipEndpoint` binds UDP and TCP on one address, feeds every datagram and framed stream
message to a `SipCore` (the `UserAgent`) with ``now=loop.time()``, sends what the core
returns, and keeps a single `asyncio.TimerHandle` armed at ``core.next_deadline()`` (the
aioquic ``transmit()`` model). After every input it calls ``on_activity`` so the application
can drain call events; after the application issues commands it calls `SipEndpoint.pump`.

Responses over TCP go back on the connection the request came in on; a request to a TCP
peer with no connection opens one. Nothing here parses SIP or makes protocol decisions.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Protocol, cast

import structlog

from sip.framing import KeepAlive, StreamFramer, Unframeable
from sip.layer import Address
from sip.message import make_response

log = structlog.get_logger("sip.transport")


class SipCore(Protocol):
    """What the shell drives (implemented by `sip.useragent.UserAgent`)."""

    def receive_datagram(self, data: bytes, source: Address, now: float) -> None:
        """Feed one datagram or framed message."""

    def handle_timer(self, now: float) -> None:
        """Fire due timers."""

    def next_deadline(self) -> float | None:
        """The next time `handle_timer` must run."""

    def datagrams_to_send(self) -> list[tuple[bytes, Address]]:
        """Drain what to send."""


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, endpoint: SipEndpoint) -> None:
        self._endpoint = endpoint

    def datagram_received(self, data: bytes, addr: tuple[str | bytes, int]) -> None:
        host = addr[0] if isinstance(addr[0], str) else addr[0].decode()
        self._endpoint.feed(data, Address("udp", host, int(addr[1])))

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable from a peer that went away: nothing to do but note it.
        log.debug("udp_error", error=type(exc).__name__)


class _TcpProtocol(asyncio.Protocol):
    def __init__(self, endpoint: SipEndpoint) -> None:
        self._endpoint = endpoint
        self._framer = StreamFramer()
        self._transport: asyncio.Transport | None = None
        self._peer: Address | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        host, port = transport.get_extra_info("peername")[:2]
        self._peer = Address("tcp", host, int(port))
        self._endpoint.connections[(host, int(port))] = self._transport

    def data_received(self, data: bytes) -> None:
        assert self._transport is not None and self._peer is not None
        for item in self._framer.feed(data):
            if isinstance(item, KeepAlive):
                self._transport.write(b"\r\n")
            elif isinstance(item, Unframeable):
                # RFC 4475 §3.1.2.2/§3.3.9: a stream that cannot be framed is answered if the
                # head is readable, then closed (the messages framed before it were served).
                partial = item.error.request
                if partial is not None and partial.headers.get("via") is not None:
                    self._transport.write(bytes(make_response(partial, item.error.status_hint)))
                self._endpoint.framing_errors += 1
                self._transport.close()
            else:
                self._endpoint.feed(item, self._peer)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._peer is not None:
            self._endpoint.connections.pop((self._peer.host, self._peer.port), None)


class SipEndpoint:
    """UDP and TCP listeners on one address, driving one `SipCore`."""

    def __init__(
        self,
        core: SipCore,
        *,
        on_activity: Callable[[], None] = lambda: None,
        loop: asyncio.AbstractEventLoop | None = None,
        accept: Callable[[Address], bool] | None = None,
    ) -> None:
        self.core = core
        self.on_activity = on_activity
        # An access list decided by the application (source networks): a refused message
        # is dropped unanswered and counted, before the core sees it.
        self.accept = accept
        self.acl_rejected = 0
        self.loop = loop or asyncio.get_running_loop()
        self.connections: dict[tuple[str, int], asyncio.Transport] = {}
        self.framing_errors = 0
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.base_events.Server | None = None
        self._timer: asyncio.TimerHandle | None = None
        # The deadline the timer is armed for. Not `self._timer.when()`: uvloop's call_at
        # returns a plain Handle, which has no when(), for a deadline already past.
        self._timer_at: float | None = None
        self._pending_tcp: set[asyncio.Task[None]] = set()

    async def start(self, host: str, port: int, *, tcp: bool = True) -> None:
        """Bind UDP (and TCP) on ``host:port``.

        Raises:
            OSError: the address is taken or cannot be bound.
        """
        transport, _ = await self.loop.create_datagram_endpoint(
            lambda: _UdpProtocol(self), local_addr=(host, port)
        )
        self._udp = transport  # uvloop's UDP transport does not subclass DatagramTransport
        if tcp:
            try:
                self._tcp = await self.loop.create_server(
                    lambda: _TcpProtocol(self), host, port, reuse_address=True
                )
            except OSError:
                self._udp.close()
                raise

    @property
    def local_address(self) -> tuple[str, int]:
        """The bound UDP address."""
        assert self._udp is not None
        host, port = self._udp.get_extra_info("sockname")[:2]
        return str(host), int(port)

    def feed(self, data: bytes, source: Address) -> None:
        """Hand one message to the core, then flush and re-arm."""
        if self.accept is not None and not self.accept(source):
            self.acl_rejected += 1
            return
        self.core.receive_datagram(data, source, self.loop.time())
        self.pump()

    def pump(self) -> None:
        """Send what the core has queued, re-arm the timer, tell the application."""
        for datagram, address in self.core.datagrams_to_send():
            self._send(datagram, address)
        self.on_activity()
        for datagram, address in self.core.datagrams_to_send():
            self._send(datagram, address)
        self._arm()

    def close(self) -> None:
        """Stop listening and cancel the timer."""
        if self._timer is not None:
            self._timer.cancel()
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
        for transport in list(self.connections.values()):
            transport.close()
        for task in self._pending_tcp:
            task.cancel()

    def _arm(self) -> None:
        deadline = self.core.next_deadline()
        if self._timer is not None:
            if deadline is not None and self._timer_at == deadline:
                return
            self._timer.cancel()
            self._timer = None
        if deadline is not None:
            self._timer = self.loop.call_at(deadline, self._on_timer)
            self._timer_at = deadline

    def _on_timer(self) -> None:
        self._timer = None
        self.core.handle_timer(self.loop.time())
        self.pump()

    def _send(self, datagram: bytes, address: Address) -> None:
        if address.transport == "udp":
            if self._udp is not None and not self._udp.is_closing():
                self._udp.sendto(datagram, (address.host, address.port))
            return
        connection = self.connections.get((address.host, address.port))
        if connection is not None and not connection.is_closing():
            connection.write(datagram)
            return
        task = self.loop.create_task(self._connect_and_send(datagram, address))
        self._pending_tcp.add(task)
        task.add_done_callback(self._pending_tcp.discard)

    async def _connect_and_send(self, datagram: bytes, address: Address) -> None:
        with contextlib.suppress(OSError):
            transport, _ = await self.loop.create_connection(
                lambda: _TcpProtocol(self), address.host, address.port
            )
            transport.write(datagram)


def free_loopback_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1 just now (for demos and tests)."""
    import socket

    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = int(udp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
        return port
    raise OSError("no free port on 127.0.0.1")
