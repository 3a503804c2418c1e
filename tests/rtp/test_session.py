"""MediaSession: one call's RTP and RTCP on a virtual clock (RFC 3550, RFC 4733, RFC 4961).

No sockets: datagrams go in with their source address and ``now``; packets come out as
bytes. Each test checks what the far end (or the operator reading the counters) would see.
"""

from __future__ import annotations

import random

import pytest

from rtp.dtmf import Digit, DtmfSender
from rtp.jitter import Frame, JitterConfig
from rtp.latching import Address
from rtp.packet import RtpPacket
from rtp.rtcp import (
    Bye,
    ReceiverReport,
    ReportBlock,
    Sdes,
    SdesItemType,
    SenderReport,
    parse_rtcp,
)
from rtp.session import MediaSession, SessionConfig
from rtp.stats import ntp_from_unix, ntp_short

SDP_HOST = "127.0.0.5"
SDP_RTP = Address(SDP_HOST, 30000)
SDP_RTCP = Address(SDP_HOST, 30001)
NAT_PORT = Address(SDP_HOST, 41234)  # where the peer really sends from (SIPp's -mp port)
STRANGER = Address("127.0.0.9", 30000)
OUR_SSRC = 0x11223344
PEER_SSRC = 0xCAFEF00D
PTIME = 0.020
EVENT_PT = 101


def make_config(**overrides: object) -> SessionConfig:
    fields: dict[str, object] = {
        "ssrc": OUR_SSRC,
        "initial_seq": 65530,  # wraps during the tests
        "initial_timestamp": 0xFFFFFF00,
        "cname": "voiceagent-test",
        "remote_rtp": SDP_RTP,
        "remote_rtcp": SDP_RTCP,
        "telephone_event_pt": EVENT_PT,
    }
    fields.update(overrides)
    return SessionConfig(**fields)  # type: ignore[arg-type]  # test-only keyword bag


def make_session(now: float = 0.0, **overrides: object) -> MediaSession:
    return MediaSession(make_config(**overrides), now, rng=random.Random(7))


def audio(seq: int, *, pt: int = 0, ssrc: int = PEER_SSRC, fill: int = 0x7F) -> bytes:
    """The peer's packet ``seq`` (timestamps follow the sequence: 160 per packet)."""
    return bytes(RtpPacket(pt, seq & 0xFFFF, (seq * 160) & 0xFFFFFFFF, ssrc, bytes([fill]) * 160))


def feed(session: MediaSession, seqs: range | list[int], source: Address = NAT_PORT) -> None:
    """Deliver the peer's packets ``seqs``, each at its own 20 ms arrival time."""
    for seq in seqs:
        session.receive_rtp(audio(seq), source, now=seq * PTIME)


# ----------------------------------------------------------------- latching
def test_latches_onto_the_sdp_host_from_any_port_and_answers_there() -> None:
    session = make_session()
    assert session.destination == SDP_RTP  # nothing heard yet: the SDP address
    session.receive_rtp(audio(0), NAT_PORT, now=0.0)
    assert session.counters.received == 1
    assert session.destination == NAT_PORT  # symmetric RTP: answer where it came from
    packet = RtpPacket.parse(session.send_audio(b"\xff" * 160, False, now=0.0))
    assert packet.ssrc == OUR_SSRC


def test_other_hosts_and_other_ports_are_rejected_and_counted() -> None:
    session = make_session()
    session.receive_rtp(audio(0), STRANGER, now=0.0)  # RTP bleed attempt before latching
    assert session.counters.rejected_source == 1
    assert session.destination == SDP_RTP  # a stranger did not capture our audio
    feed(session, range(1, 4))
    session.receive_rtp(audio(4, fill=0x00), Address(SDP_HOST, 50000), now=0.08)
    session.receive_rtp(audio(5, fill=0x00), STRANGER, now=0.1)
    assert session.counters.rejected_source == 3
    assert session.counters.received == 3
    assert session.destination == NAT_PORT
    assert session.jitter.stats().received == 3
    # The injected packets never reach playout.
    payloads = [f.payload for t in range(40) if isinstance(f := session.playout(t * PTIME), Frame)]
    assert payloads == [b"\x7f" * 160] * 3


def test_relatches_after_the_source_falls_silent() -> None:
    session = make_session()
    feed(session, range(3))
    moved = Address(SDP_HOST, 41300)  # a NAT rebinding gave the peer a new port
    session.receive_rtp(audio(3), moved, now=0.06 + 1.0)
    assert session.counters.rejected_source == 1  # 1 s of silence is a jitter burst
    session.receive_rtp(audio(4), moved, now=0.06 + 2.5)
    assert session.destination == moved


