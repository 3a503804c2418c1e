"""SDP parsing (RFC 4566) and offer/answer (RFC 3264): vectors, error messages, properties."""

from __future__ import annotations

import string
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sip.errors import SipParseError
from sip.offer_answer import (
    PCMA,
    PCMU,
    Answer,
    Codec,
    LocalMedia,
    Rejection,
    RejectReason,
    accept_answer,
    build_offer,
    negotiate,
)
from sip.sdp import (
    Attribute,
    Connection,
    Direction,
    MediaDescription,
    MediaLine,
    Origin,
    RtpMap,
    SdpLine,
    SessionDescription,
)
from tests.conformance import CONFORMANCE_DIR, ENV_VAR, conformance_path

VECTORS = Path(__file__).parents[1] / "vectors" / "sdp"
LOCAL = LocalMedia("192.0.2.100", 40000, session_id=1234, session_version=1, username="va")


def sdp(*lines: str) -> str:
    return "".join(f"{line}\r\n" for line in lines)


def vector(name: str) -> str:
    return (VECTORS / name).read_bytes().decode()


def offer(
    *media: str,
    c: str | None = "c=IN IP4 198.51.100.7",
    session_attrs: tuple[str, ...] = (),
) -> SessionDescription:
    """An offer whose media sections are given as CR-less blocks, one line per "|"."""
    head = ["v=0", "o=peer 42 7 IN IP4 198.51.100.7", "s=-"]
    head += [c] if c else []
    head += ["t=0 0", *session_attrs]
    lines = head + [line for block in media for line in block.split("|")]
    return SessionDescription.parse(sdp(*lines))


def answered(result: Answer | Rejection) -> Answer:
    assert isinstance(result, Answer), result
    return result


# ---------------------------------------------------------------------------------------------
# Tier 1: captured vectors round-trip byte for byte


VECTOR_NAMES = sorted(p.name for p in VECTORS.glob("*.sdp"))


def test_vector_set_covers_the_pbxes_we_meet() -> None:
    assert len(VECTOR_NAMES) >= 8
    for stack in ("asterisk", "freeswitch", "twilio", "sipp", "cisco", "polycom"):
        assert any(name.startswith(stack) for name in VECTOR_NAMES), stack


@pytest.mark.parametrize("name", VECTOR_NAMES)
def test_vector_round_trips(name: str) -> None:
    text = vector(name)
    sd = SessionDescription.parse(text)
    assert SessionDescription.parse(text.replace("\r\n", "\n")) == sd  # bare LF tolerated
    assert SessionDescription.parse(text.removesuffix("\r\n")) == sd  # truncated last line
    assert SessionDescription.parse(text + "\r\n\r\n") == sd  # trailing blank lines
    assert str(sd) == text


def test_asterisk_typed_view() -> None:
    sd = SessionDescription.parse(vector("asterisk_pjsip_offer.sdp"))
    assert sd.origin == Origin("-", 1686741238, 1686741238, "IN", "IP4", "203.0.113.10")
    assert sd.session_name == "Asterisk"
    assert sd.connection == Connection("IN", "IP4", "203.0.113.10")
    (audio,) = sd.media
    assert audio.media_line == MediaLine("audio", 12422, "RTP/AVP", ("0", "8", "3", "101"))
    assert (audio.media, audio.port, audio.port_count, audio.proto) == (
        "audio",
        12422,
        None,
        "RTP/AVP",
    )
    assert audio.rtpmap(101) == RtpMap(101, "telephone-event", 8000)
    assert audio.rtpmap(96) is None
    assert audio.fmtp(101) == "0-16"
    assert audio.fmtp(0) is None
    assert (audio.ptime_ms, audio.maxptime_ms) == (20, 150)
    assert audio.direction is Direction.SENDRECV
    assert audio.attribute("sendrecv") == ""
    assert audio.attribute("rtcp-mux") is None
    assert audio.connection is None
    assert sd.effective_connection(audio) == sd.connection


def test_cisco_media_level_connection_overrides_session() -> None:
    sd = SessionDescription.parse(vector("cisco_gateway_offer.sdp"))
    (audio,) = sd.media
    assert sd.effective_connection(audio) == Connection("IN", "IP4", "192.0.2.51")
    assert audio.fmtp(18) == "annexb=no"
    assert audio.direction is None
    assert sd.effective_direction(audio) is Direction.SENDRECV


def test_polycom_session_level_direction_and_video() -> None:
    sd = SessionDescription.parse(vector("polycom_vvx_offer.sdp"))
    assert sd.attributes == (Attribute("sendrecv"),)
    audio, video = sd.media
    assert audio.encoding("127") == RtpMap(127, "telephone-event", 8000)
    assert video.media == "video"
    assert video.attributes[-1] == Attribute("content", "main")
    assert video.fmtp(109) == "profile-level-id=42800d; packetization-mode=0"


def test_all_rfc4566_line_types_are_kept_in_place() -> None:
    text = vector("rfc4566_all_line_types.sdp")
    sd = SessionDescription.parse(text)
    assert [line.type for line in sd.session] == list("vosiuepcbtrzka")
    assert sd.connection == Connection("IN", "IP4", "224.2.17.12", ttl=127)
    audio, video = sd.media
    assert [str(line) for line in audio.lines] == ["m=audio 49170 RTP/AVP 0", "i=Voice", "b=AS:64"]
    assert video.port_count == 2
    assert video.connection == Connection("IN", "IP4", "224.2.17.14", 127, 2)
    assert video.rtpmap(99) == RtpMap(99, "h263-1998", 90000)
    assert sd.effective_direction(audio) is Direction.RECVONLY


