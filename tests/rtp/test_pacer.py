"""Send pacing and stream numbering, on a virtual clock; and a sender-to-receiver pair."""

from __future__ import annotations

import random

import pytest

from rtp.dtmf import DtmfDetector, DtmfEvent
from rtp.errors import RtpError
from rtp.jitter import Frame, JitterBuffer, JitterConfig
from rtp.pacer import PacedSender, RtpStreamWriter
from rtp.packet import RtpPacket
from rtp.seq import seq_diff, ts_diff

PTIME = 0.020


# ------------------------------------------------------------------ PacedSender


def test_frame_n_is_due_at_start_plus_n_ptime() -> None:
    pacer = PacedSender(PTIME, start=100.0)
    assert pacer.next_deadline() == 100.0
    assert pacer.due(99.999) == 0
    assert pacer.due(100.0) == 1
    assert pacer.next_deadline() == pytest.approx(100.02)
    assert pacer.due(100.019) == 0
    assert pacer.due(100.020) == 1
    assert pacer.due(100.045) == 1  # frame 2 (due 100.04), 5 ms late
    assert pacer.next_deadline() == pytest.approx(100.06)  # not 100.065: no drift
    assert pacer.sent == 3 and pacer.skipped == 0


def test_late_timers_do_not_accumulate_over_ten_minutes() -> None:
    # The shell's timer fires 0-5 ms late, every time (a loaded event loop).
    rng = random.Random(3)
    start = 5_000.25
    pacer = PacedSender(PTIME, start=start)
    sent_at: list[float] = []
    now = start
    while now < start + 600.0:
        sent_at += [now] * pacer.due(now)
        now = pacer.next_deadline() + rng.uniform(0.0, 0.005)
    assert len(sent_at) == 30_000 and pacer.skipped == 0
    lateness = [t - (start + n * PTIME) for n, t in enumerate(sent_at)]
    assert 0.0 <= min(lateness) and max(lateness) <= 0.005 + 1e-9  # frame 29 999 too


def test_exact_deadlines_never_miss_or_double_a_frame() -> None:
    pacer = PacedSender(0.030, start=1_234_567.891)  # large clock, non-binary ptime
    for _ in range(50_000):
        assert pacer.due(pacer.next_deadline()) == 1
    assert pacer.sent == 50_000


def test_a_stall_sends_a_bounded_burst_and_skips_the_rest() -> None:
    pacer = PacedSender(PTIME, start=0.0, max_burst=3)
    assert pacer.due(0.0) == 1
    assert pacer.due(0.200) == 3  # frames 1-10 due after a 200 ms stall: send 3
    assert pacer.skipped == 7
    assert pacer.next_deadline() == pytest.approx(0.220)  # back on the original grid
    assert pacer.due(0.220) == 1
    assert (pacer.sent, pacer.skipped) == (5, 7)


def test_burst_size_is_configurable() -> None:
    pacer = PacedSender(PTIME, start=0.0, max_burst=1)
    assert pacer.due(1.0) == 1 and pacer.skipped == 50


@pytest.mark.parametrize(("ptime", "burst"), [(0.0, 3), (0.02, 0)])
def test_pacer_rejects_nonsense(ptime: float, burst: int) -> None:
    with pytest.raises(RtpError):
        PacedSender(ptime, start=0.0, max_burst=burst)


# -------------------------------------------------------------- RtpStreamWriter


def writer(seq: int = 65_534, ts: int = 0xFFFF_FFFF - 319) -> RtpStreamWriter:
    return RtpStreamWriter(ssrc=0xCAFE_F00D, initial_seq=seq, initial_timestamp=ts)


def test_numbers_run_on_across_prompts_and_silence() -> None:
    w = writer()
    first = [RtpPacket.parse(w.packet(bytes([i]) * 160, 0, i == 0)) for i in range(3)]
    w.skip(5)  # 100 ms of silence: nothing sent
    second = [RtpPacket.parse(w.packet(b"\xd5" * 160, 8, i == 0)) for i in range(2)]
    packets = first + second
    assert [p.sequence_number for p in packets] == [65_534, 65_535, 0, 1, 2]  # wraps
    assert [ts_diff(p.timestamp, 0xFFFF_FFFF - 319) for p in packets] == [
        0,
        160,
        320,
        (3 + 5) * 160,  # the silence shows as a timestamp gap, not a sequence gap
        (4 + 5) * 160,
    ]
    assert [p.marker for p in packets] == [True, False, False, True, False]
    assert {p.ssrc for p in packets} == {0xCAFE_F00D}
    assert [p.payload_type for p in packets] == [0, 0, 0, 8, 8]
    assert packets[0].payload == bytes([0]) * 160


