"""RTCP (RFC 3550 §6): a real capture, the pjproject seeds, every parse error, fuzzing."""

from __future__ import annotations

import csv

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtp.errors import RtpError, RtpParseError
from rtp.packet import (
    Bye,
    ReceiverReport,
    ReportBlock,
    RtcpPacket,
    RtcpType,
    RtpPacket,
    Sdes,
    SdesChunk,
    SdesItem,
    SdesItemType,
    SenderReport,
    UnknownRtcp,
    is_rtcp,
    parse_rtcp,
    parse_rtcp_compound,
)
from tests.conformance import conformance_path

TYPE_NAMES = {SenderReport: 200, ReceiverReport: 201, Sdes: 202, Bye: 203}


def capture_rows() -> list[dict[str, str]]:
    path = conformance_path("vectors", "rtcp", "rtcp_packets.tsv")
    return list(csv.DictReader(path.read_text().splitlines(), delimiter="\t"))


def type_numbers(packets: list[RtcpPacket] | tuple[RtcpPacket, ...]) -> list[int]:
    return [p.packet_type if isinstance(p, UnknownRtcp) else TYPE_NAMES[type(p)] for p in packets]


def wire(packets: list[RtcpPacket] | tuple[RtcpPacket, ...]) -> bytes:
    return b"".join(map(bytes, packets))


def test_the_capture_has_24_clean_compounds_and_4_with_stray_octets() -> None:
    rows = capture_rows()
    assert len(rows) == 28
    assert sum(row["compound_parses_exactly"] == "yes" for row in rows) == 24


@pytest.mark.parametrize(
    "row",
    [r for r in capture_rows() if r["compound_parses_exactly"] == "yes"],
    ids=lambda r: f"frame{r['frame']}",
)
def test_clean_capture_compounds_parse_with_the_listed_types_and_round_trip(
    row: dict[str, str],
) -> None:
    data = bytes.fromhex(row["udp_payload_hex"])
    assert len(data) == int(row["length_bytes"])
    packets = parse_rtcp(data)
    listed = row["note"].removeprefix("types ").split("+")
    assert type_numbers(packets) == [int(t) for t in listed]
    assert wire(packets) == data
    assert parse_rtcp_compound(data).packets == tuple(packets)


@pytest.mark.parametrize(
    "row",
    [r for r in capture_rows() if r["compound_parses_exactly"] == "no"],
    ids=lambda r: f"frame{r['frame']}",
)
def test_stray_trailing_octets_fail_strictly_but_keep_the_packets_leniently(
    row: dict[str, str],
) -> None:
    data = bytes.fromhex(row["udp_payload_hex"])
    with pytest.raises(RtpParseError) as caught:
        parse_rtcp(data)
    assert str(caught.value) == "RTCP packet is too short"

    compound = parse_rtcp_compound(data)
    assert type_numbers(compound.packets) == [200, 201, 202]
    assert compound.trailing == b"\x00\x00"
    assert compound.trailing_error == "RTCP packet is too short"
    assert wire(compound.packets) + compound.trailing == data
    sdes = compound.packets[2]
    assert isinstance(sdes, Sdes)
    cname = sdes.chunks[0].get(SdesItemType.CNAME)
    assert cname is not None and cname.text == "unknown@200.57.7.204"


def test_every_truncation_of_a_compound_fails_or_yields_the_whole_leading_packets() -> None:
    data = bytes.fromhex(capture_rows()[0]["udp_payload_hex"])  # SR (52 octets) + RR (32)
    full = parse_rtcp(data)
    for cut in range(len(data)):
        if cut == 52:
            assert parse_rtcp(data[:cut]) == full[:1]
            continue
        with pytest.raises(RtpParseError) as caught:
            parse_rtcp(data[:cut])
        expected = "RTCP packet is too short" if cut % 52 < 4 else "RTCP packet length is invalid"
        assert str(caught.value) == expected


