"""RTP port allocation from a configured range (RFC 3550 §11: RTP even, RTCP the next odd).

Pure bookkeeping: the allocator hands out even ports round-robin, so a port just released
is not reused at once (late packets of the old call would land in the new one).
"""

from __future__ import annotations

from dataclasses import dataclass

from rtp.errors import RtpError


@dataclass(frozen=True, slots=True)
class PortRange:
    """An inclusive range of UDP ports for RTP and RTCP."""

    low: int
    high: int

    def __post_init__(self) -> None:
        if not (1024 <= self.low < self.high <= 65535):
            raise ValueError("RTP port range must satisfy 1024 <= low < high <= 65535")
        if self.high - (self.low + self.low % 2) < 1:
            raise ValueError("RTP port range must hold at least one even/odd pair")

    @classmethod
    def parse(cls, text: str) -> PortRange:
        """Parse ``"LOW-HIGH"``."""
        low, sep, high = text.partition("-")
        if not sep or not low.strip().isdigit() or not high.strip().isdigit():
            raise ValueError(f"RTP port range must look like 10000-20000, not {text!r}")
        return cls(int(low), int(high))

    @property
    def pairs(self) -> int:
        """How many RTP/RTCP pairs fit."""
        first = self.low + self.low % 2
        return (self.high - first + 1) // 2


class PortsExhausted(RtpError):
    """Every RTP port pair in the range is in use."""


class PortAllocator:
    """Hands out even RTP ports from a `PortRange`."""

    def __init__(self, ports: PortRange) -> None:
        self.range = ports
        self._first = ports.low + ports.low % 2
        self._next = 0
        self._in_use: set[int] = set()

    def allocate(self) -> int:
        """An even RTP port (RTCP is the port after it).

        Raises:
            PortsExhausted: every pair is taken.
        """
        pairs = self.range.pairs
        for _ in range(pairs):
            port = self._first + 2 * self._next
            self._next = (self._next + 1) % pairs
            if port not in self._in_use:
                self._in_use.add(port)
                return port
        raise PortsExhausted("no free RTP port pair in the configured range")

    def release(self, port: int) -> None:
        """Return a port obtained from `allocate`."""
        self._in_use.discard(port)

    def __len__(self) -> int:
        return len(self._in_use)
