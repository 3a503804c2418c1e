"""RFC 4733 DTMF: a real capture, redundant and lost packets, the sender, and a lossy link."""

from __future__ import annotations

import csv

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtp.dtmf import (
    DTMF_DIGITS,
    FLASH_EVENT,
    Digit,
    DtmfDetector,
    DtmfEvent,
    DtmfSender,
    event_code,
)
from rtp.errors import RtpError, RtpParseError
from rtp.packet import RtpPacket
from rtp.seq import seq_add, ts_add
from tests.conformance import conformance_path

EVENT_PT = 96  # the capture's a=rtpmap:96 telephone-event/8000
SSRC = 0x5711BF84


def capture() -> list[dict[str, str]]:
    path = conformance_path("vectors", "rfc4733", "dtmf_events_from_SIP_DTMF2.tsv")
    return list(csv.DictReader(path.read_text().splitlines(), delimiter="\t"))


def capture_packets() -> list[RtpPacket]:
    return [RtpPacket.parse(bytes.fromhex(row["rtp_packet_hex"])) for row in capture()]


def detect(detector: DtmfDetector, packets: list[RtpPacket]) -> list[Digit]:
    found = [digit for p in packets if (digit := detector.push(p)) is not None]
    return found + detector.flush()


def audio(timestamp: int, seq: int = 0) -> RtpPacket:
    return RtpPacket(8, seq, timestamp, SSRC, b"\xd5" * 240)


def test_event_code_table_matches_rfc_4733() -> None:
    path = conformance_path("vectors", "rfc4733", "dtmf_event_codes.tsv")
    rows = list(csv.DictReader(path.read_text().splitlines(), delimiter="\t"))
    assert len(rows) == 17
    for row in rows:
        code = int(row["event_code"])
        if code == FLASH_EVENT:
            assert row["name"] == "Flash" and DtmfEvent(code).digit is None
        else:
            assert row["name"] == f"DTMF {DTMF_DIGITS[code]}"
            assert event_code(DTMF_DIGITS[code]) == code
            assert DtmfEvent(code).digit == DTMF_DIGITS[code]


def test_capture_payloads_decode_as_listed_and_round_trip() -> None:
    rows = capture()
    assert len(rows) == 35
    for row in rows:
        packet = RtpPacket.parse(bytes.fromhex(row["rtp_packet_hex"]))
        event = DtmfEvent.parse(packet.payload)
        assert event == DtmfEvent(
            event=int(row["event"]),
            end=row["end_bit"] == "1",
            volume=int(row["volume"]),
            duration=int(row["duration"]),
            reserved=row["reserved_bit"] == "1",
        )
        assert event.digit == row["event_char"]
        assert bytes(event) == packet.payload


def test_capture_yields_each_digit_exactly_once() -> None:
    digits = detect(DtmfDetector(EVENT_PT), capture_packets())
    assert "".join(d.digit for d in digits) == "6789123"
    assert {d.duration for d in digits} == {960}  # 120 ms each
    starts = [int(r["rtp_timestamp"]) for r in capture() if r["rtp_marker"] == "1"]
    assert [d.timestamp for d in digits] == starts


def test_capture_digits_come_out_at_their_end_packet() -> None:
    detector = DtmfDetector(EVENT_PT)
    for row, packet in zip(capture(), capture_packets(), strict=True):
        digit = detector.push(packet)
        assert (digit is not None) == (row["end_bit"] == "1")
    assert detector.flush() == []


def test_redundant_end_packets_and_duplicates_are_reported_once() -> None:
    packets = capture_packets()
    tripled_ends = []
    for p in packets:
        tripled_ends += [p] * (3 if DtmfEvent.parse(p.payload).end else 1)
    duplicated = [p for p in tripled_ends for _ in (1, 2)]
    assert "".join(d.digit for d in detect(DtmfDetector(EVENT_PT), duplicated)) == "6789123"


def test_lost_start_packets_still_give_the_digit_with_its_full_duration() -> None:
    ends_only = [p for p in capture_packets() if DtmfEvent.parse(p.payload).end]
    digits = detect(DtmfDetector(EVENT_PT), ends_only)
    assert [(d.digit, d.duration) for d in digits] == [(c, 960) for c in "6789123"]


def test_lost_end_packets_end_the_event_when_the_next_one_starts() -> None:
    no_ends = [p for p in capture_packets() if not DtmfEvent.parse(p.payload).end]
    detector = DtmfDetector(EVENT_PT)
    first_reports = [detector.push(p) for p in no_ends]
    # "6" is reported by the first packet of "7", and so on; "3" only at the end of the call.
    assert "".join(d.digit for d in first_reports if d) == "678912"
    assert detector.flush() == [Digit("3", 720, int(capture()[-1]["rtp_timestamp"]))]