def test_capture_sender_report_fields_decode_as_wireshark_shows_them() -> None:
    frame_1565 = next(r for r in capture_rows() if r["frame"] == "1565")
    sr, sdes = parse_rtcp(bytes.fromhex(frame_1565["udp_payload_hex"]))
    assert sr == SenderReport(
        ssrc=0x58F33DEA,
        ntp_timestamp=0x00024FEBB60417C1,
        rtp_timestamp=0x11481E82,
        packet_count=0x116,
        octet_count=0xABE3,
        reports=(
            ReportBlock(
                ssrc=0xD2BD4E3E,
                fraction_lost=0,
                cumulative_lost=0,
                highest_seq=0x9E,
                jitter=0x10,
                lsr=0x86D9F581,
                dlsr=0x291EB,
            ),
        ),
    )
    assert sdes == Sdes((SdesChunk(0x58F33DEA, (SdesItem(1, b"ACLTP ChannelHandle 30"),)),))


PJ_SEEDS = ("fuzz", "pjproject-fuzz-seeds", "rtcp")
SEED_TYPES = {
    "1.rtcp": [200],
    "2.rtcp": [201],
    "3.rtcp": [202],
    "4.rtcp": [203],
    "5.rtcp": [205],
    "6.rtcp": [206],
    "7.rtcp": [207],
    "seed-rtcp-fb-nack.bin": [205],
    "seed-rtcp-fb-pli.bin": [206],
    "seed-rtcp-fb-rpsi.bin": [206],
    "seed-rtcp-fb-sli.bin": [206],
}


def test_every_pjproject_seed_is_listed() -> None:
    names = sorted(p.name for p in conformance_path(*PJ_SEEDS).iterdir() if p.is_file())
    assert names == sorted(SEED_TYPES)


@pytest.mark.parametrize("name", sorted(SEED_TYPES))
def test_pjproject_seeds_parse_and_round_trip(name: str) -> None:
    data = conformance_path(*PJ_SEEDS, name).read_bytes()
    packets = parse_rtcp(data)
    assert type_numbers(packets) == SEED_TYPES[name]
    assert wire(packets) == data


def test_pjproject_seed_contents() -> None:
    def seed(name: str) -> RtcpPacket:
        (packet,) = parse_rtcp(conformance_path(*PJ_SEEDS, name).read_bytes())
        return packet

    sr = seed("1.rtcp")
    assert isinstance(sr, SenderReport)
    assert (sr.ssrc, sr.packet_count, len(sr.reports)) == (0x66F00C9A, 0x93, 1)
    assert sr.reports[0].lsr == 0x98188B46
    sdes = seed("3.rtcp")
    assert isinstance(sdes, Sdes)
    assert sdes.chunks[0].get(SdesItemType.CNAME) == SdesItem(1, b"7b1f2a873b214437")
    assert seed("4.rtcp") == Bye(sources=(0x66F00C9A,))
    nack = seed("seed-rtcp-fb-nack.bin")
    assert nack == UnknownRtcp(RtcpType.RTPFB, 1, bytes.fromhex("12345678 87654321 00640003"))
    assert seed("seed-rtcp-fb-sli.bin") == UnknownRtcp(
        RtcpType.PSFB, 2, bytes.fromhex("12345678 87654321 03200141")
    )


