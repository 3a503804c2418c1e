"""Test doubles that are not mocks: a virtual clock and a virtual network of UserAgents.

`pair()` joins two sans-I/O `UserAgent`s (a UAC and a UAS) over a `VirtualNetwork`, in the
manner of aioquic's ``client_and_server`` and h11's ``ConnectionPair``: datagrams move only
when the test calls `VirtualNetwork.flush` (or `run_until`, which also fires timers on the
`FakeClock`), every datagram is recorded on ``net.wire``, and the test can drop or hold back
(reorder) the next datagrams matching a predicate. Nothing here opens a socket or sleeps.

Addresses are loopback literals, so nothing a test prints could name a real host; a datagram
addressed anywhere no node listens is kept in ``net.unrouted`` (which is how a test proves
that nothing was sent to a host named in a Contact header).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TypeVar

from sip.call import CallEvent
from sip.layer import Address, LayerConfig, TransactionLayer
from sip.message import Request, Response, parse_message
from sip.transaction import SipTimers
from sip.uac import Originator
from sip.useragent import UserAgent, UserAgentConfig

E = TypeVar("E")

UAC_ADDRESS = Address("udp", "127.0.0.10", 5060)
UAS_ADDRESS = Address("udp", "127.0.0.20", 5060)

# Timer bound for `run_until`: far more timer firings than any scenario here needs.
MAX_STEPS = 100_000


class FakeClock:
    """Virtual time in seconds, on the scale of ``loop.time()``; moves only when told."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def advance(self, seconds: float) -> float:
        """Move forward by ``seconds`` and return the new time."""
        assert seconds >= 0, "time does not go backwards"
        self.now += seconds
        return self.now


@dataclass(frozen=True, slots=True)
class Datagram:
    """One datagram as it crossed (or failed to cross) the virtual network."""

    at: float
    source: Address
    destination: Address
    data: bytes

    def message(self) -> Request | Response:
        """The parsed SIP message."""
        return parse_message(self.data)

    @property
    def summary(self) -> str:
        """``"INVITE"`` for a request, ``"200 INVITE"`` for a response."""
        msg = self.message()
        if isinstance(msg, Request):
            return msg.method
        return f"{msg.status} {msg.cseq().method}"


Predicate = Callable[[Datagram], bool]


def is_(*summaries: str) -> Predicate:
    """A predicate matching datagrams whose `Datagram.summary` is one of ``summaries``."""
    return lambda d: d.summary in summaries


def counter_ids(prefix: str) -> Callable[[], str]:
    """Deterministic identifiers (``uac-1``, ``uac-2``...) for tags, branches and Call-IDs."""
    numbers = itertools.count(1)
    return lambda: f"{prefix}{next(numbers)}"


@dataclass
class Node:
    """One UserAgent attached to the network.

    ``address`` is where the UA believes it is (its Via and Contact); ``public`` is where its
    datagrams appear to come from and where others must send to reach it. They differ
    behind a NAT.
    """

    name: str
    ua: UserAgent
    address: Address
    public: Address
    events: list[CallEvent] = field(default_factory=list)

    def of(self, kind: type[E]) -> list[E]:
        """Every event of type ``kind`` this node's UA has reported so far, in order."""
        return [e for e in self.events if isinstance(e, kind)]

    def one(self, kind: type[E]) -> E:
        """The single event of type ``kind``; fails when there are none or several."""
        found = self.of(kind)
        assert len(found) == 1, f"{self.name}: expected one {kind.__name__}, got {found}"
        return found[0]

    def collect(self) -> None:
        """Drain the UA's events into ``events``."""
        while (event := self.ua.next_event()) is not None:
            self.events.append(event)


@dataclass
class _Rule:
    predicate: Predicate
    remaining: int
    action: str  # "drop" or "hold"


