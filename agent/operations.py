"""The server's operational side: metrics at the call edges, health, the HTTP API, draining.

This is part of the runtime's asyncio shell (with `agent.runtime`, which calls in here at a
few points, so that the call-handling module keeps to call handling):

* *Metrics.* `ServerOps.call_ended` and `ServerOps.transactions_finished` count what the
  runtime sees happen; `ServerOps.snapshot` gathers the protocol layers' own counters for
  `agent.metrics.RuntimeCollector` at scrape time (`agent.telemetry`).
* *Health.* `ServerOps` is the `agent.http_api.HealthSource`: readiness is false while
  draining or while a required dependency is down.
* *Draining* (SIGTERM): `ServerOps.drain` marks the server not ready (the runtime then
  answers new INVITEs with 503 and Retry-After), lets the calls in progress go on for up to
  ``drain_seconds``, then plays a short goodbye on each remaining call and hangs up (BYE),
  waits (bounded) for the intakes to save their records and the BYEs to be answered.
  A second signal cuts the wait short.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
from collections.abc import Sequence
from typing import TYPE_CHECKING

import structlog

from agent.http_api import CallInfo, Dependency, HttpServer, build_app
from agent.metrics import (
    BUILD_INFO,
    CALL_DURATION,
    CALLS_TOTAL,
    REGISTRY,
    RTP_CALL_JITTER,
    RTP_CALL_LOSS,
    SIP_RESPONSES,
    SIP_TRANSACTION_DURATION,
    SIP_TRANSACTION_TIMEOUTS,
    RuntimeCollector,
)
from agent.record import IntakeRecord
from agent.telemetry import (
    ClockFigures,
    MediaCounts,
    RuntimeSnapshot,
    SipFigures,
    media_snapshot,
    method_label,
)
from sip.call import CallEnded
from sip.layer import TransactionSummary

if TYPE_CHECKING:
    from agent.runtime import ActiveCall, Server

log = structlog.get_logger("voiceagent")

GOODBYE = (
    "I'm sorry, this line is closing for maintenance now. "
    "Please call back in a few minutes. Goodbye."
)
GOODBYE_WAIT_S = 12.0  # at most this long for the goodbye to play before the BYE
BYE_WAIT_S = 5.0  # then at most this long for the calls to end and the records to be saved
RETRY_AFTER_S = 30  # what a 503 during the drain asks callers to wait


def _version() -> str:
    try:
        return importlib.metadata.version("voiceagent")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


class ServerOps:
    """Metrics, health, HTTP and draining for one `agent.runtime.Server`."""

    def __init__(self, server: Server) -> None:
        self._server = server
        self.draining = False
        self.media_totals = MediaCounts()
        self.collector = RuntimeCollector(self.snapshot)
        self._http: HttpServer | None = None
        self._calls_gone = asyncio.Event()
        self._cut_short = asyncio.Event()

    # ----------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        """Register the scrape-time collector and serve HTTP (when ``http_port`` is set).

        Raises:
            OSError: the HTTP port cannot be bound.
        """
        REGISTRY.register(self.collector)
        BUILD_INFO.info({"version": _version()})
        settings = self._server.settings
        if settings.http_port:
            app = build_app(self, settings.api_key, _version())
            self._http = HttpServer(app, settings.http_host, settings.http_port)
            try:
                await self._http.start()
            except OSError as exc:
                self._http = None
                REGISTRY.unregister(self.collector)
                where = f"HTTP {settings.http_host}:{settings.http_port}"
                raise OSError(exc.errno, f"{exc.strerror or exc} ({where})") from exc
            log.info("http_listening", http=f"{settings.http_host}:{self._http.port}")

    async def aclose(self) -> None:
        """Stop HTTP and unregister the collector."""
        if self._http is not None:
            await self._http.aclose()
            self._http = None
        with contextlib.suppress(KeyError):
            REGISTRY.unregister(self.collector)

    # ----------------------------------------------------------------- draining
    def cut_short(self) -> None:
        """A second signal: stop waiting for calls to finish on their own."""
        self._cut_short.set()

    def call_gone(self) -> None:
        """The runtime removed a call; wakes the drain when none is left."""
        if not self._server.calls:
            self._calls_gone.set()

    async def drain(self) -> None:
        """Stop taking calls, let the current ones finish (bounded), then end the rest."""
        server = self._server
        self.draining = True
        drain_s = server.settings.drain_seconds
        log.info("draining", active_calls=len(server.calls), drain_seconds=drain_s)
        if server.calls:
            self._calls_gone.clear()
            await self._wait_calls(drain_s)
        if server.calls:
            await self._end_remaining()
        log.info("drained", active_calls=len(server.calls))

    async def _wait_calls(self, timeout_s: float) -> None:
        if not self._server.calls:
            return
        gone = asyncio.ensure_future(self._calls_gone.wait())
        cut = asyncio.ensure_future(self._cut_short.wait())
        try:
            await asyncio.wait({gone, cut}, timeout=timeout_s, return_when="FIRST_COMPLETED")
        finally:
            gone.cancel()
            cut.cancel()

    async def _end_remaining(self) -> None:
        server = self._server
        pcm = await asyncio.to_thread(server.prompts.get, GOODBYE)
        playing = []
        for call in list(server.calls.values()):
            if call.channel is not None and not call.channel.closed:
                call.channel.stop()
                call.channel.play(pcm)
                playing.append(call)
        log.info("drain_goodbye", calls=len(server.calls))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + min(GOODBYE_WAIT_S, len(pcm) / 8000 + 1.0)
        while any(c.channel is not None and c.channel.playing for c in playing):
            if loop.time() >= deadline or self._cut_short.is_set():
                break
            await asyncio.sleep(0.05)
        for call_id in list(server.calls):
            server.hangup(call_id)
        tasks = [c.task for c in playing if c.task is not None]
        if tasks:  # the intakes save their records as they end
            await asyncio.wait(tasks, timeout=BYE_WAIT_S)
        await self._wait_calls(BYE_WAIT_S)

    # ----------------------------------------------------------------- metrics
    def call_ended(self, call: ActiveCall | None, event: CallEnded, now: float) -> None:
        """Count an ended call, with its media figures (read before the session goes)."""
        CALLS_TOTAL.labels(event.reason.value).inc()
        if call is None:
            return
        if call.answered_at is not None:
            CALL_DURATION.observe(max(now - call.answered_at, 0.0))
        media = self._server.media
        session = media.engine.session(call.call_id) if media is not None else None
        if session is None:
            return
        self.media_totals.add_session(session)
        report = session.report()
        if report.packets_expected > 0:
            RTP_CALL_LOSS.observe(max(report.received_lost, 0) / report.packets_expected)
            RTP_CALL_JITTER.observe(report.received_jitter_ms / 1000.0)

    @staticmethod
    def transactions_finished(summaries: Sequence[TransactionSummary]) -> None:
        """Count finished SIP transactions: final codes, timeouts, durations."""
        for tx in summaries:
            method = method_label(tx.method)
            code = str(tx.status) if tx.status is not None else "none"
            SIP_RESPONSES.labels(method, code, tx.role).inc()
            SIP_TRANSACTION_DURATION.labels(method).observe(tx.duration_s)
            if tx.timed_out is not None:
                SIP_TRANSACTION_TIMEOUTS.labels(method, tx.timed_out).inc()

    def snapshot(self) -> RuntimeSnapshot:
        """The protocol layers' counters now (see `agent.telemetry`)."""
        server = self._server
        layer, endpoint, media = server.ua.layer, server.endpoint, server.media
        counters = layer.counters
        sip = SipFigures(
            messages_received=counters.received,
            dropped=counters.dropped,
            parse_errors_answered=counters.rejected,
            retransmissions_absorbed=counters.retransmissions_absorbed,
            responses_unmatched=counters.responses_unmatched,
            requests_by_method=dict(counters.by_method),
            transactions_active=len(layer),
            tcp_connections=len(endpoint.connections) if endpoint else 0,
            tcp_framing_errors=endpoint.framing_errors if endpoint else 0,
            acl_rejected=endpoint.acl_rejected if endpoint else 0,
        )
        clock = ClockFigures()
        sessions = []
        if media is not None:
            stats, events = media.stats, media.event_counts
            clock = ClockFigures(
                ticks=stats.ticks,
                late_ticks=stats.late_ticks,
                max_lateness_s=stats.max_lateness_s,
                skipped_frames=stats.skipped_frames,
                packets_sent=stats.packets_sent,
                late_packets=stats.late_packets,
                send_errors=stats.send_errors,
                packets_received=stats.packets_received,
                vad_segments=events["SpeechStarted"],
                barge_ins=events["BargeIn"],
                dtmf_digits=events["DtmfDigit"],
            )
            sessions = [
                s for call_id in server.calls if (s := media.engine.session(call_id)) is not None
            ]
        totals, jitter_max_s, delay_s = media_snapshot(self.media_totals, sessions)
        return RuntimeSnapshot(
            active_calls=len(server.calls),
            draining=self.draining,
            rtp_ports_in_use=len(server.ports),
            sip=sip,
            clock=clock,
            media=totals,
            jitter_max_s=jitter_max_s,
            buffer_delay_mean_s=delay_s,
            dependencies=tuple((d.name, d.ok) for d in self.dependencies()),
        )

    # ----------------------------------------------------------------- health source
    def dependencies(self) -> Sequence[Dependency]:
        """SIP, RTP ports, and for the intake the records store and the recogniser."""
        server = self._server
        endpoint = server.endpoint
        pairs = server.settings.port_range.pairs
        out = [
            Dependency("sip", endpoint is not None, True, "listening" if endpoint else "not bound"),
            Dependency(
                "rtp_ports", len(server.ports) < pairs, True, f"{len(server.ports)}/{pairs} in use"
            ),
        ]
        if server.settings.app == "intake":
            services = server.call_services
            out.append(
                Dependency(
                    "records", services is not None, True, "sqlite" if services else "not open"
                )
            )
            out.append(
                Dependency(
                    "speech_recognizer", services is not None, True, "embedded (pocketsphinx)"
                )
            )
        store = server.store
        connected = getattr(store, "connected", True)
        out.append(
            Dependency("state_store", bool(connected), False, type(store).__name__),
        )
        return out

    def active_calls(self) -> Sequence[CallInfo]:
        """The calls in progress (identifiers, state, times: no caller ID)."""
        server = self._server
        now = asyncio.get_running_loop().time()
        out = []
        for call_id, call in server.calls.items():
            signalling = server.ua.calls.get(call_id)
            session = server.intake_session(call_id)
            out.append(
                CallInfo(
                    call_id=call_id,
                    state=signalling.state.value if signalling is not None else "ended",
                    duration_s=round(now - call.answered_at, 1) if call.answered_at else 0.0,
                    phase=session.conversation.phase.name if session is not None else None,
                    codec=call.answer.codec.name if call.answer is not None else None,
                )
            )
        return out

    def list_intakes(self, limit: int) -> Sequence[IntakeRecord]:
        """The newest records (blocking: runs in a worker thread)."""
        services = self._server.call_services
        return services.records.list(limit) if services is not None else []

    def get_intake(self, call_id: str) -> IntakeRecord | None:
        """One record (blocking: runs in a worker thread)."""
        services = self._server.call_services
        return services.records.get(call_id) if services is not None else None
