"""Symmetric RTP latching: which source address a call's media is taken from (RFC 4961).

Theory of operation
-------------------
The SDP says where the peer *receives* media; it does not bind where it *sends* from. SIPp
sends from its ``-mp`` port whatever its SDP says, and a NAT rewrites ports. Symmetric RTP
(RFC 4961) closes the gap: a device sends from the address it receives on, so the receiver
*latches* onto the source of the first packet and sends its own media back there.

Latching is also an attack surface ("RTP bleed": whoever sends to a fresh port first gets
the call's audio), so `Latch` narrows it:

- Unlatched, a packet latches if it comes from the *host* (IP address) of the SDP
  connection address, on any port. With ``allow_any_host`` any host may latch (a peer
  behind a NAT whose SDP names a private address). With no SDP address (``expected`` is
  None, e.g. before a late-offer answer) nothing latches unless ``allow_any_host``.
- Latched, only packets from exactly the latched address are accepted; the others are
  counted in ``rejected`` and dropped.
- Re-latching is allowed after a re-INVITE (`Latch.reset` with the new SDP address), or
  when the latched source has been silent for ``rebind_after_s`` (a NAT rebinding gave the
  peer a new port). Both still obey the host rule.

Host comparison normalises the address text (``::ffff:127.0.0.1`` is ``127.0.0.1``). The
caller passes only packets that parsed as RTP (or RTCP, with its own `Latch`), and sends
its own media to `Latch.destination`.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Address:
    """A UDP transport address: an IP literal (or host name) and a port."""

    host: str
    port: int

    @classmethod
    def from_tuple(cls, addr: tuple[str, int] | tuple[str, int, int, int]) -> Address:
        """Build from a socket address as asyncio's ``datagram_received`` gives it."""
        return cls(addr[0], addr[1])


@dataclass(frozen=True, slots=True)
class LatchConfig:
    """Latching rules.

    Attributes:
        rebind_after_s: Silence of the latched source after which another port (or, with
            ``allow_any_host``, host) may latch. 2 s is longer than any jitter burst and
            far shorter than the 30 s after which NATs usually drop an idle UDP binding.
        allow_any_host: Latch to any host, not only the SDP's (for peers behind NAT).
    """

    rebind_after_s: float = 2.0
    allow_any_host: bool = False


@dataclass(frozen=True, slots=True)
class LatchStats:
    """Counters of one `Latch`.

    Attributes:
        accepted: Packets accepted.
        rejected: Packets dropped for coming from the wrong address.
        latches: Times a source was latched (the first time included).
    """

    accepted: int
    rejected: int
    latches: int


def _same_host(a: str, b: str) -> bool:
    try:
        ip_a, ip_b = ipaddress.ip_address(a), ipaddress.ip_address(b)
    except ValueError:
        return a.lower() == b.lower()
    if isinstance(ip_a, ipaddress.IPv6Address) and ip_a.ipv4_mapped is not None:
        ip_a = ip_a.ipv4_mapped
    if isinstance(ip_b, ipaddress.IPv6Address) and ip_b.ipv4_mapped is not None:
        ip_b = ip_b.ipv4_mapped
    return ip_a == ip_b


class Latch:
    """Decides which packets of a media stream to accept; see the module docstring."""

    def __init__(self, expected: Address | None, config: LatchConfig | None = None) -> None:
        """Create a latch for the SDP connection address ``expected`` (None: none yet)."""
        self.config = config if config is not None else LatchConfig()
        self._expected = expected
        self._latched: Address | None = None
        self._last_seen = 0.0
        self._accepted = 0
        self._rejected = 0
        self._latches = 0

    @property
    def latched(self) -> Address | None:
        """The source media is taken from, once latched."""
        return self._latched

    def destination(self) -> Address | None:
        """Where to send our media: the latched source, else the SDP's address."""
        return self._latched if self._latched is not None else self._expected

    def accept(self, source: Address, now: float) -> bool:
        """Return True to take a packet from ``source`` arriving at ``now`` (may latch)."""
        if self._latched is not None and source == self._latched:
            self._last_seen = now
            self._accepted += 1
            return True
        silent = self._latched is None or now - self._last_seen >= self.config.rebind_after_s
        if silent and self._host_allowed(source):
            self._latched = source
            self._last_seen = now
            self._latches += 1
            self._accepted += 1
            return True
        self._rejected += 1
        return False

    def reset(self, expected: Address | None) -> None:
        """Forget the latched source after a re-INVITE; ``expected`` is the new SDP address."""
        self._expected = expected
        self._latched = None

    def stats(self) -> LatchStats:
        """Return a snapshot of the counters."""
        return LatchStats(self._accepted, self._rejected, self._latches)

    def _host_allowed(self, source: Address) -> bool:
        if self.config.allow_any_host:
            return True
        return self._expected is not None and _same_host(source.host, self._expected.host)
