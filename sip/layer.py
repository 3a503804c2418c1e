"""The transaction layer (RFC 3261 §17, §18): datagrams in, transactions matched, events out.

Theory of operation
-------------------
`TransactionLayer.receive_datagram(data, source, now)` is the one boundary where parse
errors become answers (the h11 ``next_event`` model):

* a request that fails to parse, but whose start line and Via could be read, is answered
  statelessly with the error's ``status_hint`` (400, 505, 513...), sent to the source address;
* anything else that fails (a broken response, garbage, a request without Via) is dropped
  and counted in `LayerCounters`. Nothing raises out of this method.

A valid request is matched to a server transaction by `server_key` (§17.2.3). A
retransmission goes to its transaction, which resends the last response by itself. An ACK
whose branch matches no transaction is an ACK for a 2xx (§17.1.1.3: a new branch): it is
routed to the INVITE server transaction of the same Call-ID and CSeq number, or, failing
that, passed up as `StrayAck`. A CANCEL gets its own transaction and names the INVITE it
cancels (§9.2). A response is matched to a client transaction by `client_key` (§17.1.3).

Responses over UDP go back to the address the request came from (§18.2.2, RFC 3581): the
top Via gets ``received=`` (source IP) and, when the client asked, ``rport=`` (source port);
the port is the source port with rport (or always, with ``force_rport``), else the Via
sent-by port, else 5060. A host named in a header is never resolved or contacted.

`next_deadline()` is the earliest deadline over all transactions; the shell keeps one timer.
"""

from __future__ import annotations

import collections
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Final

from sip.errors import SipError, SipParseError
from sip.message import Request, Response, make_response, parse_message
from sip.transaction import (
    AckReceived,
    ClientInvite,
    ClientNonInvite,
    ResponseReceived,
    ServerInvite,
    ServerNonInvite,
    SipTimers,
    TransactionKey,
    TransactionState,
    TransactionTerminated,
    TransactionTimedOut,
    client_key,
    server_key,
)

DEFAULT_SIP_PORT: Final = 5060

Transaction = ClientInvite | ClientNonInvite | ServerInvite | ServerNonInvite


