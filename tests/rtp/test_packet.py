"""RTP packets (RFC 3550 §5.1): field layout, every parse error, round trips, fuzzing."""

from __future__ import annotations

import csv
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtp.errors import RtpError, RtpParseError
from rtp.packet import RtpExtension, RtpPacket
from tests.conformance import conformance_path

# A PCMU packet: V=2, M=1, PT=0, seq 0x1234, ts 0xDEADBEEF, SSRC 0x01020304, 4 octets of payload.
PCMU = bytes.fromhex("80 80 1234 deadbeef 01020304 ff7f0102")


def test_parses_the_fixed_header() -> None:
    packet = RtpPacket.parse(PCMU)
    assert packet == RtpPacket(
        payload_type=0,
        sequence_number=0x1234,
        timestamp=0xDEADBEEF,
        ssrc=0x01020304,
        payload=b"\xff\x7f\x01\x02",
        marker=True,
    )
    assert bytes(packet) == PCMU


def test_parses_csrcs_extension_and_padding() -> None:
    data = bytes.fromhex(
        "b2 08 0001 00000010 0000aaaa"  # V=2 P=1 X=1 CC=2, PT 8
        "00000001 00000002"  # CSRCs
        "bede 0001 10ff0000"  # one-word RFC 8285 extension
        "d5d5d5"  # payload
        "000003"  # padding: two octets and the count
    )
    packet = RtpPacket.parse(data)
    assert packet.payload_type == 8
    assert not packet.marker
    assert packet.csrcs == (1, 2)
    assert packet.extension == RtpExtension(0xBEDE, bytes.fromhex("10ff0000"))
    assert packet.payload == b"\xd5\xd5\xd5"
    assert packet.padding == b"\x00\x00\x03"
    assert bytes(packet) == data


def test_padding_octets_other_than_the_count_round_trip_as_sent() -> None:
    data = bytes.fromhex("a0 00 0001 00000000 00000000 aa 5a5a03")
    packet = RtpPacket.parse(data)
    assert (packet.payload, packet.padding) == (b"\xaa", b"\x5a\x5a\x03")
    assert bytes(packet) == data


def test_empty_payload_and_empty_extension() -> None:
    data = bytes.fromhex("90 7f ffff ffffffff ffffffff 0000 0000")
    packet = RtpPacket.parse(data)
    assert packet.payload_type == 127
    assert packet.extension == RtpExtension(0, b"")
    assert packet.payload == b""
    assert bytes(packet) == data


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "RTP packet is too short"),
        (PCMU[:11], "RTP packet is too short"),
        (bytes([0x40]) + PCMU[1:], "RTP version must be 2"),
        (bytes([0xC0]) + PCMU[1:], "RTP version must be 2"),
        (bytes([0x00]) + PCMU[1:], "RTP version must be 2"),
        (
            bytes.fromhex("83 00 0001 00000000 00000000 00000001 00000002"),
            "RTP CSRC list is truncated",
        ),
        (
            bytes.fromhex("90 00 0001 00000000 00000000 bede"),
            "RTP header extension length is invalid",
        ),
        (
            bytes.fromhex("90 00 0001 00000000 00000000 bede 0002 00000000"),
            "RTP header extension length is invalid",
        ),
        (bytes.fromhex("a0 00 0001 00000000 00000000 aabb00"), "RTP padding length is invalid"),
        (bytes.fromhex("a0 00 0001 00000000 00000000 aabb04"), "RTP padding length is invalid"),
        # The padding may not eat into the extension that precedes the payload.
        (
            bytes.fromhex("b0 00 0001 00000000 00000000 bede 0000 05"),
            "RTP padding length is invalid",
        ),
    ],
)
def test_parse_errors_are_exact(data: bytes, message: str) -> None:
    with pytest.raises(RtpParseError) as caught:
        RtpPacket.parse(data)
    assert str(caught.value) == message
    assert isinstance(caught.value, ValueError)


def test_padding_may_fill_the_whole_payload() -> None:
    data = bytes.fromhex("a0 00 0001 00000000 00000000 00000004")
    packet = RtpPacket.parse(data)
    assert (packet.payload, packet.padding) == (b"", b"\x00\x00\x00\x04")
    assert bytes(packet) == data