def test_an_sdp_naming_a_third_party_gets_nothing_until_the_peer_sends() -> None:
    session = make_session(send_before_latch=False)
    assert session.destination is None and session.rtcp_destination is None
    session.receive_rtp(audio(0), NAT_PORT, now=0.0)
    assert session.destination == NAT_PORT
    assert session.rtcp_destination is None  # RTCP latches on its own socket
    session.receive_rtcp(bytes(ReceiverReport(PEER_SSRC)), SDP_RTCP, now=0.1)
    assert session.rtcp_destination == SDP_RTCP


def test_without_an_sdp_address_nothing_latches() -> None:
    session = make_session(remote_rtp=None, remote_rtcp=None)
    session.receive_rtp(audio(0), NAT_PORT, now=0.0)
    assert session.counters.rejected_source == 1
    assert session.destination is None


# ----------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x80",
        b"\x80\x00\x00\x01\x00\x00\x00\x02\x00\x00",  # shorter than the 12-octet header
        b"\x40" + bytes(171),  # version 1
        b"\x00" + bytes(171),  # version 0 (STUN, ZRTP)
        b"\xa0" + bytes(11) + b"\x00",  # padding bit with a zero padding count
        b"\x81\x00" + bytes(10) + b"\x00\x00",  # one CSRC announced, two octets of it
    ],
)
def test_invalid_datagrams_are_counted_never_raised(data: bytes) -> None:
    session = make_session()
    session.receive_rtp(data, NAT_PORT, now=0.0)
    assert session.counters.invalid == 1
    assert session.counters.received == 0
    assert session.destination == SDP_RTP  # garbage does not latch


def test_malformed_telephone_event_is_counted_invalid_not_raised() -> None:
    session = make_session()
    bad = bytes(RtpPacket(EVENT_PT, 1, 160, PEER_SSRC, b"\x05\x0a\x00"))  # 3-octet event
    session.receive_rtp(bad, NAT_PORT, now=0.0)
    assert session.counters.invalid == 1
    assert session.digits() == []


def test_wrong_payload_types_are_counted_and_never_played() -> None:
    session = make_session()
    feed(session, range(3))
    session.receive_rtp(audio(3, pt=8), NAT_PORT, now=0.06)  # PCMA on a PCMU call
    session.receive_rtp(audio(4, pt=13), NAT_PORT, now=0.08)  # comfort noise
    assert session.counters.wrong_payload == 2
    frames = [f for t in range(40) if isinstance(f := session.playout(t * PTIME), Frame)]
    assert [f.payload_type for f in frames] == [0, 0, 0]


def test_telephone_event_is_wrong_payload_when_not_negotiated() -> None:
    session = make_session(telephone_event_pt=None)
    sender = DtmfSender(ssrc=PEER_SSRC, payload_type=EVENT_PT)
    for packet in sender.packets("5", sequence_number=1, timestamp=160):
        session.receive_rtp(bytes(packet), NAT_PORT, now=0.0)
    assert session.digits() == []
    assert session.counters.wrong_payload == 7  # 4 updates + 3 end copies


# ----------------------------------------------------------------- RFC 4733
def test_telephone_events_become_digits_once_and_bypass_the_jitter_buffer() -> None:
    session = make_session()
    feed(session, range(5))
    sender = DtmfSender(ssrc=PEER_SSRC, payload_type=EVENT_PT)
    seq, now = 5, 0.1
    for digit in "19#":
        packets = sender.packets(digit, sequence_number=seq, timestamp=seq * 160)
        for packet in packets:
            session.receive_rtp(bytes(packet), NAT_PORT, now=now)
            now += PTIME
        seq += len(packets) + 4
    digits = session.digits()
    assert [d.digit for d in digits] == ["1", "9", "#"]  # the three end copies count once
    assert digits[0] == Digit("1", 800, 5 * 160)
    assert session.digits() == []  # drained
    assert session.jitter.stats().received == 5  # events never reach playout
    report = session.report()  # nor the RFC 3550 statistics (the first packet is probation)
    assert (report.packets_received, report.packets_expected) == (4, 4)


