"""Parsing and serialising whole SIP messages (RFC 3261 §7, §18.3, §20), and the one boundary
where parse errors become answers (`TransactionLayer.receive_datagram`).

Tier 1 vectors end with ``bytes(parse_message(x)) == x``. Hypothesis: (a) generated requests
and responses survive ``parse_message(bytes(m)) == m``; (b) arbitrary and mutated bytes make
`parse_message` raise nothing but `SipParseError`; (c) the transaction layer never raises and
answers to, or drops, whatever it is fed.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sip.errors import SipParseError
from sip.headers import CSeq, Headers
from sip.layer import Address, Event, MessageRejected, RequestReceived, TransactionLayer
from sip.message import (
    MAX_MESSAGE_BYTES,
    Request,
    Response,
    make_response,
    parse_message,
    partial_request,
)


def exact(message: str) -> str:
    """A `pytest.raises` pattern that matches exactly ``message``."""
    return f"^{re.escape(message)}$"


def case_id(value: object) -> str:
    """Short test ids: raw messages are named by the error they provoke instead."""
    return "msg" if isinstance(value, bytes) else str(value)


def crlf(*lines: str, body: bytes = b"") -> bytes:
    """A message from header lines (start line first), the empty line, then ``body``."""
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + body


SDP = (
    b"v=0\r\no=alice 2890844526 2890844526 IN IP4 pc33.atlanta.example.com\r\ns=-\r\n"
    b"c=IN IP4 192.0.2.101\r\nt=0 0\r\nm=audio 49172 RTP/AVP 0\r\n"
)
# RFC 3261 §24.2 F1 (with the example.com names of RFC 4475's era)
INVITE = crlf(
    "INVITE sip:bob@biloxi.example.com SIP/2.0",
    "Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds",
    "Max-Forwards: 70",
    "To: Bob <sip:bob@biloxi.example.com>",
    "From: Alice <sip:alice@atlanta.example.com>;tag=1928301774",
    "Call-ID: a84b4c76e66710@pc33.atlanta.example.com",
    "CSeq: 314159 INVITE",
    "Contact: <sip:alice@pc33.atlanta.example.com>",
    "Content-Type: application/sdp",
    f"Content-Length: {len(SDP)}",
    body=SDP,
)
RINGING = crlf(
    "SIP/2.0 180 Ringing",
    "Via: SIP/2.0/UDP server10.biloxi.example.com;branch=z9hG4bK4b43c2ff8.1;received=192.0.2.3",
    "Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds;received=192.0.2.1",
    "To: Bob <sip:bob@biloxi.example.com>;tag=a6c85cf",
    "From: Alice <sip:alice@atlanta.example.com>;tag=1928301774",
    "Call-ID: a84b4c76e66710@pc33.atlanta.example.com",
    "Contact: <sip:bob@192.0.2.4>",
    "CSeq: 314159 INVITE",
    "Content-Length: 0",
)
# Compact names, folded lines, LWS around separators, a quoted-pair, an unknown header.
COMPACT_FOLDED = crlf(
    "REGISTER sip:registrar.example.com SIP/2.0",
    "v: SIP/2.0/UDP 192.0.2.7:5070",
    "  ;branch=z9hG4bKfold;rport",
    'f  : "Al \\"the pal\\""',
    "\t<sip:al@example.com>;tag=9",
    "t:<sip:al@example.com>",
    "i: fold.1@192.0.2.7",
    "CSeq:   2   REGISTER",
    "m: <sip:al@192.0.2.7:5070>;expires=60, <sip:al@192.0.2.8>;q=0.5",
    "X-Odd:  ;;,,;;,;  ",
    "l: 0",
)
ACK_NO_BODY = crlf(
    "ACK sip:bob@192.0.2.4 SIP/2.0",
    "Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bKnashds9",
    "Max-Forwards: 70",
    "To: Bob <sip:bob@biloxi.example.com>;tag=a6c85cf",
    "From: Alice <sip:alice@atlanta.example.com>;tag=1928301774",
    "Call-ID: a84b4c76e66710@pc33.atlanta.example.com",
    "CSeq: 314159 ACK",
    "Content-Length: 0",
)


def options(
    *extra: str,
    uri: str = "sip:va@127.0.0.1",
    method: str = "OPTIONS",
    cseq_method: str | None = None,
    body: bytes = b"",
    content_length: str | None = "auto",
) -> bytes:
    """A small valid request, with ``extra`` header lines added before Content-Length."""
    lines = [
        f"{method} {uri} SIP/2.0",
        "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKopt1",
        "From: <sip:probe@example.com>;tag=p1",
        "To: <sip:va@example.com>",
        "Call-ID: opt1@192.0.2.1",
        f"CSeq: 7 {cseq_method or method}",
        "Max-Forwards: 70",
        *extra,
    ]
    if content_length == "auto":
        lines.append(f"Content-Length: {len(body)}")
    elif content_length is not None:
        lines.append(f"Content-Length: {content_length}")
    return crlf(*lines, body=body)


# --------------------------------------------------------------------------------- vectors


def test_invite_vector() -> None:
    request = parse_message(INVITE)
    assert isinstance(request, Request)
    assert (request.method, request.uri, request.version) == (
        "INVITE",
        "sip:bob@biloxi.example.com",
        "SIP/2.0",
    )
    assert request.request_uri().user == "bob"
    assert [str(v) for v in request.via()] == [
        "SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds"
    ]
    assert request.top_via().branch == "z9hG4bK776asdhds"
    assert request.cseq() == CSeq(314159, "INVITE")
    assert request.from_().tag == "1928301774"
    assert request.to().tag is None
    assert request.to().display_name == "Bob"
    assert request.call_id() == "a84b4c76e66710@pc33.atlanta.example.com"
    assert [str(c.uri) for c in request.contact()] == ["sip:alice@pc33.atlanta.example.com"]
    assert request.content_type() == "application/sdp"
    assert request.body == SDP
    assert bytes(request) == INVITE


def test_response_vector() -> None:
    response = parse_message(RINGING)
    assert isinstance(response, Response)
    assert (response.status, response.reason) == (180, "Ringing")
    assert [v.sent_by.host for v in response.via()] == [
        "server10.biloxi.example.com",
        "pc33.atlanta.example.com",
    ]
    assert response.to().tag == "a6c85cf"
    assert response.body == b""
    assert bytes(response) == RINGING


def test_compact_forms_folding_and_quoted_pairs() -> None:
    request = parse_message(COMPACT_FOLDED)
    assert isinstance(request, Request)
    via = request.top_via()
    assert (str(via.sent_by), via.branch, via.has_rport) == ("192.0.2.7:5070", "z9hG4bKfold", True)
    assert request.from_().display_name == '"Al \\"the pal\\""'
    assert request.from_().tag == "9"
    assert request.call_id() == "fold.1@192.0.2.7"
    assert request.cseq() == CSeq(2, "REGISTER")
    contacts = request.contact()
    assert [(str(c.uri), c.params) for c in contacts] == [
        ("sip:al@192.0.2.7:5070", (("expires", "60"),)),
        ("sip:al@192.0.2.8", (("q", "0.5"),)),
    ]
    assert request.headers.get("x-odd") == ";;,,;;,;"  # unknown headers pass through
    assert request.headers.get("content-length") == "0"
    assert bytes(request) == COMPACT_FOLDED  # the folded lines go out exactly as they came


def test_ack_vector_and_lf_only_message() -> None:
    ack = parse_message(ACK_NO_BODY)
    assert isinstance(ack, Request) and ack.method == "ACK"
    assert bytes(ack) == ACK_NO_BODY
    # Bare LF line ends (hand-written tests, some embedded stacks) are tolerated like pjsip
    # does, and the raw lines keep them.
    lf_only = ACK_NO_BODY.replace(b"\r\n", b"\n")
    parsed = parse_message(lf_only)
    assert isinstance(parsed, Request) and parsed.cseq() == CSeq(314159, "ACK")
    assert parsed == ack  # same meaning
    assert (
        bytes(parsed)
        == b"ACK sip:bob@192.0.2.4 SIP/2.0\r\n" + lf_only.split(b"\n", 1)[1][:-1] + b"\r\n"
    )


def test_leading_crlfs_are_ignored() -> None:
    # RFC 3261 §7.5: CRLFs before the start line are skipped (keepalives glued on).
    message = parse_message(b"\r\n\r\n" + INVITE)
    assert bytes(message) == INVITE


def test_reason_phrases_utf8_and_empty() -> None:
    # RFC 4475 §3.1.1.12 unreason / §3.1.1.13 noreason
    utf8 = RINGING.replace(b"180 Ringing", "180 Bi\u00e9n s\u00fbr \u2603 %41".encode())
    response = parse_message(utf8)
    assert isinstance(response, Response)
    assert response.reason == "Bi\u00e9n s\u00fbr \u2603 %41"
    assert bytes(response) == utf8
    empty = RINGING.replace(b"180 Ringing", b"180 ")
    response = parse_message(empty)
    assert isinstance(response, Response) and response.reason == ""
    assert bytes(response) == empty


def test_invalid_utf8_survives_the_round_trip() -> None:
    # Text is decoded with surrogateescape, so every byte goes back on the wire unchanged.
    raw = options("Subject: caf\xe9".encode("latin-1").decode("latin-1"))
    raw = raw.replace("caf\xe9".encode(), b"caf\xe9\xff")
    message = parse_message(raw)
    assert bytes(message) == raw


def test_unknown_method_and_extension_headers_pass_through() -> None:
    raw = options('X-Weird-Header: <a>;b="c,d"', "Require: foo", method="NEWMETHOD")
    request = parse_message(raw)
    assert isinstance(request, Request) and request.method == "NEWMETHOD"
    assert request.headers.values("require") == ["foo"]
    assert bytes(request) == raw


# -------------------------------------------------------------------- Content-Length framing


def test_udp_octets_past_content_length_are_ignored() -> None:
    # RFC 3261 §18.3 / RFC 4475 §3.1.1.8 dblreq: the trailing bytes are noise.
    trailing = b"INVITE sip:x@example.com SIP/2.0\r\n\r\n"
    message = parse_message(INVITE + trailing)
    assert message.body == parse_message(INVITE).body
    assert bytes(message) == INVITE


def test_udp_without_content_length_the_body_runs_to_the_end() -> None:
    # RFC 4475 §3.4.1 inv2543
    raw = options(body=b"hello\r\nworld", content_length=None)
    message = parse_message(raw)
    assert message.body == b"hello\r\nworld"
    assert "content-length" not in message.headers
    # serialising always frames the body
    assert bytes(message) == options(body=b"hello\r\nworld")
    assert parse_message(bytes(message)).body == b"hello\r\nworld"


def test_stream_messages_need_content_length() -> None:
    raw = options(content_length=None)
    with pytest.raises(SipParseError, match=exact("missing Content-Length on a stream transport")):
        parse_message(raw, stream=True)
    assert bytes(parse_message(options(), stream=True)) == options()


@pytest.mark.parametrize(
    ("content_length", "message"),
    [
        ("9999", "Content-Length is larger than the body"),  # RFC 4475 clerr
        ("-999", "Content-Length is not a number"),  # ncl
        ("1e3", "Content-Length is not a number"),
        ("4294967296", "Content-Length is out of range"),
        ("9" * 400, "Content-Length is out of range"),
    ],
)
def test_bad_content_length_is_400_with_the_partial_request(
    content_length: str, message: str
) -> None:
    raw = options(body=b"abc", content_length=content_length)
    with pytest.raises(SipParseError, match=exact(message)) as info:
        parse_message(raw)
    assert info.value.status_hint == 400
    assert info.value.request is not None
    assert info.value.request.headers.get("call-id") == "opt1@192.0.2.1"


def test_conflicting_content_lengths() -> None:
    # RFC 4475 §3.3.9 mcl01
    raw = options("Content-Length: 5", body=b"abc", content_length="3")
    with pytest.raises(SipParseError, match=exact("conflicting Content-Length headers")):
        parse_message(raw)


def test_messages_over_64_kib_get_513() -> None:
    padding = "x" * (MAX_MESSAGE_BYTES - len(options()) - len("X-Pad: \r\n"))
    largest = options(f"X-Pad: {padding}")
    assert len(largest) == MAX_MESSAGE_BYTES
    assert bytes(parse_message(largest)) == largest  # the limit itself is fine
    too_large = options(f"X-Pad: {padding}x")
    with pytest.raises(SipParseError, match=exact("message is larger than 65535 bytes")) as info:
        parse_message(too_large)
    assert info.value.status_hint == 513
    assert info.value.request is not None  # so the boundary can still answer 513
    assert info.value.request.headers.get("via") == "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKopt1"


def test_a_long_but_legal_request_is_not_513() -> None:
    # RFC 4475 §3.1.1.7 longreq: 3.5 kB with 34 Via values
    vias = [f"Via: SIP/2.0/TCP sip{n}.example.com;branch=z9hG4bK{'a' * 60}{n}" for n in range(34)]
    raw = options(*vias, "X-Long: " + "y" * 2000)
    message = parse_message(raw)
    assert len(message.via()) == 35
    assert bytes(message) == raw


# ------------------------------------------------------------------------ validation errors


@pytest.mark.parametrize(
    ("raw", "message", "status"),
    [
        (options().replace(b"SIP/2.0\r\nVia", b"SIP/7.0\r\nVia"), "unsupported 'SIP/7.0'", 505),
        (options().replace(b"SIP/2.0\r\nVia", b"SIP/2\r\nVia"), "malformed SIP-Version", 400),
        (
            options().replace(b"OPTIONS sip:va@127.0.0.1", b"OPTIONS  sip:va@127.0.0.1"),
            "malformed start line",
            400,
        ),  # RFC 4475 lwsstart
        (options().replace(b"SIP/2.0\r\nVia", b"SIP/2.0  \r\nVia"), "malformed start line", 400),
        (options(uri="<sip:va@127.0.0.1>"), "invalid Request-URI: URI lacks a scheme", 400),
        (options(uri="sip:va@2001:db8::1"), "invalid Request-URI: invalid host", 400),
        (
            options().replace(b"Call-ID: opt1@192.0.2.1\r\n", b""),
            "missing mandatory header call-id",
            400,
        ),
        (options("To: <sip:other@example.com>"), "to appears more than once", 400),
        (options("Max-Forwards: 70"), "max-forwards appears more than once", 400),
        (options(cseq_method="INVITE"), "CSeq method does not match the request method", 400),
        # RFC 4475 §3.1.2.18 mismatch02: an unknown method prefers 501
        (
            options(method="NEWMETHOD", cseq_method="INVITE"),
            "CSeq method does not match the request method",
            501,
        ),
        (
            options().replace(b"Max-Forwards: 70", b"Max-Forwards: 300"),
            "Max-Forwards is out of range",
            400,
        ),
        (options("Expires: 4294967296"), "Expires is out of range", 400),
        (
            options("Contact: <sip:a@b.example.com>;expires=280297596632815"),
            "Contact expires is out of range",
            400,
        ),
        (
            options("Contact: sip:a@b.example.com?Route=x"),
            "addr-spec with '?' or ',' must be in <> in Contact",
            400,
        ),
        (
            options().replace(b"Call-ID: opt1@192.0.2.1", b"Call-ID: a b"),
            "Call-ID is malformed",
            400,
        ),
        (options("Bad Header: x"), "malformed header line", 400),
        (
            options().replace(b"\r\n\r\n", b"\r\n"),
            "message has no empty line after the headers",
            400,
        ),
    ],
    ids=case_id,
)
def test_request_errors_carry_status_hint_and_partial(
    raw: bytes, message: str, status: int
) -> None:
    with pytest.raises(SipParseError, match=exact(message)) as info:
        parse_message(raw)
    assert info.value.status_hint == status
    partial = info.value.request
    assert partial is not None  # the request line was readable: a response can be formed
    response = make_response(partial, status)
    assert response.headers.get("call-id") == (partial.headers.get("call-id"))
    assert response.headers.get("via") == partial.headers.get("via")


@pytest.mark.parametrize(
    ("raw", "message", "status"),
    [
        (
            RINGING.replace(b"SIP/2.0 180", b"SIP/2.0 4294967301"),  # RFC 4475 bigcode
            "status code is not in 100-699",
            400,
        ),
        (RINGING.replace(b"SIP/2.0 180", b"SIP/2.0 099"), "status code is not in 100-699", 400),
        (
            RINGING.replace(b"SIP/2.0 180", b"SIP/3.0 180"),
            "unsupported SIP version in a response",
            505,
        ),
        (
            RINGING.replace(b"CSeq: 314159", b"CSeq: 36893488147419103232"),  # scalarlg
            "CSeq number exceeds 2**32-1",
            400,
        ),
    ],
    ids=case_id,
)
def test_broken_responses_have_no_partial_request(raw: bytes, message: str, status: int) -> None:
    with pytest.raises(SipParseError, match=exact(message)) as info:
        parse_message(raw)
    assert info.value.status_hint == status
    assert info.value.request is None  # responses are never answered


@pytest.mark.parametrize(
    "raw", [b"", b"\r\n\r\n", b"\x00\x01\x02", b"hello", b"INVITE\r\n\r\n", b"SIP/2.0 200 OK"]
)
def test_garbage(raw: bytes) -> None:
    with pytest.raises(SipParseError) as info:
        parse_message(raw)
    assert info.value.request is None


def test_partial_request() -> None:
    partial = partial_request(b"\r\nOPTIONS sip:x@y SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nTo: <sip:tr")
    assert partial is not None
    assert (partial.method, partial.uri) == ("OPTIONS", "sip:x@y")
    assert partial.headers.get("via") == "SIP/2.0/UDP h"
    assert partial_request(RINGING) is None
    assert partial_request(b"garbage") is None


# ----------------------------------------------------------------------------- make_response


def test_make_response_copies_the_transaction_headers() -> None:
    request = parse_message(COMPACT_FOLDED.replace(b"l: 0", b"Timestamp: 54\r\nl: 0"))
    assert isinstance(request, Request)
    ok = make_response(request, 200, to_tag="srv1", headers=(("Contact", "<sip:va@127.0.0.1>"),))
    assert ok.headers.values("via") == request.headers.values("via")
    assert ok.from_() == request.from_()
    assert ok.to().tag == "srv1" and ok.to().uri == request.to().uri
    assert ok.call_id() == request.call_id() and ok.cseq() == request.cseq()
    assert "timestamp" not in ok.headers
    trying = make_response(request, 100, to_tag="srv1")
    assert trying.to().tag is None  # never a tag on 100 (§8.2.6.1)
    assert trying.headers.get("timestamp") == "54"
    assert trying.reason == "Trying"
    # a To that already has a tag keeps it
    in_dialog = parse_message(BYE)
    assert isinstance(in_dialog, Request)
    assert make_response(in_dialog, 481, to_tag="new").to().tag == "1928301774"
    wire = bytes(ok)
    assert wire.startswith(b"SIP/2.0 200 OK\r\n") and wire.endswith(b"Content-Length: 0\r\n\r\n")
    assert parse_message(wire) == ok


BYE = crlf(
    "BYE sip:alice@pc33.atlanta.example.com SIP/2.0",
    "Via: SIP/2.0/UDP 192.0.2.4;branch=z9hG4bKnashds10",
    "Max-Forwards: 70",
    "From: Bob <sip:bob@biloxi.example.com>;tag=a6c85cf",
    "To: Alice <sip:alice@atlanta.example.com>;tag=1928301774",
    "Call-ID: a84b4c76e66710@pc33.atlanta.example.com",
    "CSeq: 231 BYE",
    "Content-Length: 0",
)


def test_built_messages_are_framed() -> None:
    request = Request(
        method="MESSAGE",
        uri="sip:a@b.example.com",
        headers=Headers(
            [
                ("Via", "SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKm"),
                ("From", "<sip:c@d>;tag=1"),
                ("To", "<sip:a@b.example.com>"),
                ("Call-ID", "m1"),
                ("CSeq", "1 MESSAGE"),
                ("Content-Length", "99"),
            ]
        ),
        body=b"hi",
    )
    wire = bytes(request)
    assert b"Content-Length: 2\r\n\r\nhi" in wire and b"99" not in wire
    assert parse_message(wire).body == b"hi"


# ------------------------------------------------------------------------------- Hypothesis

_ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_TOKEN_CHARS = _ALNUM + "-.!%*_+`'~"
_TOKEN = st.text(_TOKEN_CHARS, min_size=1, max_size=12)
_LABEL = st.builds(lambda a, b: a + b, st.sampled_from(_ALNUM[:52]), st.text(_ALNUM, max_size=8))
_HOST = st.one_of(
    st.lists(_LABEL, min_size=1, max_size=3).map(".".join),
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(lambda a: f"[{a}]"),
)
_PORT = st.one_of(st.none(), st.integers(1, 65535))
_HOSTPORT = st.builds(lambda h, p: h if p is None else f"{h}:{p}", _HOST, _PORT)
_USER = st.text(_ALNUM + "-_.!~*'()+", min_size=1, max_size=10)
_URI = st.one_of(
    st.builds(
        lambda s, u, hp, t: f"{s}:{u}@{hp}{t}",
        st.sampled_from(["sip", "sips", "SIP"]),
        _USER,
        _HOSTPORT,
        st.sampled_from(["", ";transport=tcp", ";lr", ";user=phone"]),
    ),
    st.builds(lambda n: f"tel:+{n}", st.integers(0, 10**12)),
)
_METHOD = st.one_of(
    st.sampled_from(["INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "INFO", "UPDATE"]),
    _TOKEN,
)
_DISPLAY = st.one_of(
    st.just(""),
    st.text(_ALNUM, min_size=1, max_size=8).map(lambda t: t + " "),
    st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=10).map(
        lambda t: '"' + t.replace("\\", "\\\\").replace('"', '\\"') + '" '
    ),
)
# values of extension headers: printable text, no leading/trailing LWS (trimmed on parse)
_VALUE = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=30).map(
    lambda t: t.strip(" \t")
)
_EXT_NAME = st.builds(lambda t: "X-" + t, _TOKEN)


@st.composite
def _common_headers(draw: st.DrawFn, method: str) -> list[tuple[str, str]]:
    via = [
        f"SIP/2.0/{draw(st.sampled_from(['UDP', 'TCP', 'TLS']))} {draw(_HOSTPORT)}"
        f";branch=z9hG4bK{draw(_TOKEN)}"
        for _ in range(draw(st.integers(1, 3)))
    ]
    via_names = draw(st.sampled_from([("Via", "v"), ("VIA", "V")]))
    fields: list[tuple[str, str]] = [(via_names[i % 2], v) for i, v in enumerate(via)]
    fields += [
        (
            draw(st.sampled_from(["From", "f"])),
            f"{draw(_DISPLAY)}<{draw(_URI)}>;tag={draw(_TOKEN)}",
        ),
        (draw(st.sampled_from(["To", "t"])), f"{draw(_DISPLAY)}<{draw(_URI)}>"),
        (
            draw(st.sampled_from(["Call-ID", "i", "call-id"])),
            draw(_TOKEN) + draw(st.sampled_from(["", "@" + draw(_HOST)])),
        ),
        ("CSeq", f"{draw(st.integers(0, 2**32 - 1))} {method}"),
        ("Max-Forwards", str(draw(st.integers(0, 255)))),
    ]
    fields += draw(st.lists(st.tuples(_EXT_NAME, _VALUE), max_size=4))
    return draw(st.permutations(fields))


@st.composite
def requests(draw: st.DrawFn) -> Request:
    method = draw(_METHOD)
    body = draw(st.binary(max_size=200))
    fields = draw(_common_headers(method))
    fields.append((draw(st.sampled_from(["Content-Length", "l"])), str(len(body))))
    return Request(method=method, uri=draw(_URI), headers=Headers(fields), body=body)


@st.composite
def responses(draw: st.DrawFn) -> Response:
    body = draw(st.binary(max_size=200))
    fields = draw(_common_headers(draw(_METHOD)))
    fields.append(("Content-Length", str(len(body))))
    reason = draw(st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=20))
    return Response(
        status=draw(st.integers(100, 699)),
        reason=reason.rstrip("\r\n"),
        headers=Headers(fields),
        body=body,
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(requests(), responses()))
def test_generated_messages_round_trip(message: Request | Response) -> None:
    wire = bytes(message)
    parsed = parse_message(wire)
    assert parsed == message
    assert bytes(parsed) == wire
    assert parse_message(wire, stream=True) == message
    # the typed views work on everything we generate
    assert parsed.cseq().method in wire.decode("utf-8", "surrogateescape")
    assert len(parsed.via()) >= 1 and parsed.from_().tag is not None


_SEEDS = [INVITE, RINGING, COMPACT_FOLDED, ACK_NO_BODY, BYE, options()]
_NOISE = st.sampled_from(
    [
        b"\r\n",
        b"\n",
        b"\r",
        b" ",
        b"\t",
        b":",
        b";",
        b",",
        b"<",
        b">",
        b'"',
        b"\\",
        b"@",
        b"[",
        b"]",
        b"%",
        b"=",
        b"\x00",
        b"\xff",
        b"sip:",
        b"SIP/2.0",
        b"Content-Length: 5",
        b"l: 99999999999999999999",
        b"\r\n\r\n",
        b"\r\n ",
        b"v: SIP/2.0/UDP [::1",
        b"z9hG4bK",
    ]
)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(_SEEDS)))
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(data)))
        op = draw(st.sampled_from(["delete", "insert", "flip", "copy"]))
        if op == "delete":
            del data[at : at + draw(st.integers(1, 30))]
        elif op == "insert":
            data[at:at] = draw(_NOISE)
        elif op == "flip" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        else:
            start = draw(st.integers(0, len(data)))
            data[at:at] = data[start : start + draw(st.integers(1, 60))]
    return bytes(data)


_ANY_BYTES = st.one_of(st.binary(max_size=300), mutated())


@settings(max_examples=600, deadline=None)
@given(_ANY_BYTES)
def test_parse_message_raises_only_sip_parse_error(data: bytes) -> None:
    for stream in (False, True):
        try:
            message = parse_message(data, stream=stream)
        except SipParseError as exc:
            assert 400 <= exc.status_hint <= 599
            continue
        # whatever is accepted serialises to a fixed point
        wire = bytes(message)
        again = parse_message(wire)
        assert bytes(again) == wire
        assert again.headers.without("content-length") == message.headers.without("content-length")
        assert again.body == message.body


SOURCE = Address("udp", "127.0.0.1", 40000)


@settings(max_examples=400, deadline=None)
@given(st.lists(_ANY_BYTES, min_size=1, max_size=4))
def test_transaction_layer_answers_or_drops_anything(datagrams: list[bytes]) -> None:
    layer = TransactionLayer(tag_factory=lambda: "t0")
    for n, data in enumerate(datagrams):
        before = (
            layer.counters.dropped,
            layer.counters.rejected,
            layer.counters.responses_unmatched,
            layer.counters.retransmissions_absorbed,
        )
        layer.receive_datagram(data, SOURCE, now=float(n))  # must not raise
        events = []
        while (event := layer.next_event()) is not None:
            events.append(event)
        out = layer.datagrams_to_send()
        for _, address in out:
            assert address.host == SOURCE.host  # never to a host named in a header
        after = (
            layer.counters.dropped,
            layer.counters.rejected,
            layer.counters.responses_unmatched,
            layer.counters.retransmissions_absorbed,
        )
        accounted = bool(events) or after != before or not data.strip(b"\r\n")
        assert accounted, f"{data!r} was neither answered, passed up, nor counted"
        for event in events:
            if isinstance(event, MessageRejected) and event.status is not None:
                assert any(d.startswith(f"SIP/2.0 {event.status} ".encode()) for d, _ in out)
    layer.handle_timer(now=1000.0)
    assert all(a.host == SOURCE.host for _, a in layer.datagrams_to_send())
    assert layer.counters.received == len(datagrams)


# --------------------------------------------------------------- the boundary, by example


def drain(layer: TransactionLayer) -> tuple[list[Event], list[tuple[bytes, Address]]]:
    events: list[Event] = []
    while (event := layer.next_event()) is not None:
        events.append(event)
    return events, layer.datagrams_to_send()


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (options(uri="<sip:va@127.0.0.1>"), 400),
        (options().replace(b"SIP/2.0\r\nVia", b"SIP/7.0\r\nVia"), 505),
        (options("X-Pad: " + "p" * MAX_MESSAGE_BYTES), 513),
        (options(method="NEWMETHOD", cseq_method="INVITE"), 501),
    ],
    ids=["bad-uri", "version", "too-large", "unknown-method-cseq-mismatch"],
)
def test_broken_requests_are_answered_statelessly(data: bytes, status: int) -> None:
    layer = TransactionLayer(tag_factory=lambda: "srv")
    layer.receive_datagram(data, SOURCE, now=0.0)
    events, out = drain(layer)
    (event,) = events
    assert isinstance(event, MessageRejected)
    assert (event.status, event.source) == (status, SOURCE)
    ((wire, address),) = out
    response = parse_message(wire)
    assert isinstance(response, Response) and response.status == status
    assert response.to().tag == "srv"
    assert response.call_id() == "opt1@192.0.2.1"
    # the Via names 192.0.2.1:5060, but answers go to the source IP (and, without rport,
    # the Via port: RFC 3261 §18.2.2)
    assert address == Address("udp", "127.0.0.1", 5060)
    assert layer.counters.rejected == 1 and len(layer) == 0  # no transaction was created


@pytest.mark.parametrize(
    "data",
    [
        RINGING.replace(b"SIP/2.0 180", b"SIP/2.0 4294967301"),  # a broken response
        options()
        .replace(b"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKopt1\r\n", b"")
        .replace(b"OPTIONS sip", b"OPTIONS <sip"),  # no Via: nowhere to answer
        options(method="ACK").replace(b"sip:va@127.0.0.1", b"<sip:x>"),  # ACKs are never answered
        b"\x16\x03\x01\x02\x00",  # TLS on the SIP port
    ],
    ids=["broken-response", "no-via", "ack", "tls"],
)
def test_unanswerable_garbage_is_dropped_and_counted(data: bytes) -> None:
    layer = TransactionLayer()
    layer.receive_datagram(data, SOURCE, now=0.0)
    events, out = drain(layer)
    assert out == []
    assert len(events) == 1 and isinstance(events[0], MessageRejected)
    assert events[0].status is None
    assert layer.counters.dropped == 1


def test_valid_request_opens_a_transaction_and_keepalives_are_ignored() -> None:
    layer = TransactionLayer()
    layer.receive_datagram(b"\r\n\r\n", SOURCE, now=0.0)
    assert drain(layer) == ([], [])
    layer.receive_datagram(options(), SOURCE, now=0.0)
    events, out = drain(layer)
    assert out == [] and len(events) == 1 and isinstance(events[0], RequestReceived)
    received = events[0].request
    # §18.2.1: the top Via gets received= because sent-by names another host
    assert received.top_via().param("received") == "127.0.0.1"
    assert len(layer) == 1
