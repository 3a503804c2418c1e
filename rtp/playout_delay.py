"""The jitter buffer's delay estimate: RFC 3550 A.8 jitter, the minimum transit, the target.

Theory of operation
-------------------
Each packet's transit time is its arrival minus its media time (RTP timestamp / clock rate);
`DelayEstimator.observe` takes one per packet, in arrival order.

- *Jitter* J is RFC 3550 A.8: ``J += (|D| - J) / 16`` where D is the change in transit from
  the previous packet. J swings by +-50 % on uniform jitter (a 16-packet memory), so the
  target follows a slower average of it (``1/128``: about 2.5 s at 50 packets a second).
- *Base*: the lowest transit seen over the last ``base_window_s``, kept as a monotonic deque
  (each new sample removes the larger ones before it). It is the fastest path through the
  network, and it follows a drifting sender clock.
- *Target*: ``clamp(jitter_factor * J_smooth + ptime, min_delay, max_delay)``, or the fixed
  ``initial_delay_s`` when the buffer is not adaptive.

A transit change of more than `DISCONTINUITY_S` is a timestamp discontinuity or an outage,
not jitter: it does not feed J, and a packet out of order across one does not feed the base
either. `restart` forgets the base and the previous transit (a new epoch of the stream);
J is kept, because the network did not change.
"""

from __future__ import annotations

from collections import deque
from typing import Final

from rtp.frames import JitterConfig

DISCONTINUITY_S: Final = 1.0
_JITTER_GAIN: Final = 1 / 16  # RFC 3550 A.8
_TARGET_GAIN: Final = 1 / 128
_BASE_SAMPLES_MAX: Final = 1024  # bounds the monotonic base deque under a flood


class DelayEstimator:
    """Jitter, base transit and target delay of one received stream (module docstring)."""

    def __init__(self, config: JitterConfig) -> None:
        self.config = config
        self._base: deque[tuple[float, float]] = deque()  # (arrival, transit), rising
        self._prev_transit: float | None = None
        spare = config.initial_delay_s - config.ptime_s
        self._jitter_s = self._smooth_s = max(0.0, spare) / config.jitter_factor

    @property
    def jitter_s(self) -> float:
        """The RFC 3550 A.8 interarrival jitter, in seconds (seeded from the initial delay)."""
        return self._jitter_s

    def observe(self, transit_s: float, now: float, *, in_order: bool) -> None:
        """Feed the RFC 3550 A.8 jitter estimate and the minimum-transit base."""
        prev = self._prev_transit
        if prev is not None and abs(transit_s - prev) > DISCONTINUITY_S:
            if not in_order:
                return  # a straggler from before a discontinuity: its transit means nothing
        elif prev is not None:
            self._jitter_s += (abs(transit_s - prev) - self._jitter_s) * _JITTER_GAIN
            self._smooth_s += (self._jitter_s - self._smooth_s) * _TARGET_GAIN
        self._prev_transit = transit_s
        base = self._base
        while base and base[-1][1] >= transit_s:
            base.pop()
        base.append((now, transit_s))
        if len(base) > _BASE_SAMPLES_MAX:
            base.popleft()

    def restart(self) -> None:
        """Forget the base and the previous transit: a new epoch of the stream begins."""
        self._base.clear()
        self._prev_transit = None

    def base_s(self, now: float) -> float:
        """The lowest transit of the last ``base_window_s`` (0 before any packet)."""
        base = self._base
        while len(base) > 1 and base[0][0] < now - self.config.base_window_s:
            base.popleft()
        return base[0][1] if base else 0.0

    def target_s(self) -> float:
        """The playout delay to aim for, above the base."""
        cfg = self.config
        if not cfg.adaptive:
            return cfg.initial_delay_s
        wanted = cfg.jitter_factor * self._smooth_s + cfg.ptime_s
        return min(max(wanted, cfg.min_delay_s), cfg.max_delay_s)