def test_audio_after_a_lost_end_packet_finishes_the_digit() -> None:
    session = make_session()
    sender = DtmfSender(ssrc=PEER_SSRC, payload_type=EVENT_PT)
    packets = sender.packets("7", sequence_number=10, timestamp=10 * 160, duration_ts=480)
    for packet in packets[:2]:  # every end packet is lost
        session.receive_rtp(bytes(packet), NAT_PORT, now=0.2)
    assert session.digits() == []
    feed(session, [30])  # 20 frames later: 200 ms past the event's last duration
    assert [d.digit for d in session.digits()] == ["7"]


# ----------------------------------------------------------------- sending
def test_sent_packets_number_and_stamp_continuously_with_marker_on_talkspurts() -> None:
    session = make_session()
    starts = [False, True, False, False, True, False]
    packets = [
        RtpPacket.parse(session.send_audio(bytes([n]) * 160, start, now=n * PTIME))
        for n, start in enumerate(starts)
    ]
    assert [p.sequence_number for p in packets] == [65530, 65531, 65532, 65533, 65534, 65535]
    stamps = [p.timestamp for p in packets]
    assert stamps == [(0xFFFFFF00 + 160 * n) & 0xFFFFFFFF for n in range(6)]  # wraps
    assert [p.marker for p in packets] == starts
    assert {p.payload_type for p in packets} == {0}
    assert session.counters.sent == 6
    assert session.report().packets_sent == 6


# ----------------------------------------------------------------- RTCP
def due_compound(session: MediaSession) -> tuple[float, list[object]]:
    """Advance to the next RTCP deadline and parse what the session sends there."""
    deadline = session.next_rtcp_deadline()
    assert session.rtcp_due(deadline - 0.001) is None
    data = session.rtcp_due(deadline)
    assert data is not None
    return deadline, list(parse_rtcp(data))


def test_rtcp_intervals_are_randomised_around_the_configured_interval() -> None:
    session = make_session(rtcp_interval_s=5.0)
    times = [0.0]
    for _ in range(50):
        times.append(due_compound(session)[0])
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert all(2.5 <= gap <= 7.5 for gap in gaps)  # RFC 3550 §6.3.1: [0.5, 1.5] x interval
    assert max(gaps) - min(gaps) > 2.0  # actually randomised, so calls do not synchronise


def test_receiver_report_with_a_block_for_the_caller_before_we_send() -> None:
    session = make_session()
    lost = {7, 8, 20}
    feed(session, [s for s in range(40) if s not in lost])
    _, packets = due_compound(session)
    rr, sdes = packets
    assert isinstance(rr, ReceiverReport) and rr.ssrc == OUR_SSRC
    (block,) = rr.reports
    assert block.ssrc == PEER_SSRC
    assert block.highest_seq == 39
    assert block.cumulative_lost == 3
    # RFC 3550 A.1: the first packet is the source's probation; counting starts after it.
    assert block.fraction_lost == (3 << 8) // 39
    assert block.lsr == 0 and block.dlsr == 0  # no SR heard yet
    assert isinstance(sdes, Sdes)
    cname = sdes.chunks[0].get(SdesItemType.CNAME)
    assert sdes.chunks[0].ssrc == OUR_SSRC and cname is not None
    assert cname.text == "voiceagent-test"
    report = session.report()
    assert (report.packets_received, report.packets_expected, report.received_lost) == (36, 39, 3)
    # The next interval had no loss: the fraction is per interval, the total cumulative.
    feed(session, range(40, 60))
    _, (rr2, _) = due_compound(session)
    assert isinstance(rr2, ReceiverReport)
    assert (rr2.reports[0].fraction_lost, rr2.reports[0].cumulative_lost) == (0, 3)


def test_no_report_block_until_the_caller_is_a_valid_source() -> None:
    session = make_session()
    _, (rr, _) = due_compound(session)
    assert isinstance(rr, ReceiverReport) and rr.reports == ()  # "I am here"


def test_sender_report_once_we_send_carries_counts_and_the_block() -> None:
    session = make_session(wall_offset_s=1_700_000_000.0)
    feed(session, range(10))
    for n in range(25):
        session.send_audio(b"\xff" * 160, n == 0, now=n * PTIME)
    deadline, packets = due_compound(session)
    sr = packets[0]
    assert isinstance(sr, SenderReport) and sr.ssrc == OUR_SSRC
    assert (sr.packet_count, sr.octet_count) == (25, 25 * 160)
    # The RTP timestamp names the same instant as the NTP one (RFC 3550 §6.4.1).
    last_ts = (0xFFFFFF00 + 24 * 160) & 0xFFFFFFFF
    elapsed = round((deadline - 24 * PTIME) * 8000)
    assert sr.rtp_timestamp == (last_ts + elapsed) & 0xFFFFFFFF
    assert sr.ntp_timestamp == ntp_from_unix(deadline + 1_700_000_000.0)
    assert [b.ssrc for b in sr.reports] == [PEER_SSRC]
    assert isinstance(packets[1], Sdes)


