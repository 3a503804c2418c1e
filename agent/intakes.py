"""The intakes in progress on one server, and what they share.

Part of the runtime's asyncio shell (`agent.runtime`, STYLE rule 2). `Intakes.run` is one
call's intake from the moment its media is attached: the open slots of the calendar that no
call has booked, a sans-I/O `Conversation`, and the `CallSession` that carries it out, until
the call ends. An intake that fails is logged without its message (it may hold what the
caller said) and hung up. `Intakes.services` builds, once, what every call shares: the
records store, the embedded recogniser, the cloud roles with their failover, the language
model, and the hooks back into the server (hang up, transfer, a booked slot).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path

import structlog

from agent.calendar import Calendar
from agent.call_observer import end_of_intake
from agent.call_runtime import CallServices, CallSession
from agent.config import Settings
from agent.conversation import Conversation, ConversationConfig
from agent.mailer import SmtpConfig
from agent.metrics import INTAKE_ERRORS
from agent.phase_rules import default_questions
from agent.prompts import PromptCache
from agent.providers.embedded import make_embedded_stt
from agent.providers.openai_llm import language_model
from agent.providers.selection import SpeechProviders, build_speech_providers
from agent.records import SqliteRecords
from agent.store import StateStore
from rtp.transport import CallMedia

log = structlog.get_logger("voiceagent")

OFFERED_SLOTS = 12  # open slots a call may offer, soonest first


class Intakes:
    """Every intake in progress, by Call-ID, and the services they share."""

    def __init__(
        self,
        settings: Settings,
        prompts: PromptCache,
        store: StateStore,
        calendar: Calendar,
        *,
        hangup: Callable[[str], None],
        transfer: Callable[[str, str], Awaitable[bool]],
        transcript: Callable[[str, str], None] | None,
        outbox_wake: Callable[[], None],
    ) -> None:
        self.settings = settings
        self.prompts = prompts
        self.store = store
        self.calendar = calendar
        self._hangup = hangup
        self._transfer = transfer
        self._transcript = transcript
        self._outbox_wake = outbox_wake
        self.shared: CallServices | None = None  # once the first intake (or start) built it
        self._speech: SpeechProviders | None = None  # cloud roles with failover (issue 5)
        self.sessions: dict[str, CallSession] = {}

    async def services(self) -> CallServices:
        """What every intake shares, built on first use."""
        if self.shared is None:
            settings = self.settings
            records = await asyncio.to_thread(
                lambda: SqliteRecords(
                    Path(settings.data_dir) / "records.sqlite3",
                    outbox=SmtpConfig.from_settings(settings) is not None,
                    on_outbox=self._outbox_wake,
                )
            )
            stt = make_embedded_stt()
            speech = build_speech_providers(settings, stt, self.prompts.get)
            self._speech = speech
            self.shared = CallServices(
                stt=stt,
                prompts=self.prompts,
                records=records,
                store=self.store,
                hangup=self._hangup,
                slot_booked=self._slot_booked,
                transfer=self._transfer,
                transcript=self._transcript,
                llm=language_model(settings),
                llm_budget_s=settings.llm_turn_budget_s,
                llm_consult=settings.llm_consult,
                call_stt=None if speech.cloud_stt is None else speech.stt_for_call,
                call_tts=None if speech.cloud_tts is None else speech.tts_for_call,
            )
        return self.shared

    async def run(self, call_id: str, caller_id: str | None, media: CallMedia) -> None:
        """Run the patient intake on one call, until the call ends."""
        services = await self.services()
        wall = datetime.now().astimezone().replace(tzinfo=None)
        booked = await services.store.booked_slots()
        slots = tuple(s for s in self.calendar.open_slots(wall) if s.slot_id not in booked)
        config = ConversationConfig(
            questions=default_questions(),
            clinic_name=self.settings.clinic_name,
            transfer_target=self.settings.transfer_target,
            open_slots=slots[:OFFERED_SLOTS],
        )
        conversation = Conversation(call_id, config, started=wall)
        session = CallSession(
            call_id, media, conversation, services, caller_id=caller_id, wall_time=wall
        )
        self.sessions[call_id] = session
        try:
            await session.run()
        except Exception as exc:
            # The message and traceback locals may hold what the caller said (PHI): log the
            # error's type and where it was raised, never its text.
            tb = exc.__traceback__
            while tb is not None and tb.tb_next is not None:
                tb = tb.tb_next
            where = f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}" if tb else "?"
            log.error("intake_failed", call_id=call_id, error=type(exc).__name__, where=where)
            INTAKE_ERRORS.labels(type(exc).__name__).inc()
            self._hangup(call_id)
        finally:
            self.sessions.pop(call_id, None)
            end_of_intake(call_id, session.conversation)
            await services.store.end_call(call_id)
            latencies = sorted(session.turn_latencies_s)
            if latencies:
                p50_ms = round(1000 * latencies[len(latencies) // 2])
                log.info("turn_latency", call_id=call_id, p50_ms=p50_ms, turns=len(latencies))

    def _slot_booked(self, call_id: str, slot_id: str) -> None:
        """Every other call in progress stops offering ``slot_id``."""
        for other, session in self.sessions.items():
            if other != call_id:
                session.slot_taken(slot_id)

    async def close_providers(self) -> None:
        """Release the recogniser's worker processes, the model client, the cloud roles."""
        if self.shared is not None:
            await self.shared.stt.aclose()
            if self.shared.llm is not None:
                await self.shared.llm.aclose()
        if self._speech is not None:
            await self._speech.aclose()

    async def close_records(self) -> None:
        """Close the records store (after the outbox's last try, which reads it)."""
        if self.shared is not None:
            await asyncio.to_thread(self.shared.records.close)