def test_telephone_event_packets_share_the_event_start_timestamp() -> None:
    w = writer(seq=100, ts=8_000)
    audio = [RtpPacket.parse(w.packet(b"\xff" * 160, 0, i == 0)) for i in range(2)]
    event_ts = w.timestamp
    sent: list[RtpPacket] = []
    for tick, duration in enumerate((160, 320, 480, 640)):
        end = duration == 640
        copies = 3 if end else 1  # RFC 4733 §2.5.1.4: the end packet goes three times
        for _ in range(copies):
            payload = bytes(DtmfEvent(5, end=end, duration=duration))
            sent.append(RtpPacket.parse(w.telephone_event(payload, 101, event_start=tick == 0)))
        w.skip(1)  # the event takes this tick's place in the audio
    after = RtpPacket.parse(w.packet(b"\xff" * 160, 0, True))
    assert {p.timestamp for p in sent} == {event_ts}
    assert [p.marker for p in sent] == [True] + [False] * 5
    assert [seq_diff(p.sequence_number, 100) for p in audio + sent + [after]] == list(range(9))
    assert ts_diff(after.timestamp, event_ts) == 4 * 160  # audio resumes on time
    detector = DtmfDetector(101)
    digits = [d for p in sent if (d := detector.push(p)) is not None]
    assert [(d.digit, d.duration) for d in digits] == [("5", 640)]


def test_event_continuation_without_a_start_is_refused() -> None:
    with pytest.raises(RtpError):
        writer().telephone_event(bytes(DtmfEvent(1)), 101, event_start=False)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"ssrc": 1 << 32, "initial_seq": 0, "initial_timestamp": 0},
        {"ssrc": 1, "initial_seq": 1 << 16, "initial_timestamp": 0},
        {"ssrc": 1, "initial_seq": 0, "initial_timestamp": 1 << 32},
        {"ssrc": 1, "initial_seq": 0, "initial_timestamp": 0, "samples_per_frame": 0},
    ],
)
def test_writer_rejects_out_of_range_identity(kwargs: dict[str, int]) -> None:
    with pytest.raises(RtpError):
        RtpStreamWriter(**kwargs)


# ------------------------------------------------------- sender-to-receiver pair


def label(prompt: str, k: int) -> bytes:
    return prompt.encode() + bytes([k]) + b"\xff" * 158


def test_prompts_silence_and_a_stall_arrive_in_order_and_on_time() -> None:
    """A paced writer feeds a jitter buffer over a 30 ms path: prompt A (ticks 0-49), 1 s
    of silence with nothing sent, prompt B from tick 100, and at tick 150 the sending
    process stalls for 200 ms. The receiver hears every prompt frame once, in order."""
    start = 10.0
    pacer = PacedSender(PTIME, start=start, max_burst=3)
    w = RtpStreamWriter(ssrc=77, initial_seq=65_500, initial_timestamp=4_294_000_000)
    prompt_b = [label("B", k) for k in range(100)]
    wire: list[tuple[float, bytes]] = []
    now = start
    while now < start + 4.5:
        before = pacer.skipped
        count = pacer.due(now)
        w.skip(pacer.skipped - before)  # stalled ticks keep their time, not their audio
        first = pacer.sent + pacer.skipped - count
        for n in range(first, first + count):
            if n < 50:
                wire.append((now, w.packet(label("A", n), 0, talkspurt_start=n == 0)))
            elif n >= 100 and prompt_b:
                starts = len(prompt_b) == 100
                wire.append((now, w.packet(prompt_b.pop(0), 0, talkspurt_start=starts)))
            else:
                w.skip(1)  # silence: no packet, but the clock runs on
        now = pacer.next_deadline()
        if start + 150 * PTIME <= now < start + 150 * PTIME + 0.2:
            now = start + 150 * PTIME + 0.205  # the process froze; the timer fires late
    assert pacer.skipped == 8  # ticks 150-160 were due at once: 3 sent, 8 skipped

    jb = JitterBuffer(JitterConfig(adaptive=False))
    heard: list[Frame | None] = []  # None for a gap
    arrivals = [(sent_at + 0.030, RtpPacket.parse(data)) for sent_at, data in wire]
    tick = start + 0.0113
    while tick < start + 5.5:
        while arrivals and arrivals[0][0] <= tick:
            jb.push(arrivals[0][1], arrivals[0][0])
            arrivals.pop(0)
        item = jb.pop(tick)
        if item is not None:
            heard.append(item if isinstance(item, Frame) else None)
        tick += PTIME
    frames = [f for f in heard if f is not None]
    assert [f.payload for f in frames] == [label("A", k) for k in range(50)] + [
        label("B", k) for k in range(100)
    ]
    assert all(seq_diff(b.seq, a.seq) == 1 for a, b in zip(frames, frames[1:], strict=False))
    assert jb.stats().lost == 0 and jb.stats().late == 0

    def gaps_between(a: bytes, b: bytes) -> int:
        positions = [k for k, f in enumerate(heard) if f is not None and f.payload in (a, b)]
        return positions[1] - positions[0] - 1

    assert gaps_between(label("A", 49), label("B", 0)) == 50  # the second of silence
    # The 8 skipped ticks are heard as 8 gaps; the 3-frame burst then plays on time.
    assert gaps_between(label("B", 49), label("B", 50)) == 8
