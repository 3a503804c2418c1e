"""What the running server's protocol layers have counted, read at scrape time.

The SIP transaction layer (`sip.layer.LayerCounters`), the SIP endpoint, the media runtime
(`rtp.transport.ClockStats` and its media event counts) and every call's `MediaSession`
(RFC 3550 reception statistics, drop counters, jitter buffer counters) keep plain integers
as they work. `RuntimeSnapshot` gathers them into one frozen value when Prometheus scrapes
(`agent.metrics.RuntimeCollector`), so the RTP packet path never touches a metric.

Sessions go away when their call ends, so `MediaTotals` keeps the sum of the ended calls'
counters; a snapshot adds the live sessions to it, and the totals only ever grow.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields

from rtp.session import MediaSession

# SIP methods we count by name; anything else on the wire is "other" (labels stay bounded).
KNOWN_METHODS = frozenset(
    {
        "INVITE",
        "ACK",
        "BYE",
        "CANCEL",
        "OPTIONS",
        "REGISTER",
        "INFO",
        "UPDATE",
        "PRACK",
        "REFER",
        "NOTIFY",
        "SUBSCRIBE",
        "MESSAGE",
    }
)


def method_label(method: str) -> str:
    """A SIP method as a metric label: known methods by name, the rest as ``other``."""
    return method if method in KNOWN_METHODS else "other"


@dataclass(slots=True)
class MediaCounts:
    """Per-call media counters, summed (ended calls, or ended plus live ones)."""

    received: int = 0
    expected: int = 0
    lost: int = 0
    sent: int = 0
    invalid: int = 0
    wrong_payload: int = 0
    rejected_source: int = 0  # symmetric-RTP latching refused the source
    rtcp_received: int = 0
    buffer_late: int = 0
    buffer_lost: int = 0
    buffer_dropped: int = 0
    buffer_underruns: int = 0
    buffer_inserted: int = 0
    buffer_duplicates: int = 0
    buffer_reordered: int = 0
    buffer_resyncs: int = 0

    def add_session(self, session: MediaSession) -> None:
        """Add one session's counters."""
        report, buffer, counters = session.report(), session.jitter.stats(), session.counters
        self.received += counters.received
        self.expected += report.packets_expected
        self.lost += max(report.received_lost, 0)
        self.sent += counters.sent
        self.invalid += counters.invalid
        self.wrong_payload += counters.wrong_payload
        self.rejected_source += counters.rejected_source
        self.rtcp_received += counters.rtcp_received
        self.buffer_late += buffer.late
        self.buffer_lost += buffer.lost
        self.buffer_dropped += buffer.dropped
        self.buffer_underruns += buffer.underruns
        self.buffer_inserted += buffer.inserted
        self.buffer_duplicates += buffer.duplicates
        self.buffer_reordered += buffer.reordered
        self.buffer_resyncs += buffer.resyncs

    def plus(self, other: MediaCounts) -> MediaCounts:
        """The field-by-field sum, as a new value."""
        return MediaCounts(
            **{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)}
        )


@dataclass(frozen=True, slots=True)
class SipFigures:
    """The SIP side: layer counters, live transactions and connections."""

    messages_received: int = 0
    dropped: int = 0
    parse_errors_answered: int = 0
    retransmissions_absorbed: int = 0
    responses_unmatched: int = 0
    requests_by_method: Mapping[str, int] = field(default_factory=dict)
    transactions_active: int = 0
    tcp_connections: int = 0
    tcp_framing_errors: int = 0
    acl_rejected: int = 0


@dataclass(frozen=True, slots=True)
class ClockFigures:
    """The media clock (`rtp.transport.ClockStats`) and the media event counts."""

    ticks: int = 0
    late_ticks: int = 0
    max_lateness_s: float = 0.0
    skipped_frames: int = 0
    packets_sent: int = 0
    late_packets: int = 0
    send_errors: int = 0
    packets_received: int = 0
    vad_segments: int = 0
    barge_ins: int = 0
    dtmf_digits: int = 0


@dataclass(frozen=True, slots=True)
class RuntimeSnapshot:
    """Everything `agent.metrics.RuntimeCollector` exposes, at one moment."""

    active_calls: int = 0
    draining: bool = False
    rtp_ports_in_use: int = 0
    sip: SipFigures = field(default_factory=SipFigures)
    clock: ClockFigures = field(default_factory=ClockFigures)
    media: MediaCounts = field(default_factory=MediaCounts)
    jitter_max_s: float = 0.0  # the largest interarrival jitter among live calls
    buffer_delay_mean_s: float = 0.0  # the jitter buffers' mean current delay, live calls
    dependencies: tuple[tuple[str, bool], ...] = ()  # (name, up), as /health/detailed


def media_snapshot(
    totals: MediaCounts, sessions: Iterable[MediaSession]
) -> tuple[MediaCounts, float, float]:
    """Ended plus live counters, the live calls' largest jitter and mean buffer delay."""
    live = MediaCounts()
    jitter_max_s = 0.0
    delays: list[float] = []
    for session in sessions:
        live.add_session(session)
        jitter_max_s = max(jitter_max_s, session.report().received_jitter_ms / 1000.0)
        delays.append(session.jitter.stats().current_delay_ms / 1000.0)
    mean_delay = sum(delays) / len(delays) if delays else 0.0
    return totals.plus(live), jitter_max_s, mean_delay