PARSE_ERRORS = [
    (b"", "RTCP packet is too short"),
    (b"\x80\xc9\x00", "RTCP packet is too short"),
    (bytes.fromhex("40c90001 00000001"), "RTCP version must be 2"),
    (bytes.fromhex("80c90002 00000001"), "RTCP packet length is invalid"),
    (bytes.fromhex("a0c90001 00000000"), "RTCP padding length is invalid"),
    (bytes.fromhex("a0c90001 00000005"), "RTCP padding length is invalid"),
    (bytes.fromhex("81c80006 00000001" + "00" * 20), "RTCP sender report length is invalid"),
    (bytes.fromhex("81c90001 00000001"), "RTCP receiver report length is invalid"),
    (bytes.fromhex("81ca0002 00000001 01056162"), "RTCP SDES item is truncated"),
    (bytes.fromhex("81ca0002 00000001 01006101"), "RTCP SDES item is truncated"),
    (bytes.fromhex("81ca0001 00000001"), "RTCP SDES length is invalid"),  # no terminator
    (bytes.fromhex("81ca0002 00000001 00000001"), "RTCP SDES length is invalid"),  # non-null pad
    (bytes.fromhex("82ca0002 00000001 00000000"), "RTCP SDES length is invalid"),  # SC too big
    (bytes.fromhex("80ca0001 00000000"), "RTCP SDES length is invalid"),  # octets after chunks
    (bytes.fromhex("82cb0001 00000001"), "RTCP bye length is invalid"),  # SC too big
    (bytes.fromhex("81cb0002 00000001 05616263"), "RTCP bye length is invalid"),  # short reason
    (bytes.fromhex("81cb0002 00000001 02616201"), "RTCP bye length is invalid"),  # non-null pad
    (bytes.fromhex("81cb0003 00000001 01610000 00000000"), "RTCP bye length is invalid"),
]


@pytest.mark.parametrize(("data", "message"), PARSE_ERRORS)
def test_parse_errors_are_exact(data: bytes, message: str) -> None:
    with pytest.raises(RtpParseError) as caught:
        parse_rtcp(data)
    assert str(caught.value) == message
    with pytest.raises(RtpParseError) as caught:
        parse_rtcp_compound(data)  # a bad first packet means the datagram is not RTCP
    assert str(caught.value) == message


@pytest.mark.parametrize(("data", "message"), PARSE_ERRORS[6:])
def test_a_bad_packet_after_a_good_one_is_reported_as_trailing(data: bytes, message: str) -> None:
    good = bytes(ReceiverReport(ssrc=7))
    compound = parse_rtcp_compound(good + data)
    assert compound.packets == (ReceiverReport(ssrc=7),)
    assert (compound.trailing, compound.trailing_error) == (data, message)


def test_parsing_stops_at_the_first_bad_packet_even_if_a_good_one_follows() -> None:
    good = bytes(ReceiverReport(ssrc=7))
    bad = bytes.fromhex("40c90001 00000001")
    compound = parse_rtcp_compound(good + bad + good)
    assert compound.packets == (ReceiverReport(ssrc=7),)
    assert compound.trailing == bad + good
    assert compound.trailing_error == "RTCP version must be 2"


def test_single_packet_parse_checks_type_and_length() -> None:
    rr = bytes(ReceiverReport(ssrc=1))
    assert ReceiverReport.parse(rr) == ReceiverReport(ssrc=1)
    with pytest.raises(RtpParseError, match="^RTCP packet is not a sender report$"):
        SenderReport.parse(rr)
    with pytest.raises(RtpParseError, match="^RTCP packet is not a bye$"):
        Bye.parse(rr)
    with pytest.raises(RtpParseError, match="^RTCP packet has trailing octets$"):
        ReceiverReport.parse(rr + rr)
    with pytest.raises(RtpParseError, match="^RTCP packet has trailing octets$"):
        UnknownRtcp.parse(rr + b"\0\0\0\0")
    assert UnknownRtcp.parse(rr) == UnknownRtcp(201, 0, b"\0\0\0\1")


def test_bye_reason_absent_empty_and_present_are_three_different_packets() -> None:
    absent = bytes(Bye(sources=(1,)))
    empty = bytes(Bye(sources=(1,), reason=b""))
    present = bytes(Bye(sources=(1, 2), reason=b"call ended"))
    assert absent == bytes.fromhex("81cb0001 00000001")
    assert empty == bytes.fromhex("81cb0002 00000001 00000000")
    assert present == bytes.fromhex("82cb0005 00000001 00000002 0a") + b"call ended" + b"\0"
    for data in (absent, empty, present):
        (bye,) = parse_rtcp(data)
        assert bytes(bye) == data
    assert parse_rtcp(present) == [Bye(sources=(1, 2), reason=b"call ended")]