@pytest.mark.parametrize(
    ("packet", "message"),
    [
        (RtpPacket(128, 0, 0, 0), "RTP payload type must be in 0..127"),
        (RtpPacket(0, 65536, 0, 0), "RTP sequence number must be 16 bits"),
        (RtpPacket(0, -1, 0, 0), "RTP sequence number must be 16 bits"),
        (RtpPacket(0, 0, 1 << 32, 0), "RTP timestamp must be 32 bits"),
        (RtpPacket(0, 0, 0, 1 << 32), "RTP SSRC must be 32 bits"),
        (RtpPacket(0, 0, 0, 0, csrcs=(1 << 32,)), "RTP CSRC must be 32 bits"),
        (RtpPacket(0, 0, 0, 0, csrcs=tuple(range(16))), "RTP packet has more than 15 CSRCs"),
        (RtpPacket(0, 0, 0, 0, padding=b"\x00\x01"), "RTP padding must end in its own length"),
        (
            RtpPacket(0, 0, 0, 0, extension=RtpExtension(1, b"abc")),
            "RTP header extension data must be whole 32-bit words",
        ),
        (
            RtpPacket(0, 0, 0, 0, extension=RtpExtension(1 << 16)),
            "RTP header extension profile must be 16 bits",
        ),
    ],
)
def test_serialising_an_impossible_packet_fails_clearly(packet: RtpPacket, message: str) -> None:
    with pytest.raises(RtpError) as caught:
        bytes(packet)
    assert str(caught.value) == message


def test_fields_land_where_wireshark_puts_them() -> None:
    data = bytes(RtpPacket(payload_type=96, sequence_number=7, timestamp=8, ssrc=9, marker=True))
    first, second, seq, ts, ssrc = struct.unpack("!BBHII", data)
    assert (first, second, seq, ts, ssrc) == (0x80, 0x80 | 96, 7, 8, 9)


def test_every_telephone_event_packet_of_the_dtmf_capture_round_trips() -> None:
    path = conformance_path("vectors", "rfc4733", "dtmf_events_from_SIP_DTMF2.tsv")
    rows = list(csv.DictReader(path.read_text().splitlines(), delimiter="\t"))
    assert len(rows) == 35
    for row in rows:
        data = bytes.fromhex(row["rtp_packet_hex"])
        packet = RtpPacket.parse(data)
        assert packet.marker == (row["rtp_marker"] == "1")
        assert packet.payload_type == int(row["rtp_pt"])
        assert packet.sequence_number == int(row["rtp_seq"])
        assert packet.timestamp == int(row["rtp_timestamp"])
        assert packet.ssrc == int(row["rtp_ssrc"], 16)
        assert bytes(packet) == data


@given(st.binary(max_size=96))
def test_arbitrary_bytes_raise_only_parse_errors_and_parsed_ones_round_trip(data: bytes) -> None:
    try:
        packet = RtpPacket.parse(data)
    except RtpParseError:
        return
    assert bytes(packet) == data


@given(st.binary(min_size=12, max_size=96).map(lambda b: bytes([0x80 | (b[0] & 0x3F)]) + b[1:]))
def test_version_two_bytes_raise_only_parse_errors_and_round_trip(data: bytes) -> None:
    try:
        packet = RtpPacket.parse(data)
    except RtpParseError:
        return
    assert bytes(packet) == data


words = st.integers(0, 0xFFFFFFFF)
packets = st.builds(
    RtpPacket,
    payload_type=st.integers(0, 127),
    sequence_number=st.integers(0, 0xFFFF),
    timestamp=words,
    ssrc=words,
    payload=st.binary(max_size=200),
    marker=st.booleans(),
    csrcs=st.lists(words, max_size=15).map(tuple),
    extension=st.none()
    | st.builds(
        RtpExtension,
        profile=st.integers(0, 0xFFFF),
        data=st.binary(max_size=40).map(lambda b: b[: len(b) - len(b) % 4]),
    ),
    padding=st.one_of(
        st.just(b""),
        st.binary(max_size=254).map(lambda b: b + bytes([len(b) + 1])),
    ),
)


@given(packets)
def test_any_valid_packet_survives_serialise_then_parse(packet: RtpPacket) -> None:
    assert RtpPacket.parse(bytes(packet)) == packet
