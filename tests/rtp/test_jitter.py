"""Jitter buffer on a virtual clock: ordering, loss, late packets, adaptation, skew, resyncs.

Every scenario is a list of packet arrivals replayed against a 20 ms playout clock whose
phase differs from the sender's; nothing sleeps. `Trace` is what a listener would hear: one
item per tick.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtp.jitter import Frame, Gap, GapReason, JitterBuffer, JitterConfig, JitterConfigError
from rtp.packet import RtpPacket
from rtp.seq import seq_diff, ts_diff

PTIME = 0.020
SPF = 160
PHASE = 0.0071  # the playout clock ticks 7.1 ms after the sender's clock


@dataclass
class Arrival:
    at: float
    packet: RtpPacket


@dataclass
class Trace:
    """What `pop` returned at each tick."""

    ticks: list[tuple[float, Frame | Gap | None]] = field(default_factory=list)

    @property
    def items(self) -> list[Frame | Gap]:
        return [r for _, r in self.ticks if r is not None]

    @property
    def frames(self) -> list[Frame]:
        return [r for r in self.items if isinstance(r, Frame)]

    def gaps(self, *reasons: GapReason) -> list[Gap]:
        """Gaps up to the last frame (after it the sender has simply stopped)."""
        items = self.items
        last = max((k for k, r in enumerate(items) if isinstance(r, Frame)), default=-1)
        return [
            r for r in items[:last] if isinstance(r, Gap) and (not reasons or r.reason in reasons)
        ]

    def first_frame_time(self) -> float:
        return next(t for t, r in self.ticks if isinstance(r, Frame))


def pkt(
    i: int,
    *,
    seq0: int = 1000,
    ts0: int = 50_000,
    ssrc: int = 0x1234,
    marker: bool = False,
    ts: int | None = None,
) -> RtpPacket:
    return RtpPacket(
        payload_type=0,
        sequence_number=(seq0 + i) & 0xFFFF,
        timestamp=((ts0 + SPF * i) if ts is None else ts) & 0xFFFFFFFF,
        ssrc=ssrc,
        payload=bytes([i & 0xFF]) * 160,
        marker=marker,
    )


def run(
    jb: JitterBuffer,
    arrivals: list[Arrival],
    *,
    until: float | None = None,
    phase: float = PHASE,
    probe: list[tuple[float, float, float]] | None = None,
) -> Trace:
    """Push each arrival at its time and pop on every tick of the playout clock."""
    arrivals = sorted(arrivals, key=lambda a: a.at)
    end = until if until is not None else arrivals[-1].at + 0.5
    trace = Trace()
    k, tick = 0, phase
    while tick <= end:
        while k < len(arrivals) and arrivals[k].at <= tick:
            jb.push(arrivals[k].packet, arrivals[k].at)
            k += 1
        trace.ticks.append((tick, jb.pop(tick)))
        if probe is not None:
            s = jb.stats()
            probe.append((tick, s.current_delay_ms, s.target_delay_ms))
        tick = round(tick + PTIME, 9)
    return trace


def steady(n: int, *, transit: float = 0.010, seq0: int = 1000, ts0: int = 50_000) -> list[Arrival]:
    """A clean stream: packet i sent at i * 20 ms, arriving ``transit`` later."""
    return [
        Arrival(i * PTIME + transit, pkt(i, seq0=seq0, ts0=ts0, marker=i == 0)) for i in range(n)
    ]


def index_of(frame: Frame, seq0: int = 1000) -> int:
    return seq_diff(frame.seq, seq0)


FIXED = JitterConfig(adaptive=False)  # isolates reordering/loss logic from delay adaptation


def assert_all_in_order(trace: Trace, jb: JitterBuffer, n: int) -> None:
    """Frames 0..n-1 in order, none twice; only frames dropped to cut the delay are missing.

    On a clean network J decays, the target falls from the initial 60 ms towards 20 ms,
    and an adaptive buffer drops a frame or two to get there.
    """
    played = [index_of(f) for f in trace.frames]
    assert played == sorted(set(played))
    assert len(played) + jb.stats().dropped == n
    assert jb.stats().dropped <= 2


# ----------------------------------------------------------------------- basics


def test_nothing_plays_before_the_first_frames_deadline() -> None:
    jb = JitterBuffer()
    assert jb.pop(0.0) is None
    trace = run(jb, steady(50, transit=0.010))
    first = trace.first_frame_time()
    # Playout starts at the first tick at or after arrival + the initial 60 ms target.
    assert 0.070 <= first < 0.070 + PTIME
    assert all(r is None for t, r in trace.ticks if t < first)


def test_in_order_stream_plays_every_frame_once_in_order_without_gaps() -> None:
    jb = JitterBuffer(FIXED)
    trace = run(jb, steady(200))
    assert [index_of(f) for f in trace.frames] == list(range(200))
    assert trace.frames[0].payload == bytes([0]) * 160 and trace.frames[0].marker
    assert not trace.gaps()
    stats = jb.stats()
    assert (stats.received, stats.lost, stats.late, stats.duplicates, stats.resyncs) == (
        (200, 0, 0, 0, 0)
    )


def test_clean_network_lowers_the_delay_by_dropping_a_frame_or_two() -> None:
    jb = JitterBuffer()
    probe: list[tuple[float, float, float]] = []
    trace = run(jb, steady(500), probe=probe)
    assert_all_in_order(trace, jb, 500)
    assert 1 <= jb.stats().dropped <= 2 and not trace.gaps()
    # J decays to 0, so the target falls to ptime (the 20 ms floor), from 60 ms.
    assert jb.stats().target_delay_ms == pytest.approx(20.0, abs=1.0)
    assert jb.stats().current_delay_ms <= 20.0 + 20.0


def test_reordered_packets_are_put_back_in_order() -> None:
    arrivals = steady(100)
    for i in range(10, 90, 10):  # packet i-1 is held until just after packet i
        arrivals[i - 1].at = arrivals[i].at + 0.001
    jb = JitterBuffer(FIXED)
    trace = run(jb, arrivals)
    assert [index_of(f) for f in trace.frames] == list(range(100))
    assert jb.stats().reordered == 8 and not trace.gaps()


def test_duplicates_are_counted_and_never_played_twice() -> None:
    arrivals = steady(100)
    arrivals += [Arrival(a.at + 0.003, a.packet) for a in arrivals[::5]]  # while buffered
    arrivals += [Arrival(a.at + 0.5, a.packet) for a in arrivals[:20:4]]  # after it played
    jb = JitterBuffer(FIXED)
    trace = run(jb, arrivals)
    assert [index_of(f) for f in trace.frames] == list(range(100))
    assert jb.stats().duplicates == 25 and jb.stats().late == 0


def test_a_missing_frame_is_one_lost_gap_and_a_late_packet_is_dropped() -> None:
    arrivals = [a for a in steady(100) if index_of_packet(a) not in (30, 31, 32, 60)]
    arrivals.append(Arrival(60 * PTIME + 0.5, pkt(60)))  # half a second late
    jb = JitterBuffer(FIXED)
    trace = run(jb, arrivals)
    gaps = trace.gaps()
    assert [g.reason for g in gaps] == [GapReason.LOST] * 4
    assert [ts_diff(g.timestamp, 50_000) // SPF for g in gaps] == [30, 31, 32, 60]
    assert len(trace.frames) == 96 and jb.stats().lost == 4 and jb.stats().late == 1
    # Each gap takes the tick its frame would have had.
    last = max(k for k, r in enumerate(trace.items) if isinstance(r, Frame))
    assert last + 1 == 100


def test_a_dry_buffer_holds_its_position_instead_of_counting_losses() -> None:
    jb = JitterBuffer()
    trace = run(jb, steady(50), until=3.0)  # the sender stops at 1 s
    after_start = [r for t, r in trace.ticks if t >= trace.first_frame_time()]
    assert all(r is not None for r in after_start)
    tail = after_start[len(trace.frames) :]
    assert len(tail) > 90 and all(isinstance(g, Gap) for g in tail)
    # Every tail gap is an underrun for the next frame, not 100 newly "lost" frames.
    assert {(g.reason, g.timestamp) for g in tail if isinstance(g, Gap)} == {
        (GapReason.UNDERRUN, 50_000 + 50 * SPF)
    }
    assert jb.stats().lost == 0


def index_of_packet(a: Arrival) -> int:
    return seq_diff(a.packet.sequence_number, 1000)


# ------------------------------------------------------------ network scenarios


def lossy_network(seed: int, seconds: float) -> tuple[list[Arrival], set[int]]:
    """5 % loss, 0-40 ms uniform jitter, and 2 % of packets held until after the next one."""
    rng = random.Random(seed)
    arrivals, lost = [], set()
    for i in range(int(seconds / PTIME)):
        if rng.random() < 0.05 and i > 0:
            lost.add(i)
        else:
            arrivals.append(Arrival(i * PTIME + rng.uniform(0.0, 0.040), pkt(i, marker=i == 0)))
    for a, b in zip(arrivals, arrivals[1:], strict=False):
        if rng.random() < 0.02:
            a.at = max(a.at, b.at) + 0.001
    return arrivals, lost


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_lossy_jittery_network_plays_without_late_drops(seed: int) -> None:
    arrivals, lost = lossy_network(seed, 60.0)
    last = max(index_of_packet(a) for a in arrivals)
    lost = {i for i in lost if i < last}
    jb = JitterBuffer()
    probe: list[tuple[float, float, float]] = []
    trace = run(jb, arrivals, until=61.0, probe=probe)
    stats = jb.stats()
    assert stats.late == 0 and stats.duplicates == 0
    # Each lost packet is heard as exactly one concealed gap (LOST, or an UNDERRUN that
    # stood in for it), never more.
    assert len(trace.gaps(GapReason.LOST, GapReason.UNDERRUN)) == len(lost) == stats.lost
    gap_indices = {ts_diff(g.timestamp, 50_000) // SPF for g in trace.gaps(GapReason.LOST)}
    assert gap_indices <= lost
    assert len(trace.frames) + stats.dropped == len(arrivals)
    # The target follows J (about 13-16 ms here): k=4 puts it above the 40 ms spread plus
    # the one-frame reorder, and the delay actually played stays within a frame of it.
    settled = [(cur, tgt) for t, cur, tgt in probe if t > 10.0]
    mean_target = sum(t for _, t in settled) / len(settled)
    assert 60.0 <= mean_target <= 90.0
    assert all(abs(cur - tgt) <= PTIME * 1000 + 1 for cur, tgt in settled)


@pytest.mark.parametrize("skew", [+0.001, -0.001])
def test_clock_skew_keeps_the_delay_bounded_for_ten_minutes(skew: float) -> None:
    # skew > 0: the sender's 20 ms frames come 20.02 ms apart (its clock is slow).
    rng = random.Random(7)
    n = int(600 / PTIME)
    arrivals = [
        Arrival(i * PTIME * (1 + skew) + rng.uniform(0, 0.010), pkt(i, marker=i == 0))
        for i in range(n)
    ]
    jb = JitterBuffer()
    probe: list[tuple[float, float, float]] = []
    trace = run(jb, arrivals, probe=probe)
    stats = jb.stats()
    settled = [(cur, tgt) for t, cur, tgt in probe if t > 5.0]
    assert all(tgt - 15 <= cur <= tgt + 25 for cur, tgt in settled)
    # 0.1 % of 600 s is 600 ms, i.e. 30 frames, evened out by single frames.
    if skew > 0:
        assert 27 <= stats.inserted <= 33 and stats.dropped <= 2
    else:
        assert 27 <= stats.dropped <= 33 and stats.inserted <= 2
    assert stats.late == 0 and stats.lost == 0
    ticks_after_start = sum(1 for t, _ in trace.ticks if t >= trace.first_frame_time())
    assert len(trace.items) == ticks_after_start


def test_sequence_and_timestamp_wrap_is_seamless() -> None:
    arrivals = steady(300, seq0=65_400, ts0=0xFFFF_FFFF - 20 * SPF)
    jb = JitterBuffer(FIXED)
    trace = run(jb, arrivals)
    assert [seq_diff(f.seq, 65_400) for f in trace.frames] == list(range(300))
    assert all(
        ts_diff(b.timestamp, a.timestamp) == SPF
        for a, b in zip(trace.frames, trace.frames[1:], strict=False)
    )
    assert not trace.gaps() and jb.stats().resyncs == 0


@pytest.mark.parametrize("config", [FIXED, JitterConfig()], ids=["fixed", "adaptive"])
def test_ssrc_change_resyncs_within_one_frame_time(config: JitterConfig) -> None:
    old = steady(100)
    switch = 100 * PTIME
    new = [
        Arrival(
            switch + i * PTIME + 0.010,
            pkt(i, seq0=40_000, ts0=7_777_777, ssrc=0xBEEF, marker=i == 0),
        )
        for i in range(100)
    ]
    jb = JitterBuffer(config)
    probe: list[tuple[float, float, float]] = []
    trace = run(jb, old + new, probe=probe)
    ssrcs = [f.ssrc for f in trace.frames]
    assert ssrcs == [0x1234] * ssrcs.count(0x1234) + [0xBEEF] * ssrcs.count(0xBEEF)
    old_played = [index_of(f) for f in trace.frames if f.ssrc == 0x1234]
    new_played = [seq_diff(f.seq, 40_000) for f in trace.frames if f.ssrc == 0xBEEF]
    for played in (old_played, new_played):
        assert played == sorted(set(played)) and played[-1] == 99
    assert len(old_played) + len(new_played) + jb.stats().dropped == 200
    last_old = next(t for t, r in trace.ticks if isinstance(r, Frame) and r.seq == 1099)
    first_new = next(t for t, r in trace.ticks if isinstance(r, Frame) and r.ssrc == 0xBEEF)
    assert first_new - last_old <= 2 * PTIME + 1e-9  # at most one frame of silence between
    target_s = next(tgt for t, _, tgt in probe if t == first_new) / 1000
    assert first_new <= new[0].at + target_s + PTIME
    assert jb.stats().resyncs == 1 and jb.stats().lost == 0


@pytest.mark.parametrize("kind", ["ssrc", "sequence-jump"])
def test_stragglers_of_the_replaced_stream_play_before_it_or_count_late(kind: str) -> None:
    new_ssrc = 0xBEEF if kind == "ssrc" else 0x1234
    old = steady(50)
    held = [old.pop(48), old.pop(47)]  # 47 and 48 come after the new stream's first packet
    held[0].at, held[1].at = 1.012, 1.013  # still in time for their slots
    very_late = Arrival(1.3, pkt(50))  # never sent before, and far too late
    new = [
        Arrival(1.0 + i * PTIME + 0.01, pkt(i, seq0=30_000, ssrc=new_ssrc, marker=i == 0))
        for i in range(50)
    ]
    jb = JitterBuffer(FIXED)
    trace = run(jb, old + held + new + [very_late, Arrival(1.31, held[0].packet)])
    assert [f.seq for f in trace.frames] == [1000 + i for i in range(50)] + [
        30_000 + i for i in range(50)
    ]
    stats = jb.stats()
    # Neither the two stragglers in a row nor the late one flipped playout back.
    assert (stats.resyncs, stats.late, stats.duplicates, stats.lost) == (1, 1, 1, 0)


def test_sequence_jump_with_marker_resyncs_at_once() -> None:
    # A trunk starts a new talkspurt with unrelated numbers: no thousands of gaps.
    first = steady(50)
    second = [
        Arrival(1.0 + i * PTIME + 0.01, pkt(i, seq0=30_000, ts0=123_456_789, marker=i == 0))
        for i in range(50)
    ]
    jb = JitterBuffer(FIXED)
    trace = run(jb, first + second)
    assert len(trace.frames) == 100 and jb.stats().resyncs == 1
    assert len(trace.gaps()) <= 3


def test_sequence_jump_without_marker_needs_a_second_packet() -> None:
    stray = Arrival(0.5 + 0.011, pkt(0, seq0=20_000))  # a lone packet with a wild number
    jb = JitterBuffer(FIXED)
    trace = run(jb, steady(100) + [stray])
    assert [index_of(f) for f in trace.frames] == list(range(100))
    assert jb.stats().resyncs == 0 and jb.stats().strays == 0  # still pending
    # Two in sequence are a restart (RFC 3550 A.1): both play, after the old frames.
    jb = JitterBuffer(FIXED)
    restart = [Arrival(2.0 + i * PTIME + 0.01, pkt(i, seq0=20_000, ts0=9)) for i in range(50)]
    trace = run(jb, steady(100) + restart)
    assert len(trace.frames) == 150 and jb.stats().resyncs == 1


def test_timestamp_jump_back_with_continuous_sequence_resyncs() -> None:
    first = steady(100)
    second = [Arrival(2.0 + i * PTIME + 0.01, pkt(100 + i, ts=1_000 + SPF * i)) for i in range(100)]
    jb = JitterBuffer()
    trace = run(jb, first + second)
    # No drop storm: the delay was measured against the old base would look 2 s too long.
    assert_all_in_order_by_ssrc = [f.seq for f in trace.frames]
    assert assert_all_in_order_by_ssrc == sorted(assert_all_in_order_by_ssrc)
    assert len(trace.frames) + jb.stats().dropped == 200 and jb.stats().dropped <= 2
    assert jb.stats().resyncs == 1 and not trace.gaps(GapReason.LOST)


def test_silence_suppression_re_anchors_the_delay_at_the_talkspurt() -> None:
    # 1 s of speech, 2 s unsent (sequence continuous, timestamp jumps: RFC 3551 §4.1),
    # and the network got 30 ms slower during the silence.
    first = steady(50, transit=0.010)
    second = [
        Arrival(3.0 + i * PTIME + 0.040, pkt(50 + i, ts=50_000 + SPF * (150 + i), marker=i == 0))
        for i in range(50)
    ]
    jb = JitterBuffer()
    probe: list[tuple[float, float, float]] = []
    trace = run(jb, first + second, probe=probe)
    assert len(trace.frames) + jb.stats().dropped == 100 and jb.stats().resyncs == 0
    assert not trace.gaps(GapReason.LOST) and jb.stats().late == 0
    at = next(k for k, (t, r) in enumerate(trace.ticks) if isinstance(r, Frame) and t > 2.0)
    talkspurt, frame = trace.ticks[at]
    assert isinstance(frame, Frame) and frame.marker
    # It waited for its own deadline, arrival + target: the delay re-anchored in the silence
    # (the tick before it was still a gap) and the new path delay is fully covered.
    target_s = probe[at][2] / 1000
    assert second[0].at + target_s <= talkspurt < second[0].at + target_s + PTIME
    assert isinstance(trace.ticks[at - 1][1], Gap)


def test_a_network_stall_is_absorbed_then_the_delay_drains_back() -> None:
    arrivals = steady(500)
    for a in arrivals[100:110]:  # 200 ms outage, then the queued packets arrive together
        a.at = 110 * PTIME + 0.010
    jb = JitterBuffer()
    probe: list[tuple[float, float, float]] = []
    trace = run(jb, arrivals, probe=probe)
    stats = jb.stats()
    assert stats.late == 0 and stats.lost == 0  # the underrun held playout for them
    assert 1 <= len(trace.gaps(GapReason.UNDERRUN)) <= 12
    assert stats.dropped >= 5
    assert all(cur <= tgt + PTIME * 1000 + 1 for t, cur, tgt in probe if t > 9.0)


def test_fixed_delay_mode_never_drops_or_inserts() -> None:
    jb = JitterBuffer(JitterConfig(adaptive=False, initial_delay_s=0.1))
    trace = run(jb, steady(100, transit=0.010))
    assert 0.110 <= trace.first_frame_time() < 0.130
    assert jb.stats().target_delay_ms == pytest.approx(100.0)
    assert len(trace.frames) == 100


@pytest.mark.parametrize(
    "kwargs",
    [
        {"ptime_s": 0.005},
        {"ptime_s": 0.1},
        {"ptime_s": 0.0201},
        {"min_delay_s": 0.2},
        {"initial_delay_s": 0.5},
        {"jitter_factor": 0.0},
    ],
)
def test_config_rejects_out_of_range_values(kwargs: dict[str, float]) -> None:
    with pytest.raises(JitterConfigError):
        JitterConfig(**kwargs)  # type: ignore[arg-type]


def test_frame_size_follows_ptime() -> None:
    assert JitterConfig(ptime_s=0.030).samples_per_frame == 240
    assert JitterConfig(ptime_s=0.010).ring_size == 256
    assert JitterConfig().ring_size == 128


# ---------------------------------------------------------------- properties


@st.composite
def networks(draw: st.DrawFn) -> tuple[int, int, list[Arrival]]:
    n = draw(st.integers(1, 50))
    seq0 = draw(st.integers(0, 0xFFFF))
    ts0 = draw(st.integers(0, 0xFFFF_FFFF))
    arrivals = []
    for i in range(n):
        copies = draw(st.integers(0, 3))  # 0 = dropped, 2-3 = duplicated
        for _ in range(copies):
            delay = draw(st.floats(0.0, 0.25))
            arrivals.append(Arrival(i * PTIME + delay, pkt(i, seq0=seq0, ts0=ts0, marker=i == 0)))
    if not arrivals:
        arrivals.append(Arrival(0.0, pkt(0, seq0=seq0, ts0=ts0)))
    return seq0, ts0, arrivals


def check_run(
    seq0: int, ts0: int, arrivals: list[Arrival], phase: float, config: JitterConfig
) -> tuple[Trace, JitterBuffer, set[int]]:
    """Replay and return the trace plus the packets that arrived before their slot passed."""
    jb = JitterBuffer(config)
    arrivals = sorted(arrivals, key=lambda a: a.at)
    trace = Trace()
    in_time: set[int] = set()
    passed = -1  # highest index whose slot has been used
    k, tick = 0, phase
    end = arrivals[-1].at + 1.0
    while tick <= end:
        while k < len(arrivals) and arrivals[k].at <= tick:
            i = seq_diff(arrivals[k].packet.sequence_number, seq0)
            if i > passed:
                in_time.add(i)
            jb.push(arrivals[k].packet, arrivals[k].at)
            k += 1
        item = jb.pop(tick)
        trace.ticks.append((tick, item))
        if isinstance(item, Frame):
            passed = seq_diff(item.seq, seq0)
        elif isinstance(item, Gap):
            at = ts_diff(item.timestamp, ts0) // SPF
            passed = at if item.reason is GapReason.LOST else at - 1
        tick += PTIME
    return trace, jb, in_time


def assert_ordered_and_complete(trace: Trace, seq0: int) -> list[int]:
    played = [seq_diff(f.seq, seq0) for f in trace.frames]
    assert played == sorted(set(played)), "a frame repeated or went backwards"
    assert all(
        ts_diff(b.timestamp, a.timestamp) > 0
        for a, b in zip(trace.frames, trace.frames[1:], strict=False)
    )
    started = False
    for _, item in trace.ticks:
        started = started or item is not None
        assert item is not None or not started, "a tick after start returned None"
    return played


@settings(max_examples=300, deadline=None)
@given(networks(), st.floats(0.0, PTIME, exclude_max=True))
def test_property_fixed_delay_plays_every_timely_frame_exactly_once(
    net: tuple[int, int, list[Arrival]], phase: float
) -> None:
    seq0, ts0, arrivals = net
    trace, jb, in_time = check_run(seq0, ts0, arrivals, phase, JitterConfig(adaptive=False))
    played = assert_ordered_and_complete(trace, seq0)
    assert set(played) == in_time
    assert jb.stats().dropped == 0


@settings(max_examples=300, deadline=None)
@given(networks(), st.floats(0.0, PTIME, exclude_max=True))
def test_property_adaptive_plays_timely_frames_at_most_once_and_counts_drops(
    net: tuple[int, int, list[Arrival]], phase: float
) -> None:
    seq0, ts0, arrivals = net
    trace, jb, in_time = check_run(seq0, ts0, arrivals, phase, JitterConfig())
    played = assert_ordered_and_complete(trace, seq0)
    assert set(played) <= in_time
    assert len(in_time) - len(played) == jb.stats().dropped
    # Every packet not played in time was counted as a duplicate or as late.
    stats = jb.stats()
    assert stats.received == len(arrivals)
    assert stats.duplicates + stats.late == len(arrivals) - len(in_time)


@st.composite
def switches(draw: st.DrawFn) -> tuple[str, float, list[Arrival]]:
    """Two streams back to back: an SSRC change, or a sequence jump with or without marker."""
    kind = draw(st.sampled_from(["ssrc", "marker-jump", "jump"]))
    n1, n2 = draw(st.integers(2, 40)), draw(st.integers(2, 40))
    seq_a, ts_a = draw(st.integers(0, 0xFFFF)), draw(st.integers(0, 0xFFFF_FFFF))
    seq_b = (seq_a + n1 + draw(st.integers(300, 65_000))) & 0xFFFF
    ts_b = draw(st.integers(0, 0xFFFF_FFFF))
    pause = draw(st.floats(0.0, 1.0))
    arrivals = []
    for seg, (n, seq0, ts0, t0) in enumerate(
        [(n1, seq_a, ts_a, 0.0), (n2, seq_b, ts_b, n1 * PTIME + pause)], start=1
    ):
        ssrc = 0xB0B if seg == 2 and kind == "ssrc" else 0xA0A
        for i in range(n):
            for _ in range(draw(st.integers(0 if i else 1, 2))):
                packet = RtpPacket(
                    payload_type=0,
                    sequence_number=(seq0 + i) & 0xFFFF,
                    timestamp=(ts0 + SPF * i) & 0xFFFF_FFFF,
                    ssrc=ssrc,
                    payload=bytes([seg, i]),
                    marker=i == 0 and (seg == 1 or kind != "jump"),
                )
                first_ever = seg == 1 and i == 0  # the call's first packet is the old stream's
                delay = 0.0 if first_ever else draw(st.floats(0.0, 0.06))
                arrivals.append(Arrival(t0 + i * PTIME + delay, packet))
    return kind, pause, arrivals


@settings(max_examples=300, deadline=None)
@given(switches())
def test_property_a_new_stream_never_interleaves_with_the_old_or_floods_gaps(
    switch: tuple[str, float, list[Arrival]],
) -> None:
    kind, pause, arrivals = switch
    jb = JitterBuffer()
    trace = run(jb, arrivals, until=max(a.at for a in arrivals) + 1.0)
    segments = [f.payload[0] for f in trace.frames]
    assert segments == sorted(segments), "old and new stream frames interleaved"
    for seg in (1, 2):
        indices = [f.payload[1] for f in trace.frames if f.payload[0] == seg]
        assert indices == sorted(set(indices))
    assert jb.stats().resyncs <= 1
    if kind != "jump":  # the first new packet (kept by the strategy) resyncs at once
        assert jb.stats().resyncs == 1 and 2 in segments
    # The jump itself costs no gaps: LOST gaps only for packets really missing inside a
    # stream (never one per skipped sequence number, of which there are hundreds).
    received = {(a.packet.payload[0], a.packet.payload[1]) for a in arrivals}
    missing = sum(
        max(i for s, i in received if s == seg) + 1 - sum(1 for s, _ in received if s == seg)
        for seg in {s for s, _ in received}
    )
    assert len(trace.gaps(GapReason.LOST)) <= missing
    if kind != "jump":
        # The new stream plays within its own delay budget of its first arrival, after at
        # most the old stream's buffered tail.
        first_arrival = min(a.at for a in arrivals if a.packet.payload[0] == 2)
        first_new = next(t for t, r in trace.ticks if isinstance(r, Frame) and r.payload[0] == 2)
        assert first_new <= first_arrival + 2 * 0.300 + 3 * PTIME