@pytest.mark.parametrize(
    ("line", "connection"),
    [
        ("c=IN IP6 2001:db8::1", Connection("IN", "IP6", "2001:db8::1")),
        ("c=IN IP6 ::ffff:192.0.2.2", Connection("IN", "IP6", "::ffff:192.0.2.2")),
        ("c=IN IP6 ff15::101/3", Connection("IN", "IP6", "ff15::101", address_count=3)),
        ("c=IN IP4 host.atlanta.example.com", Connection("IN", "IP4", "host.atlanta.example.com")),
        ("c=IN IP4 0.0.0.0", Connection("IN", "IP4", "0.0.0.0")),
    ],
)
def test_connection_addresses(line: str, connection: Connection) -> None:
    text = sdp("v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-", line, "t=0 0")
    sd = SessionDescription.parse(text)
    assert sd.connection == connection
    assert str(sd) == text


# ---------------------------------------------------------------------------------------------
# The external conformance corpus, read in place


PJ_SEEDS = ("fuzz", "pjproject-fuzz-seeds", "sdp")


def test_conformance_dir_defaults_beside_the_checkout() -> None:
    assert CONFORMANCE_DIR.name == "conformance"
    assert conformance_path(*PJ_SEEDS).is_dir()


def test_conformance_path_fails_clearly(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=ENV_VAR):
        conformance_path("rfc5118", root=tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="is not in the conformance corpus"):
        conformance_path("no-such-file", root=tmp_path)


# input.6.sdp is a fuzzer-mutated seed: bytes C3 BF were spliced into "s=-" (swallowing the
# c= line) and into "m=au...", leaving "m=au\xff\xff\xff34718 RTP/AVP 0 8 101" whose port field
# is "RTP/AVP". pjmedia's lenient scanner reads that as port 0; RFC 4566 §5.14 makes it invalid.
PJ_SEED_ERRORS = {"input.6.sdp": "SDP m= port is not a number"}


@pytest.mark.parametrize("name", [f"input.{n}.sdp" for n in range(1, 7)])
def test_pjproject_sdp_seeds(name: str) -> None:
    text = conformance_path(*PJ_SEEDS, name).read_bytes().decode("utf-8", "surrogateescape")
    if name in PJ_SEED_ERRORS:
        with pytest.raises(SipParseError) as excinfo:
            SessionDescription.parse(text)
        assert str(excinfo.value) == PJ_SEED_ERRORS[name]
        return
    sd = SessionDescription.parse(text)
    assert str(sd) == text
    assert sd.media[0].media == "audio"


def test_pjproject_seed_set_is_complete() -> None:
    names = sorted(p.name for p in conformance_path(*PJ_SEEDS).glob("input.*.sdp"))
    assert names == [f"input.{n}.sdp" for n in range(1, 7)]


RFC5118_SDP = {
    "ipv6-in-sdp.cl-fixed.dat": ["2001:db8::20", None, None],
    "ipv4-mapped-ipv6.cl-fixed.dat": ["::ffff:192.0.2.2", None, None],
    "mult-ip-in-sdp.cl-fixed.dat": [None, "192.0.2.1", "2001:db8::1"],
}


@pytest.mark.parametrize("name", sorted(RFC5118_SDP))
def test_rfc5118_sdp_bodies_parse_with_ipv6(name: str) -> None:
    message = conformance_path("rfc5118", "variants", name).read_bytes()
    body = message.split(b"\r\n\r\n", 1)[1].decode()
    sd = SessionDescription.parse(body)
    assert str(sd) == body
    session = sd.connection.address if sd.connection else None
    assert [session, *(m.connection.address if m.connection else None for m in sd.media)] == (
        RFC5118_SDP[name]
    )
    assert "IP6" in {c.addr_type for c in (sd.connection, *(m.connection for m in sd.media)) if c}


def test_rfc5118_ipv6_offer_negotiates() -> None:
    message = conformance_path("rfc5118", "variants", "mult-ip-in-sdp.cl-fixed.dat").read_bytes()
    result = answered(
        negotiate(SessionDescription.parse(message.split(b"\r\n\r\n")[1].decode()), LOCAL)
    )
    assert (result.remote_address, result.remote_port) == ("192.0.2.1", 22334)
    assert [m.port for m in result.sdp.media] == [40000, 0]


# ---------------------------------------------------------------------------------------------
# Parse errors: exact messages, status hint 400

HEAD = ("v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-", "c=IN IP4 192.0.2.1", "t=0 0")
AUDIO = "m=audio 30000 RTP/AVP 0"


def swap(old: str, new: str) -> str:
    return sdp(*(new if line == old else line for line in HEAD), AUDIO)


