"""RFC 3264 offer/answer for one audio stream: `negotiate`, `build_offer`, `accept_answer`.

Theory of operation
-------------------
All three functions are pure. We use one RTP/AVP audio stream: the first audio ``m=`` line
with a codec in common; every other stream is refused with port 0 and kept in place, because
the answer must have as many ``m=`` lines as the offer, in the same order (§6). Hold is read
from the offer's direction (§8.4) and from the legacy ``c=0.0.0.0`` (RFC 2543, still sent by
some PBXs). The ``o=`` version comes from `LocalMedia`, and the caller bumps it with
`LocalMedia.next_version` for each new offer or changed answer (§8). `build_offer` writes our
offer for UAC calls and for INVITEs without SDP (RFC 3261 §13.2.1).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from sip.sdp import (
    Attribute,
    Connection,
    Direction,
    MediaDescription,
    MediaLine,
    Origin,
    RtpMap,
    SessionDescription,
    address_type,
    static_encoding,
)


@dataclass(frozen=True, slots=True)
class Codec:
    """An audio codec we can use, and the payload type it goes by."""

    name: str
    payload_type: int
    clock_rate_hz: int = 8000


PCMU = Codec("PCMU", 0)
PCMA = Codec("PCMA", 8)
_TELEPHONE_EVENT = "telephone-event"


@dataclass(frozen=True, slots=True)
class LocalMedia:
    """Our side of the negotiation.

    Attributes:
        address: the address we receive RTP on (IPv4, IPv6 or host name).
        rtp_port: the port we receive RTP on.
        codecs: codecs we support, most preferred first; used as-is in our offers.
        telephone_event: whether we accept RFC 4733 telephone-event/8000.
        telephone_event_pt: the dynamic payload type we offer telephone-event on.
        ptime_ms: packet time we use unless the offer asks for another valid one.
        session_id, session_version, username: our ``o=`` fields (RFC 4566 §5.2).
    """

    address: str
    rtp_port: int
    codecs: tuple[Codec, ...] = (PCMU, PCMA)
    telephone_event: bool = True
    telephone_event_pt: int = 101
    ptime_ms: int = 20
    session_id: int = 0
    session_version: int = 0
    username: str = "-"

    def __post_init__(self) -> None:
        if not 0 < self.rtp_port <= 65535:
            raise ValueError(f"rtp_port {self.rtp_port} is not a port")
        if not self.codecs:
            raise ValueError("LocalMedia needs at least one codec")
        if not 96 <= self.telephone_event_pt <= 127:
            raise ValueError("telephone_event_pt must be dynamic (96-127)")

    def next_version(self) -> LocalMedia:
        """The same config with the ``o=`` version bumped, for a changed SDP (RFC 3264 §8)."""
        return replace(self, session_version=self.session_version + 1)


class RejectReason(StrEnum):
    """Why an offer or answer gave no usable audio stream."""

    NO_AUDIO = "no audio stream"
    BAD_PROTO = "audio stream is not RTP/AVP"
    NO_CODEC = "no common audio codec"
    NO_ADDRESS = "audio stream has no connection address"
    MISMATCH = "answer does not match the offer"


# When several audio streams fail, report the one that got furthest.
_REASON_ORDER = tuple(RejectReason)


@dataclass(frozen=True, slots=True)
class Rejection:
    """No usable audio stream; a UAS answers ``status`` (488, RFC 3261 §21.4.26, RFC 3264 §6)."""

    reason: RejectReason
    status: int = 488


@dataclass(frozen=True, slots=True)
class Answer:
    """A successful negotiation, seen from our side.

    Attributes:
        sdp: the answer: ours from `negotiate`, the peer's from `accept_answer`.
        codec: the one audio codec to send, with the payload type to send it under.
        telephone_event_pt: payload type for RFC 4733 events, or None if not agreed.
        ptime_ms: packet time to send with.
        remote_address: where to send RTP (the peer's ``c=``).
        remote_port: the peer's RTP port.
        direction: our direction: whether we send and/or receive.
        on_hold: the peer has put us on hold (sendonly/inactive, or ``c=0.0.0.0``).
    """

    sdp: SessionDescription
    codec: Codec
    telephone_event_pt: int | None
    ptime_ms: int
    remote_address: str
    remote_port: int
    direction: Direction
    on_hold: bool


@dataclass(frozen=True, slots=True)
class _Stream:
    """What we agreed on for one audio stream, before we know which side we are."""

    codec: Codec
    telephone_event_pt: int | None
    telephone_event_fmtp: str | None
    ptime_ms: int
    connection: Connection
    port: int
    direction: Direction  # the peer's, as written in its SDP


def _ptime_ms(media: MediaDescription, default_ms: int) -> int:
    # Honour the peer's ptime if G.711 framing allows it (10..60 ms in 10 ms steps, the range
    # Asterisk and FreeSWITCH accept), never above its maxptime (RFC 4566 §6).
    ptime = media.ptime_ms
    chosen = ptime if ptime is not None and 10 <= ptime <= 60 and ptime % 10 == 0 else default_ms
    maxptime = media.maxptime_ms
    if maxptime is not None and maxptime >= 10 and chosen > maxptime:
        chosen = maxptime - maxptime % 10
    return chosen


def _match(
    sdp: SessionDescription,
    media: MediaDescription,
    codecs: Sequence[Codec],
    telephone_event: bool,
    default_ptime_ms: int,
) -> _Stream | RejectReason:
    if media.proto.upper() != "RTP/AVP":
        return RejectReason.BAD_PROTO  # RTP/SAVP and friends need SRTP, which we lack
    codec: Codec | None = None
    te_pt: int | None = None
    rtpmaps = media.rtpmaps  # once: a hostile offer may list thousands of formats
    for fmt in media.formats:  # in the peer's order of preference (RFC 3264 §6.1)
        enc = static_encoding(fmt, rtpmaps)
        if enc is None:
            continue
        if enc.encoding_name.casefold() == _TELEPHONE_EVENT:
            if telephone_event and te_pt is None and enc.clock_rate_hz == 8000:
                te_pt = enc.payload_type
        elif codec is None:
            codec = _find_codec(enc, codecs)
    if codec is None:
        return RejectReason.NO_CODEC
    connection = sdp.effective_connection(media)
    if connection is None:
        return RejectReason.NO_ADDRESS
    return _Stream(
        codec,
        te_pt,
        None if te_pt is None else media.fmtp(te_pt),
        _ptime_ms(media, default_ptime_ms),
        connection,
        media.port,
        sdp.effective_direction(media),
    )


def _find_codec(encoding: RtpMap, codecs: Sequence[Codec]) -> Codec | None:
    name = encoding.encoding_name.casefold()
    for codec in codecs:
        if name == codec.name.casefold() and encoding.clock_rate_hz == codec.clock_rate_hz:
            return replace(codec, payload_type=encoding.payload_type)
    return None


def _worst(reasons: Iterable[RejectReason]) -> RejectReason:
    return max(reasons, key=_REASON_ORDER.index, default=RejectReason.NO_AUDIO)


def _refused(media: MediaDescription) -> MediaDescription:
    # RFC 3264 §6: a refused stream keeps its media type and formats, with port 0.
    line = media.media_line
    return MediaDescription.build(replace(line, port=0, port_count=None))


def _audio_section(
    local: LocalMedia,
    codecs: Sequence[Codec],
    te: tuple[int, str | None] | None,
    ptime_ms: int,
    direction: Direction,
) -> MediaDescription:
    formats = [str(c.payload_type) for c in codecs]
    attributes = [
        Attribute("rtpmap", str(RtpMap(c.payload_type, c.name, c.clock_rate_hz))) for c in codecs
    ]
    if te is not None:
        te_pt, te_fmtp = te
        formats.append(str(te_pt))
        attributes.append(Attribute("rtpmap", f"{te_pt} {_TELEPHONE_EVENT}/8000"))
        if te_fmtp is not None:
            attributes.append(Attribute("fmtp", f"{te_pt} {te_fmtp}"))
    attributes += [Attribute("ptime", str(ptime_ms)), Attribute(direction.value)]
    line = MediaLine("audio", local.rtp_port, "RTP/AVP", tuple(formats))
    return MediaDescription.build(line, attributes)


def _session(local: LocalMedia, media: Iterable[MediaDescription]) -> SessionDescription:
    addr_type = address_type(local.address)
    origin = Origin(
        local.username, local.session_id, local.session_version, "IN", addr_type, local.address
    )
    return SessionDescription.build(origin, Connection("IN", addr_type, local.address), media)


def build_offer(local: LocalMedia, direction: Direction = Direction.SENDRECV) -> SessionDescription:
    """Build our offer: one audio stream with all our codecs (RFC 3264 §5).

    Args:
        local: our address, port, codecs and ``o=`` fields; bump ``session_version`` with
            `LocalMedia.next_version` for every re-offer (RFC 3264 §8).
        direction: ``SENDONLY`` or ``INACTIVE`` to put the peer on hold (RFC 3264 §8.4).

    Returns:
        The offer, for an INVITE or for a 200 OK to an INVITE without SDP.
    """
    # RFC 4733 §3.2: events 0-15 are the DTMF digits and 16 is flash; Asterisk offers 0-16 too.
    te = (local.telephone_event_pt, "0-16") if local.telephone_event else None
    return _session(local, [_audio_section(local, local.codecs, te, local.ptime_ms, direction)])


def negotiate(offer: SessionDescription, local: LocalMedia) -> Answer | Rejection:
    """Answer an offer (RFC 3264 §6) with one audio stream and one codec.

    Args:
        offer: the peer's offer, from an INVITE, re-INVITE or UPDATE.
        local: our side; its ``session_version`` goes into the answer's ``o=``.

    Returns:
        An `Answer` whose ``sdp`` has one ``m=`` line per offered one, or a `Rejection`
        (488) when no audio stream is usable.
    """
    reasons: list[RejectReason] = []
    chosen: _Stream | None = None
    sections: list[MediaDescription] = []
    for media in offer.media:
        if chosen is None and media.media == "audio" and media.port != 0:
            result = _match(offer, media, local.codecs, local.telephone_event, local.ptime_ms)
            if isinstance(result, _Stream):
                chosen = result
                sections.append(_answer_section(local, chosen))
                continue
            reasons.append(result)
        sections.append(_refused(media))
    if chosen is None:
        return Rejection(_worst(reasons))
    return Answer(
        _session(local, sections),
        chosen.codec,
        chosen.telephone_event_pt,
        chosen.ptime_ms,
        chosen.connection.address,
        chosen.port,
        _our_direction(chosen),
        _held(chosen),
    )


def _our_direction(stream: _Stream) -> Direction:
    ours = stream.direction.opposite()
    if stream.connection.is_unspecified:
        # RFC 3264 §8.4 legacy hold: we cannot send to 0.0.0.0, but may still receive.
        ours = Direction.from_flags(sends=False, receives=ours.receives)
    return ours


def _held(stream: _Stream) -> bool:
    return not stream.direction.receives or stream.connection.is_unspecified


def _answer_section(local: LocalMedia, stream: _Stream) -> MediaDescription:
    te = None
    if stream.telephone_event_pt is not None:
        te = (stream.telephone_event_pt, stream.telephone_event_fmtp)
    direction = _our_direction(stream)
    return _audio_section(local, [stream.codec], te, stream.ptime_ms, direction)


def accept_answer(
    offer_we_sent: SessionDescription, answer: SessionDescription
) -> Answer | Rejection:
    """Read the answer to our offer (RFC 3264 §7) and pick the codec the answerer chose.

    Args:
        offer_we_sent: our offer, as returned by `build_offer`.
        answer: the peer's answer, from a 200 OK or an ACK.

    Returns:
        The agreed stream (``sdp`` is the peer's answer), or a `Rejection` if the answer
        refuses our audio stream, breaks RFC 3264 §6, or names no codec we offered.
    """
    if len(answer.media) != len(offer_we_sent.media):
        return Rejection(RejectReason.MISMATCH)  # RFC 3264 §6: one m= line per offered one
    reasons: list[RejectReason] = []
    for ours, theirs in zip(offer_we_sent.media, answer.media, strict=True):
        if ours.media != "audio" or ours.port == 0:
            continue
        if theirs.media != ours.media:
            return Rejection(RejectReason.MISMATCH)
        rtpmaps = ours.rtpmaps
        encodings = [
            e for e in (static_encoding(f, rtpmaps) for f in ours.formats) if e is not None
        ]
        codecs = [
            Codec(e.encoding_name, e.payload_type, e.clock_rate_hz)
            for e in encodings
            if e.encoding_name.casefold() != _TELEPHONE_EVENT
        ]
        te = len(codecs) < len(encodings)
        if theirs.port == 0:
            reasons.append(RejectReason.NO_CODEC)  # the answerer refused the stream
            continue
        result = _match(answer, theirs, codecs, te, ours.ptime_ms or 20)
        if isinstance(result, RejectReason):
            reasons.append(result)
            continue
        return Answer(
            answer,
            result.codec,
            result.telephone_event_pt,
            result.ptime_ms,
            result.connection.address,
            result.port,
            _our_direction(result),
            _held(result),
        )
    return Rejection(_worst(reasons))
