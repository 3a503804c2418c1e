"""The asyncio shell of one call's intake: media and audio in, conversation commands out.

This module is part of the runtime (STYLE rule 2 names ``agent/runtime.py``; the per-call half
lives here to keep each module to one job). It owns two tasks per call, both created through
one `asyncio.TaskGroup`:

* the *audio task* keeps a ring of the caller's recent frames and, while a caller turn is
  open, streams them to the speech recogniser, starting from the endpointer's back-dated first
  speech frame;
* the *event task* feeds media events (turn start and end, barge-in, DTMF, playout done) and
  the silence timer to the sans-I/O `Conversation`, and carries out its commands: speak
  (synthesize, then queue on the media), listen (hints for the next turn), book a slot, save
  the record, transfer, hang up once the goodbye has played.

Recognition never blocks the media clock: the recogniser runs in worker threads, and the
media engine keeps its own 20 ms schedule whatever this task is doing.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import io
import wave
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import structlog
from numpy.typing import NDArray

from agent.call_observer import CallObserver
from agent.commands import (
    BookSlot,
    Command,
    Expect,
    Expectation,
    Hangup,
    Listen,
    SaveRecord,
    Speak,
    StopSpeaking,
    Transfer,
)
from agent.consult import Consult, rules_settle
from agent.conversation import Conversation
from agent.events import (
    BargeIn as BargeInEvent,
)
from agent.events import (
    CallEnded,
    CallerSpeaking,
    CallStarted,
    DtmfDigit,
    Event,
    PlayoutDone,
    SlotBooked,
    SlotTaken,
    SlotUnavailable,
    Transcript,
    TransferResult,
)
from agent.metrics import LLM_TURNS, STT_LATENCY, TTS_LATENCY, TURN_LATENCY
from agent.phase_handler import HandlerState, PhaseHandler, ProposalModel
from agent.prompts import PromptCache
from agent.proposals import request_for
from agent.providers.base import (
    HintKind,
    RecognitionHints,
    RecognitionStream,
    SpeechToText,
    TextToSpeech,
)
from agent.records import SqliteRecords
from agent.store import CallSnapshot, StateStore
from agent.streamed_playout import StreamedPlayout
from dsp.bargein import BargeIn
from dsp.endpoint import SpeechEnded, SpeechStarted
from rtp.engine import CallerFrame, PlayoutStopped
from rtp.engine import DtmfDigit as MediaDigit
from rtp.engine import PlayoutDone as MediaPlayoutDone
from rtp.transport import CallMedia

log = structlog.get_logger("voiceagent.call")

_RING_FRAMES = 1500  # 30 s of caller audio: the longest turn we keep
# The recogniser gets some of the line's quiet before and after the speech, as a recorded
# answer has: its silence model and cepstral mean settle on it, and the first phone is not
# cut. Both are far shorter than the endpointing silence (35 frames), so the frames after the
# speech have already arrived when the turn ends.
PRE_ROLL_FRAMES = 10  # 200 ms
POST_ROLL_FRAMES = 10
# When the endpointer ends a turn, every frame of it has reached the media engine, but the
# audio task may not have handed them all to the recogniser yet: on a loaded machine a busy
# recogniser holds ``feed`` back. The turn waits for them (this long at most) rather than be
# recognised without its last words; on an idle machine they are already there.
TAIL_WAIT_S = 2.0


@dataclass(frozen=True, slots=True)
class CallServices:
    """What every call shares."""

    stt: SpeechToText
    prompts: PromptCache
    records: SqliteRecords
    store: StateStore
    hangup: Callable[[str], None]
    transfer: Callable[[str, str], Awaitable[bool]] | None = None
    # (call_id, slot_id) after a booking: the server tells the other calls not to offer it.
    slot_booked: Callable[[str, str], None] | None = None
    # A live transcript for the demo: ("agent", what we say) and ("heard", what the
    # recogniser made of the caller). PHI: only ever a terminal, never a log.
    transcript: Callable[[str, str], None] | None = None
    # The language-model phase handler (issue 5): None runs the rules alone.
    llm: ProposalModel | None = None
    llm_budget_s: float = 1.5
    llm_consult: Consult = Consult.OPEN_OR_UNREAD  # which turns go to the model
    # Cloud providers (issue 5): a call's own recogniser and synthesiser, each wrapped to fail
    # over to the embedded one for the rest of that call. Without them, ``stt`` and
    # ``prompts`` serve every call.
    call_stt: Callable[[str], SpeechToText] | None = None
    call_tts: Callable[[str], TextToSpeech] | None = None


_PHRASE_HINTS = {
    Expect.PAYER: HintKind.PAYER_NAMES,
    Expect.SYMPTOMS: HintKind.SYMPTOMS,
    Expect.ADDRESS: HintKind.STREET,
    Expect.PHARMACY: HintKind.PHARMACY,
    Expect.RELATIONSHIP: HintKind.RELATIONSHIP,
    Expect.CHOICE: HintKind.CHOICE,
}


def hints_for(expectation: Expectation) -> RecognitionHints:
    """Map the conversation's expectation to recogniser hints."""
    kind = expectation.kind
    if kind is Expect.YES_NO:
        return RecognitionHints.yes_no()
    if kind is Expect.DIGITS:
        low = max(expectation.min_digits, 1)
        return RecognitionHints.digits(low, max(expectation.max_digits, low))
    phrase_kind = _PHRASE_HINTS.get(kind)
    if phrase_kind is not None and expectation.vocabulary:
        phrases = sorted({p for p in map(_speakable, expectation.vocabulary) if p})
        places = sorted({p for p in map(_speakable, expectation.places) if p})
        return RecognitionHints.one_of(phrase_kind, phrases, places)
    if kind is Expect.DURATION:
        return RecognitionHints.of(HintKind.DURATION)
    if kind is Expect.DATE:
        return RecognitionHints.of(HintKind.DATE)
    if kind is Expect.SPELLING:
        return RecognitionHints.of(HintKind.NAME_SPELLING)
    return RecognitionHints.free_speech()