def test_resumed_audio_ends_an_event_whose_end_packets_were_lost() -> None:
    no_ends = [p for p in capture_packets()[:5] if not DtmfEvent.parse(p.payload).end]
    start = no_ends[0].timestamp
    detector = DtmfDetector(EVENT_PT, end_timeout_ts=1600)
    # Audio sent alongside the event, a little ahead of its durations, ends nothing.
    for p in no_ends:
        assert detector.push(p) is None
        assert (
            detector.push(audio(ts_add(p.timestamp, DtmfEvent.parse(p.payload).duration + 480)))
            is None
        )
    assert detector.push(audio(ts_add(start, 720 + 1600))) is None
    assert detector.push(audio(ts_add(start, 720 + 1601))) == Digit("6", 720, start)
    assert detector.flush() == []


def test_audio_during_the_capture_events_changes_nothing() -> None:
    mixed = []
    for p in capture_packets():
        mixed += [p, audio(ts_add(p.timestamp, DtmfEvent.parse(p.payload).duration + 240))]
    digits = detect(DtmfDetector(EVENT_PT), mixed)
    assert "".join(d.digit for d in digits) == "6789123"
    assert {d.duration for d in digits} == {960}


def test_late_stragglers_of_an_earlier_event_are_ignored() -> None:
    packets = capture_packets()
    six, seven = packets[0:5], packets[5:10]
    order = [*six[:4], seven[0], six[4], seven[1], six[2], *seven[2:], six[4], six[0]]
    digits = detect(DtmfDetector(EVENT_PT), order)
    # "6" lost its end packet to reordering: "7" starting ended it at 720; the late end is dropped.
    assert [(d.digit, d.duration) for d in digits] == [("6", 720), ("7", 960)]


def test_two_digits_completed_by_one_packet_come_out_one_push_apart() -> None:
    packets = capture_packets()
    # "6" without its end, then only the end of "7" (its start packets lost), three copies.
    order = [*packets[0:4], packets[9], packets[9], packets[9]]
    detector = DtmfDetector(EVENT_PT)
    out = [detector.push(p) for p in order]
    assert out[:4] == [None] * 4
    assert [d.digit if d else None for d in out[4:]] == ["6", "7", None]
    assert detector.flush() == []


def test_the_same_key_twice_is_two_digits() -> None:
    sender = DtmfSender(ssrc=SSRC, payload_type=101)
    first = sender.packets("5", sequence_number=1, timestamp=8000)
    second = sender.packets("5", sequence_number=8, timestamp=16000)
    digits = detect(DtmfDetector(101), first + second)
    assert digits == [Digit("5", 800, 8000), Digit("5", 800, 16000)]


def test_a_new_ssrc_with_earlier_timestamps_still_gives_digits() -> None:
    old = DtmfSender(ssrc=1, payload_type=101).packets("1", sequence_number=0, timestamp=90_000)
    # The call is re-anchored: a new source whose timestamps start lower; "2" loses its ends.
    new = DtmfSender(ssrc=2, payload_type=101).packets("2", sequence_number=500, timestamp=10)
    newer = DtmfSender(ssrc=3, payload_type=101).packets("3", sequence_number=9, timestamp=5)
    digits = detect(DtmfDetector(101), [*old, *new[:3], *newer])
    assert digits == [Digit("1", 800, 90_000), Digit("2", 480, 10), Digit("3", 800, 5)]


def test_stray_packets_of_another_source_cause_no_repeat() -> None:
    press = DtmfSender(ssrc=SSRC, payload_type=101).packets("4", sequence_number=0, timestamp=800)
    stray_audio = RtpPacket(0, 77, 5, 0xBAD, b"\xff" * 160)
    # An end copy, a stray, another end copy: still one digit.
    order = [*press[:5], stray_audio, press[5], stray_audio, press[6]]
    assert detect(DtmfDetector(101), order) == [Digit("4", 800, 800)]
    # Stray audio of another source does not time the event out either.
    detector = DtmfDetector(101)
    assert [detector.push(p) for p in [*press[:3], RtpPacket(0, 1, 10**6, 0xBAD)]] == [None] * 4
    assert detector.push(press[4]) == Digit("4", 800, 800)


def test_a_long_press_sent_in_segments_is_one_digit() -> None:
    # RFC 4733 §2.5.1.3: past 65535 units the sender starts a new segment 65535 later.
    def event_packet(seq: int, timestamp: int, duration: int, end: bool = False) -> RtpPacket:
        payload = bytes(DtmfEvent(event_code("#"), end=end, duration=duration))
        return RtpPacket(101, seq, timestamp, SSRC, payload, marker=seq == 0)

    base = 0xFFFF0000  # the second segment's timestamp wraps
    packets = [
        event_packet(0, base, 400),
        event_packet(1, base, 65535),
        event_packet(2, ts_add(base, 65535), 400),
        event_packet(3, ts_add(base, 65535), 8000, end=True),
    ]
    assert detect(DtmfDetector(101), packets) == [Digit("#", 65535 + 8000, base)]


def test_non_dtmf_events_end_cleanly_and_are_not_digits() -> None:
    flash = RtpPacket(101, 0, 1000, SSRC, bytes(DtmfEvent(FLASH_EVENT, end=True, duration=800)))
    sender = DtmfSender(ssrc=SSRC, payload_type=101)
    after = sender.packets("9", sequence_number=1, timestamp=9000)
    assert detect(DtmfDetector(101), [flash, flash, *after]) == [Digit("9", 800, 9000)]


