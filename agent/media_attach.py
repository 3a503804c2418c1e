"""A call's RTP session from its negotiated answer, and the media report at its end.

Pure helpers of the runtime (`agent.runtime`): the clock readings come in as arguments.
`session_config` decides where the call's media goes (`media_peer`: symmetric RTP latching,
RFC 4961, trusting only the signalling peer at once) and draws the RFC 3550 random starting
values; `media_stats` is the one log line of what the call's media went through.
"""

from __future__ import annotations

import ipaddress
import secrets

from rtp.latching import Address as MediaAddress
from rtp.session import MediaSession, SessionConfig
from sip.offer_answer import Answer


def media_peer(sdp_address: str, signalling_host: str) -> tuple[str, bool]:
    """Which host may send us RTP, and whether we may send to it before it does.

    Only an IP literal that is the signalling peer itself is trusted at once. Another IP is
    latched when its first packet arrives (media servers of a trunk often differ from its
    SIP servers). A host name is never resolved: media is then latched from the signalling
    peer's address.
    """
    try:
        ipaddress.ip_address(sdp_address)
    except ValueError:
        return signalling_host, False
    return sdp_address, sdp_address == signalling_host


def session_config(answer: Answer, signalling_host: str, wall_offset_s: float) -> SessionConfig:
    """The RTP session for a negotiated call (random SSRC, sequence and timestamp starts).

    ``wall_offset_s``: wall-clock time minus loop time, for the RTCP sender reports' NTP time.
    """
    media_host, trusted = media_peer(answer.remote_address, signalling_host)
    return SessionConfig(
        ssrc=secrets.randbits(32),
        initial_seq=secrets.randbits(16),
        initial_timestamp=secrets.randbits(32),
        cname=f"voiceagent-{secrets.token_hex(4)}",
        payload_type=answer.codec.payload_type,
        telephone_event_pt=answer.telephone_event_pt,
        ptime_s=answer.ptime_ms / 1000.0,
        remote_rtp=MediaAddress(media_host, answer.remote_port),
        remote_rtcp=MediaAddress(media_host, answer.remote_port + 1),
        send_before_latch=trusted,
        wall_offset_s=wall_offset_s,
    )


def media_stats(session: MediaSession) -> dict[str, object]:
    """The fields of the ``media_stats`` log line: loss, jitter, jitter-buffer actions."""
    report, buffer, counters = session.report(), session.jitter.stats(), session.counters
    return {
        "ssrc": session.config.ssrc,
        "packets_received": counters.received,
        "invalid": counters.invalid,
        "rejected_source": counters.rejected_source,
        "wrong_payload": counters.wrong_payload,
        "lost": report.received_lost,
        "jitter_ms": round(report.received_jitter_ms, 2),
        "late": buffer.late,
        "buffer_lost": buffer.lost,
        "dropped": buffer.dropped,
        "underruns": buffer.underruns,
        "inserted": buffer.inserted,
        "packets_sent": report.packets_sent,
        "remote_lost": report.remote_cumulative_lost,
    }
