"""Stream framing (RFC 3261 §18.3, RFC 5626 §3.5.1): `StreamFramer` on byte streams.

Every vector is fed whole, one byte at a time, and with trailing data (h11's ``tr()``); every
framed message then parses and serialises back to the exact bytes that were framed.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sip.errors import SipParseError
from sip.framing import KeepAlive, StreamFramer, Unframeable
from sip.message import MAX_MESSAGE_BYTES, parse_message


def exact(message: str) -> str:
    """A `pytest.raises` pattern that matches exactly ``message``."""
    return f"^{re.escape(message)}$"


def request(
    *extra: str,
    body: bytes = b"",
    content_length: str | None = "auto",
    call_id: str = "f1@192.0.2.1",
    eol: str = "\r\n",
) -> bytes:
    lines = [
        "INFO sip:va@127.0.0.1 SIP/2.0",
        "Via: SIP/2.0/TCP 192.0.2.1:5060;branch=z9hG4bKtcp1",
        "From: <sip:probe@example.com>;tag=p1",
        "To: <sip:va@example.com>;tag=v1",
        f"Call-ID: {call_id}",
        "CSeq: 2 INFO",
        *extra,
    ]
    if content_length == "auto":
        lines.append(f"Content-Length: {len(body)}")
    elif content_length is not None:
        lines.append(content_length)
    return (eol.join(lines) + eol + eol).encode() + body


def feed_all(
    chunks: Iterable[bytes], framer: StreamFramer | None = None
) -> list[bytes | KeepAlive]:
    framer = framer or StreamFramer()
    out: list[bytes | KeepAlive] = []
    for chunk in chunks:
        out += framer.feed(chunk)
    return out


def bytewise(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


VECTORS = {
    "no-body": request(),
    # a body that itself holds an empty line: only Content-Length says where it ends
    "body-with-blank-line": request(
        "Content-Type: text/plain", body=b"line one\r\n\r\nline three\r\n"
    ),
    "compact-l": request(body=b"12345", content_length="l: 5"),
    # §7.3.1: a folded Content-Length frames like an unfolded one
    "folded-content-length": request(body=b"abc", content_length="Content-Length:\r\n   3"),
    "content-length-lws": request(body=b"abc", content_length="content-length  :   3  "),
    # bare LF line ends, which the datagram parser tolerates too
    "lf-only": request(body=b"xyz", eol="\n"),
    "binary-body": request(
        "Content-Type: application/octet-stream", body=bytes(range(256)) + b"\r\n\r\n\x00"
    ),
}


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_vector_whole_bytewise_and_with_trailing_data(name: str) -> None:
    data = VECTORS[name]
    assert feed_all([data]) == [data]
    framer = StreamFramer()
    *before, last = bytewise(data)
    for chunk in before:
        assert framer.feed(chunk) == []  # nothing until the last byte of the body
    assert framer.pending == len(data) - 1
    assert framer.feed(last) == [data]
    assert framer.pending == 0
    # trailing data: the start of the next message stays buffered
    framer = StreamFramer()
    trailing = request(call_id="next")[:40]
    assert framer.feed(data + trailing) == [data]
    assert framer.pending == len(trailing)
    message = parse_message(data, stream=True)
    if name == "lf-only":
        # serialising writes CRLF: the same message, not the same bytes
        assert message == parse_message(data.replace(b"\n", b"\r\n"), stream=True)
    else:
        assert bytes(message) == data  # one message that prints back byte for byte


def test_several_messages_in_one_segment_and_across_segments() -> None:
    first, second, third = (request(call_id=f"m{n}", body=b"x" * n) for n in (1, 2, 3))
    stream = first + second + third
    assert feed_all([stream]) == [first, second, third]
    assert feed_all(bytewise(stream)) == [first, second, third]
    # a segment boundary inside the CRLFCRLF that ends the head
    cut = first.index(b"\r\n\r\n") + 2
    assert feed_all([first[:cut], first[cut:] + second[:5], second[5:]]) == [first, second]


def test_keepalive_ping_and_stray_crlfs() -> None:
    # RFC 5626 §3.5.1: CRLFCRLF is a ping (the shell answers CRLF)
    message = request()
    assert feed_all([b"\r\n\r\n"]) == [KeepAlive()]
    assert feed_all([b"\r\n\r\n" + message + b"\r\n\r\n"]) == [KeepAlive(), message, KeepAlive()]
    assert feed_all(bytewise(b"\r\n\r\n" + message)) == [KeepAlive(), message]
    # a lone CRLF (the pong direction, or half a ping) waits; before a message it is skipped
    framer = StreamFramer()
    assert framer.feed(b"\r\n") == [] and framer.pending == 2
    assert framer.feed(message) == [message]
    assert framer.pending == 0


@pytest.mark.parametrize(
    ("data", "error", "status"),
    [
        (request(content_length=None), "stream message needs exactly one Content-Length", 400),
        # RFC 4475 §3.3.9 mcl01: two different lengths cannot be framed
        (
            request("Content-Length: 13", body=b"12345", content_length="l: 5"),
            "stream message needs exactly one Content-Length",
            400,
        ),
        (
            request(body=b"abc", content_length="Content-Length: -999"),  # ncl
            "Content-Length is not a number",
            400,
        ),
        (
            request(body=b"abc", content_length="Content-Length: 3 bytes"),
            "Content-Length is not a number",
            400,
        ),
        (
            request(content_length=f"Content-Length: {MAX_MESSAGE_BYTES}"),
            "message is larger than the size limit",
            513,
        ),
        (
            request(content_length="Content-Length: " + "9" * 500),
            "message is larger than the size limit",
            513,
        ),
    ],
    ids=["missing", "conflicting", "negative", "not-a-number", "too-large", "absurd"],
)
def test_unframeable_streams_raise_with_the_partial_request(
    data: bytes, error: str, status: int
) -> None:
    failure = unframeable(StreamFramer().feed(data))
    assert str(failure) == error
    assert failure.status_hint == status
    # the shell answers from the partial request, then closes the connection
    partial = failure.request
    assert partial is not None
    assert (partial.method, partial.headers.get("call-id")) == ("INFO", "f1@192.0.2.1")


def test_an_endless_header_section_is_513() -> None:
    framer = StreamFramer(max_message_bytes=1000)
    head = request()[:-4]  # no empty line yet
    assert framer.feed(head) == []
    items: list[bytes | KeepAlive | Unframeable] = []
    for _ in range(100):
        items = framer.feed(b"X-More: " + b"m" * 30 + b"\r\n")
        if items:
            break
    failure = unframeable(items)
    assert str(failure) == "header section exceeds the size limit"
    assert failure.status_hint == 513
    assert failure.request is not None and failure.request.method == "INFO"
    assert framer.feed(request()) == []  # a failed stream takes nothing more


def test_clerr_on_a_stream_waits_for_the_rest() -> None:
    # RFC 4475 §3.1.2.2 clerr: on TCP a Content-Length beyond the data means "wait for more"
    framer = StreamFramer()
    data = request(body=b"short", content_length="Content-Length: 9999")
    assert framer.feed(data) == []
    assert framer.pending == len(data)


def test_garbage_without_content_length_is_not_framed() -> None:
    failure = unframeable(
        StreamFramer().feed(b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\n\r\n")
    )
    assert failure.request is None  # nothing to answer: close


def test_byte_at_a_time_is_not_quadratic() -> None:
    # A peer sending one byte per segment must not make every feed rescan the head: a
    # rescanning framer takes tens of seconds here, this one about 0.2 s.
    pad = "X-Pad: " + "p" * 40_000
    data = request(pad, body=b"b" * 20_000)
    framer = StreamFramer()
    out: list[bytes | KeepAlive] = []
    started = time.perf_counter()
    for chunk in bytewise(data):
        out += framer.feed(chunk)
    assert out == [data]
    assert time.perf_counter() - started < 5.0


# ------------------------------------------------------------------------------- Hypothesis

_MESSAGES = st.lists(
    st.one_of(
        st.sampled_from(sorted(VECTORS.values())),
        st.builds(
            lambda n, body: request(call_id=f"h{n}", body=body),
            st.integers(0, 999),
            st.binary(max_size=64),
        ),
        st.just(b"\r\n\r\n"),
    ),
    min_size=1,
    max_size=5,
)


@settings(max_examples=200, deadline=None)
@given(_MESSAGES, st.lists(st.integers(1, 64), min_size=1, max_size=40))
def test_any_segmentation_frames_the_same_messages(messages: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(messages)
    expected = [KeepAlive() if m == b"\r\n\r\n" else m for m in messages]
    chunks: list[bytes] = []
    pos = 0
    for size in cuts:
        chunks.append(stream[pos : pos + size])
        pos += size
    chunks.append(stream[pos:])
    assert feed_all(chunks) == expected
    for item in expected:
        if isinstance(item, bytes) and item != VECTORS["lf-only"]:
            assert bytes(parse_message(item, stream=True)) == item


_NOISE = st.sampled_from(
    [
        b"\r\n",
        b"\n",
        b"\r\n\r\n",
        b"Content-Length: 5\r\n",
        b"l:3\r\n",
        b"Content-Length: x\r\n",
        b"\r\n ",
        b"INVITE sip:a@b SIP/2.0\r\n",
        b"\x00",
        b"\xff",
        b"9" * 30,
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.binary(max_size=80), _NOISE), max_size=12))
def test_feed_never_raises_and_a_failure_comes_last(chunks: list[bytes]) -> None:
    framer = StreamFramer(max_message_bytes=2048)
    for chunk in chunks:
        items = framer.feed(chunk)
        if items and isinstance(items[-1], Unframeable):
            assert items[-1].error.status_hint in (400, 513)
            assert not any(isinstance(item, Unframeable) for item in items[:-1])
            return  # the shell closes the connection here
        for item in items:
            assert isinstance(item, KeepAlive | bytes)
            if isinstance(item, bytes):
                try:
                    parse_message(item, stream=True)
                except SipParseError:
                    pass
        assert framer.pending <= 2048 + 80


def unframeable(items: list[bytes | KeepAlive | Unframeable]) -> SipParseError:
    """The error of the `Unframeable` that must end ``items``."""
    assert items and isinstance(items[-1], Unframeable), items
    return items[-1].error


def test_a_good_message_before_garbage_in_one_segment_is_not_lost() -> None:
    good = request(body=b"Signal=1")
    bad = request(content_length="Content-Length: x")
    items = StreamFramer().feed(good + bad)
    assert items[0] == good
    assert str(unframeable(items)) == "Content-Length is not a number"
    assert len(items) == 2
