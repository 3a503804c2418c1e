"""A loopback UDP impairment relay: loss, delay and jitter, reordering, duplication.

``tc netem`` is not available on these machines (PEERS.md), so impaired media paths are
built in user space, between a caller (SIPp, baresip, or a test's own RTP sender) and the
server, on 127.0.0.1 only.

Theory of operation
-------------------
`ImpairedPath` is the sans-I/O core of one direction: ``push(data, now)`` takes a datagram
as it arrives and decides, from its own seeded `random.Random`, what happens to it; ``due(now)``
returns what is due by then; ``next_deadline()`` is when the next one is due. Every decision
draws the same four numbers in the same order per datagram (loss, delay, reorder, duplicate),
so one seed gives one impairment pattern whatever the timing of the arrivals.

- *Loss*: a datagram is dropped with probability ``loss``.
- *Delay and jitter*: a datagram that survives is due ``delay_s + U(0, jitter_s)`` after it
  arrived. With ``keep_order`` (the default) a datagram is never due before the one that
  arrived before it, so jitter alone does not reorder and the ``reorder`` rate is the
  reordering the receiver sees (netem reorders on jitter; that would make a 2 % reorder
  setting meaningless next to 40 ms of jitter at 20 ms spacing).
- *Reordering*: with probability ``reorder`` a datagram is held back and released just after
  the next datagram (``reorder_gap_s`` later), or after ``reorder_hold_s`` when no next one
  comes (bounded).
- *Duplication*: with probability ``duplicate`` a second copy is released with the first.

Bounded: at most ``max_pending`` datagrams wait; more are dropped and counted as overflow.
Every datagram let through is recorded as a `Forwarded` (arrival and release times), so a
test can compute what the receiver must measure from what the relay really did rather
than from the nominal settings (`rfc3550_jitter`).

`UdpRelay` is the asyncio shell: two sockets on 127.0.0.1, ``front`` (the caller sends here)
and ``back`` (talks to ``target``), one path each way and one timer.
"""

from __future__ import annotations

import asyncio
import heapq
import random
from collections.abc import Iterable
from dataclasses import dataclass, field

from rtp.packet import RtpPacket

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class Impairment:
    """What a path does to datagrams. Probabilities are in [0, 1], times in seconds."""

    loss: float = 0.0
    delay_s: float = 0.0
    jitter_s: float = 0.0
    reorder: float = 0.0
    duplicate: float = 0.0
    seed: int = 0
    keep_order: bool = True
    reorder_gap_s: float = 0.0005
    reorder_hold_s: float = 0.1
    max_pending: int = 1000

    def __post_init__(self) -> None:
        for name in ("loss", "reorder", "duplicate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be a probability")
        if min(self.delay_s, self.jitter_s, self.reorder_gap_s, self.reorder_hold_s) < 0:
            raise ValueError("times must not be negative")
        if self.max_pending < 1:
            raise ValueError("max_pending must be at least 1")


@dataclass(frozen=True, slots=True)
class Forwarded:
    """One datagram copy the path let through.

    Attributes:
        index: Arrival order of the original datagram (0-based, dropped ones included).
        data: The datagram.
        arrived_s: When it reached the relay.
        released_s: When it was due (the shell records when it really went out).
        duplicate: This is the extra copy.
        reordered: It was held back behind the next datagram.
    """

    index: int
    data: bytes
    arrived_s: float
    released_s: float
    duplicate: bool = False
    reordered: bool = False


@dataclass(slots=True)
class PathCounters:
    """What a path did so far."""

    received: int = 0
    dropped: int = 0
    overflow: int = 0
    reordered: int = 0
    duplicated: int = 0
    forwarded: int = 0

    @property
    def loss_fraction(self) -> float:
        """Datagrams dropped (by the loss draw or overflow) over datagrams received."""
        return (self.dropped + self.overflow) / self.received if self.received else 0.0


@dataclass(order=True, slots=True)
class _Pending:
    due_s: float
    order: int
    item: Forwarded = field(compare=False)
    cancelled: bool = field(default=False, compare=False)


class ImpairedPath:
    """One direction of the relay, sans-I/O (see the module docstring)."""

    def __init__(self, impairment: Impairment) -> None:
        self.impairment = impairment
        self.counters = PathCounters()
        self._rng = random.Random(impairment.seed)
        self._heap: list[_Pending] = []
        self._order = 0
        self._last_due = float("-inf")
        self._held: _Pending | None = None
        self.log: list[Forwarded] = []

    def push(self, data: bytes, now: float) -> None:
        """Take one datagram arriving at ``now``."""
        imp = self.impairment
        index = self.counters.received
        self.counters.received += 1
        lose, spread, swap, twin = (self._rng.random() for _ in range(4))
        if lose < imp.loss:
            self.counters.dropped += 1
            return
        if len(self._heap) >= imp.max_pending:
            self.counters.overflow += 1
            return
        due = now + imp.delay_s + spread * imp.jitter_s
        if imp.keep_order:
            due = max(due, self._last_due)
        self._last_due = max(self._last_due, due)
        held, self._held = self._held, None
        if swap < imp.reorder and held is None:
            self.counters.reordered += 1
            limit = max(due, now + imp.reorder_hold_s)
            self._held = self._schedule(Forwarded(index, data, now, limit, reordered=True))
        else:
            self._schedule(Forwarded(index, data, now, due))
        if twin < imp.duplicate:
            self.counters.duplicated += 1
            self._schedule(Forwarded(index, data, now, due, duplicate=True))
        if held is not None:  # the held datagram goes right behind this one
            held.cancelled = True
            behind = due + imp.reorder_gap_s
            item = held.item
            self._schedule(Forwarded(item.index, item.data, item.arrived_s, behind, reordered=True))
            self._last_due = max(self._last_due, behind)

    def _schedule(self, item: Forwarded) -> _Pending:
        entry = _Pending(item.released_s, self._order, item)
        self._order += 1
        heapq.heappush(self._heap, entry)
        return entry

    def next_deadline(self) -> float | None:
        """When the next datagram is due, or None when none waits."""
        while self._heap and self._heap[0].cancelled:
            heapq.heappop(self._heap)
        return self._heap[0].due_s if self._heap else None

    def due(self, now: float) -> list[Forwarded]:
        """Every datagram due by ``now``, in release order (recorded in ``log``)."""
        out: list[Forwarded] = []
        while (deadline := self.next_deadline()) is not None and deadline <= now:
            entry = heapq.heappop(self._heap)
            if self._held is entry:
                self._held = None  # no next datagram came: released at its hold limit
            out.append(entry.item)
        self.counters.forwarded += len(out)
        self.log.extend(out)
        return out