PARSE_ERRORS = [
    ("", "SDP body is empty"),
    ("\r\n\r\n", "SDP body is empty"),
    (sdp("v=0", "hello"), "SDP line is not of the form <type>=<value>"),
    (sdp("v=0", "", "o=- 1 1 IN IP4 192.0.2.1"), "SDP line is not of the form <type>=<value>"),
    (sdp("V=0"), "SDP line is not of the form <type>=<value>"),
    (sdp(*HEAD, "x=1"), "unknown SDP line type 'x'"),
    (sdp(*HEAD[1:]), "SDP does not start with a v= line"),
    (swap("v=0", "v=1"), "unsupported SDP version"),
    (sdp("v=0", "s=-", "t=0 0"), "SDP needs exactly one o= line"),
    (sdp(*HEAD, "s=again"), "SDP needs exactly one s= line"),
    (sdp("v=0", "v=0", *HEAD[1:]), "SDP needs exactly one v= line"),
    (sdp(*HEAD[:4]), "SDP needs at least one t= line"),
    (sdp(*HEAD, "c=IN IP4 192.0.2.2"), "SDP has more than one session-level c= line"),
    (sdp(*HEAD, AUDIO, "t=0 0"), "SDP t= line is not allowed in a media description"),
    (
        sdp(*HEAD, AUDIO, "o=- 1 1 IN IP4 1.2.3.4"),
        "SDP o= line is not allowed in a media description",
    ),
    (swap("t=0 0", "t=0"), "SDP t= line needs start and stop times"),
    (swap("t=0 0", "t=now 0"), "SDP t= line needs start and stop times"),
    (swap(HEAD[1], "o=- 1 1 IN IP4"), "SDP o= line needs 6 fields"),
    (swap(HEAD[1], "o=- x 1 IN IP4 192.0.2.1"), "SDP o= session id is not a number"),
    (swap(HEAD[1], "o=- 1 -1 IN IP4 192.0.2.1"), "SDP o= session version is not a number"),
    (swap(HEAD[1], f"o=- {'9' * 21} 1 IN IP4 h"), "SDP o= session id is not a number"),
    (swap(HEAD[3], "c=IN IP4"), "SDP c= line needs 3 fields"),
    (swap(HEAD[3], "c=IN IP4 300.1.1.1"), "SDP c= address is not a valid IP4 address"),
    (swap(HEAD[3], "c=IN IP4 2001:db8::1"), "SDP c= address is not a valid IP4 address"),
    (swap(HEAD[3], "c=IN IP4 bad_host!"), "SDP c= address is not a valid IP4 address"),
    (swap(HEAD[3], "c=IN IP6 2001:db8::zz"), "SDP c= address is not a valid IP6 address"),
    (swap(HEAD[3], "c=IN IP6 192.0.2.1"), "SDP c= address is not a valid IP6 address"),
    (swap(HEAD[3], "c=IN IP4 224.2.1.1/x"), "SDP c= multicast suffix is not a number"),
    (swap(HEAD[3], "c=IN IP4 224.2.1.1/1/2/3"), "SDP c= line has too many multicast fields"),
    (swap(HEAD[3], "c=IN IP6 ff15::101/3/2"), "SDP c= line has too many multicast fields"),
    (sdp(*HEAD, "m=audio 30000 RTP/AVP"), "SDP m= line needs media, port, proto and formats"),
    (sdp(*HEAD, "m=audio x RTP/AVP 0"), "SDP m= port is not a number"),
    (sdp(*HEAD, "m=audio 70000 RTP/AVP 0"), "SDP m= port is out of range"),
    (sdp(*HEAD, "m=audio 30000/x RTP/AVP 0"), "SDP m= port count is not a number"),
    (sdp(*HEAD, AUDIO, "a="), "SDP a= line has no attribute name"),
    (sdp(*HEAD, AUDIO, "a=:x"), "SDP a= line has no attribute name"),
    (sdp(*HEAD, AUDIO, "a=rtpmap:0"), "SDP rtpmap attribute is malformed"),
    (sdp(*HEAD, AUDIO, "a=rtpmap:0 /8000"), "SDP rtpmap attribute is malformed"),
    (sdp(*HEAD, AUDIO, "a=rtpmap:0 PCMU"), "SDP rtpmap attribute is malformed"),
    (sdp(*HEAD, AUDIO, "a=rtpmap:x PCMU/8000"), "SDP rtpmap payload type is not a number"),
    (sdp(*HEAD, AUDIO, "a=rtpmap:128 PCMU/8000"), "SDP rtpmap payload type is out of range"),
    (sdp(*HEAD, AUDIO, "a=rtpmap:0 PCMU/fast"), "SDP rtpmap clock rate is not a number"),
    (sdp(*HEAD, AUDIO, "a=rtpmap:96 opus/48000/x"), "SDP rtpmap channel count is not a number"),
    (sdp(*HEAD, AUDIO, "a=fmtp:"), "SDP fmtp attribute has no format"),
    (sdp(*HEAD, AUDIO, "a=ptime:abc"), "SDP ptime attribute is not a number"),
    (sdp(*HEAD, AUDIO, "a=maxptime"), "SDP maxptime attribute is not a number"),
    (sdp(*HEAD, AUDIO, "a=tool:x\x00y"), "SDP line contains CR, LF or NUL"),
    (sdp(*HEAD[:2], "s=a\rb", *HEAD[3:]), "SDP line contains CR, LF or NUL"),
]


@pytest.mark.parametrize(("text", "message"), PARSE_ERRORS)
def test_parse_error_messages(text: str, message: str) -> None:
    with pytest.raises(SipParseError) as excinfo:
        SessionDescription.parse(text)
    assert str(excinfo.value) == message
    assert excinfo.value.status_hint == 400
    assert isinstance(excinfo.value, ValueError)


def test_lines_are_validated_when_built() -> None:
    with pytest.raises(SipParseError, match="^SDP m= port is out of range$"):
        SdpLine("m", "audio 65536 RTP/AVP 0")
    with pytest.raises(
        SipParseError, match="^SDP media description does not start with an m= line$"
    ):
        MediaDescription((SdpLine("a", "sendrecv"),))
    head = SessionDescription.parse(sdp(*HEAD)).session
    with pytest.raises(SipParseError, match="^SDP m= line is not allowed in the session section$"):
        SessionDescription((*head, SdpLine("m", "audio 1 RTP/AVP 0")))


