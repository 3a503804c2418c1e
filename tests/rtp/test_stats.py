"""RFC 3550 A.1 sequence validation, A.3 loss, A.8 jitter, LSR/DLSR and RTT, on a virtual clock."""

from __future__ import annotations

import random
from collections.abc import Iterable

import pytest

from rtp.errors import RtpError
from rtp.packet import ReceiverReport, ReportBlock, RtpPacket, SenderReport
from rtp.seq import seq_add, ts_add
from rtp.stats import (
    NTP_UNIX_OFFSET_S,
    PacketStatus,
    ReceiverStats,
    SenderStats,
    SequenceRules,
    ntp_from_unix,
    ntp_short,
    ntp_to_unix,
    round_trip_time_s,
)

SSRC = 0x5711BF84
PTIME_TS = 160  # 20 ms at 8 kHz


def packet(seq: int, *, ssrc: int = SSRC, timestamp: int | None = None) -> RtpPacket:
    ts = seq * PTIME_TS if timestamp is None else timestamp
    return RtpPacket(0, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc, b"\xff" * 160)


def feed(stats: ReceiverStats, seqs: Iterable[int], **kwargs: int) -> list[PacketStatus]:
    """Deliver packets with these (extended) sequence numbers, each arriving exactly on time."""
    return [stats.on_packet(packet(s, **kwargs), arrival_ts=s * PTIME_TS) for s in seqs]


def test_nothing_to_report_before_a_source_passes_probation() -> None:
    stats = ReceiverStats()
    assert stats.snapshot() is None
    assert stats.report(now=0.0) is None
    assert feed(stats, [1000]) == [PacketStatus.PROBATION]
    assert stats.ssrc == SSRC
    assert stats.report(now=0.0) is None
    assert feed(stats, [1001]) == [PacketStatus.ACCEPTED]
    assert stats.report(now=0.0) == ReportBlock(ssrc=SSRC, highest_seq=1001)


def test_sequence_rules_are_checked() -> None:
    with pytest.raises(RtpError, match="^min_sequential must be at least 1$"):
        SequenceRules(min_sequential=0)
    with pytest.raises(RtpError, match="^max_dropout and max_misorder must split"):
        SequenceRules(max_dropout=65_500)


def test_a_clean_stream_reports_no_loss_and_no_jitter() -> None:
    stats = ReceiverStats()
    statuses = feed(stats, range(1000, 1100))
    assert statuses[0] is PacketStatus.PROBATION  # A.1: the first packet is not counted
    assert set(statuses[1:]) == {PacketStatus.ACCEPTED}
    snapshot = stats.snapshot()
    assert snapshot is not None
    assert (snapshot.received, snapshot.expected, snapshot.cumulative_lost) == (99, 99, 0)
    assert snapshot.extended_highest_seq == 1099
    assert snapshot.jitter == 0.0
    assert stats.report(now=2.0) == ReportBlock(ssrc=SSRC, highest_seq=1099)


def test_probation_restarts_on_a_gap_and_passes_across_the_wrap() -> None:
    stats = ReceiverStats(SequenceRules(min_sequential=3))
    assert feed(stats, [10, 12]) == [PacketStatus.PROBATION] * 2  # 12 is not 11: start again
    # The C in RFC 3550 compares seq with max_seq + 1 without wrapping; here 65535 -> 0 passes.
    assert feed(stats, [65534, 65535, 65536]) == [PacketStatus.PROBATION] * 2 + [
        PacketStatus.ACCEPTED
    ]
    snapshot = stats.snapshot()
    assert snapshot is not None and snapshot.extended_highest_seq == 0


