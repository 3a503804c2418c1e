"""Exponential backoff, as a pure function of the attempt number.

The Redis reconnect loop and the email outbox both retry with it. The delay after the n-th
failure is ``base * factor**(n-1)``, capped, and scaled by a jitter factor the caller draws
(so many instances that lost the same server do not all come back at the same instant, and
tests can pass 1.0 for exact values).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delays that double (by default) from ``base_s`` up to ``cap_s``."""

    base_s: float
    cap_s: float
    factor: float = 2.0

    def delay_s(self, failures: int, jitter: float = 1.0) -> float:
        """Seconds to wait after ``failures`` consecutive failures (0 means none: no wait).

        Args:
            failures: consecutive failures so far.
            jitter: a factor drawn by the caller, typically in [0.5, 1.0].
        """
        if failures <= 0:
            return 0.0
        # min() before the power would overflow for a long outage (factor ** 2000).
        exponent = min(failures - 1, 64)
        return min(self.cap_s, self.base_s * self.factor**exponent) * jitter