def test_lenient_where_real_stacks_differ() -> None:
    text = sdp(
        "v=0",
        "o=- 1 1 IN IP4 192.0.2.1",
        "s=",  # empty s= (RFC 5118 §4.8 sends it)
        "t=0 0",
        "c=IN IP4 192.0.2.1",  # after t=
        "m=audio 30000  RTP/AVP 0 8 ",  # double and trailing space
        "a=ptime:20.0",
        "a=rtpmap:8 PCMA/8000 ",
        "a=x-unknown-attribute:with: colons",
    )
    sd = SessionDescription.parse(text)
    assert str(sd) == text
    (audio,) = sd.media
    assert audio.formats == ("0", "8")
    assert audio.ptime_ms == 20
    assert audio.rtpmap(8) == RtpMap(8, "PCMA", 8000)
    assert audio.attribute("x-unknown-attribute") == "with: colons"


def test_first_rtpmap_wins_and_fmtp_allows_tabs() -> None:
    media = "m=audio 30000 RTP/AVP 96|a=rtpmap:96 PCMA/8000|a=rtpmap:96 PCMU/8000|a=fmtp:96\tx=1"
    (audio,) = offer(media).media
    assert audio.rtpmaps == {96: RtpMap(96, "PCMA", 8000)}
    assert audio.fmtp(96) == "x=1"


def test_huge_offer_is_handled_in_linear_time() -> None:
    # 10,000 formats and 3,000 rtpmaps fit in one 64 KiB datagram; negotiation must not be
    # quadratic in them.
    formats = " ".join(["18"] * 10_000)
    maps = "|".join(f"a=rtpmap:{n % 128} X/8000" for n in range(3_000))
    assert negotiate(offer(f"m=audio 30000 RTP/AVP {formats} 8|{maps}"), LOCAL) == Rejection(
        RejectReason.NO_CODEC
    )


# ---------------------------------------------------------------------------------------------
# negotiate(): RFC 3264 §6 answers


def test_twilio_offer_gets_the_exact_answer() -> None:
    result = answered(negotiate(SessionDescription.parse(vector("twilio_trunk_offer.sdp")), LOCAL))
    assert str(result.sdp) == sdp(
        "v=0",
        "o=va 1234 1 IN IP4 192.0.2.100",
        "s=-",
        "c=IN IP4 192.0.2.100",
        "t=0 0",
        "m=audio 40000 RTP/AVP 0 101",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:101 telephone-event/8000",
        "a=fmtp:101 0-16",
        "a=ptime:20",
        "a=sendrecv",
    )
    assert result == Answer(
        result.sdp,
        PCMU,
        telephone_event_pt=101,
        ptime_ms=20,
        remote_address="198.51.100.77",
        remote_port=15638,
        direction=Direction.SENDRECV,
        on_hold=False,
    )
    assert SessionDescription.parse(str(result.sdp)) == result.sdp


@pytest.mark.parametrize(
    ("formats", "codec"),
    [
        ("0", PCMU),
        ("8", PCMA),
        ("0 8", PCMU),
        ("8 0", PCMA),  # the offerer's order wins over ours (RFC 3264 §6.1)
        ("18 8 0", PCMA),
        ("9 3 0", PCMU),
    ],
)
def test_codec_follows_offer_order(formats: str, codec: Codec) -> None:
    result = answered(negotiate(offer(f"m=audio 30000 RTP/AVP {formats}"), LOCAL))
    assert result.codec == codec
    assert result.sdp.media[0].formats == (str(codec.payload_type),)  # one codec only


def test_dynamic_payload_matched_by_rtpmap_name_case_insensitively() -> None:
    result = negotiate(offer("m=audio 30000 RTP/AVP 97 0|a=rtpmap:97 pcma/8000"), LOCAL)
    assert answered(result).codec == Codec("PCMA", 97, 8000)
    assert "a=rtpmap:97 PCMA/8000\r\n" in str(answered(result).sdp)


def test_static_payload_with_wrong_clock_rate_is_not_used() -> None:
    result = negotiate(offer("m=audio 30000 RTP/AVP 0 8|a=rtpmap:0 PCMU/16000"), LOCAL)
    assert answered(result).codec == PCMA


def test_our_codec_list_limits_the_choice() -> None:
    only_pcma = replace(LOCAL, codecs=(PCMA,))
    assert answered(negotiate(offer("m=audio 30000 RTP/AVP 0 8"), only_pcma)).codec == PCMA


@pytest.mark.parametrize(
    ("media", "reason"),
    [
        (("m=audio 30000 RTP/AVP 18 4|a=rtpmap:18 G729/8000",), RejectReason.NO_CODEC),
        (("m=audio 30000 RTP/AVP 96|a=rtpmap:96 opus/48000/2",), RejectReason.NO_CODEC),
        (("m=audio 30000 RTP/AVP 101|a=rtpmap:101 telephone-event/8000",), RejectReason.NO_CODEC),
        (("m=video 30000 RTP/AVP 31",), RejectReason.NO_AUDIO),
        (("m=audio 0 RTP/AVP 0",), RejectReason.NO_AUDIO),
        ((), RejectReason.NO_AUDIO),
        (
            ("m=audio 30000 RTP/SAVP 0|a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:x",),
            RejectReason.BAD_PROTO,
        ),
        (("m=audio 30000 UDP/TLS/RTP/SAVPF 0",), RejectReason.BAD_PROTO),
        (("m=audio 30000 RTP/SAVP 0", "m=audio 30002 RTP/AVP 18"), RejectReason.NO_CODEC),
    ],
)
def test_unusable_offers_get_488(media: tuple[str, ...], reason: RejectReason) -> None:
    result = negotiate(offer(*media), LOCAL)
    assert result == Rejection(reason)
    assert isinstance(result, Rejection) and result.status == 488