def rfc3550_jitter(arrivals: Iterable[tuple[float, bytes]], clock_rate_hz: int = 8000) -> float:
    """The RFC 3550 A.8 interarrival jitter a receiver computes, in seconds.

    Args:
        arrivals: ``(arrival time in seconds, RTP datagram)`` in arrival order.
        clock_rate_hz: The RTP clock.

    Returns:
        J after the last packet (J += (|D| - J) / 16), in seconds.
    """
    jitter = 0.0
    last: tuple[int, int] | None = None
    for arrival_s, data in arrivals:
        arrival = round(arrival_s * clock_rate_hz)
        timestamp = RtpPacket.parse(data).timestamp
        if last is not None:
            moved = (timestamp - last[1] + 2**31) % 2**32 - 2**31
            transit_change = (arrival - last[0]) - moved
            jitter += (abs(transit_change) - jitter) / 16
        last = (arrival, timestamp)
    return jitter / clock_rate_hz


class _Side(asyncio.DatagramProtocol):
    def __init__(self, relay: UdpRelay, front: bool) -> None:
        self.relay = relay
        self.front = front

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.relay._received(data, addr, self.front)


class UdpRelay:
    """Relays UDP between a caller (at ``front``) and ``target`` (from ``back``), impaired.

    Use ``async with UdpRelay(target, forward=Impairment(...)) as relay``; send to
    ``relay.front_port``. Replies from ``target`` go back to the last caller address.
    ``forward_sent`` and ``backward_sent`` record each copy sent with its real send time.
    ``target`` may be set after `start` (a server often needs ``back_port`` before it
    binds its own port); datagrams that come earlier are dropped and counted.
    """

    def __init__(
        self,
        target: tuple[str, int] | None = None,
        *,
        forward: Impairment | None = None,
        backward: Impairment | None = None,
    ) -> None:
        self._target: tuple[str, int] | None = None
        if target is not None:
            self.target = target
        self.untargeted = 0
        self.forward = ImpairedPath(forward or Impairment())
        self.backward = ImpairedPath(backward or Impairment())
        self.forward_sent: list[tuple[float, bytes]] = []
        self.backward_sent: list[tuple[float, bytes]] = []
        self._caller: tuple[str, int] | None = None
        self._front: asyncio.DatagramTransport | None = None
        self._back: asyncio.DatagramTransport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def target(self) -> tuple[str, int] | None:
        """Where the forward path goes (127.0.0.1 only)."""
        return self._target

    @target.setter
    def target(self, target: tuple[str, int]) -> None:
        if target[0] != LOOPBACK:
            raise ValueError("the relay only talks to 127.0.0.1")
        self._target = target

    @property
    def front_port(self) -> int:
        """Where the caller sends."""
        assert self._front is not None
        return int(self._front.get_extra_info("sockname")[1])

    @property
    def back_port(self) -> int:
        """Where the target sees the relay's datagrams come from (and replies to)."""
        assert self._back is not None
        return int(self._back.get_extra_info("sockname")[1])

    async def start(self) -> None:
        """Bind both sockets on 127.0.0.1 (ephemeral ports)."""
        self._loop = asyncio.get_running_loop()
        self._front, _ = await self._loop.create_datagram_endpoint(
            lambda: _Side(self, True), local_addr=(LOOPBACK, 0)
        )
        self._back, _ = await self._loop.create_datagram_endpoint(
            lambda: _Side(self, False), local_addr=(LOOPBACK, 0)
        )

    def close(self) -> None:
        """Drop whatever waits and close the sockets."""
        if self._timer is not None:
            self._timer.cancel()
        for transport in (self._front, self._back):
            if transport is not None:
                transport.close()

    async def __aenter__(self) -> UdpRelay:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def _received(self, data: bytes, addr: tuple[str, int], front: bool) -> None:
        assert self._loop is not None
        now = self._loop.time()
        if front:
            self._caller = (addr[0], addr[1])
            self.forward.push(data, now)
        elif self._caller is not None and addr[:2] == self._target:
            self.backward.push(data, now)  # only the target's replies go back
        self._flush()

    def _flush(self) -> None:
        assert self._loop is not None
        now = self._loop.time()
        for item in self.forward.due(now):
            if self._back is None or self._target is None:
                self.untargeted += 1
            else:
                self._back.sendto(item.data, self._target)
                self.forward_sent.append((self._loop.time(), item.data))
        for item in self.backward.due(now):
            if self._front is not None and self._caller is not None:
                self._front.sendto(item.data, self._caller)
                self.backward_sent.append((self._loop.time(), item.data))
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deadlines = [
            d
            for d in (self.forward.next_deadline(), self.backward.next_deadline())
            if d is not None
        ]
        if deadlines:
            self._timer = self._loop.call_at(min(deadlines), self._flush)