@dataclass(frozen=True, slots=True)
class Address:
    """A transport address: ``udp`` or ``tcp``, an IP literal and a port."""

    transport: str
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.transport}:{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class RequestReceived:
    """A new request opened a server transaction (``key``); the TU must answer it."""

    key: TransactionKey
    request: Request
    source: Address
    cancels: TransactionKey | None = None  # for CANCEL: the INVITE transaction it targets


@dataclass(frozen=True, slots=True)
class StrayAck:
    """An ACK that matched no transaction (a late ACK, or a peer's odd To-tag)."""

    request: Request
    source: Address


@dataclass(frozen=True, slots=True)
class LayerEvent:
    """A transaction event, tagged with its transaction key."""

    key: TransactionKey
    event: AckReceived | ResponseReceived | TransactionTimedOut | TransactionTerminated


@dataclass(frozen=True, slots=True)
class MessageRejected:
    """A message that failed to parse: answered with ``status`` or dropped (status None)."""

    reason: str
    status: int | None
    source: Address


Event = RequestReceived | StrayAck | LayerEvent | MessageRejected


@dataclass(frozen=True, slots=True)
class TransactionSummary:
    """One finished transaction, for the structured log (identifiers only, no PHI)."""

    call_id: str
    branch: str | None
    method: str
    role: str  # "server" or "client"
    status: int | None  # the final response sent or received; None if there was none
    timed_out: str | None  # the timer that expired ("B", "F", "H"), if any
    duration_s: float


@dataclass(slots=True)
class LayerCounters:
    """Counts for metrics: what was dropped, rejected and retransmitted."""

    received: int = 0
    dropped: int = 0
    rejected: int = 0
    retransmissions_absorbed: int = 0
    responses_unmatched: int = 0
    by_method: collections.Counter[str] = field(default_factory=collections.Counter)


@dataclass(frozen=True, slots=True)
class LayerConfig:
    """Settings of the transaction layer."""

    timers: SipTimers = field(default_factory=SipTimers)
    force_rport: bool = False


class TransactionLayer:
    """All transactions of one SIP endpoint, and the datagrams they produce."""

    def __init__(
        self,
        config: LayerConfig | None = None,
        *,
        tag_factory: Callable[[], str] = lambda: secrets.token_hex(5),
    ) -> None:
        self.config = config or LayerConfig()
        self._tag_factory = tag_factory
        self.counters = LayerCounters()
        self._transactions: dict[TransactionKey, Transaction] = {}
        self._peers: dict[TransactionKey, Address] = {}
        # An ACK for a 2xx finds its INVITE by Call-ID, From tag and CSeq number (§13.2.2.4).
        self._invites_by_dialog: dict[tuple[str, str, int], TransactionKey] = {}
        self._outgoing: list[tuple[bytes, Address]] = []
        self._events: collections.deque[Event] = collections.deque()
        self._started: dict[TransactionKey, float] = {}
        self._finals: dict[TransactionKey, int] = {}
        self._timeouts: dict[TransactionKey, str] = {}
        self.finished: collections.deque[TransactionSummary] = collections.deque(maxlen=10_000)
        self._now = 0.0

    # ----------------------------------------------------------------- input
    def receive_datagram(self, data: bytes, source: Address, now: float) -> None:
        """Feed one datagram (or one framed stream message) received from ``source``."""
        self.counters.received += 1
        self._now = now
        if not data.strip(b"\r\n"):
            return  # RFC 5626 §3.5.1 keepalive: nothing to do on UDP
        try:
            message = parse_message(data, stream=source.transport != "udp")
        except SipParseError as exc:
            self._reject(exc, source)
            return
        try:
            if isinstance(message, Request):
                touched = self._receive_request(message, source, now)
            else:
                touched = self._receive_response(message, now)
        except SipError as exc:  # a view that failed despite validation: never fatal
            self.counters.dropped += 1
            self._events.append(MessageRejected(str(exc), None, source))
            return
        if touched is not None:
            self._collect([touched])

    def handle_timer(self, now: float) -> None:
        """Fire every transaction timer due at ``now``."""
        self._now = now
        due: list[TransactionKey] = []
        for key, tx in self._transactions.items():
            deadline = tx.next_deadline()
            if deadline is not None and deadline <= now:
                tx.handle_timer(now)
                due.append(key)
        self._collect(due)

    # ----------------------------------------------------------------- TU calls
    def send_request(self, request: Request, destination: Address, now: float) -> TransactionKey:
        """Start a client transaction for ``request`` (which carries its own branch)."""
        reliable = destination.transport != "udp"
        tx: Transaction
        if request.method == "INVITE":
            tx = ClientInvite(request, timers=self.config.timers, now=now, reliable=reliable)
        else:
            tx = ClientNonInvite(request, timers=self.config.timers, now=now, reliable=reliable)
        key = client_key(request)
        self._now = now
        self._transactions[key] = tx
        self._peers[key] = destination
        self._collect([key])
        return key

    def respond(self, key: TransactionKey, response: Response, now: float) -> None:
        """Send ``response`` through the server transaction ``key``."""
        tx = self._transactions.get(key)
        if not isinstance(tx, ServerInvite | ServerNonInvite):
            raise SipError("no server transaction for this response")
        self._now = now
        tx.respond(response, now)
        self._collect([key])

    def send_stateless(self, message: Request | Response, destination: Address) -> None:
        """Send without a transaction (an ACK for a 2xx, §13.2.2.4)."""
        self._outgoing.append((bytes(message), destination))

    def server_transaction(self, key: TransactionKey) -> ServerInvite | ServerNonInvite | None:
        """The live server transaction for ``key``, if any."""
        tx = self._transactions.get(key)
        return tx if isinstance(tx, ServerInvite | ServerNonInvite) else None

    # ----------------------------------------------------------------- output
    def datagrams_to_send(self) -> list[tuple[bytes, Address]]:
        """Drain what must be sent, with the address to send each to."""
        out, self._outgoing = self._outgoing, []
        return out

    def next_event(self) -> Event | None:
        """Drain one event for the transaction user."""
        return self._events.popleft() if self._events else None

    def next_deadline(self) -> float | None:
        """The earliest timer over all transactions."""
        deadlines = [
            d for tx in self._transactions.values() if (d := tx.next_deadline()) is not None
        ]
        return min(deadlines) if deadlines else None

    def __len__(self) -> int:
        return len(self._transactions)

    # ----------------------------------------------------------------- internals
    def _reject(self, exc: SipParseError, source: Address) -> None:
        partial = exc.request
        can_answer = (
            partial is not None
            and partial.method != "ACK"
            and partial.headers.get("via") is not None
        )
        if partial is None or not can_answer:
            self.counters.dropped += 1
            self._events.append(MessageRejected(str(exc), None, source))
            return
        self.counters.rejected += 1
        response = make_response(partial, exc.status_hint, to_tag=self._tag_factory())
        self._outgoing.append((bytes(response), self._response_address(partial, source)))
        self._events.append(MessageRejected(str(exc), exc.status_hint, source))

    def _receive_request(
        self, request: Request, source: Address, now: float
    ) -> TransactionKey | None:
        self.counters.by_method[request.method] += 1
        request = self._stamp_via(request, source)
        key = server_key(request)
        tx = self._transactions.get(key)
        if tx is not None:
            if isinstance(tx, ServerInvite | ServerNonInvite):
                self.counters.retransmissions_absorbed += request.method != "ACK"
                tx.receive(request, now)
            return key
        if request.method == "ACK":
            invite_key = self._invites_by_dialog.get(_ack_match(request))
            invite_tx = self._transactions.get(invite_key) if invite_key else None
            # Only an ACK for a 2xx carries a new branch (§17.1.1.3 vs §13.2.2.4); an ACK for
            # a non-2xx must match the INVITE's branch, so it never takes this path.
            accepted = TransactionState.ACCEPTED
            if (
                isinstance(invite_tx, ServerInvite)
                and invite_key is not None
                and (invite_tx.state is accepted)
            ):
                invite_tx.receive(request, now)
                return invite_key
            self._events.append(StrayAck(request, source))
            return None
        reliable = source.transport != "udp"
        timers = self.config.timers
        new_tx: ServerInvite | ServerNonInvite
        if request.method == "INVITE":
            new_tx = ServerInvite(
                request, timers=timers, now=now, reliable=reliable, to_tag=self._tag_factory()
            )
            self._invites_by_dialog[_ack_match(request)] = key
        else:
            new_tx = ServerNonInvite(request, timers=timers, now=now, reliable=reliable)
        self._transactions[key] = new_tx
        self._peers[key] = self._response_address(request, source)
        cancels = None
        if request.method == "CANCEL":
            cancels = replace(key, method="INVITE")  # §9.2: same key, method INVITE
        self._events.append(RequestReceived(key, request, source, cancels))
        return key

    def _receive_response(self, response: Response, now: float) -> TransactionKey | None:
        key = client_key(response)
        tx = self._transactions.get(key)
        if isinstance(tx, ClientInvite | ClientNonInvite):
            tx.receive(response, now)
            return key
        self.counters.responses_unmatched += 1  # §18.1.2: discard silently
        return None

    def _collect(self, keys: list[TransactionKey]) -> None:
        for key in keys:
            tx = self._transactions.get(key)
            if tx is None:
                continue
            self._started.setdefault(key, self._now)
            peer = self._peers[key]
            for datagram in tx.datagrams_to_send():
                self._outgoing.append((datagram, peer))
            while (event := tx.next_event()) is not None:
                if isinstance(event, ResponseReceived) and event.response.status >= 200:
                    self._finals.setdefault(key, event.response.status)
                elif isinstance(event, TransactionTimedOut):
                    self._timeouts[key] = event.timer
                self._events.append(LayerEvent(key, event))
            if tx.state is TransactionState.TERMINATED:
                self._summarise(key, tx)
                del self._transactions[key]
                del self._peers[key]
                if isinstance(tx, ServerInvite):
                    req = tx.request
                    self._invites_by_dialog.pop(_ack_match(req), None)

    def _summarise(self, key: TransactionKey, tx: Transaction) -> None:
        server = isinstance(tx, ServerInvite | ServerNonInvite)
        status = self._finals.pop(key, None)
        if isinstance(tx, ServerInvite | ServerNonInvite):
            last = tx.last_response
            if last is not None and last.status >= 200:
                status = last.status
        started = self._started.pop(key, self._now)
        try:
            call_id = tx.request.call_id()
        except SipParseError:
            call_id = ""
        self.finished.append(
            TransactionSummary(
                call_id=call_id,
                branch=key.branch,
                method=tx.request.method,
                role="server" if server else "client",
                status=status,
                timed_out=self._timeouts.pop(key, None),
                duration_s=round(self._now - started, 3),
            )
        )

    def _stamp_via(self, request: Request, source: Address) -> Request:
        """Add ``received``/``rport`` to the top Via (§18.2.1, RFC 3581 §4)."""
        via = request.top_via()
        updates: dict[str, str | None] = {}
        if via.has_rport:
            updates["rport"] = str(source.port)
            updates["received"] = source.host
        elif via.sent_by.host.strip("[]") != source.host:
            updates["received"] = source.host
        if not updates:
            return request
        headers = request.headers.replace_first("via", str(via.with_params(**updates)))
        return Request(
            method=request.method,
            uri=request.uri,
            version=request.version,
            headers=headers,
            body=request.body,
        )

    def _response_address(self, request: Request, source: Address) -> Address:
        """Where responses to ``request`` go (§18.2.2): always the source host."""
        if source.transport != "udp" or self.config.force_rport:
            return source
        try:
            via = request.top_via()
        except SipParseError:
            return source
        if via.has_rport:
            return source
        return Address(source.transport, source.host, via.sent_by.port or DEFAULT_SIP_PORT)


__all__ = [
    "Address",
    "Event",
    "LayerConfig",
    "LayerCounters",
    "LayerEvent",
    "MessageRejected",
    "RequestReceived",
    "StrayAck",
    "TransactionLayer",
    "TransactionSummary",
]


def _ack_match(request: Request) -> tuple[str, str, int]:
    """What ties an ACK for a 2xx to its INVITE: Call-ID, From tag, CSeq number."""
    return (request.call_id(), request.from_().tag or "", request.cseq().seq)