def test_missing_connection_address_is_rejected() -> None:
    result = negotiate(offer("m=audio 30000 RTP/AVP 0", c=None), LOCAL)
    assert result == Rejection(RejectReason.NO_ADDRESS)
    assert str(RejectReason.NO_ADDRESS) == "audio stream has no connection address"


@pytest.mark.parametrize(
    ("media", "pt", "fmtp_line"),
    [
        (
            "m=audio 30000 RTP/AVP 0 101|a=rtpmap:101 telephone-event/8000|a=fmtp:101 0-16",
            101,
            "a=fmtp:101 0-16",
        ),
        (
            "m=audio 30000 RTP/AVP 0 96|a=rtpmap:96 telephone-event/8000|a=fmtp:96 0-15",
            96,
            "a=fmtp:96 0-15",
        ),
        ("m=audio 30000 RTP/AVP 0 96|a=rtpmap:96 TELEPHONE-EVENT/8000", 96, None),
        ("m=audio 30000 RTP/AVP 0", None, None),
        ("m=audio 30000 RTP/AVP 0 97|a=rtpmap:97 telephone-event/16000", None, None),
    ],
)
def test_telephone_event_uses_offered_payload_type(
    media: str, pt: int | None, fmtp_line: str | None
) -> None:
    result = answered(negotiate(offer(media), LOCAL))
    assert result.telephone_event_pt == pt
    answer_audio = result.sdp.media[0]
    expected = ("0",) if pt is None else ("0", str(pt))
    assert answer_audio.formats == expected
    if pt is not None:
        assert answer_audio.rtpmap(pt) == RtpMap(pt, "telephone-event", 8000)
    lines = str(result.sdp).split("\r\n")
    assert [x for x in lines if x.startswith("a=fmtp")] == ([fmtp_line] if fmtp_line else [])


def test_telephone_event_not_agreed_when_we_do_not_support_it() -> None:
    no_dtmf = replace(LOCAL, telephone_event=False)
    media = "m=audio 30000 RTP/AVP 0 101|a=rtpmap:101 telephone-event/8000"
    result = answered(negotiate(offer(media), no_dtmf))
    assert result.telephone_event_pt is None
    assert result.sdp.media[0].formats == ("0",)


def test_other_streams_are_refused_with_port_0_in_order() -> None:
    sd = SessionDescription.parse(vector("polycom_vvx_offer.sdp"))
    result = answered(negotiate(sd, LOCAL))
    assert [str(m.lines[0]) for m in result.sdp.media] == [
        "m=audio 40000 RTP/AVP 0 127",
        "m=video 0 RTP/AVP 109 34",
    ]
    assert result.sdp.media[1].lines[1:] == ()


def test_answer_keeps_every_m_line_and_uses_the_first_usable_audio() -> None:
    result = answered(
        negotiate(
            offer(
                "m=video 5000/2 RTP/AVP 31",
                "m=audio 5002 RTP/SAVP 0",
                "m=audio 5004 RTP/AVP 18 8",
                "m=audio 5006 RTP/AVP 0",
                "m=application 5008 UDP/BFCP *",
            ),
            LOCAL,
        )
    )
    assert [str(m.lines[0]) for m in result.sdp.media] == [
        "m=video 0 RTP/AVP 31",
        "m=audio 0 RTP/SAVP 0",
        "m=audio 40000 RTP/AVP 8",
        "m=audio 0 RTP/AVP 0",
        "m=application 0 UDP/BFCP *",
    ]
    assert (result.codec, result.remote_port) == (PCMA, 5004)


@pytest.mark.parametrize(
    ("attrs", "local_ptime", "ptime"),
    [
        ("", 20, 20),
        ("|a=ptime:30", 20, 30),
        ("|a=ptime:10", 20, 10),
        ("|a=ptime:60", 20, 60),
        ("|a=ptime:25", 20, 20),
        ("|a=ptime:70", 20, 20),
        ("|a=ptime:5", 20, 20),
        ("|a=ptime:20.0", 30, 20),
        ("", 30, 30),
        ("|a=maxptime:20", 30, 20),
        ("|a=ptime:40|a=maxptime:35", 20, 30),
        ("|a=maxptime:5", 30, 30),
    ],
)
def test_ptime(attrs: str, local_ptime: int, ptime: int) -> None:
    result = answered(
        negotiate(offer(f"m=audio 30000 RTP/AVP 0{attrs}"), replace(LOCAL, ptime_ms=local_ptime))
    )
    assert result.ptime_ms == ptime
    assert result.sdp.media[0].ptime_ms == ptime


