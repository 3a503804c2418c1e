"""The running server: the SIP endpoint, call answering and the RTP port pool.

This is the asyncio shell of the agent (STYLE rule 2). It builds the sans-I/O `UserAgent`
from `Settings`, binds `SipEndpoint`, and reacts to call events: an offer is negotiated
(`sip.sdp.negotiate`) against an RTP port from the pool and answered with 200 OK, or
refused with 488; a call that ends gives its port back. Media arrives with the RTP engine.

With ``answer_delay_seconds`` set, an acceptable call first gets 180 Ringing and is answered
when a per-call timer fires; the timer is cancelled when the call ends first (the caller
CANCELs: the UA core sends 200 and 487). This timer is application policy, not protocol,
so it lives here in the shell rather than in the sans-I/O `UserAgent`.

A caller who asks for a person is transferred blind with REFER (`Server.transfer`, the
``CallServices.transfer`` of each intake; `agent.blind_transfer`). The call's RTP session
is set up from the negotiated answer by `agent.media_attach`.

A new INVITE first passes admission control (`agent.admission`): over ``max_calls``, or while
the media clock is overloaded (sampled once a second), it gets 503 with Retry-After so the
trunk routes the caller elsewhere instead of every call in progress hearing broken audio.
"""

from __future__ import annotations

import asyncio
import ipaddress
import secrets
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from agent.admission import Admission, AdmissionConfig, AdmissionControl
from agent.blind_transfer import BlindTransfers
from agent.calendar import DEFAULT_CALENDAR, Calendar
from agent.call_runtime import CallServices, CallSession
from agent.config import Settings
from agent.echo_call import run_echo
from agent.intakes import Intakes
from agent.mailer import Mailer, SmtpConfig
from agent.media_attach import media_stats, session_config
from agent.metrics import CALLS_REJECTED
from agent.operations import RETRY_AFTER_S, ServerOps
from agent.prompts import PromptCache
from agent.redis_store import RedisStore
from agent.sealing import Sealer
from agent.store import MemoryStore, StateStore
from dsp.g711 import G711Law
from rtp.ports import PortAllocator, PortsExhausted
from rtp.session import MediaSession
from rtp.transport import CallMedia, MediaRuntime
from sip.auth import DigestVerifier
from sip.call import (
    CallConfirmed,
    CallEnded,
    CallEvent,
    CallState,
    IncomingCall,
    InfoReceived,
    OfferReceived,
)
from sip.errors import SipParseError
from sip.layer import Address as SipAddress
from sip.layer import LayerConfig, TransactionLayer
from sip.offer_answer import (
    Answer,
    LocalMedia,
    Rejection,
    accept_answer,
    build_offer,
    negotiate,
)
from sip.refer import TransferAccepted, TransferFailed, TransferSucceeded
from sip.sdp import SessionDescription
from sip.transaction import SipTimers
from sip.transport import SipEndpoint
from sip.uac import Originator
from sip.useragent import UserAgent, UserAgentConfig

log = structlog.get_logger("voiceagent")

ADMISSION_SAMPLE_S = 1.0  # how often the media clock's counters reach admission control
TRANSFER_NOTIFY_SECONDS = 30.0  # after the 202, the final NOTIFY is due within this

GREETING = (
    "Thank you for calling. This is the automated intake line. "
    "After the tone of your own voice, I will repeat what you say."
)


@dataclass(slots=True)
class ActiveCall:
    """What the runtime keeps per call (no PHI)."""

    call_id: str
    rtp_port: int
    media: LocalMedia
    answer: Answer | None = None
    signalling_host: str = ""  # the IP the INVITE came from (the trunk)
    caller_id: str | None = None  # PHI: never logged
    answer_timer: asyncio.TimerHandle | None = None  # pending delayed answer, while ringing
    channel: CallMedia | None = None
    task: asyncio.Task[None] | None = None
    answered_at: float | None = None  # loop time of the 200 OK