def test_malformed_event_payload_raises_an_exact_error() -> None:
    with pytest.raises(RtpParseError) as caught:
        DtmfDetector(101).push(RtpPacket(101, 0, 0, SSRC, b"\x01\x02\x03"))
    assert str(caught.value) == "RFC 4733 event payload must be 4 octets"
    with pytest.raises(RtpParseError, match="^RFC 4733 event payload must be 4 octets$"):
        DtmfEvent.parse(b"\x01\x02\x03\x04\x05")


@pytest.mark.parametrize(
    ("event", "message"),
    [
        (DtmfEvent(1, volume=64), "RFC 4733 volume must be in 0..63"),
        (DtmfEvent(256), "RFC 4733 event must be 0..255 and duration 0..65535"),
        (DtmfEvent(1, duration=65536), "RFC 4733 event must be 0..255 and duration 0..65535"),
    ],
)
def test_impossible_events_fail_to_serialise(event: DtmfEvent, message: str) -> None:
    with pytest.raises(RtpError) as caught:
        bytes(event)
    assert str(caught.value) == message


def test_event_codes_of_characters() -> None:
    assert [event_code(c) for c in "0123456789*#ABCDabcd"] == [*range(16), 12, 13, 14, 15]
    for bad in ("", "E", "12", "!"):
        with pytest.raises(RtpError, match="not a DTMF digit"):
            event_code(bad)


def test_sender_builds_marker_start_growing_updates_and_three_ends() -> None:
    sender = DtmfSender(ssrc=SSRC, payload_type=101, interval_ts=400, volume=7)
    packets = sender.packets("1", sequence_number=65534, timestamp=1234, duration_ts=1600)
    assert [p.sequence_number for p in packets] == [65534, 65535, 0, 1, 2, 3]
    assert [p.marker for p in packets] == [True] + [False] * 5
    assert {p.timestamp for p in packets} == {1234}
    assert {(p.payload_type, p.ssrc) for p in packets} == {(101, SSRC)}
    events = [DtmfEvent.parse(p.payload) for p in packets]
    assert [(e.duration, e.end) for e in events] == [
        (400, False),
        (800, False),
        (1200, False),
        (1600, True),
        (1600, True),
        (1600, True),
    ]
    assert {(e.event, e.volume) for e in events} == {(1, 7)}
    # The first packet of the capture's sender is 0x80e0..., the same layout as ours.
    assert bytes(packets[0])[:2] == bytes([0x80, 0x80 | 101])


def test_sender_rejects_bad_input() -> None:
    sender = DtmfSender(ssrc=SSRC, payload_type=101)
    with pytest.raises(RtpError, match="not a DTMF digit"):
        sender.packets("x", sequence_number=0, timestamp=0)
    for duration in (0, 65536):
        with pytest.raises(RtpError, match="DTMF duration must be 1..65535"):
            sender.packets("1", sequence_number=0, timestamp=0, duration_ts=duration)
    with pytest.raises(RtpError, match="interval must be positive"):
        DtmfSender(ssrc=SSRC, payload_type=101, interval_ts=0)


@given(st.binary(max_size=8))
def test_any_payload_parses_and_round_trips_or_raises_a_parse_error(payload: bytes) -> None:
    try:
        event = DtmfEvent.parse(payload)
    except RtpParseError:
        assert len(payload) != 4
    else:
        assert bytes(event) == payload


@st.composite
def lossy_presses(draw: st.DrawFn) -> tuple[str, list[RtpPacket]]:
    """Key presses sent by DtmfSender over a link that drops, duplicates and reorders."""
    keys = draw(st.text(alphabet=DTMF_DIGITS, min_size=1, max_size=6))
    sender = DtmfSender(ssrc=SSRC, payload_type=101, interval_ts=160)
    seq, timestamp = draw(st.integers(0, 0xFFFF)), draw(st.integers(0, 0xFFFFFFFF))
    wire: list[RtpPacket] = []
    surviving = ""
    for key in keys:
        duration = draw(st.integers(1, 4000))
        press = sender.packets(key, sequence_number=seq, timestamp=timestamp, duration_ts=duration)
        seq = seq_add(seq, len(press))
        timestamp = ts_add(timestamp, duration + draw(st.integers(800, 8000)))
        kept = [p for p in press if draw(st.booleans()) or draw(st.booleans())]  # ~25 % loss
        kept += draw(st.lists(st.sampled_from(press), max_size=3))  # duplicates
        kept = draw(st.permutations(kept))  # reordered within the press
        if kept:
            surviving += key
        wire += kept
    return surviving, wire


@given(lossy_presses())
def test_every_press_with_a_surviving_packet_is_reported_once_in_order(
    case: tuple[str, list[RtpPacket]],
) -> None:
    surviving, wire = case
    digits = detect(DtmfDetector(101), wire)
    assert "".join(d.digit for d in digits) == surviving