@pytest.mark.parametrize(
    ("attrs", "c", "answer", "on_hold"),
    [
        ("", "198.51.100.7", Direction.SENDRECV, False),
        ("|a=sendrecv", "198.51.100.7", Direction.SENDRECV, False),
        ("|a=sendonly", "198.51.100.7", Direction.RECVONLY, True),
        ("|a=recvonly", "198.51.100.7", Direction.SENDONLY, False),
        ("|a=inactive", "198.51.100.7", Direction.INACTIVE, True),
        ("", "0.0.0.0", Direction.RECVONLY, True),  # RFC 2543 hold
        ("|a=sendonly", "0.0.0.0", Direction.RECVONLY, True),
        ("|a=recvonly", "0.0.0.0", Direction.INACTIVE, True),
        ("|a=inactive", "0.0.0.0", Direction.INACTIVE, True),
    ],
)
def test_direction_and_hold(attrs: str, c: str, answer: Direction, on_hold: bool) -> None:
    result = answered(negotiate(offer(f"m=audio 30000 RTP/AVP 0{attrs}", c=f"c=IN IP4 {c}"), LOCAL))
    assert (result.direction, result.on_hold) == (answer, on_hold)
    assert result.sdp.media[0].direction is answer


def test_session_level_direction_applies_unless_media_overrides() -> None:
    held = offer("m=audio 30000 RTP/AVP 0", session_attrs=("a=sendonly",))
    assert answered(negotiate(held, LOCAL)).direction is Direction.RECVONLY
    overridden = offer("m=audio 30000 RTP/AVP 0|a=sendrecv", session_attrs=("a=inactive",))
    assert answered(negotiate(overridden, LOCAL)).direction is Direction.SENDRECV


def test_hold_and_unhold_reinvites_bump_our_version() -> None:
    def reoffer(version: int, *extra: str, c: str = "198.51.100.7") -> SessionDescription:
        return SessionDescription.parse(
            sdp(
                "v=0",
                f"o=peer 42 {version} IN IP4 198.51.100.7",
                "s=-",
                f"c=IN IP4 {c}",
                "t=0 0",
                "m=audio 30000 RTP/AVP 0 101",
                "a=rtpmap:101 telephone-event/8000",
                *extra,
            )
        )

    local = LOCAL
    steps = [
        (reoffer(1), Direction.SENDRECV, False),
        (reoffer(2, "a=sendonly"), Direction.RECVONLY, True),
        (reoffer(3, "a=sendrecv"), Direction.SENDRECV, False),
        (reoffer(4, "a=inactive"), Direction.INACTIVE, True),
        (reoffer(5, c="0.0.0.0"), Direction.RECVONLY, True),
        (reoffer(6), Direction.SENDRECV, False),
    ]
    for n, (sd, direction, on_hold) in enumerate(steps):
        result = answered(negotiate(sd, local))
        assert (result.direction, result.on_hold) == (direction, on_hold)
        assert result.sdp.origin.session_version == LOCAL.session_version + n
        assert result.sdp.origin.session_id == LOCAL.session_id
        local = local.next_version()


def test_remote_address_prefers_media_level_connection() -> None:
    sd = SessionDescription.parse(vector("cisco_gateway_offer.sdp"))
    result = answered(negotiate(sd, LOCAL))
    assert (result.remote_address, result.remote_port, result.codec) == ("192.0.2.51", 16444, PCMU)


def test_ipv6_offer_and_ipv6_local_address() -> None:
    sd = offer("m=audio 30000 RTP/AVP 8", c="c=IN IP6 2001:db8::1")
    local = replace(LOCAL, address="2001:db8::100")
    result = answered(negotiate(sd, local))
    assert result.remote_address == "2001:db8::1"
    assert result.sdp.connection == Connection("IN", "IP6", "2001:db8::100")
    assert result.sdp.origin.addr_type == "IP6"


@pytest.mark.parametrize("name", VECTOR_NAMES)
def test_every_vector_negotiates_to_a_well_formed_answer(name: str) -> None:
    sd = SessionDescription.parse(vector(name))
    result = negotiate(sd, LOCAL)
    if isinstance(result, Answer):
        assert len(result.sdp.media) == len(sd.media)
        assert SessionDescription.parse(str(result.sdp)) == result.sdp
    else:
        # Linphone offers opus (no G.711 rtpmap); the RFC 4566 example has a usable PCMU stream.
        assert name == "linphone_ipv6_offer.sdp" and result.reason is RejectReason.NO_CODEC


# ---------------------------------------------------------------------------------------------
# build_offer() and accept_answer(): our offer, e.g. in the 200 OK to an INVITE without SDP


def test_build_offer_exact() -> None:
    assert str(build_offer(LOCAL)) == sdp(
        "v=0",
        "o=va 1234 1 IN IP4 192.0.2.100",
        "s=-",
        "c=IN IP4 192.0.2.100",
        "t=0 0",
        "m=audio 40000 RTP/AVP 0 8 101",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:8 PCMA/8000",
        "a=rtpmap:101 telephone-event/8000",
        "a=fmtp:101 0-16",
        "a=ptime:20",
        "a=sendrecv",
    )


def test_build_offer_options() -> None:
    local = replace(LOCAL, codecs=(PCMA,), telephone_event=False, ptime_ms=30).next_version()
    sd = build_offer(local, Direction.SENDONLY)
    assert sd.origin.session_version == 2
    assert [str(x) for x in sd.media[0].lines] == [
        "m=audio 40000 RTP/AVP 8",
        "a=rtpmap:8 PCMA/8000",
        "a=ptime:30",
        "a=sendonly",
    ]


