"""Adaptive jitter buffer for one received audio stream (RFC 3550 §5.1, §6.4.1, A.8).

Theory of operation
-------------------
Packets go in with `JitterBuffer.push(packet, now)` as they arrive; a 20 ms playout clock
calls `JitterBuffer.pop(now)`, and every call after playout has started returns exactly one
`Frame` or `Gap` (so output frames == playout ticks). Before playout starts it returns None.

*Ring.* Packets sit in a ring whose size is a power of two, indexed by an *extended*
sequence number (the 16-bit number unwrapped with `rtp.seq.seq_diff`; RFC 3550 §5.1 numbers
wrap). The playout position is the next extended number to play. A packet behind it is
*late* (its slot already played as a gap) or a *duplicate* (the slot remembers which number
it played); either is counted and dropped, so output never repeats or reorders a frame.

*Timing* (`rtp.playout_delay`). Each packet has a transit time, arrival minus media time
(RTP timestamp / clock rate). The jitter estimate J is RFC 3550 A.8 (J += (|D| - J)/16 on
transit changes, in arrival order). The *base* is the lowest transit seen over the last
``base_window_s``: the fastest path through the network, which follows a drifting sender
clock. The delay of the frame being played is ``now - media - base``; the target delay is
``clamp(jitter_factor * J + ptime, min_delay, max_delay)``.

*When a frame plays.* Playout starts when the first frame's deadline ``media + base +
target`` has come. From then on each tick plays the next frame if it is here. A missing
frame with later ones buffered is lost: `Gap` LOST, and the position moves on. With nothing
buffered the buffer has run dry: `Gap` UNDERRUN, and the position stays, which stretches
playout by one frame (a slow sender clock is absorbed here). If the missing frame then turns
out lost, the underrun gap already stood in for it and it is skipped silently, so one lost
packet makes exactly one gap either way.

*Adapting the delay* never shifts playout mid-frame; it happens only where it is not heard
or as a whole-frame decision (no time-scale modification):

- at a talkspurt start (marker bit, RFC 3551 §4.1, or a timestamp that jumps ahead of the
  sequence number: the sender suppressed silence) the frame waits for its own deadline, so
  the delay re-anchors to the current target during the silence;
- while talking, if the delay stays more than one frame above target for ``adapt_hold_s``
  one frame is dropped (a fast sender clock, or a jitter spike that has passed); if it stays
  more than half a frame below, one `Gap` INSERTED is played first (the playout must not sit
  under the target, where late packets start). Above ``max_delay`` a frame is dropped every
  tick.

*Resynchronisation* (an *epoch*): a new SSRC (re-INVITE, transfer), a sequence jump of more
than half the ring (confirmed by a packet next to it in sequence, as RFC 3550 A.1 does, or
at once when it carries the marker bit: a new talkspurt from a trunk), or a timestamp that
goes back or runs ahead of real time by more than a second while the sequence continues.
The new packets are mapped right after the old ones, so the frames already buffered still
play, the base restarts and the first new frame waits for its own deadline: no stall, and
no burst of thousands of gaps. Stragglers of the old stream still slot in before the new
one while their slots have not played, and never switch playout back.

The buffer only takes audio of one frame size (``ptime_s``; G.711 at 8 kHz by default) and
never looks at the payload: route telephone-event (RFC 4733) packets elsewhere first.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Final

from rtp.frames import (
    Frame,
    Gap,
    GapReason,
    JitterConfig,
    JitterConfigError,
    JitterStats,
    build_frame,
)
from rtp.packet import RtpPacket
from rtp.playout_delay import DISCONTINUITY_S, DelayEstimator
from rtp.seq import seq_diff, ts_diff

__all__ = [
    "Frame",
    "Gap",
    "GapReason",
    "JitterBuffer",
    "JitterConfig",
    "JitterConfigError",
    "JitterStats",
]

# A jumped sequence number is confirmed only by a packet that follows it within this time.
_CONFIRM_WINDOW_S: Final = 1.0
# Packets of the stream replaced by a resync are its stragglers while the new stream was
# heard within this time; after it, they are a new stream again.
_STALE_S: Final = 1.0
_MAX_CANDIDATES: Final = 4  # jumped packets held while waiting for a confirmation


class _Action(Enum):
    PLAY = "play"
    DROP = "drop"  # discard the due frame; the next one is here
    INSERT = "insert"  # hold the due frame one tick


@dataclass(slots=True)
class _Counters:
    received: int = 0
    duplicates: int = 0
    late: int = 0
    lost: int = 0
    reordered: int = 0
    resyncs: int = 0
    dropped: int = 0
    underruns: int = 0
    inserted: int = 0
    strays: int = 0


class _Entry:
    """A buffered frame, never changed once built.

    A plain slotted class rather than a frozen dataclass: one is built per packet, and this
    is several times cheaper.
    """

    __slots__ = ("boundary", "frame", "media_s", "seq", "ts")

    def __init__(self, seq: int, ts: int, media_s: float, boundary: bool, frame: Frame) -> None:
        self.seq = seq  # extended
        self.ts = ts  # extended, on the buffer's unified timeline
        self.media_s = media_s
        self.boundary = boundary  # first packet of an epoch
        self.frame = frame


@dataclass(frozen=True, slots=True)
class _Numbering:
    """How the stream before the last resync mapped onto the ring."""

    ssrc: int
    seq_ref: tuple[int, int]
    ts_ref: tuple[int, int]
    epoch: int  # where the new stream starts; the old one's packets belong before it


@dataclass(frozen=True, slots=True)
class _Candidate:
    packet: RtpPacket
    now: float


class JitterBuffer:
    """Reorders, times and de-duplicates one audio stream; see the module docstring."""

    def __init__(self, config: JitterConfig | None = None) -> None:
        self.config = config if config is not None else JitterConfig()
        size = self.config.ring_size
        self._mask = size - 1
        self._jump = size // 2
        self._spf = self.config.samples_per_frame
        self._rate = self.config.clock_rate_hz
        self._ring: list[_Entry | None] = [None] * size
        self._played: list[int | None] = [None] * size
        self._ssrc: int | None = None
        self._previous: _Numbering | None = None
        self._last_arrival = 0.0
        self._seq_ref = (0, 0)  # (raw 16-bit, extended) of the highest packet
        self._ts_ref = (0, 0)  # (raw 32-bit, extended) of the same packet
        self._highest = 0
        self._next = 0
        self._epoch = 0
        self._started = False
        self._last = (0, 0, 0)  # (extended seq, extended ts, raw ts) of the last frame used
        self._pending: list[_Candidate] = []  # jumped packets awaiting confirmation
        self._delay = DelayEstimator(self.config)
        self._over_since: float | None = None
        self._under_since: float | None = None
        self._credit = 0
        self._current_s = 0.0
        self._n = _Counters()

    # ----------------------------------------------------------------- input

    def push(self, packet: RtpPacket, now: float) -> None:
        """Take one received audio packet (its arrival time is ``now``)."""
        self._n.received += 1
        # Fast path: the next packet of the stream, in order (nearly all of them). It is
        # `_accept` for such a packet, without the resync checks that cannot fire.
        seq_raw, ext = self._seq_ref
        if (
            packet.ssrc == self._ssrc
            and packet.sequence_number == (seq_raw + 1) & 0xFFFF
            and ext == self._highest
        ):
            ts_raw, ts_ext = self._ts_ref
            ahead = (packet.timestamp - ts_raw) & 0xFFFFFFFF
            arrived_s = now - self._last_arrival
            # RFC 3550 §5.1: not back in time, nor further ahead than the time that passed
            if ahead < 0x80000000 and ahead / self._rate - arrived_s <= DISCONTINUITY_S:
                self._store(packet, ext + 1, ts_ext + ahead, now, boundary=False)
                return
        self._accept(packet, now)

    def _accept(self, packet: RtpPacket, now: float) -> None:
        if self._ssrc is None:
            seq, ts = packet.sequence_number, packet.timestamp
            self._ssrc = packet.ssrc
            self._seq_ref = (seq, seq)
            self._ts_ref = (ts, ts)
            self._highest = self._next = self._epoch = seq
            self._last = (seq - 1, ts - self._spf, (ts - self._spf) & 0xFFFFFFFF)
            self._store(packet, seq, ts, now, boundary=False)
            return
        if packet.ssrc != self._ssrc:
            if not self._from_previous(packet, now):
                self._new_epoch(packet, now, remap_seq=True)
            return
        ext = self._seq_ref[1] + seq_diff(packet.sequence_number, self._seq_ref[0])
        if abs(ext - self._highest) > self._jump:
            self._on_jump(packet, now)
            return
        ts = self._ts_ref[1] + ts_diff(packet.timestamp, self._ts_ref[0])
        if ext > self._highest:
            ahead_s = (ts - self._ts_ref[1]) / self.config.clock_rate_hz
            arrived_s = now - self._last_arrival
            # RFC 3550 §5.1: the timestamp may jump ahead (silence suppressed) but not back,
            # nor further ahead than the time that passed.
            if ts < self._ts_ref[1] or ahead_s - arrived_s > DISCONTINUITY_S:
                self._new_epoch(packet, now, remap_seq=False)
                return
        self._store(packet, ext, ts, now, boundary=False)

    def _from_previous(self, packet: RtpPacket, now: float) -> bool:
        """Slot in a straggler of the stream replaced by the last resync; False if not one.

        Without this, two late packets of the old stream in a row would resync back to it.
        """
        old = self._previous
        if old is None or packet.ssrc != old.ssrc or now - self._last_arrival >= _STALE_S:
            return False
        ext = old.seq_ref[1] + seq_diff(packet.sequence_number, old.seq_ref[0])
        if abs(ext - old.seq_ref[1]) > self._jump:
            return False
        if ext < old.epoch:
            ts = old.ts_ref[1] + ts_diff(packet.timestamp, old.ts_ref[0])
            self._store(packet, ext, ts, now, boundary=False)
        else:  # the old stream runs on past the switch: ignore it rather than flap
            self._n.late += 1
        return True

    def _on_jump(self, packet: RtpPacket, now: float) -> None:
        if self._from_previous(packet, now):
            return
        pending = [c for c in self._pending if now - c.now <= _CONFIRM_WINDOW_S]
        self._n.strays += len(self._pending) - len(pending)
        first: _Candidate | None = _Candidate(packet, now) if packet.marker else None
        for c in pending:  # RFC 3550 A.1: two packets in sequence mean a restart
            if (
                c.packet.ssrc == packet.ssrc
                and abs(seq_diff(packet.sequence_number, c.packet.sequence_number)) == 1
                and abs(ts_diff(packet.timestamp, c.packet.timestamp)) <= 8 * self._spf
            ):
                earlier = seq_diff(packet.sequence_number, c.packet.sequence_number) < 0
                first = _Candidate(packet, now) if earlier else c
                break
        if first is None:
            if len(pending) == _MAX_CANDIDATES:
                self._n.strays += 1
                pending.pop(0)
            self._pending = [*pending, _Candidate(packet, now)]
            return
        self._pending = []
        self._new_epoch(first.packet, first.now, remap_seq=True)
        # The others were probably this stream's packets, reordered; re-map them.
        for c in [*pending, _Candidate(packet, now)]:
            if c is not first and c.packet is not first.packet:
                self._accept(c.packet, c.now)

    def _new_epoch(self, packet: RtpPacket, now: float, *, remap_seq: bool) -> None:
        """Map ``packet`` right after everything buffered and restart the timing."""
        self._n.resyncs += 1
        if remap_seq:
            ext = max(self._highest, self._next - 1) + 1
            if self._ssrc is not None:
                self._previous = _Numbering(self._ssrc, self._seq_ref, self._ts_ref, ext)
        else:
            ext = self._seq_ref[1] + seq_diff(packet.sequence_number, self._seq_ref[0])
        ts = self._ts_ref[1] + self._spf * max(1, ext - self._highest)
        self._ssrc = packet.ssrc
        self._seq_ref = (packet.sequence_number, ext)
        self._ts_ref = (packet.timestamp, ts)
        self._epoch = ext
        self._delay.restart()
        self._over_since = self._under_since = None
        self._store(packet, ext, ts, now, boundary=True)

    def _store(self, packet: RtpPacket, ext: int, ts: int, now: float, *, boundary: bool) -> None:
        if ext < self._next:
            if not self._started and self._highest - ext < self._mask:
                self._next = ext  # reordered before playout began: start earlier
            else:
                slot = self._ring[ext & self._mask]
                played = self._played[ext & self._mask] == ext
                if played or (slot is not None and slot.seq == ext):
                    self._n.duplicates += 1
                else:  # its lateness is news about the network: it feeds the estimate
                    self._n.late += 1
                    self._delay.observe(now - ts / self.config.clock_rate_hz, now, in_order=False)
                return
        if ext - self._next > self._mask:
            self._evict_before(ext - self._mask)
        index = ext & self._mask
        slot = self._ring[index]
        if slot is not None and slot.seq == ext:
            self._n.duplicates += 1
            return
        media_s = ts / self.config.clock_rate_hz
        p = packet
        frame = build_frame(
            p.payload, p.payload_type, p.timestamp, p.sequence_number, p.ssrc, p.marker
        )
        self._ring[index] = _Entry(ext, ts, media_s, boundary, frame)
        if ext >= self._highest:
            self._highest = ext
            self._seq_ref = (packet.sequence_number, ext)
            self._ts_ref = (packet.timestamp, ts)
            self._last_arrival = now
            self._delay.observe(now - media_s, now, in_order=True)
        else:
            self._n.reordered += 1
            self._delay.observe(now - media_s, now, in_order=False)

    def _evict_before(self, new_next: int) -> None:
        """The ring is full because nobody plays it: discard the oldest frames."""
        for ext in range(self._next, min(new_next, self._next + self._mask + 1)):
            entry = self._ring[ext & self._mask]
            if entry is not None and entry.seq == ext:
                self._n.dropped += 1
                self._consume(entry)
        self._next = new_next
        if not self._started:  # playout must start on a frame that is here
            while self._next < self._highest and self._entry(self._next) is None:
                self._next += 1

    # ---------------------------------------------------------------- output

    def pop(self, now: float) -> Frame | Gap | None:
        """Return what plays at this tick: a frame, a gap to conceal, or None before start."""
        if self._ssrc is None:
            return None
        if not self._started:
            entry = self._entry(self._next)
            if entry is None or now < self._deadline(entry, now):
                return None
            self._started = True
            return self._play(entry, now)
        # Each pass uses up one slot, so the ring size bounds the loop.
        may_drop = True  # at most one frame dropped per tick
        ring, mask = self._ring, self._mask
        for _ in range(mask + 2):
            entry = ring[self._next & mask]  # `_entry`, inline: this runs per call per tick
            if entry is not None and entry.seq != self._next:
                entry = None
            if entry is None:
                gap_ts = (self._last[2] + self._spf * (self._next - self._last[0])) & 0xFFFFFFFF
                if self._highest > self._next:
                    self._n.lost += 1
                    self._next += 1
                    if self._credit > 0:  # an underrun gap already stood in for it
                        self._credit -= 1
                        continue
                    return Gap(gap_ts, GapReason.LOST)
                self._n.underruns += 1
                self._credit += 1
                return Gap(gap_ts, GapReason.UNDERRUN)
            last_seq, last_ts, _ = self._last  # `_is_talkspurt_start`, inline
            talkspurt_start = (
                entry.boundary
                or entry.frame.marker
                or entry.ts > last_ts + self._spf * (entry.seq - last_seq)
            )
            if talkspurt_start and now < self._deadline(entry, now):
                self._n.underruns += 1
                return Gap(entry.frame.timestamp, GapReason.UNDERRUN)
            action = self._adapt(entry, now, may_drop=may_drop)
            if action is _Action.DROP:
                self._n.dropped += 1
                self._consume(entry)
                may_drop = False
                continue
            if action is _Action.INSERT:
                self._n.inserted += 1
                return Gap(entry.frame.timestamp, GapReason.INSERTED)
            return self._play(entry, now)
        raise AssertionError("jitter buffer pop did not settle")  # pragma: no cover

    def _has(self, ext: int) -> bool:
        return self._entry(ext) is not None

    def _entry(self, ext: int) -> _Entry | None:
        entry = self._ring[ext & self._mask]
        return entry if entry is not None and entry.seq == ext else None

    def _deadline(self, entry: _Entry, now: float) -> float:
        return entry.media_s + self._delay.base_s(now) + self._delay.target_s()

    def _adapt(self, entry: _Entry, now: float, *, may_drop: bool) -> _Action:
        """Decide whether the frame that is due plays, is dropped, or waits one tick."""
        cfg = self.config
        if not cfg.adaptive or entry.seq < self._epoch:
            return _Action.PLAY  # the tail of an old epoch is timed against another base
        delay = now - entry.media_s - self._delay.base_s(now)
        surplus = delay - self._delay.target_s()
        # whether the next frame is here (so this one may go) is looked up only when asked
        if delay > cfg.max_delay_s + cfg.ptime_s and may_drop and self._has(entry.seq + 1):
            return _Action.DROP
        if surplus > cfg.ptime_s:
            self._under_since = None
            if self._over_since is None:
                self._over_since = now
            elif (
                now - self._over_since >= cfg.adapt_hold_s and may_drop and self._has(entry.seq + 1)
            ):
                self._over_since = now
                return _Action.DROP
        elif surplus < -cfg.ptime_s / 2:
            self._over_since = None
            if self._under_since is None:
                self._under_since = now
            elif now - self._under_since >= cfg.adapt_hold_s:
                self._under_since = now
                return _Action.INSERT
        else:
            self._over_since = self._under_since = None
        return _Action.PLAY

    def _consume(self, entry: _Entry) -> None:
        index = entry.seq & self._mask
        self._ring[index] = None
        self._played[index] = entry.seq
        self._last = (entry.seq, entry.ts, entry.frame.timestamp)
        self._next = entry.seq + 1

    def _play(self, entry: _Entry, now: float) -> Frame:
        self._consume(entry)
        self._credit = 0
        self._current_s = now - entry.media_s - self._delay.base_s(now)
        return entry.frame

    # ----------------------------------------------------------------- stats

    def stats(self) -> JitterStats:
        """Return a snapshot of the counters (reading them changes nothing)."""
        n = self._n
        return JitterStats(
            received=n.received,
            duplicates=n.duplicates,
            late=n.late,
            lost=n.lost,
            reordered=n.reordered,
            resyncs=n.resyncs,
            dropped=n.dropped,
            underruns=n.underruns,
            inserted=n.inserted,
            strays=n.strays,
            current_delay_ms=self._current_s * 1000,
            target_delay_ms=self._delay.target_s() * 1000,
            jitter_ms=self._delay.jitter_s * 1000,
        )