class Server:
    """One VoiceAgent instance."""

    def __init__(
        self, settings: Settings, transcript: Callable[[str, str], None] | None = None
    ) -> None:
        self.settings = settings
        timers = SipTimers(t1=settings.sip_t1, t2=settings.sip_t2, t4=settings.sip_t4)
        address = settings.advertised_address
        host = f"[{address}]" if ":" in address else address
        me = Originator(
            from_uri=f"sip:voiceagent@{host}",
            contact_uri=f"sip:voiceagent@{host}:{settings.sip_port}",
            sent_by=f"{host}:{settings.sip_port}",
            user_agent="VoiceAgent/0.1",
        )
        verifier = None
        if settings.sip_auth_realm and settings.sip_auth_users:
            verifier = DigestVerifier(
                realm=settings.sip_auth_realm,
                passwords=dict(settings.sip_auth_users),
                secret=secrets.token_bytes(32),
            )
        self.ua = UserAgent(
            UserAgentConfig(
                me=me,
                max_call_seconds=settings.max_call_seconds,
                verifier=verifier,
                refer_notify_seconds=TRANSFER_NOTIFY_SECONDS,
            ),
            TransactionLayer(LayerConfig(timers=timers, force_rport=settings.force_rport)),
        )
        self.ports = PortAllocator(settings.port_range)
        self.calls: dict[str, ActiveCall] = {}
        self.endpoint: SipEndpoint | None = None
        self.media: MediaRuntime | None = None
        self.prompts = PromptCache()
        self.store: StateStore = _state_store(settings)
        self.mailer: Mailer | None = None  # with smtp_host and email_to, once started
        self._ops_tasks: list[asyncio.Task[None]] = []  # the state writer, the mail sender
        self.intakes = Intakes(
            settings,
            self.prompts,
            self.store,
            Calendar.load(settings.calendar_file or DEFAULT_CALENDAR),
            hangup=self.hangup,
            transfer=self.transfer,
            transcript=transcript,
            outbox_wake=self._outbox_wake,
        )
        # The UA decides every transfer within Timer F plus the NOTIFY wait; a little more.
        self.transfers = BlindTransfers(
            self.ua, 64 * settings.sip_t1 + TRANSFER_NOTIFY_SECONDS + 5.0, self._pump
        )
        self.stopped = asyncio.Event()
        self.completed_calls = 0
        self.admission = AdmissionControl(
            AdmissionConfig(max_calls=settings.max_calls, late_share=settings.overload_late_share)
        )
        self._admission_timer: asyncio.TimerHandle | None = None
        # ---- operations: metrics, health, HTTP, draining (agent/operations.py)
        self.ops = ServerOps(self)
        self._allowed = tuple(
            ipaddress.ip_network(n, strict=False) for n in settings.sip_allowed_networks
        )

    async def start(self) -> None:
        """Bind the SIP sockets (raises OSError when the port is taken)."""
        self.media = MediaRuntime(self.settings.sip_host)
        await asyncio.to_thread(self.prompts.get, GREETING)  # synthesize before the first call
        # ---- shared state and the email outbox (issue 6 items 1-2)
        loop = asyncio.get_running_loop()
        if isinstance(self.store, RedisStore):
            await self.store.connect()  # bounded; calls run on local state until it answers
            self._ops_tasks.append(loop.create_task(self.store.run()))
        if self.settings.app == "intake":
            services = await self.intakes.services()
            warm_up = getattr(services.stt, "warm_up", None)
            if warm_up is not None:  # load the recogniser's models before the first caller
                await warm_up()
            smtp = SmtpConfig.from_settings(self.settings)
            if smtp is not None:
                self.mailer = Mailer(services.records, smtp)
                self._ops_tasks.append(loop.create_task(self.mailer.run()))
        self.endpoint = SipEndpoint(
            self.ua,
            on_activity=self._on_activity,
            accept=self._source_allowed if self._allowed else None,
        )
        await self.endpoint.start(self.settings.sip_host, self.settings.sip_port)
        try:
            await self.ops.start()
        except OSError:
            self.endpoint.close()
            raise
        self._sample_media_clock()
        log.info(
            "listening",
            sip=f"{self.settings.sip_host}:{self.settings.sip_port}",
            transports=["udp", "tcp"],
            rtp_ports=self.settings.rtp_ports,
        )

    async def run_until_stopped(self) -> None:
        """Serve until SIGINT or SIGTERM, then drain the calls (`ServerOps.drain`) and stop."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._on_signal)
        await self.stopped.wait()
        await self.ops.drain()
        await self.aclose()

    def _on_signal(self) -> None:
        if self.stopped.is_set():
            self.ops.cut_short()  # a second signal: stop waiting for the calls
        self.stopped.set()

    async def aclose(self) -> None:
        """Stop listening, then release the recogniser's worker processes and the stores."""
        self.close()
        await self.ops.aclose()
        await self.intakes.close_providers()
        await self._close_state_and_outbox()
        await self.intakes.close_records()  # after the outbox's last try, which reads it

    async def _close_state_and_outbox(self, flush_s: float = 5.0) -> None:
        """Write back queued state and try the outbox once (bounded), then stop both tasks."""
        if isinstance(self.store, RedisStore):
            await self.store.flush(flush_s)
        if self.mailer is not None:
            await self.mailer.flush(flush_s)
        for task in self._ops_tasks:
            task.cancel()
        await asyncio.gather(*self._ops_tasks, return_exceptions=True)
        if isinstance(self.store, RedisStore):
            await self.store.aclose()

    @property
    def call_services(self) -> CallServices | None:
        """What the intakes share, once the first intake (or `start`) created it."""
        return self.intakes.shared

    def intake_session(self, call_id: str) -> CallSession | None:
        """The intake in progress on a call."""
        return self.intakes.sessions.get(call_id)

    def _source_allowed(self, source: SipAddress) -> bool:
        try:
            address = ipaddress.ip_address(source.host)
        except ValueError:
            return False
        return any(address in network for network in self._allowed)

    def close(self) -> None:
        """Stop listening."""
        if self._admission_timer is not None:
            self._admission_timer.cancel()
            self._admission_timer = None
        for call in self.calls.values():
            if call.answer_timer is not None:
                call.answer_timer.cancel()
        for call in self.calls.values():
            if call.task is not None:
                call.task.cancel()
        if self.media is not None:
            self.media.close()
        if self.endpoint is not None:
            self.endpoint.close()
        log.info("stopped", active_calls=len(self.calls))

    # ----------------------------------------------------------------- call events
    def _on_activity(self) -> None:
        now = asyncio.get_running_loop().time()
        while (event := self.ua.next_event()) is not None:
            call_id = getattr(event, "call_id", None)
            context = {"call_id": call_id} if isinstance(call_id, str) else {}
            with structlog.contextvars.bound_contextvars(**context):
                self._dispatch(event, now)
        finished = self.ua.layer.finished
        self.ops.transactions_finished(finished)
        while finished:
            tx = finished.popleft()
            log.info(
                "transaction",
                call_id=tx.call_id,
                branch=tx.branch,
                method=tx.method,
                role=tx.role,
                status=tx.status,
                timed_out=tx.timed_out,
                duration_s=tx.duration_s,
            )
        for rejected in list(self.ua.rejected):
            log.info(
                "message_rejected",
                reason=rejected.reason,
                status=rejected.status,
                source=str(rejected.source.transport),
            )
        self.ua.rejected.clear()

    def _dispatch(self, event: CallEvent, now: float) -> None:
        if isinstance(event, IncomingCall):
            self._on_incoming(event, now)
        elif isinstance(event, CallConfirmed):
            self._on_confirmed(event)
        elif isinstance(event, OfferReceived):
            self._on_offer(event, now)
        elif isinstance(event, CallEnded):
            self._on_ended(event)
        elif isinstance(event, InfoReceived):
            log.info("info_received", call_id=event.call_id, content_type=event.content_type)
        elif isinstance(event, TransferAccepted | TransferSucceeded | TransferFailed):
            self.transfers.on_event(event)

    def _sample_media_clock(self) -> None:
        """Feed the media clock's counters to admission control, once a second."""
        loop = asyncio.get_running_loop()
        if self.media is not None:
            stats = self.media.stats
            self.admission.observe(stats.ticks, stats.late_ticks, stats.skipped_frames, loop.time())
        self._admission_timer = loop.call_later(ADMISSION_SAMPLE_S, self._sample_media_clock)

    def _on_incoming(self, event: IncomingCall, now: float) -> None:
        bound = log.bind(call_id=event.call_id, branch=event.request.top_via().branch)
        if self.ops.draining:  # shutting down: another instance (or a retry) takes it
            bound.info("call_refused_draining")
            CALLS_REJECTED.labels("draining").inc()
            self.ua.reject(event.call_id, 503, now, headers=(("Retry-After", str(RETRY_AFTER_S)),))
            return
        verdict = self.admission.decide(len(self.calls), now)
        if verdict is not Admission.ADMIT:
            CALLS_REJECTED.labels(verdict.value).inc()
            bound.warning(
                "call_refused",
                reason=verdict.value,
                active_calls=len(self.calls),
                late_share=round(self.admission.late_share(), 3),
            )
            retry_after = str(self.admission.config.retry_after_s)
            self.ua.reject(event.call_id, 503, now, headers=(("Retry-After", retry_after),))
            return
        port = self._bind_rtp(event.call_id)
        if port is None:
            CALLS_REJECTED.labels("no_rtp_ports").inc()
            bound.warning("rtp_ports_exhausted")
            self.ua.reject(event.call_id, 503, now, headers=(("Retry-After", "5"),))
            return
        media = LocalMedia(
            address=self.settings.advertised_address,
            rtp_port=port,
            session_id=secrets.randbelow(2**31),
            session_version=1,
            username="voiceagent",
        )
        if not event.offer:
            # Offerless INVITE (RFC 3264 §4): our offer goes in the 200, the answer in ACK.
            call = ActiveCall(
                event.call_id,
                port,
                media,
                signalling_host=event.source.host,
                caller_id=_caller_id(event),
            )
            self.calls[event.call_id] = call
            self._answer_or_ring(
                call,
                str(build_offer(media)).encode(),
                now,
                branch=event.request.top_via().branch,
                offer="ours",
            )
            return
        result = self._negotiate(event.offer, media)
        if not isinstance(result, Answer):
            self._release_rtp(event.call_id, port)
            status, reason = _refusal(result)
            CALLS_REJECTED.labels("bad_sdp" if status == 400 else "codec").inc()
            bound.info("call_rejected", status=status, reason=reason)
            self.ua.reject(
                event.call_id, status, now, headers=(("Warning", f'304 voiceagent "{reason}"'),)
            )
            return
        call = ActiveCall(
            event.call_id,
            port,
            media,
            result,
            signalling_host=event.source.host,
            caller_id=_caller_id(event),
        )
        self.calls[event.call_id] = call
        self._answer_or_ring(
            call,
            str(result.sdp).encode(),
            now,
            branch=event.request.top_via().branch,
            codec=result.codec.name,
            ptime_ms=result.ptime_ms,
        )

    def _answer_or_ring(self, call: ActiveCall, sdp: bytes, now: float, **fields: object) -> None:
        """Answer at once, or send 180 Ringing and answer after ``answer_delay_seconds``.

        ``fields`` (``branch`` and the negotiated codec) go on the ``call_answered`` line.
        """
        delay = self.settings.answer_delay_seconds
        if delay <= 0:
            self.ua.answer(call.call_id, sdp, now)
            call.answered_at = now
            log.info("call_answered", call_id=call.call_id, **fields)
            self._start_media(call)
            return
        self.ua.ring(call.call_id, now)
        log.info(
            "call_ringing", call_id=call.call_id, branch=fields.get("branch"), answer_in_s=delay
        )
        call.answer_timer = asyncio.get_running_loop().call_later(
            delay, self._answer_after_ringing, call.call_id, sdp, fields
        )

    def _answer_after_ringing(self, call_id: str, sdp: bytes, fields: dict[str, object]) -> None:
        call = self.calls.get(call_id)
        if call is None:
            return  # ended while ringing (its timer should have been cancelled)
        call.answer_timer = None
        signalling = self.ua.calls.get(call_id)
        if signalling is None or signalling.state is not CallState.OFFERED:
            return
        call.answered_at = asyncio.get_running_loop().time()
        self.ua.answer(call_id, sdp, call.answered_at)
        log.info("call_answered", call_id=call_id, **fields)
        self._start_media(call)
        self._pump()  # send the 200

    def _on_confirmed(self, event: CallConfirmed) -> None:
        call = self.calls.get(event.call_id)
        log.info("call_confirmed", call_id=event.call_id)
        if call is not None and call.answer is None and event.remote_sdp:
            try:
                offer = build_offer(call.media)
                result = accept_answer(
                    offer, SessionDescription.parse(event.remote_sdp.decode("utf-8", "replace"))
                )
            except SipParseError:
                result = None
            if isinstance(result, Answer):
                call.answer = result
                self._start_media(call)

    def _on_offer(self, event: OfferReceived, now: float) -> None:
        call = self.calls.get(event.call_id)
        if call is None:
            self.ua.reject(event.call_id, 488, now)
            return
        call.media = call.media.next_version()
        result = self._negotiate(event.offer, call.media)
        if not isinstance(result, Answer):
            self.ua.reject(event.call_id, _refusal(result)[0], now)
            return
        call.answer = result
        self.ua.answer(event.call_id, str(result.sdp).encode(), now)
        log.info(
            "session_modified",
            call_id=event.call_id,
            on_hold=result.on_hold,
            direction=result.direction.value,
        )

    def _on_ended(self, event: CallEnded) -> None:
        call = self.calls.pop(event.call_id, None)
        self.ops.call_ended(call, event, asyncio.get_running_loop().time())
        if call is not None:
            if call.answer_timer is not None:
                call.answer_timer.cancel()
            # An intake awaiting its transfer's outcome has it already (the UA reports it
            # before the end of the call): let it record the transfer, then end on its own.
            if call.task is not None and not self.transfers.pending(call.call_id):
                call.task.cancel()
            self._log_media_stats(call.call_id)
            self._release_rtp(call.call_id, call.rtp_port)
        self.completed_calls += 1
        log.info(
            "call_ended", call_id=event.call_id, reason=event.reason.value, status=event.status
        )
        self.ops.call_gone()

    # ----------------------------------------------------------------- media
    def _log_media_stats(self, call_id: str) -> None:
        """One line of what the call's media went through: loss, jitter, buffer actions."""
        session = self.media.engine.session(call_id) if self.media is not None else None
        if session is not None:
            log.info("media_stats", call_id=call_id, **media_stats(session))

    def _bind_rtp(self, call_id: str) -> int | None:
        """An RTP port pair from the pool with its sockets bound, or None when none is free."""
        assert self.media is not None
        for _ in range(8):  # a port another program holds is skipped, a few times at most
            try:
                port = self.ports.allocate()
            except PortsExhausted:
                return None
            try:
                self.media.bind(call_id, port)
                return port
            except OSError:
                log.warning("rtp_port_unavailable", call_id=call_id, port=port)
        return None

    def _release_rtp(self, call_id: str, port: int) -> None:
        if self.media is not None:
            self.media.detach(call_id)
        self.ports.release(port)

    def _start_media(self, call: ActiveCall) -> None:
        """Attach the call's RTP session once the codec and remote address are known."""
        answer = call.answer
        if answer is None or call.channel is not None or self.media is None:
            return
        loop = asyncio.get_running_loop()
        config = session_config(answer, call.signalling_host, time.time() - loop.time())
        law = G711Law.PCMA if answer.codec.name.upper() == "PCMA" else G711Law.PCMU
        session = MediaSession(config, loop.time())
        call.channel = self.media.attach(call.call_id, session, law)
        if self.settings.app == "echo":
            coro = run_echo(call.call_id, call.channel, self.prompts.get(GREETING))
        else:
            coro = self.intakes.run(call.call_id, call.caller_id, call.channel)
        with structlog.contextvars.bound_contextvars(call_id=call.call_id):
            call.task = loop.create_task(coro)  # the task's log lines carry the call_id

    async def transfer(self, call_id: str, target: str) -> bool:
        """Blind-transfer a call in progress to ``target`` (`BlindTransfers.transfer`)."""
        if call_id not in self.calls:
            return False
        return await self.transfers.transfer(call_id, target)

    def hangup(self, call_id: str) -> None:
        """End a call with BYE (the intake is over)."""
        self.ua.hangup(call_id, asyncio.get_running_loop().time())
        self._pump()

    def _pump(self) -> None:
        """Send what the UA queued outside a SIP event, and re-arm the SIP timer."""
        if self.endpoint is not None:
            self.endpoint.pump()

    @staticmethod
    def _negotiate(offer: bytes, media: LocalMedia) -> Answer | Rejection | SipParseError:
        try:
            description = SessionDescription.parse(offer.decode("utf-8", "replace"))
        except SipParseError as exc:
            return exc
        return negotiate(description, media)

    def _outbox_wake(self) -> None:
        """An intake's email was queued (called from the records store's worker thread)."""
        if self.mailer is not None:
            self.mailer.wake()


def _state_store(settings: Settings) -> StateStore:
    """Redis when a URL is configured (PHI sealed with the configured keys), else memory."""
    if settings.redis_url is None:
        return MemoryStore()
    return RedisStore(
        settings.redis_url,
        prefix=settings.redis_prefix,
        ttl_seconds=settings.state_ttl_seconds,
        sealer=Sealer.from_base64(settings.state_keys),
    )


def _caller_id(event: IncomingCall) -> str | None:
    """The calling number from the From header's user part (PHI: never logged)."""
    try:
        user = event.request.from_().uri.user
    except SipParseError:
        return None
    return user if user and any(c.isdigit() for c in user) else None


def _refusal(result: Rejection | SipParseError) -> tuple[int, str]:
    """Status and reason for an offer we cannot take: 400 for broken SDP, else 488."""
    if isinstance(result, SipParseError):
        return result.status_hint, f"malformed SDP: {result}"
    return result.status, str(result.reason)