def answer_to(
    our_offer: SessionDescription, *media: str, c: str = "203.0.113.9"
) -> SessionDescription:
    lines = ["v=0", "o=pbx 9 9 IN IP4 203.0.113.9", "s=-", f"c=IN IP4 {c}", "t=0 0"]
    return SessionDescription.parse(sdp(*lines, *(x for m in media for x in m.split("|"))))


def test_offerless_flow_picks_the_answerers_codec() -> None:
    our_offer = build_offer(LOCAL)
    answer = answer_to(
        our_offer,
        "m=audio 20000 RTP/AVP 8 101|a=rtpmap:101 telephone-event/8000|a=fmtp:101 0-15|a=ptime:30",
    )
    result = answered(accept_answer(our_offer, answer))
    assert result == Answer(
        answer,
        PCMA,
        telephone_event_pt=101,
        ptime_ms=30,
        remote_address="203.0.113.9",
        remote_port=20000,
        direction=Direction.SENDRECV,
        on_hold=False,
    )


def test_uac_and_uas_agree() -> None:
    """Tier 2: our UAC offers, our UAS answers, and both ends reach the same stream."""
    caller = replace(LOCAL, codecs=(PCMA, PCMU))
    callee = LocalMedia("198.51.100.1", 50000, session_id=77, username="callee")
    our_offer = build_offer(caller)
    uas = answered(negotiate(our_offer, callee))
    uac = answered(accept_answer(our_offer, uas.sdp))
    assert uas.codec == uac.codec == PCMA
    assert uas.telephone_event_pt == uac.telephone_event_pt == 101
    assert (uas.remote_address, uas.remote_port) == (caller.address, caller.rtp_port)
    assert (uac.remote_address, uac.remote_port) == (callee.address, callee.rtp_port)
    assert uas.direction is uac.direction is Direction.SENDRECV


def test_uac_puts_the_peer_on_hold() -> None:
    our_offer = build_offer(LOCAL.next_version(), Direction.SENDONLY)
    uas = answered(negotiate(our_offer, LocalMedia("198.51.100.1", 50000)))
    assert (uas.direction, uas.on_hold) == (Direction.RECVONLY, True)
    uac = answered(accept_answer(our_offer, uas.sdp))
    assert (uac.direction, uac.on_hold) == (Direction.SENDONLY, False)


@pytest.mark.parametrize(
    ("attrs", "c", "direction", "on_hold"),
    [
        ("|a=recvonly", "203.0.113.9", Direction.SENDONLY, False),
        ("|a=sendonly", "203.0.113.9", Direction.RECVONLY, True),
        ("|a=inactive", "203.0.113.9", Direction.INACTIVE, True),
        ("", "0.0.0.0", Direction.RECVONLY, True),
    ],
)
def test_accept_answer_direction(attrs: str, c: str, direction: Direction, on_hold: bool) -> None:
    our_offer = build_offer(LOCAL)
    result = answered(
        accept_answer(our_offer, answer_to(our_offer, f"m=audio 20000 RTP/AVP 0{attrs}", c=c))
    )
    assert (result.direction, result.on_hold, result.telephone_event_pt) == (
        direction,
        on_hold,
        None,
    )


@pytest.mark.parametrize(
    ("media", "reason"),
    [
        (("m=audio 0 RTP/AVP 0",), RejectReason.NO_CODEC),
        (("m=audio 20000 RTP/AVP 18",), RejectReason.NO_CODEC),
        (("m=audio 20000 RTP/SAVP 0",), RejectReason.BAD_PROTO),
        (("m=video 20000 RTP/AVP 31",), RejectReason.MISMATCH),
        ((), RejectReason.MISMATCH),
        (("m=audio 20000 RTP/AVP 0", "m=video 0 RTP/AVP 31"), RejectReason.MISMATCH),
    ],
)
def test_accept_answer_rejections(media: tuple[str, ...], reason: RejectReason) -> None:
    our_offer = build_offer(LOCAL)
    assert accept_answer(our_offer, answer_to(our_offer, *media)) == Rejection(reason)


def test_accept_answer_uses_the_first_offered_codec_in_the_answer() -> None:
    our_offer = build_offer(LOCAL)
    answer = answer_to(our_offer, "m=audio 20000 RTP/AVP 18 8 0|a=rtpmap:18 G729/8000")
    assert answered(accept_answer(our_offer, answer)).codec == PCMA


def test_local_media_validation() -> None:
    with pytest.raises(ValueError, match="rtp_port 0 is not a port"):
        LocalMedia("192.0.2.1", 0)
    with pytest.raises(ValueError, match="at least one codec"):
        LocalMedia("192.0.2.1", 4000, codecs=())
    with pytest.raises(ValueError, match="dynamic"):
        LocalMedia("192.0.2.1", 4000, telephone_event_pt=0)
    assert LOCAL.next_version().next_version().session_version == LOCAL.session_version + 2


@pytest.mark.parametrize("direction", list(Direction))
def test_direction_opposite_is_an_involution(direction: Direction) -> None:
    assert direction.opposite().opposite() is direction
    assert direction.opposite().sends == direction.receives


# ---------------------------------------------------------------------------------------------
# Hypothesis properties

TOKEN = st.text(string.ascii_letters + string.digits + "-._+", min_size=1, max_size=10)
TEXT = st.text(st.characters(blacklist_characters="\r\n\x00"), max_size=20)
RESERVED = {"rtpmap", "fmtp", "ptime", "maxptime"}
ADDRESSES = st.one_of(
    st.ip_addresses(v=4).map(lambda a: ("IP4", str(a))),
    st.ip_addresses(v=6).map(lambda a: ("IP6", str(a))),
    st.sampled_from([("IP4", "host.example.com"), ("IP6", "::ffff:192.0.2.2")]),
)