def test_loss_fraction_is_exact_and_per_interval() -> None:
    stats = ReceiverStats()
    feed(stats, [99])
    # 200 packets expected (100..299); every 10th of them is dropped: 20 lost.
    feed(stats, [s for s in range(100, 300) if s % 10 != 5])
    first = stats.report(now=5.0)
    assert first is not None
    assert first.cumulative_lost == 20
    assert first.fraction_lost == (20 << 8) // 200 == 25  # 20/200 = 0.1 -> 25/256
    # The next interval loses nothing: the fraction is back to 0, the total stays.
    feed(stats, range(300, 400))
    second = stats.report(now=10.0)
    assert second is not None
    assert (second.fraction_lost, second.cumulative_lost, second.highest_seq) == (0, 20, 399)
    # Half of the third interval is lost.
    feed(stats, range(400, 500, 2))
    third = stats.report(now=15.0)
    assert third is not None
    # 99 expected (399 -> 498), 50 received: 49 lost.
    assert (third.fraction_lost, third.cumulative_lost) == ((49 << 8) // 99, 69)


def test_snapshot_and_properties_do_not_move_the_interval() -> None:
    stats = ReceiverStats()
    feed(stats, [s for s in range(0, 100) if s != 50])
    assert stats.snapshot() == stats.snapshot()
    _ = stats.ssrc
    first = stats.report(now=1.0)
    assert first is not None and first.fraction_lost == (1 << 8) // 99
    again = stats.report(now=1.0)
    assert again is not None and again.fraction_lost == 0 and again.cumulative_lost == 1


def test_reordering_is_not_loss() -> None:
    stats = ReceiverStats()
    order = [0, 1, 2, 4, 3, 5, 8, 6, 7, 9, 10]
    statuses = feed(stats, order)
    assert statuses.count(PacketStatus.LATE) == 3  # 3, 6 and 7 arrive after a higher one
    block = stats.report(now=1.0)
    assert block is not None
    assert (block.cumulative_lost, block.fraction_lost, block.highest_seq) == (0, 0, 10)


def test_sequence_wrap_counts_a_cycle() -> None:
    stats = ReceiverStats()
    statuses = feed(stats, range(65500, 65600))
    assert PacketStatus.JUMP not in statuses
    block = stats.report(now=1.0)
    assert block is not None
    assert block.highest_seq == (1 << 16) | (65599 - 65536)
    assert block.cumulative_lost == 0
    # Losing the packet that carries seq 0 is a loss like any other.
    stats = ReceiverStats()
    feed(stats, [s for s in range(65500, 65600) if s != 65536])
    block = stats.report(now=1.0)
    assert block is not None and block.cumulative_lost == 1


def test_duplicates_count_as_received_so_loss_goes_negative() -> None:
    # RFC 3550 §6.4.1: "the number of packets lost ... will be negative if there are duplicates".
    stats = ReceiverStats()
    feed(stats, range(0, 50))
    statuses = feed(stats, [s for s in range(50, 60) for _ in (1, 2)])
    assert statuses.count(PacketStatus.LATE) == 10
    block = stats.report(now=1.0)
    assert block is not None
    assert (block.cumulative_lost, block.fraction_lost) == (-10, 0)
    assert ReceiverReport.parse(bytes(ReceiverReport(1, (block,)))).reports == (block,)


def test_misorder_and_dropout_limits() -> None:
    stats = ReceiverStats()
    feed(stats, range(0, 1000))
    assert feed(stats, [999 - 99]) == [PacketStatus.LATE]  # within MAX_MISORDER of 999
    assert feed(stats, [999 - 100]) == [PacketStatus.JUMP]  # a jump backwards
    assert feed(stats, [999 + 2999]) == [PacketStatus.ACCEPTED]  # a gap under MAX_DROPOUT
    assert feed(stats, [3998 + 3000]) == [PacketStatus.JUMP]


def test_a_lone_wild_packet_is_ignored() -> None:
    stats = ReceiverStats()
    feed(stats, range(0, 100))
    assert feed(stats, [30000]) == [PacketStatus.JUMP]
    assert set(feed(stats, range(100, 200))) == {PacketStatus.ACCEPTED}
    block = stats.report(now=1.0)
    assert block is not None
    assert (block.highest_seq, block.cumulative_lost) == (199, 0)


def test_a_sequence_restart_seen_twice_resyncs() -> None:
    stats = ReceiverStats()
    feed(stats, range(0, 100))
    # The sender restarts at 40000 (timestamps jump too): the first packet is held back...
    assert feed(stats, [40000]) == [PacketStatus.JUMP]
    # ... the next one confirms the restart, and counting starts again from it.
    assert feed(stats, [40001]) == [PacketStatus.RESTARTED]
    assert set(feed(stats, range(40002, 40050))) == {PacketStatus.ACCEPTED}
    snapshot = stats.snapshot()
    assert snapshot is not None
    assert (snapshot.received, snapshot.expected, snapshot.cumulative_lost) == (49, 49, 0)
    assert (snapshot.extended_highest_seq, snapshot.restarts) == (40049, 1)
    assert snapshot.jitter == 0.0  # the timestamp jump does not show up as jitter


def test_a_new_ssrc_is_a_new_source_with_probation() -> None:
    stats = ReceiverStats()
    feed(stats, range(0, 100))
    stats.on_sender_report(SenderReport(SSRC, ntp_timestamp=1 << 40, rtp_timestamp=0), now=1.0)
    # A lone stray packet of another source is held on probation and changes nothing.
    assert feed(stats, [5000], ssrc=0xABCD) == [PacketStatus.PROBATION]
    assert feed(stats, [100]) == [PacketStatus.ACCEPTED]
    block = stats.report(now=1.5)
    assert block is not None and (block.ssrc, block.highest_seq, block.lsr) == (SSRC, 100, 1 << 24)
    # A new source that keeps sending in sequence takes over, with fresh counts.
    assert (
        feed(stats, [7, 8, 9], ssrc=0xABCD)
        == [PacketStatus.PROBATION] + [PacketStatus.ACCEPTED] * 2
    )
    block = stats.report(now=2.0)
    assert block == ReportBlock(ssrc=0xABCD, highest_seq=9)  # no LSR from the old source


def test_jitter_converges_to_a_steady_transit_swing() -> None:
    # Transit alternates +-20 ms (+-160 units): |D| is 320 on every packet, so J -> 320.
    stats = ReceiverStats()
    for seq in range(400):
        swing = 160 if seq % 2 else -160
        stats.on_packet(packet(seq), arrival_ts=seq * PTIME_TS + 1000 + swing)
    block = stats.report(now=1.0)
    assert block is not None and block.jitter == 320


def test_jitter_of_uniform_transit_noise_matches_theory() -> None:
    # Transit = base + U, U uniform in [-a, a]: |D| = |U_i - U_{i-1}| has mean 2a/3 (the
    # difference of two uniforms is triangular), so the estimate hovers around 2a/3.
    a = 160  # +-20 ms at 8 kHz
    rng = random.Random(4733)
    stats = ReceiverStats()
    samples = []
    for seq in range(6000):
        stats.on_packet(packet(seq), arrival_ts=seq * PTIME_TS + 800 + rng.randint(-a, a))
        snapshot = stats.snapshot()
        if seq >= 500 and snapshot is not None:
            samples.append(snapshot.jitter)
    mean = sum(samples) / len(samples)
    assert mean == pytest.approx(2 * a / 3, rel=0.03)
    assert 0 < min(samples) and max(samples) < 2 * a


def test_jitter_ignores_a_timestamp_wrap() -> None:
    stats = ReceiverStats()
    start = 0xFFFFFFFF - 10 * PTIME_TS
    for i in range(40):
        timestamp = ts_add(start, i * PTIME_TS)
        stats.on_packet(packet(i, timestamp=timestamp), arrival_ts=5_000_000 + i * PTIME_TS)
    snapshot = stats.snapshot()
    assert snapshot is not None and snapshot.jitter == 0.0


def test_lsr_and_dlsr_echo_the_last_sender_report() -> None:
    stats = ReceiverStats()
    feed(stats, range(10))
    sr_ntp = ntp_from_unix(1_700_000_000.25)
    stats.on_sender_report(SenderReport(SSRC, ntp_timestamp=sr_ntp, rtp_timestamp=0), now=100.0)
    stats.on_sender_report(SenderReport(0x999, ntp_timestamp=1 << 40, rtp_timestamp=0), now=100.5)
    block = stats.report(now=101.5)
    assert block is not None
    assert block.lsr == ntp_short(sr_ntp) == (sr_ntp >> 16) & 0xFFFFFFFF
    assert block.dlsr == 98304  # 1.5 s in 1/65536 s


def test_rfc_3550_round_trip_example() -> None:
    # RFC 3550 §6.4.1, Figure 2: A = 0xb710:8000, LSR = 0xb705:2030, DLSR = 0x0005:4000.
    block = ReportBlock(ssrc=1, lsr=0xB7052030, dlsr=0x00054000)
    arrival_ntp = 0xB7108000 << 16
    # The RFC rounds 0x2030 to .125 s in its decimal gloss; the exact value is .12573 s.
    assert round_trip_time_s(block, arrival_ntp) == (0xB7108000 - 0xB7052030 - 0x54000) / 65536
    assert round_trip_time_s(block, arrival_ntp) == pytest.approx(6.125, abs=1e-3)
    assert round_trip_time_s(ReportBlock(ssrc=1), arrival_ntp) is None  # no SR seen yet
    early = ReportBlock(ssrc=1, lsr=0xB7108000, dlsr=1)
    assert round_trip_time_s(early, arrival_ntp) == 0.0


def test_ntp_conversions() -> None:
    assert ntp_from_unix(0.0) == NTP_UNIX_OFFSET_S << 32
    assert ntp_from_unix(0.5) == (NTP_UNIX_OFFSET_S << 32) | 0x80000000
    now = 1_700_000_000.123456
    assert ntp_to_unix(ntp_from_unix(now)) == pytest.approx(now, abs=1e-6)
    # After 2036-02-07 the seconds field wraps; the top bit tells the eras apart.
    after_wrap = (1 << 32) - NTP_UNIX_OFFSET_S + 10.0
    assert ntp_from_unix(after_wrap) >> 32 == 10
    assert ntp_to_unix(ntp_from_unix(after_wrap)) == pytest.approx(after_wrap)
    assert ntp_short(0x0123456789ABCDEF) == 0x456789AB


def test_sender_stats_count_payload_octets_and_extrapolate_the_rtp_timestamp() -> None:
    sender = SenderStats(clock_rate_hz=8000)
    with pytest.raises(RtpError, match="send a receiver report instead"):
        sender.sender_report(now=0.0, ntp_timestamp=0)
    for i in range(50):
        sender.on_packet_sent(packet(i), now=i * 0.02)
    assert (sender.packet_count, sender.octet_count) == (50, 50 * 160)
    ntp = ntp_from_unix(1_700_000_000.0)
    sr = sender.sender_report(now=49 * 0.02 + 0.015, ntp_timestamp=ntp)
    assert sr == SenderReport(
        ssrc=SSRC,
        ntp_timestamp=ntp,
        rtp_timestamp=49 * PTIME_TS + 120,  # 15 ms after the last packet's timestamp
        packet_count=50,
        octet_count=8000,
    )


def test_sender_and_receiver_pair_over_a_lossy_reordering_link() -> None:
    """Tier 2: a sender, a link that drops 1 in 25 and swaps neighbours, a receiver, RTCP back."""
    sender, receiver = SenderStats(8000), ReceiverStats()
    rng = random.Random(3550)
    sent = []
    seq, ts = 65000, 0xFFFFF000  # both wrap during the call
    for i in range(1500):
        out = RtpPacket(0, seq, ts, SSRC, b"\xd5" * 160)
        sender.on_packet_sent(out, now=i * 0.02)
        sent.append((i * 0.02, out))
        seq, ts = seq_add(seq, 1), ts_add(ts, PTIME_TS)
    # Drop about 4 %, but neither the first packets (probation) nor the last (the highest).
    delivered = [
        (t + 0.040, p)
        for i, (t, p) in enumerate(sent)
        if not (10 <= i < 1490) or rng.random() >= 0.04
    ]
    lost = len(sent) - len(delivered)
    assert 30 < lost < 90
    for k in range(7, len(delivered) - 1, 7):  # every 7th packet overtakes its predecessor
        delivered[k], delivered[k + 1] = delivered[k + 1], delivered[k]
    statuses = [
        receiver.on_packet(rtp, arrival_ts=round(arrival_s * 8000)) for arrival_s, rtp in delivered
    ]
    assert statuses.count(PacketStatus.LATE) == len(range(7, len(delivered) - 1, 7))

    # The SR goes out at t=30 s and arrives 40 ms later; the RR leaves 0.5 s after that.
    sr = sender.sender_report(now=30.0, ntp_timestamp=ntp_from_unix(1_700_000_030.0))
    receiver.on_sender_report(SenderReport.parse(bytes(sr)), now=30.04)
    block = receiver.report(now=30.54)
    assert block is not None
    expected = 1499  # counting starts at the second packet, which ends probation
    assert block.cumulative_lost == lost
    assert block.fraction_lost == (lost << 8) // expected
    assert block.highest_seq == (1 << 16) | seq_add(65000, 1499)
    rr = ReceiverReport.parse(bytes(ReceiverReport(0x1234, (block,))))
    rtt = round_trip_time_s(rr.reports[0], arrival_ntp=ntp_from_unix(1_700_000_030.58))
    assert rtt == pytest.approx(0.080, abs=1 / 65536)