def test_reason_filling_the_word_needs_no_null() -> None:
    data = bytes.fromhex("81cb0002 00000001 03616263")
    assert parse_rtcp(data) == [Bye((1,), b"abc")]
    assert bytes(Bye((1,), b"abc")) == data


def test_cumulative_lost_is_signed_24_bit() -> None:
    block = ReportBlock(ssrc=1, fraction_lost=255, cumulative_lost=-3, highest_seq=70000)
    rr = ReceiverReport(ssrc=2, reports=(block,))
    data = bytes(rr)
    assert data[12:16] == bytes.fromhex("fffffffd")
    assert ReceiverReport.parse(data) == rr
    for lost in (-0x800000, 0x7FFFFF):
        packet = ReceiverReport(ssrc=2, reports=(ReportBlock(ssrc=1, cumulative_lost=lost),))
        assert ReceiverReport.parse(bytes(packet)) == packet


def test_sdes_with_cname_is_padded_with_nulls_to_a_word() -> None:
    sdes = Sdes.with_cname(0x11223344, "agent@127.0.0.1")
    data = bytes(sdes)
    assert data == bytes.fromhex("81ca0006 11223344 010f") + b"agent@127.0.0.1" + bytes(3)
    assert Sdes.parse(data) == sdes
    chunk = sdes.chunks[0]
    assert chunk.get(SdesItemType.CNAME) == SdesItem(1, b"agent@127.0.0.1")
    assert chunk.get(SdesItemType.TOOL) is None
    # A chunk whose items end on a word boundary still needs a whole null word.
    aligned = bytes(SdesChunk(1, (SdesItem(SdesItemType.NAME, b"ab"),)))
    assert aligned == bytes.fromhex("00000001 02026162 00000000")


def test_padding_is_kept_and_counted_in_the_length() -> None:
    bye = Bye(sources=(5,), padding=b"\0\0\0\4")
    data = bytes(bye)
    assert data == bytes.fromhex("a1cb0002 00000005 00000004")
    assert parse_rtcp(data) == [bye]


@pytest.mark.parametrize(
    ("packet", "message"),
    [
        (
            ReceiverReport(1, tuple(ReportBlock(i) for i in range(32))),
            "RTCP packet holds more than 31 items",
        ),
        (ReceiverReport(1, extension=b"abc"), "RTCP profile extension must be whole 32-bit words"),
        (ReceiverReport(1 << 32), "RTCP SSRC must be 32 bits"),
        (
            ReceiverReport(1, (ReportBlock(1, cumulative_lost=1 << 23),)),
            "RTCP cumulative lost must be a signed 24-bit number",
        ),
        (
            ReceiverReport(1, (ReportBlock(1, fraction_lost=256),)),
            "RTCP fraction lost must be in 0..255",
        ),
        (
            ReceiverReport(1, (ReportBlock(1, jitter=-1),)),
            "RTCP report block field must be 32 bits",
        ),
        (SenderReport(1, 1 << 64, 0), "RTCP sender info field is out of range"),
        (Bye((1,), b"x" * 256), "RTCP bye reason must be at most 255 octets"),
        (Bye((1,), padding=b"\0\3"), "RTCP padding must end in its own length"),
        (
            Sdes((SdesChunk(1, (SdesItem(0, b"x"),)),)),
            "RTCP SDES item must have type 1..255 and at most 255 octets",
        ),
        (UnknownRtcp(300, 0, b""), "RTCP packet type must be in 0..255"),
        (UnknownRtcp(204, 0, b"abc"), "RTCP packet must be whole 32-bit words"),
    ],
)
def test_serialising_an_impossible_packet_fails_clearly(packet: RtcpPacket, message: str) -> None:
    with pytest.raises(RtpError) as caught:
        bytes(packet)
    assert str(caught.value) == message