def test_lsr_and_dlsr_echo_the_callers_sender_report() -> None:
    session = make_session()
    feed(session, range(10))
    ntp = ntp_from_unix(1_700_000_123.25)
    sr = SenderReport(PEER_SSRC, ntp, 1600, 10, 1600)
    session.receive_rtcp(bytes(sr), SDP_RTCP, now=0.5)
    deadline, (rr, _) = due_compound(session)
    assert isinstance(rr, ReceiverReport)
    block = rr.reports[0]
    assert block.lsr == ntp_short(ntp)
    assert block.dlsr == round((deadline - 0.5) * 65536)


def test_close_sends_the_final_report_with_bye() -> None:
    session = make_session()
    feed(session, range(5))
    session.send_audio(b"\xff" * 160, True, now=0.1)
    packets = parse_rtcp(session.close(now=0.2))
    assert [type(p) for p in packets] == [SenderReport, Sdes, Bye]
    bye = packets[-1]
    assert isinstance(bye, Bye) and bye.sources == (OUR_SSRC,)
    assert session.rtcp_destination == SDP_RTCP  # no RTCP heard: SDP RTP port + 1


def test_remote_report_blocks_about_our_stream_show_in_report() -> None:
    session = make_session()
    assert session.report().remote_fraction_lost is None  # nothing reported yet
    theirs = Address(SDP_HOST, 41235)
    other = ReportBlock(0x99999999, fraction_lost=255, cumulative_lost=1000, jitter=8000)
    ours = ReportBlock(OUR_SSRC, fraction_lost=64, cumulative_lost=12, highest_seq=500, jitter=80)
    rr = ReceiverReport(PEER_SSRC, (other, ours))
    session.receive_rtcp(bytes(rr) + bytes(Sdes.with_cname(PEER_SSRC, "peer")), theirs, now=1.0)
    report = session.report()
    assert report.remote_fraction_lost == 0.25
    assert report.remote_cumulative_lost == 12
    assert report.remote_jitter_ms == 10.0  # 80 units at 8 kHz
    assert session.counters.rtcp_received == 1
    assert session.rtcp_destination == theirs  # RTCP latches like RTP
    # A later SR from the peer updates the figures.
    sr = SenderReport(PEER_SSRC, 1, 2, reports=(ReportBlock(OUR_SSRC, 0, 13, 600, 16),))
    session.receive_rtcp(bytes(sr), theirs, now=6.0)
    assert (session.report().remote_fraction_lost, session.report().remote_jitter_ms) == (0.0, 2.0)


def test_rtcp_from_strangers_and_garbage_is_counted() -> None:
    session = make_session()
    rr = bytes(ReceiverReport(PEER_SSRC, (ReportBlock(OUR_SSRC, 128),)))
    session.receive_rtcp(rr, STRANGER, now=0.0)
    assert session.counters.rejected_source == 1
    assert session.report().remote_fraction_lost is None
    session.receive_rtcp(b"\x80\xc9\x00", SDP_RTCP, now=0.1)  # not even a header
    assert session.counters.rtcp_invalid == 1
    assert session.rtcp_destination == SDP_RTCP  # garbage does not latch either
    # A good packet followed by stray octets: the packet counts, the tail is noted.
    session.receive_rtcp(rr + b"\x00\x00", SDP_RTCP, now=0.2)
    assert session.counters.rtcp_received == 1
    assert session.counters.rtcp_invalid == 2
    assert session.report().remote_fraction_lost == 0.5


def test_jitter_of_the_callers_stream_is_reported_in_ms() -> None:
    session = make_session(jitter=JitterConfig())
    rng = random.Random(3)
    for seq in range(500):  # arrivals spread uniformly over 0-10 ms
        session.receive_rtp(audio(seq), NAT_PORT, now=seq * PTIME + rng.uniform(0, 0.010))
    jitter_ms = session.report().received_jitter_ms
    assert 2.0 < jitter_ms < 5.0  # RFC 3550 A.8 of a 10 ms uniform spread is about 3.3 ms
