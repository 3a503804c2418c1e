"""Serial-number arithmetic for RTP sequence numbers (mod 2**16) and timestamps (mod 2**32).

Theory of operation
-------------------
RTP sequence numbers and timestamps wrap (RFC 3550 §5.1), so ``<`` on the raw numbers is
wrong across the wrap: 65535 comes *before* 0. These helpers use RFC 1982 serial-number
arithmetic: ``a`` is "before" ``b`` when going forward from ``a`` reaches ``b`` in fewer
than half the number space.

- ``seq_diff(a, b)`` is the signed distance ``a - b`` folded into [-32768, 32767], so
  ``seq_add(b, seq_diff(a, b)) == a`` always.
- ``seq_lt``/``seq_gt`` are antisymmetric: ``seq_lt(a, b) == seq_gt(b, a)``, and never both
  ``seq_lt(a, b)`` and ``seq_lt(b, a)``. Two numbers exactly half the space apart are
  neither less nor greater (RFC 1982 §3.2 leaves them undefined; aiortc's ``uint16_gt`` and
  libwebrtc's ``IsNewerSequenceNumber`` break the tie in one direction, which makes ``gt``
  true both ways round for one of the two orders). `seq_diff` still returns -32768 for them.
- The ``ts_*`` functions are the same over 32 bits.
- `SequenceUnwrapper` turns a stream of 16-bit numbers into ever-growing extended numbers
  (cycles << 16 | seq), the form RTCP reports and a jitter buffer index use.
"""

from __future__ import annotations

from typing import Final

SEQ_MOD: Final = 1 << 16
TS_MOD: Final = 1 << 32
_SEQ_HALF: Final = SEQ_MOD >> 1
_TS_HALF: Final = TS_MOD >> 1


def seq_add(seq: int, delta: int) -> int:
    """Return ``seq + delta`` modulo 2**16 (``delta`` may be negative)."""
    return (seq + delta) & 0xFFFF


def seq_diff(a: int, b: int) -> int:
    """Return the signed distance ``a - b`` modulo 2**16, in [-32768, 32767]."""
    return ((a - b + _SEQ_HALF) & 0xFFFF) - _SEQ_HALF


def seq_lt(a: int, b: int) -> bool:
    """Return True if ``a`` comes before ``b`` (less than half the space behind it)."""
    return 0 < ((b - a) & 0xFFFF) < _SEQ_HALF


def seq_gt(a: int, b: int) -> bool:
    """Return True if ``a`` comes after ``b`` (less than half the space ahead of it)."""
    return 0 < ((a - b) & 0xFFFF) < _SEQ_HALF


def ts_add(timestamp: int, delta: int) -> int:
    """Return ``timestamp + delta`` modulo 2**32 (``delta`` may be negative)."""
    return (timestamp + delta) & 0xFFFFFFFF


def ts_diff(a: int, b: int) -> int:
    """Return the signed distance ``a - b`` modulo 2**32, in [-2**31, 2**31 - 1]."""
    return ((a - b + _TS_HALF) & 0xFFFFFFFF) - _TS_HALF


def ts_lt(a: int, b: int) -> bool:
    """Return True if timestamp ``a`` comes before ``b``."""
    return 0 < ((b - a) & 0xFFFFFFFF) < _TS_HALF


def ts_gt(a: int, b: int) -> bool:
    """Return True if timestamp ``a`` comes after ``b``."""
    return 0 < ((a - b) & 0xFFFFFFFF) < _TS_HALF


class SequenceUnwrapper:
    """Extend 16-bit sequence numbers to unbounded ints, relative to the last one seen.

    Each number is placed at the extended value nearest to the previous one, so a late packet
    from just before a wrap unwraps below it rather than a whole cycle ahead. The first number
    unwraps to itself (cycle 0); a late packet from before it may unwrap below zero.
    """

    __slots__ = ("_last",)

    def __init__(self) -> None:
        self._last: int | None = None

    def unwrap(self, seq: int) -> int:
        """Return the extended number of ``seq`` and remember it as the reference."""
        if self._last is None:
            extended = seq & 0xFFFF
        else:
            extended = self._last + seq_diff(seq, self._last)
        self._last = extended
        return extended