@st.composite
def connections(draw: st.DrawFn) -> Connection:
    addr_type, address = draw(ADDRESSES)
    return Connection("IN", addr_type, address)


@st.composite
def attributes(draw: st.DrawFn) -> Attribute:
    kind = draw(st.sampled_from(["free", "rtpmap", "fmtp", "ptime", "direction"]))
    pt = draw(st.integers(0, 127))
    if kind == "rtpmap":
        channels = draw(st.none() | st.integers(1, 8))
        return Attribute(
            "rtpmap", str(RtpMap(pt, draw(TOKEN), draw(st.integers(1, 96000)), channels))
        )
    if kind == "fmtp":
        return Attribute("fmtp", f"{pt} {draw(TEXT)}")
    if kind == "ptime":
        return Attribute(
            draw(st.sampled_from(["ptime", "maxptime"])), str(draw(st.integers(0, 999)))
        )
    if kind == "direction":
        return Attribute(draw(st.sampled_from(list(Direction))).value)
    name = draw(TOKEN.filter(lambda n: n not in RESERVED))
    return Attribute(name, draw(st.none() | TEXT))


@st.composite
def media_descriptions(draw: st.DrawFn) -> MediaDescription:
    line = MediaLine(
        draw(st.sampled_from(["audio", "video", "application", "image"])),
        draw(st.integers(0, 65535)),
        draw(st.sampled_from(["RTP/AVP", "RTP/SAVP", "udptl", "UDP/TLS/RTP/SAVPF"])),
        tuple(draw(st.lists(st.integers(0, 127).map(str), min_size=1, max_size=6))),
        draw(st.none() | st.integers(1, 4)),
    )
    connection = draw(st.none() | connections())
    return MediaDescription.build(line, draw(st.lists(attributes(), max_size=6)), connection)


@st.composite
def descriptions(draw: st.DrawFn) -> SessionDescription:
    addr_type, address = draw(ADDRESSES)
    origin = Origin(
        draw(TOKEN),
        draw(st.integers(0, 2**64)),
        draw(st.integers(0, 2**64)),
        "IN",
        addr_type,
        address,
    )
    base = SessionDescription.build(
        origin,
        draw(st.none() | connections()),
        draw(st.lists(media_descriptions(), max_size=4)),
        draw(TEXT),
    )
    extra = [SdpLine("a", str(a)) for a in draw(st.lists(attributes(), max_size=3))]
    return SessionDescription((*base.session, *extra), base.media)


@given(descriptions())
def test_generated_descriptions_round_trip(sd: SessionDescription) -> None:
    text = str(sd)
    assert SessionDescription.parse(text) == sd
    assert str(SessionDescription.parse(text)) == text


@given(descriptions())
def test_negotiate_is_total_on_valid_offers(sd: SessionDescription) -> None:
    result = negotiate(sd, LOCAL)
    if isinstance(result, Answer):
        assert len(result.sdp.media) == len(sd.media)
        assert [m.media for m in result.sdp.media] == [m.media for m in sd.media]
        assert sum(m.port != 0 for m in result.sdp.media) == 1
        assert SessionDescription.parse(str(result.sdp)) == result.sdp
    else:
        assert result.status == 488


def check_parse_contract(text: str) -> None:
    """The fuzz rule: parse succeeds or raises SipParseError, and what parses is stable."""
    try:
        sd = SessionDescription.parse(text)
    except SipParseError:
        return
    assert SessionDescription.parse(str(sd)) == sd
    assert isinstance(negotiate(sd, LOCAL), Answer | Rejection)


@given(st.text())
def test_arbitrary_text_raises_only_sip_parse_error(text: str) -> None:
    check_parse_contract(text)


@given(st.binary().map(lambda b: b.decode("utf-8", "surrogateescape")))
def test_arbitrary_bytes_raise_only_sip_parse_error(text: str) -> None:
    check_parse_contract(text)


SDP_FRAGMENTS = (
    "0|- 1 1 IN IP4 192.0.2.1|IN IP4 0.0.0.0|IN IP6 ::ffff:1.2.3.4|IN IP4 224.0.0.1/2/3|0 0"
    "|audio 49170 RTP/AVP 0 8 101|audio 0/2 RTP/AVP 9|rtpmap:101 telephone-event/8000"
    "|fmtp:101 0-16|ptime:30|maxptime:20|sendonly|inactive|rtpmap:8 PCMA/8000"
).split("|")


@given(
    st.lists(
        st.tuples(
            st.sampled_from(list("vosctmaibkzrx") + ["", "V"]),
            st.sampled_from(SDP_FRAGMENTS) | st.text(max_size=12),
        ),
        max_size=12,
    ),
    st.sampled_from(["\r\n", "\n", "\r"]),
)
def test_sdp_shaped_text_raises_only_sip_parse_error(
    lines: list[tuple[str, str]], eol: str
) -> None:
    head = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
    check_parse_contract(head + eol.join(f"{t}={v}" for t, v in lines))


@given(st.sampled_from(VECTOR_NAMES), st.data())
def test_mutated_vectors_raise_only_sip_parse_error(name: str, data: st.DataObject) -> None:
    text = vector(name)
    at = data.draw(st.integers(0, len(text)))
    cut = data.draw(st.integers(0, 4))
    check_parse_contract(text[:at] + data.draw(st.text(max_size=4)) + text[at + cut :])