def test_rtcp_is_told_apart_from_rtp_on_a_shared_port() -> None:
    for row in capture_rows():
        assert is_rtcp(bytes.fromhex(row["udp_payload_hex"]))
    assert not is_rtcp(bytes(RtpPacket(0, 1, 2, 3, b"\xff" * 160, marker=True)))
    assert not is_rtcp(bytes(RtpPacket(101, 1, 2, 3, b"\0\0\0\0", marker=True)))
    assert not is_rtcp(b"\x80")


@given(st.binary(max_size=120))
def test_arbitrary_bytes_raise_only_parse_errors_and_parsed_ones_round_trip(data: bytes) -> None:
    try:
        packets = parse_rtcp(data)
    except RtpParseError:
        pass
    else:
        assert wire(packets) == data
    try:
        compound = parse_rtcp_compound(data)
    except RtpParseError:
        return
    assert wire(compound.packets) + compound.trailing == data


@st.composite
def header_shaped(draw: st.DrawFn) -> bytes:
    """A packet with a correct common header over random words, so fuzzing reaches the bodies."""
    count = draw(st.integers(0, 31) | st.integers(0, 2))
    packet_type = draw(st.sampled_from([200, 201, 202, 203, 204, 205]))
    body = draw(
        st.lists(
            st.sampled_from([bytes(4), b"\x00\x00\x00\x01", b"\x01\x02ab"])
            | st.binary(min_size=4, max_size=4),
            max_size=10,
        )
    )
    words = len(body)
    return bytes([0x80 | count, packet_type]) + words.to_bytes(2, "big") + b"".join(body)


@given(st.lists(header_shaped(), min_size=1, max_size=3).map(b"".join))
def test_header_shaped_bytes_raise_only_parse_errors_and_round_trip(data: bytes) -> None:
    try:
        packets = parse_rtcp(data)
    except RtpParseError:
        return
    assert wire(packets) == data


u32 = st.integers(0, 0xFFFFFFFF)
blocks = st.builds(
    ReportBlock,
    ssrc=u32,
    fraction_lost=st.integers(0, 255),
    cumulative_lost=st.integers(-0x800000, 0x7FFFFF),
    highest_seq=u32,
    jitter=u32,
    lsr=u32,
    dlsr=u32,
)
word_bytes = st.binary(max_size=16).map(lambda b: b[: len(b) // 4 * 4])
paddings = st.just(b"") | st.integers(1, 3).map(lambda n: bytes(4 * n - 1) + bytes([4 * n]))
items = st.builds(SdesItem, item_type=st.integers(1, 255), value=st.binary(max_size=40))
typed_packets: st.SearchStrategy[RtcpPacket] = st.one_of(
    st.builds(
        SenderReport,
        ssrc=u32,
        ntp_timestamp=st.integers(0, (1 << 64) - 1),
        rtp_timestamp=u32,
        packet_count=u32,
        octet_count=u32,
        reports=st.lists(blocks, max_size=3).map(tuple),
        extension=word_bytes,
        padding=paddings,
    ),
    st.builds(
        ReceiverReport,
        ssrc=u32,
        reports=st.lists(blocks, max_size=3).map(tuple),
        extension=word_bytes,
        padding=paddings,
    ),
    st.builds(
        Sdes,
        chunks=st.lists(
            st.builds(SdesChunk, ssrc=u32, items=st.lists(items, max_size=3).map(tuple)), max_size=3
        ).map(tuple),
        padding=paddings,
    ),
    st.builds(
        Bye,
        sources=st.lists(u32, max_size=4).map(tuple),
        reason=st.none() | st.binary(max_size=255),
        padding=paddings,
    ),
    st.builds(
        UnknownRtcp,
        packet_type=st.sampled_from([204, 205, 206, 207, 192, 223]),
        count=st.integers(0, 31),
        body=word_bytes,
        padding=paddings,
    ),
)


@given(st.lists(typed_packets, min_size=1, max_size=4))
def test_any_valid_compound_survives_serialise_then_parse(packets: list[RtcpPacket]) -> None:
    data = wire(packets)
    assert parse_rtcp(data) == packets
    assert parse_rtcp_compound(data).packets == tuple(packets)
