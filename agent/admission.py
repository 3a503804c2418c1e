"""Call admission: refuse a new INVITE rather than degrade every call in progress.

Theory of operation
-------------------
A media server that takes one call too many makes *every* call worse: the shared 20 ms clock
runs late for all of them (rtp/transport.py counts ticks that ran more than 5 ms after their
deadline, and ticks it had to skip). So a new call is refused with 503 Service Unavailable and
a Retry-After (RFC 3261 §21.5.4, §20.33) when

* the configured ``max_calls`` are already up (a fixed cap sized from bench/RESULTS.md), or
* the media clock is overloaded: of the ticks due in the last ``window_s`` seconds, more than
  ``late_share`` ran late or were skipped. Once seen, overload holds for ``hold_s`` so a
  trunk retrying at once does not push the server straight back over the edge.

A trunk that gets 503 fails the call over to its next route (Twilio, Asterisk and Kamailio's
dispatcher all do), so the caller is answered elsewhere instead of hearing broken audio here.

The clock's cumulative counters are sampled (`observe`) by the runtime about once a second;
`decide` needs no I/O and no clock of its own (``now`` is passed in).
"""

from __future__ import annotations

import collections
from dataclasses import dataclass
from enum import Enum

__all__ = ["Admission", "AdmissionConfig", "AdmissionControl"]


class Admission(Enum):
    """What to do with a new call."""

    ADMIT = "admit"
    FULL = "full"  # max_calls reached
    OVERLOADED = "overloaded"  # the media clock is running late


@dataclass(frozen=True, slots=True)
class AdmissionConfig:
    """Limits; ``max_calls`` 0 means no fixed cap (only the overload check applies)."""

    max_calls: int = 0
    late_share: float = 0.2
    window_s: float = 5.0
    min_ticks: int = 100
    hold_s: float = 10.0
    retry_after_s: int = 5

    def __post_init__(self) -> None:
        if self.max_calls < 0:
            raise ValueError("max_calls must be 0 (no cap) or more")
        if not 0.0 < self.late_share <= 1.0:
            raise ValueError("late_share must be in (0, 1]")
        if self.window_s <= 0 or self.hold_s < 0 or self.min_ticks < 1:
            raise ValueError("window_s > 0, hold_s >= 0 and min_ticks >= 1 are required")


@dataclass(frozen=True, slots=True)
class _Sample:
    at: float
    ticks: int  # ticks run plus ticks skipped, cumulative
    late: int  # late ticks plus skipped ticks, cumulative


class AdmissionControl:
    """Decides whether a new call is admitted (sans-I/O: counters and ``now`` in)."""

    def __init__(self, config: AdmissionConfig | None = None) -> None:
        self.config = config or AdmissionConfig()
        self._samples: collections.deque[_Sample] = collections.deque()
        self._overloaded_until = float("-inf")
        self.refused: collections.Counter[Admission] = collections.Counter()

    def observe(self, ticks: int, late_ticks: int, skipped: int, now: float) -> None:
        """Record the media clock's cumulative counters (ticks run, of them late; skipped)."""
        sample = _Sample(now, ticks + skipped, late_ticks + skipped)
        samples = self._samples
        samples.append(sample)
        while len(samples) > 1 and samples[1].at <= now - self.config.window_s:
            samples.popleft()  # keep one sample at or before the window's start
        first = samples[0]
        due = sample.ticks - first.ticks
        if (
            due >= self.config.min_ticks
            and (sample.late - first.late) > self.config.late_share * due
        ):
            self._overloaded_until = now + self.config.hold_s

    def late_share(self) -> float:
        """The share of ticks late or skipped over the window (0 before enough samples)."""
        if len(self._samples) < 2:
            return 0.0
        first, last = self._samples[0], self._samples[-1]
        due = last.ticks - first.ticks
        return (last.late - first.late) / due if due else 0.0

    def overloaded(self, now: float) -> bool:
        """Whether overload was seen within the last ``hold_s``."""
        return now < self._overloaded_until

    def decide(self, active_calls: int, now: float) -> Admission:
        """Admit a new call, or say why not (the refusal is counted)."""
        cap = self.config.max_calls
        verdict = Admission.ADMIT
        if cap and active_calls >= cap:
            verdict = Admission.FULL
        elif self.overloaded(now):
            verdict = Admission.OVERLOADED
        if verdict is not Admission.ADMIT:
            self.refused[verdict] += 1
        return verdict
