"""Prometheus metrics: one registry for the whole process, every metric with HELP text.

Labels carry only bounded, PHI-free values (a role, a reason class, a SIP method or status
code), never anything a caller said or a header that identifies them. Modules that count
something import the metric from here; the HTTP edge serves `REGISTRY` at /metrics.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from agent.telemetry import RuntimeSnapshot, method_label

REGISTRY = CollectorRegistry(auto_describe=True)

PROVIDER_FAILOVERS = Counter(
    "voiceagent_provider_failovers",
    "Calls switched from a configured provider to the embedded one, by role "
    "(stt, tts, llm) and reason (timeout, disconnect, http_429, http_5xx, error).",
    ["role", "reason"],
    registry=REGISTRY,
)

# ----------------------------------------------------------------- state, records and email
# (issue 6 items 1-2: agent/store.py, agent/redis_store.py, agent/records.py, agent/mailer.py)
STATE_OPERATIONS = Counter(
    "voiceagent_state_operations",
    "Call-state store operations, by backend (memory, redis), operation (book_slot, "
    "booked_slots, release_slot, save_call, load_call, writeback) and result (ok, local, "
    "error): 'local' means Redis was away and local state answered.",
    ["backend", "operation", "result"],
    registry=REGISTRY,
)
STATE_LATENCY = Histogram(
    "voiceagent_state_operation_seconds",
    "Latency of call-state store operations, by backend and operation.",
    ["backend", "operation"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
    registry=REGISTRY,
)
REDIS_CONNECTED = Gauge(
    "voiceagent_redis_connected",
    "1 while the Redis state store answers, 0 while calls run on local state.",
    registry=REGISTRY,
)
STATE_WRITEBACK_DEPTH = Gauge(
    "voiceagent_state_writeback_depth",
    "Writes waiting for Redis to come back (the bounded write-behind queue).",
    registry=REGISTRY,
)
STATE_WRITEBACK_DROPPED = Counter(
    "voiceagent_state_writeback_dropped",
    "Writes dropped because the write-behind queue was full during a long Redis outage.",
    registry=REGISTRY,
)
SLOT_CONFLICTS = Counter(
    "voiceagent_slot_conflicts",
    "Slots booked on local state during a Redis outage that another instance held when "
    "written back (staff must rebook one of them).",
    registry=REGISTRY,
)
RECORDS_STORED = Counter(
    "voiceagent_records_stored",
    "Intake record saves, by status (in_progress, complete, incomplete, urgent, "
    "transferred, callback).",
    ["status"],
    registry=REGISTRY,
)
RECORDS_EMAILED = Counter(
    "voiceagent_records_emailed",
    "Intake emails the SMTP server accepted, by kind (full: with the record; notice: without PHI).",
    ["kind"],
    registry=REGISTRY,
)
EMAIL_FAILURES = Counter(
    "voiceagent_email_failures",
    "Failed intake email attempts (each is retried with backoff), by reason (connect, "
    "tls, auth, rejected, timeout, error).",
    ["reason"],
    registry=REGISTRY,
)
OUTBOX_DEPTH = Gauge(
    "voiceagent_outbox_depth",
    "Intake emails waiting in the durable outbox.",
    registry=REGISTRY,
)

# ======================================================================================
# Operations (issue 6, items 3-7): calls, SIP, RTP, DSP, agent, HTTP.
#
# Counters and histograms below are updated at the asyncio edge (agent/runtime.py,
# agent/call_runtime.py, agent/http_api.py). The protocol layers (sip/, rtp/, dsp/) keep
# their own plain counters; `RuntimeCollector` reads them at scrape time, so no Prometheus
# call ever runs on the RTP packet path.
# ======================================================================================

# ---------------------------------------------------------------- calls
CALLS_TOTAL = Counter(
    "voiceagent_calls",
    "Calls that ended, by outcome: how the SIP dialog ended (remote_bye, local_bye, "
    "cancelled, rejected, no_ack, failed, timeout, max_duration, transferred).",
    ["outcome"],
    registry=REGISTRY,
)
CALLS_REJECTED = Counter(
    "voiceagent_calls_rejected",
    "INVITEs refused before answering, by reason (draining, no_rtp_ports, bad_sdp, codec).",
    ["reason"],
    registry=REGISTRY,
)
CALL_DURATION = Histogram(
    "voiceagent_call_duration_seconds",
    "Length of answered calls, from the 200 OK to the end of the dialog.",
    buckets=(5, 15, 30, 60, 120, 180, 300, 600, 1200, 3600),
    registry=REGISTRY,
)
CALLS_BY_PHASE = Counter(
    "voiceagent_calls_by_phase",
    "Intake calls by the last intake phase they reached (GREETING ... COMPLETE).",
    ["phase"],
    registry=REGISTRY,
)
INTAKES_TOTAL = Counter(
    "voiceagent_intakes",
    "Intake conversations that ended, by record status (complete, incomplete, urgent, "
    "transferred, callback, in_progress).",
    ["status"],
    registry=REGISTRY,
)
INTAKE_ERRORS = Counter(
    "voiceagent_intake_errors",
    "Intake conversations that failed with an exception, by exception class.",
    ["error"],
    registry=REGISTRY,
)

# ---------------------------------------------------------------- SIP
SIP_RESPONSES = Counter(
    "voiceagent_sip_responses",
    "Finished SIP transactions by method, final status code ('none' without one) and role "
    "(server: we answered; client: we sent the request).",
    ["method", "code", "role"],
    registry=REGISTRY,
)
SIP_TRANSACTION_TIMEOUTS = Counter(
    "voiceagent_sip_transaction_timeouts",
    "SIP transactions that timed out, by method and RFC 3261 timer (B, F, H).",
    ["method", "timer"],
    registry=REGISTRY,
)
SIP_TRANSACTION_DURATION = Histogram(
    "voiceagent_sip_transaction_duration_seconds",
    "Lifetime of finished SIP transactions, by method (includes the RFC 3261 wait timers).",
    ["method"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 10, 32, 64),
    registry=REGISTRY,
)

# ---------------------------------------------------------------- RTP (per call, at its end)
RTP_CALL_LOSS = Histogram(
    "voiceagent_rtp_call_loss_ratio",
    "Fraction of the caller's RTP packets lost over a whole call (RFC 3550 A.3).",
    buckets=(0.0, 0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0),
    registry=REGISTRY,
)
RTP_CALL_JITTER = Histogram(
    "voiceagent_rtp_call_jitter_seconds",
    "RFC 3550 interarrival jitter of the caller's stream at the end of each call.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16),
    registry=REGISTRY,
)

# ---------------------------------------------------------------- agent
_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)
TURN_LATENCY = Histogram(
    "voiceagent_turn_latency_seconds",
    "From the end of the caller's speech to the agent's reply being queued for playout.",
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
STT_LATENCY = Histogram(
    "voiceagent_stt_latency_seconds",
    "From the end of a caller turn to the recogniser's final result.",
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
TTS_LATENCY = Histogram(
    "voiceagent_tts_latency_seconds",
    "Time to a prompt's audio: a whole embedded synthesis (zero-cost cache hits included), "
    "or a streamed cloud synthesis's first chunk.",
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
LLM_LATENCY = Histogram(
    "voiceagent_llm_latency_seconds",
    "Language model request latency, by provider (observed by the LLM provider wrapper).",
    ["provider"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
LLM_TOKENS = Counter(
    "voiceagent_llm_tokens",
    "Language model tokens, by provider and kind (prompt, completion).",
    ["provider", "kind"],
    registry=REGISTRY,
)
LLM_TURNS = Counter(
    "voiceagent_llm_turns",
    "Caller turns the language model could read (a call still on its model, a question "
    "it may propose for), by outcome: asked (sent to the model) or rules_settled (a closed "
    "answer the rules read, not sent; see agent.consult).",
    ["outcome"],
    registry=REGISTRY,
)
EXTRACTION_RETRIES = Counter(
    "voiceagent_extraction_retries",
    "Questions asked again because the answer could not be used, by record field "
    "(for example insurance.member_id).",
    ["field"],
    registry=REGISTRY,
)
TRANSFERS = Counter(
    "voiceagent_transfers",
    "Blind transfers (REFER) attempted, by result (succeeded, failed).",
    ["result"],
    registry=REGISTRY,
)

# ---------------------------------------------------------------- HTTP
HTTP_REQUESTS = Counter(
    "voiceagent_http_requests",
    "Requests to the health, metrics and admin API, by route template and status code.",
    ["route", "status"],
    registry=REGISTRY,
)
BUILD_INFO = Info("voiceagent_build", "Version of the running VoiceAgent.", registry=REGISTRY)


# ---------------------------------------------------------------- read at scrape time
class RuntimeCollector(Collector):
    """Gauges and counters read from the protocol layers' own counters when scraped.

    ``source`` returns a `agent.telemetry.RuntimeSnapshot` (the server builds it from the
    SIP layer, the media runtime and the live sessions). The server registers one collector
    in `REGISTRY` while it runs and unregisters it when it stops.
    """

    def __init__(self, source: Callable[[], RuntimeSnapshot]) -> None:
        self._source = source

    def describe(self) -> Iterable[Metric]:
        """Nothing up front: the families depend on a running server (no scrape at register)."""
        return []

    def collect(self) -> Iterable[Metric]:
        """One family per figure of the snapshot."""
        snap = self._source()
        sip, clock, media = snap.sip, snap.clock, snap.media

        def gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
            return GaugeMetricFamily(f"voiceagent_{name}", doc, value=value)

        def counter(name: str, doc: str, value: float) -> CounterMetricFamily:
            return CounterMetricFamily(f"voiceagent_{name}", doc, value=value)

        # calls
        yield gauge("active_calls", "Calls in progress (ringing or answered).", snap.active_calls)
        yield gauge(
            "draining",
            "1 while the server drains for shutdown (new calls get 503), else 0.",
            1.0 if snap.draining else 0.0,
        )
        up = GaugeMetricFamily(
            "voiceagent_dependency_up",
            "1 when a dependency is up (sip, rtp_ports, records, speech_recognizer, "
            "state_store...), as /health/detailed reports it.",
            labels=["dependency"],
        )
        for name, ok in snap.dependencies:
            up.add_metric([name], 1.0 if ok else 0.0)
        yield up
        # SIP
        yield counter("sip_messages_received", "SIP messages received.", sip.messages_received)
        requests = CounterMetricFamily(
            "voiceagent_sip_requests",
            "SIP requests received by method (retransmissions included; unknown methods "
            "as 'other').",
            labels=["method"],
        )
        by_method: dict[str, int] = {}
        for method, count in sip.requests_by_method.items():
            label = method_label(method)
            by_method[label] = by_method.get(label, 0) + count
        for method, count in sorted(by_method.items()):
            requests.add_metric([method], count)
        yield requests
        yield counter(
            "sip_retransmissions",
            "Retransmitted SIP requests absorbed by their server transaction (RFC 3261 §17.2).",
            sip.retransmissions_absorbed,
        )
        yield counter(
            "sip_messages_dropped",
            "SIP messages dropped unanswered (unparseable, or no Via to answer to).",
            sip.dropped,
        )
        yield counter(
            "sip_parse_errors",
            "Malformed SIP requests answered statelessly with 400/505/513.",
            sip.parse_errors_answered,
        )
        yield counter(
            "sip_responses_unmatched",
            "SIP responses that matched no client transaction (RFC 3261 §18.1.2).",
            sip.responses_unmatched,
        )
        yield counter(
            "sip_acl_rejected",
            "SIP messages dropped because their source is outside sip_allowed_networks.",
            sip.acl_rejected,
        )
        yield counter(
            "sip_tcp_framing_errors",
            "SIP-over-TCP connections closed for a stream that could not be framed.",
            sip.tcp_framing_errors,
        )
        yield gauge(
            "sip_transactions_active", "SIP transactions in progress.", sip.transactions_active
        )
        yield gauge("sip_tcp_connections", "Open SIP TCP connections.", sip.tcp_connections)
        # RTP
        yield gauge("rtp_ports_in_use", "RTP port pairs allocated to calls.", snap.rtp_ports_in_use)
        yield counter(
            "rtp_packets_received", "RTP and RTCP datagrams received.", clock.packets_received
        )
        yield counter("rtp_packets_sent", "RTP and RTCP datagrams sent.", clock.packets_sent)
        yield counter(
            "rtp_packets_expected",
            "RTP packets expected from callers (RFC 3550 A.3 extended sequence range).",
            media.expected,
        )
        yield counter(
            "rtp_packets_lost",
            "RTP packets from callers that never arrived (RFC 3550 A.3 cumulative loss).",
            media.lost,
        )
        discarded = CounterMetricFamily(
            "voiceagent_rtp_packets_discarded",
            "RTP packets discarded on arrival, by reason (invalid, wrong_payload).",
            labels=["reason"],
        )
        discarded.add_metric(["invalid"], media.invalid)
        discarded.add_metric(["wrong_payload"], media.wrong_payload)
        yield discarded
        yield counter(
            "rtp_latching_failures",
            "RTP/RTCP packets refused by symmetric-RTP latching (from an unexpected source).",
            media.rejected_source,
        )
        yield counter(
            "rtp_rtcp_received", "RTCP compound packets received from callers.", media.rtcp_received
        )
        yield counter(
            "rtp_late_sends",
            "RTP packets sent more than 5 ms after their slot in the 20 ms schedule.",
            clock.late_packets,
        )
        yield counter(
            "rtp_send_errors", "RTP/RTCP sends the kernel refused (dropped).", clock.send_errors
        )
        yield counter("rtp_ticks", "Media engine ticks run.", clock.ticks)
        yield counter(
            "rtp_late_ticks", "Media ticks that started more than 5 ms late.", clock.late_ticks
        )
        yield counter(
            "rtp_skipped_frames",
            "Frames a stalled media clock skipped (timestamps moved on, nothing sent).",
            clock.skipped_frames,
        )
        yield gauge(
            "rtp_tick_max_lateness_seconds",
            "The latest any media tick has started after its deadline since the start.",
            clock.max_lateness_s,
        )
        yield gauge(
            "rtp_jitter_seconds",
            "The largest RFC 3550 interarrival jitter among calls in progress.",
            snap.jitter_max_s,
        )
        yield gauge(
            "rtp_jitter_buffer_delay_seconds",
            "Mean playout delay held by the calls' jitter buffers (their depth), in seconds.",
            snap.buffer_delay_mean_s,
        )
        buffer = CounterMetricFamily(
            "voiceagent_rtp_jitter_buffer_events",
            "Jitter buffer events, by kind (late, lost, dropped, underrun, inserted, "
            "duplicate, reordered, resync).",
            labels=["kind"],
        )
        for kind, value in (
            ("late", media.buffer_late),
            ("lost", media.buffer_lost),
            ("dropped", media.buffer_dropped),
            ("underrun", media.buffer_underruns),
            ("inserted", media.buffer_inserted),
            ("duplicate", media.buffer_duplicates),
            ("reordered", media.buffer_reordered),
            ("resync", media.buffer_resyncs),
        ):
            buffer.add_metric([kind], value)
        yield buffer
        # DSP
        yield counter(
            "vad_segments",
            "Caller speech segments (turns) the endpointer opened.",
            clock.vad_segments,
        )
        yield counter(
            "barge_ins", "Times a caller talked over a prompt and playout stopped.", clock.barge_ins
        )
        yield counter(
            "dtmf_digits", "Keypad digits received (RFC 4733 or in-band).", clock.dtmf_digits
        )