class VirtualNetwork:
    """Zero-latency delivery between nodes, with drop and hold-back controls."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.nodes: list[Node] = []
        self.wire: list[Datagram] = []  # everything sent, delivered or not
        self.dropped: list[Datagram] = []
        self.unrouted: list[Datagram] = []
        self.held: list[Datagram] = []
        self._rules: list[_Rule] = []

    def add(self, node: Node) -> Node:
        """Attach ``node``."""
        self.nodes.append(node)
        return node

    # ----------------------------------------------------------------- impairments
    def drop(self, predicate: Predicate, times: int = 1) -> None:
        """Lose the next ``times`` datagrams matching ``predicate``."""
        self._rules.append(_Rule(predicate, times, "drop"))

    def hold(self, predicate: Predicate, times: int = 1) -> None:
        """Keep back the next ``times`` matching datagrams until `release` (reordering)."""
        self._rules.append(_Rule(predicate, times, "hold"))

    def release(self) -> None:
        """Deliver held datagrams now (after everything that overtook them), then flush."""
        held, self.held = self.held, []
        for datagram in held:
            self._deliver(datagram)
        self.flush()

    # ----------------------------------------------------------------- moving datagrams
    def inject(self, data: bytes, source: Address, to: Node) -> None:
        """Deliver raw bytes to ``to`` as if ``source`` had sent them, then flush."""
        datagram = Datagram(self.clock.now, source, to.public, data)
        self.wire.append(datagram)
        self._deliver(datagram)
        self.flush()

    def flush(self) -> None:
        """Move datagrams until no node has anything left to send (bounded)."""
        for _ in range(1000):
            moved = False
            for node in self.nodes:
                node.collect()
                for data, destination in node.ua.datagrams_to_send():
                    moved = True
                    self._route(Datagram(self.clock.now, node.public, destination, data))
            if not moved:
                for node in self.nodes:
                    node.collect()
                return
        raise AssertionError("the nodes kept sending: a message loop")

    def run_until(self, t: float) -> None:
        """Fire every timer due up to ``t`` in time order, delivering in between."""
        for _ in range(MAX_STEPS):
            self.flush()
            due = [d for n in self.nodes if (d := n.ua.next_deadline()) is not None and d <= t]
            if not due:
                break
            self.clock.now = max(self.clock.now, min(due))
            for node in self.nodes:
                deadline = node.ua.next_deadline()
                if deadline is not None and deadline <= self.clock.now:
                    node.ua.handle_timer(self.clock.now)
        else:
            raise AssertionError(f"timers still firing after {MAX_STEPS} steps")
        self.clock.now = max(self.clock.now, t)
        self.flush()

    def run_for(self, seconds: float) -> None:
        """`run_until` ``seconds`` from now."""
        self.run_until(self.clock.now + seconds)

    # ----------------------------------------------------------------- inspection
    def sent(self, *summaries: str, by: Node | None = None) -> list[Datagram]:
        """Datagrams on the wire with one of ``summaries`` (all when none), from ``by``."""
        return [
            d
            for d in self.wire
            if (not summaries or d.summary in summaries) and (by is None or d.source == by.public)
        ]

    def addressed_to_host(self, host: str) -> list[Datagram]:
        """Every datagram sent to ``host`` (any port)."""
        return [d for d in self.wire if d.destination.host == host]

    # ----------------------------------------------------------------- internals
    def _route(self, datagram: Datagram) -> None:
        self.wire.append(datagram)
        for rule in self._rules:
            if rule.remaining > 0 and rule.predicate(datagram):
                rule.remaining -= 1
                (self.dropped if rule.action == "drop" else self.held).append(datagram)
                return
        self._deliver(datagram)

    def _deliver(self, datagram: Datagram) -> None:
        for node in self.nodes:
            if node.public == datagram.destination:
                node.ua.receive_datagram(datagram.data, datagram.source, self.clock.now)
                node.collect()
                return
        self.unrouted.append(datagram)


def originator(address: Address, user: str, *, contact_host: str | None = None) -> Originator:
    """Who a test UA says it is; ``contact_host`` puts another host in Contact only."""
    hostport = f"{address.host}:{address.port}"
    return Originator(
        from_uri=f"sip:{user}@{address.host}",
        contact_uri=f"sip:{user}@{contact_host or address.host}:{address.port}",
        sent_by=hostport,
        user_agent=f"test-{user}",
    )


def make_node(
    name: str,
    address: Address,
    config: UserAgentConfig | None = None,
    *,
    layer: LayerConfig | None = None,
    public: Address | None = None,
) -> Node:
    """A UserAgent with deterministic identifiers, not yet attached to a network."""
    ids = counter_ids(f"{name}-")
    ua = UserAgent(
        config or UserAgentConfig(me=originator(address, name)),
        TransactionLayer(layer or LayerConfig(), tag_factory=counter_ids(f"{name}-t")),
        id_factory=ids,
    )
    return Node(name, ua, address, public or address)


@dataclass
class Pair:
    """A UAC and a UAS on one virtual network and clock."""

    clock: FakeClock
    net: VirtualNetwork
    uac: Node
    uas: Node

    @property
    def now(self) -> float:
        """The virtual time."""
        return self.clock.now

    def flush(self) -> None:
        """Deliver everything pending."""
        self.net.flush()


def pair(
    *,
    uac: UserAgentConfig | None = None,
    uas: UserAgentConfig | None = None,
    timers: SipTimers | None = None,
    uas_layer: LayerConfig | None = None,
) -> Pair:
    """Two UserAgents joined by a `VirtualNetwork` at time 0."""
    clock = FakeClock()
    net = VirtualNetwork(clock)
    base = LayerConfig(timers=timers or SipTimers())
    a = net.add(make_node("uac", UAC_ADDRESS, uac, layer=base))
    b = net.add(make_node("uas", UAS_ADDRESS, uas, layer=uas_layer or base))
    return Pair(clock, net, a, b)


def summaries(datagrams: Iterable[Datagram]) -> list[str]:
    """The `Datagram.summary` of each datagram, for asserting on a message flow."""
    return [d.summary for d in datagrams]