def _speakable(phrase: str) -> str:
    """A phrase as words a recogniser can take: lower case letters, spaces, apostrophes."""
    words = "".join(c if c.isalpha() or c in " '" else " " for c in phrase.lower()).split()
    return " ".join(words)


class _Turn:
    """One caller turn being recognised."""

    def __init__(
        self, start_frame: int, stream: RecognitionStream, exit_stack: contextlib.AsyncExitStack
    ) -> None:
        self.start_frame = start_frame
        self.end_frame: int | None = None
        self.stream = stream
        self.exit_stack = exit_stack
        self.frames: list[NDArray[np.int16]] = []
        self.next_index = start_frame
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def push(self, frame: CallerFrame) -> None:
        if frame.frame_index < self.next_index:
            return
        if self.end_frame is not None and frame.frame_index >= self.end_frame:
            if not self.done.done():
                self.done.set_result(None)
            return
        self.next_index = frame.frame_index + 1
        self.frames.append(frame.pcm)
        await self.stream.feed(frame.pcm)


class CallSession:
    """Runs one call's intake until the call ends."""

    def __init__(
        self,
        call_id: str,
        media: CallMedia,
        conversation: Conversation,
        services: CallServices,
        *,
        caller_id: str | None,
        wall_time: datetime,
    ) -> None:
        self.call_id = call_id
        self.media = media
        self.conversation = conversation
        self.services = services
        self._caller_id = caller_id
        self._wall_time = wall_time
        self._ring: collections.deque[CallerFrame] = collections.deque(maxlen=_RING_FRAMES)
        self._listen = Listen(Expectation(Expect.FREE_SPEECH))
        self._turn: _Turn | None = None
        self._hangup_pending: str | None = None
        self._inbox: asyncio.Queue[Event] = asyncio.Queue()
        self._loop = asyncio.get_running_loop()
        self.turn_latencies_s: list[float] = []
        self._speech_end_at: float | None = None
        self._clips = 0
        self._observer = CallObserver(call_id)  # log redaction values, phase, retries
        self.phase_handler: PhaseHandler | None = None
        if services.llm is not None:
            self.phase_handler = PhaseHandler(
                services.llm,
                call_id=call_id,
                budget_s=services.llm_budget_s,
                speak=self._speak_acknowledgement,
            )
        self._acknowledged = False  # the model spoke during the turn being answered
        self._stale_playouts = 0  # PlayoutDone of a model acknowledgement, not for the dialogue
        self._stt = services.stt if services.call_stt is None else services.call_stt(call_id)
        self._tts = None if services.call_tts is None else services.call_tts(call_id)
        self._streamed = StreamedPlayout(media)
        self._tasks: asyncio.TaskGroup | None = None
        self._endpoint_watch: asyncio.Task[None] | None = None  # the recogniser's own endpointing

    async def run(self) -> None:
        """Until the media closes (the call ended) or we hung up."""
        try:
            async with asyncio.TaskGroup() as tasks:
                self._tasks = tasks
                audio = tasks.create_task(self._audio_loop())
                media_events = tasks.create_task(self._media_loop())
                await self._execute(
                    self.conversation.handle(
                        CallStarted(self._caller_id, self._wall_time), self._now()
                    )
                )
                await self._event_loop()
                audio.cancel()
                media_events.cancel()
                if self._endpoint_watch is not None:
                    self._endpoint_watch.cancel()
        finally:
            if self._turn is not None:
                await self._turn.exit_stack.aclose()
            if self.conversation.turn.value != "ended":
                await self._execute(self.conversation.handle(CallEnded(), self._now()))

    # ----------------------------------------------------------------- loops
    async def _audio_loop(self) -> None:
        while (frame := await self.media.audio.get()) is not None:
            self._ring.append(frame)
            if self._turn is not None:
                await self._turn.push(frame)

    async def _media_loop(self) -> None:
        async for event in self.media.iter_events():
            await self._on_media(event)
        await self._inbox.put(CallEnded())

    async def _event_loop(self) -> None:
        while True:
            deadline = self.conversation.next_deadline()
            timeout = None if deadline is None else max(0.0, deadline - self._now())
            try:
                event = await asyncio.wait_for(self._inbox.get(), timeout)
            except TimeoutError:
                await self._execute(self.conversation.handle_timer(self._now()))
                continue
            if isinstance(event, PlayoutDone) and self._stale_playouts:
                self._stale_playouts -= 1
                continue
            await self._execute(self.conversation.handle(event, self._now()))
            if isinstance(event, Transcript):
                self._acknowledged = False
                log.debug("heard", text=event.text, confidence=round(event.confidence, 2))
            if (
                isinstance(event, CallEnded)
                or self.conversation.turn.value == "ended"
                and self._hangup_pending is None
            ):
                return
            if isinstance(event, PlayoutDone) and self._hangup_pending is not None:
                self.services.hangup(self.call_id)
                return

    async def _on_media(self, event: object) -> None:
        if isinstance(event, SpeechStarted):
            await self._open_turn(event.start_frame)
            await self._inbox.put(CallerSpeaking())
        elif isinstance(event, SpeechEnded):
            if self._turn is None:  # the recogniser's endpointing has already ended it
                return
            self._speech_end_at = self._now()
            transcript = await self._close_turn(event.end_frame)
            if transcript is not None:
                await self._inbox.put(await self._with_proposal(transcript))
        elif isinstance(event, BargeIn):
            await self._inbox.put(BargeInEvent())
        elif isinstance(event, MediaDigit):
            await self._inbox.put(DtmfDigit(event.digit))
        elif isinstance(event, MediaPlayoutDone | PlayoutStopped):
            if isinstance(event, MediaPlayoutDone) and self._streamed.absorb_done():
                return  # a streamed prompt's queue ran dry between chunks: more came
            if isinstance(event, MediaPlayoutDone) or self._hangup_pending is not None:
                await self._inbox.put(PlayoutDone())

    def slot_taken(self, slot_id: str) -> None:
        """Another call booked ``slot_id``."""
        self._inbox.put_nowait(SlotTaken(slot_id))

    # ----------------------------------------------------------------- recognition
    async def _open_turn(self, start_frame: int) -> None:
        if self._endpoint_watch is not None:
            self._endpoint_watch.cancel()
            self._endpoint_watch = None
        if self._turn is not None:
            await self._turn.exit_stack.aclose()
        stack = contextlib.AsyncExitStack()
        stream = await stack.enter_async_context(
            self._stt.start(hints_for(self._listen.expectation))
        )
        turn = _Turn(max(start_frame - PRE_ROLL_FRAMES, 0), stream, stack)
        for frame in list(self._ring):
            await turn.push(frame)
        self._turn = turn
        wait_endpoint = getattr(stream, "wait_endpoint", None)
        if wait_endpoint is not None and self._tasks is not None:
            watch = self._end_on_endpoint(turn, wait_endpoint)
            self._endpoint_watch = self._tasks.create_task(watch)

    async def _end_on_endpoint(self, turn: _Turn, wait: Callable[[], Awaitable[None]]) -> None:
        """End the turn when a cloud recogniser's endpointing says the caller has finished."""
        await wait()
        if self._turn is not turn:
            return
        self._speech_end_at = self._now()
        # Deepgram has the words already: no post-roll to wait for.
        transcript = await self._close_turn(turn.next_index - POST_ROLL_FRAMES, watch=False)
        if transcript is not None:
            await self._inbox.put(await self._with_proposal(transcript))

    async def _close_turn(self, end_frame: int, *, watch: bool = True) -> Transcript | None:
        turn, self._turn = self._turn, None
        if turn is None:
            return None
        if watch and self._endpoint_watch is not None:
            self._endpoint_watch.cancel()
        self._endpoint_watch = None
        end_frame += POST_ROLL_FRAMES
        turn.end_frame = end_frame
        if turn.next_index < end_frame:  # the rest of the turn's audio is on its way
            self._turn = turn
            try:
                await asyncio.wait_for(asyncio.shield(turn.done), TAIL_WAIT_S)
            except TimeoutError:
                log.warning(
                    "turn_audio_late", call_id=self.call_id, missing=end_frame - turn.next_index
                )
            self._turn = None
        try:
            result = await turn.stream.finish()
        finally:
            await turn.exit_stack.aclose()
        if self._speech_end_at is not None:
            STT_LATENCY.observe(self._now() - self._speech_end_at)
        log.debug(
            "turn_closed",
            call_id=self.call_id,
            frames=len(turn.frames),
            start=turn.start_frame,
            end=end_frame,
            next=turn.next_index,
            ring=len(self._ring),
            first=self._ring[0].frame_index if self._ring else None,
        )
        if self.services.transcript is not None:
            self.services.transcript(
                "heard", f"{result.text or '(nothing)'} [{result.confidence:.2f}]"
            )
        clip = None
        if self._listen.expectation.keep_audio and turn.frames:
            clip = await self._keep_clip(np.concatenate(turn.frames))
        # Nothing recognised is still an answer: the conversation says "sorry, I didn't
        # catch that" at once. Dropping it left the caller in silence until the silence
        # timer (speech start + 38 s; measured by bench/turn_latency.py on 22-33 % of turns).
        return Transcript(result.text, result.confidence if result.text else 0.0, clip)

    # ----------------------------------------------------------------- language model
    async def _with_proposal(self, transcript: Transcript) -> Transcript:
        """The transcript with the model's proposal, when a model is configured and answers."""
        handler = self.phase_handler
        if handler is None or handler.state is HandlerState.FAILED_OVER or not transcript.text:
            return transcript
        request = request_for(self.conversation)
        if request is None:  # a step the rules keep for themselves
            return transcript
        if self.services.llm_consult is Consult.OPEN_OR_UNREAD and rules_settle(
            self.conversation, transcript.text
        ):
            LLM_TURNS.labels(outcome="rules_settled").inc()
            return transcript
        LLM_TURNS.labels(outcome="asked").inc()
        proposal = await handler.propose(request, transcript.text)
        return (
            transcript if proposal is None else dataclasses.replace(transcript, proposal=proposal)
        )

    async def _speak_acknowledgement(self, sentence: str) -> None:
        """A sentence the model streamed, said while the rest of its reply arrives."""
        if self.services.transcript is not None:
            self.services.transcript("agent", sentence)
        await self._say(sentence)
        self._acknowledged = True

    async def _say(self, text: str) -> None:
        """Synthesize ``text`` and queue it on the call.

        From the cloud synthesiser it plays from its first chunk; from the embedded prompt
        cache, whole.
        """
        if self._tts is not None:
            synthesis_started = self._now()

            def first_chunk() -> None:  # time to first audio: what the caller waits
                TTS_LATENCY.observe(self._now() - synthesis_started)
                self._first_audio()

            await self._streamed.play(self._tts.synthesize(text), first_chunk)
            return
        synthesis_started = self._now()
        pcm = await asyncio.to_thread(self.services.prompts.get, text)
        TTS_LATENCY.observe(self._now() - synthesis_started)
        self._first_audio()
        self.media.play(pcm)

    async def _keep_clip(self, pcm: NDArray[np.int16]) -> str:
        self._clips += 1
        name = f"turn-{self._clips:02d}.wav"
        buffer = io.BytesIO()
        with wave.open(buffer, "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(8000)
            out.writeframes(pcm.tobytes())
        await asyncio.to_thread(
            self.services.records.save_clip, self.call_id, name, buffer.getvalue()
        )
        return name

    # ----------------------------------------------------------------- commands
    async def _execute(self, commands: list[Command]) -> None:
        self._observer.update(self.conversation)
        for command in commands:
            if isinstance(command, Speak):
                if self.services.transcript is not None:
                    self.services.transcript("agent", command.text)
                log.debug("said", text=command.text)  # redacted by agent.logs
                if self._acknowledged and not self.media.playing:
                    # The acknowledgement finished before this: its PlayoutDone is queued
                    # behind the transcript and must not tell the dialogue we are done.
                    self._stale_playouts += 1
                self._acknowledged = False
                await self._say(command.text)
            elif isinstance(command, Listen):
                self._listen = command
            elif isinstance(command, StopSpeaking):
                self.media.stop()
            elif isinstance(command, SaveRecord):
                await asyncio.to_thread(self.services.records.save, command.record)
                log.info("record_saved", **command.record.safe_summary())
                # The shared snapshot: queued, never waited for (Redis may be away).
                snapshot = CallSnapshot(self.call_id, self.conversation.phase.value, command.record)
                await self.services.store.save_call(snapshot)
            elif isinstance(command, BookSlot):
                ok = await self.services.store.book_slot(command.slot_id, self.call_id)
                if ok and self.services.slot_booked is not None:
                    self.services.slot_booked(self.call_id, command.slot_id)
                event: Event = (
                    SlotBooked(command.slot_id) if ok else SlotUnavailable(command.slot_id)
                )
                await self._execute(self.conversation.handle(event, self._now()))
            elif isinstance(command, Transfer):
                accepted = False
                if self.services.transfer is not None:
                    accepted = await self.services.transfer(self.call_id, command.target)
                await self._execute(self.conversation.handle(TransferResult(accepted), self._now()))
            elif isinstance(command, Hangup):
                self._hangup_pending = command.reason
                if not self.media.playing:
                    self.services.hangup(self.call_id)

    def _first_audio(self) -> None:
        """The agent's first audio since the caller stopped: one turn latency."""
        if self._speech_end_at is not None:
            self.turn_latencies_s.append(self._now() - self._speech_end_at)
            TURN_LATENCY.observe(self.turn_latencies_s[-1])
            self._speech_end_at = None

    def _now(self) -> float:
        return self._loop.time()
