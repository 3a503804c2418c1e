"""The intake conversation: events in, commands out, no I/O and no clock.

Theory of operation
-------------------
Two machines, kept apart. The intake `Phase` (agent.phases) says which questions are asked;
the turn state says whose turn it is:

    SPEAKING ──PlayoutDone──> LISTENING ──Transcript / keypad──> THINKING ──> SPEAKING
        └──BargeIn──> LISTENING                └──silence deadline──> SPEAKING (re-prompt)
    THINKING ──Transfer──> TRANSFERRING ──TransferResult──> THINKING (then ENDED, or a message)
    any ──CallEnded / Hangup──> ENDED

`Conversation.handle(event, now)` returns `Command`s for the runtime. A question is asked with
a `Speak` followed at once by a `Listen` (so the recogniser is ready for a barge-in). After
playout, a silence deadline of ``silence_timeout_s`` is armed (`next_deadline`); it re-prompts
and, after ``max_silences``, ends the call politely with the record kept as incomplete. When the
caller starts talking the deadline moves out by ``max_turn_s``, so a turn the recogniser makes
nothing of (a cough) cannot leave the call waiting for ever. A re-prompt or "repeat" says the
last question again (without the acknowledgement or apology before it) and listens with the
same hints. While a transfer is under way the caller's speech and keys are ignored; a
`TransferResult`, `SlotBooked` or `SlotUnavailable` nobody asked for is an `AgentStateError`.

Every answer first goes through the global intents (repeat, help, go back, a person, goodbye)
and the red-flag screen (keys: ``*`` repeats; ``0`` asks for a person wherever keys enter no
answer, i.e. outside keypad entries, slot choices and the special steps); then to the
question's extractor. A value is read back when the question or the extractor asks for it,
and kept on "yes". After ``max_attempts`` failed tries the field is left empty for staff. The
phase-specific steps (offering slots, the summary read-back and corrections, urgent advice,
callback messages) live in `agent.dialogue` so that this module stays the turn-taking core.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from agent.commands import (
    Command,
    Expect,
    Expectation,
    KeypadEntry,
    Listen,
    SaveRecord,
    Speak,
    StopSpeaking,
)
from agent.errors import AgentStateError
from agent.events import (
    BargeIn,
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
from agent.phases import Phase
from agent.questions import Context, Question, Slot
from agent.record import IntakeRecord, IntakeStatus, Turn


class TurnState(Enum):
    """Whose turn it is."""

    SPEAKING = "speaking"
    LISTENING = "listening"
    THINKING = "thinking"
    TRANSFERRING = "transferring"
    ENDED = "ended"


class TurnInput(Enum):
    """What moves the turn."""

    SAY = "say"
    PLAYED = "played"
    HEARD = "heard"
    INTERRUPTED = "interrupted"
    TRANSFER = "transfer"
    TRANSFER_RESULT = "transfer_result"
    END = "end"


TURN_TRANSITIONS: dict[tuple[TurnState, TurnInput], TurnState] = {
    (TurnState.SPEAKING, TurnInput.SAY): TurnState.SPEAKING,
    (TurnState.SPEAKING, TurnInput.PLAYED): TurnState.LISTENING,
    (TurnState.SPEAKING, TurnInput.INTERRUPTED): TurnState.LISTENING,
    (TurnState.SPEAKING, TurnInput.HEARD): TurnState.THINKING,
    (TurnState.LISTENING, TurnInput.HEARD): TurnState.THINKING,
    (TurnState.LISTENING, TurnInput.SAY): TurnState.SPEAKING,
    (TurnState.LISTENING, TurnInput.PLAYED): TurnState.LISTENING,
    (TurnState.LISTENING, TurnInput.INTERRUPTED): TurnState.LISTENING,
    (TurnState.THINKING, TurnInput.SAY): TurnState.SPEAKING,
    (TurnState.THINKING, TurnInput.HEARD): TurnState.THINKING,
    (TurnState.THINKING, TurnInput.PLAYED): TurnState.THINKING,
    (TurnState.SPEAKING, TurnInput.TRANSFER): TurnState.TRANSFERRING,
    (TurnState.THINKING, TurnInput.TRANSFER): TurnState.TRANSFERRING,
    (TurnState.TRANSFERRING, TurnInput.PLAYED): TurnState.TRANSFERRING,
    (TurnState.TRANSFERRING, TurnInput.SAY): TurnState.TRANSFERRING,
    (TurnState.TRANSFERRING, TurnInput.TRANSFER_RESULT): TurnState.THINKING,
}
for _state in TurnState:
    TURN_TRANSITIONS[(_state, TurnInput.END)] = TurnState.ENDED


class Mode(Enum):
    """What the caller's next answer is for."""

    ANSWER = "answer"  # the current question
    CONFIRM = "confirm"  # yes/no to a read-back
    SPECIAL = "special"  # a phase step in agent.dialogue decides


@dataclass(frozen=True, slots=True)
class ConversationConfig:
    """Per-clinic settings of the conversation."""

    questions: dict[Phase, tuple[Question, ...]]
    clinic_name: str = "the clinic"
    silence_timeout_s: float = 8.0
    max_silences: int = 3
    max_turn_s: float = 30.0  # the runtime keeps at most 30 s of one caller turn
    transfer_target: str | None = None
    open_slots: tuple[Slot, ...] = ()
    slots_offered: int = 3


@dataclass(slots=True)
class _Cursor:
    phase: Phase = Phase.GREETING
    index: int = 0
    attempts: int = 0
    mode: Mode = Mode.ANSWER
    pending: Any = None  # a value awaiting confirmation
    keypad: str = ""
    silences: int = 0
    deadline: float | None = None
    last_prompt: str = ""
    last_listen: Listen | None = None  # the hints that go with last_prompt
    special: str = ""  # which agent.dialogue step owns Mode.SPECIAL
    asked: list[tuple[Phase, int]] = field(default_factory=list)  # for "go back"
    scratch: dict[str, Any] = field(default_factory=dict)


class Conversation:
    """One caller's intake."""

    def __init__(self, call_id: str, config: ConversationConfig, *, started: datetime) -> None:
        self.config = config
        self.record = IntakeRecord(call_id=call_id, started_at=started)
        self.turn = TurnState.SPEAKING
        self.cursor = _Cursor()
        self._t0: float | None = None
        self._started = started

    # ----------------------------------------------------------------- public interface
    @property
    def phase(self) -> Phase:
        """The current intake phase."""
        return self.cursor.phase

    def next_deadline(self) -> float | None:
        """When the silence timer fires, if armed."""
        return self.cursor.deadline if self.turn is TurnState.LISTENING else None

    def handle_timer(self, now: float) -> list[Command]:
        """The silence deadline passed: re-prompt, or end the call after too many."""
        from agent import dialogue

        deadline = self.next_deadline()
        if deadline is None or now < deadline:
            return []
        self.cursor.deadline = None
        self.cursor.keypad = ""  # a half-typed entry is abandoned with the re-prompt
        self.cursor.silences += 1
        if self.cursor.silences >= self.config.max_silences:
            return dialogue.end_call(
                self,
                now,
                IntakeStatus.INCOMPLETE,
                "I haven't heard from you, so I'll end the call now. "
                "Please call back any time. Goodbye.",
                reason="silence",
            )
        return self.say(
            now,
            f"Are you still there? {self.cursor.last_prompt}",
            self._current_listen(),
            remember=False,
        )

    def handle(self, event: Event, now: float) -> list[Command]:
        """Feed one event; return what to do."""
        from agent import dialogue

        if self.turn is TurnState.ENDED:
            return []
        if self._t0 is None:
            self._t0 = now
        if isinstance(event, CallStarted):
            if self.record.transcript:
                raise AgentStateError("the call has already started")
            self.record = self.record.model_copy(update={"caller_id": event.caller_id})
            self._started = event.wall_time
            return dialogue.greet(self, now)
        if isinstance(event, CallEnded):
            return self._caller_hung_up(now)
        if isinstance(event, SlotTaken):  # news from another call; no turn is taken
            self.cursor.scratch.setdefault("taken", set()).add(event.slot_id)
            return []
        if self.turn is TurnState.TRANSFERRING and isinstance(
            event, Transcript | DtmfDigit | BargeIn | CallerSpeaking
        ):
            return []  # staff are being reached; the caller's words are not answers now
        if isinstance(event, PlayoutDone):
            self._move(TurnInput.PLAYED)
            if self.turn is TurnState.LISTENING:
                self.cursor.deadline = now + self.config.silence_timeout_s
            return dialogue.after_playout(self, now)
        if isinstance(event, BargeIn):
            self._move(TurnInput.INTERRUPTED)
            self.cursor.deadline = now + self.config.silence_timeout_s
            return []
        if isinstance(event, CallerSpeaking):
            self.cursor.deadline = now + self.config.silence_timeout_s + self.config.max_turn_s
            return []
        if isinstance(event, DtmfDigit):
            return self._on_digit(event.digit, now)
        if isinstance(event, Transcript):
            self.cursor.silences = 0
            self._log_turn("caller", event.text or "[not understood]", now)
            self._move(TurnInput.HEARD)
            return dialogue.on_answer(
                self,
                event.text,
                event.confidence,
                now,
                keypad=False,
                clip=event.clip,
                proposal=event.proposal,
            )
        if isinstance(event, SlotBooked | SlotUnavailable):
            if self.cursor.mode is not Mode.SPECIAL or self.cursor.special != "slot":
                raise AgentStateError(f"no booking was asked for ({type(event).__name__})")
            return dialogue.on_booking(self, event, now)
        if isinstance(event, TransferResult):
            self._move(TurnInput.TRANSFER_RESULT)
            return dialogue.on_transfer_result(self, event, now)
        raise AgentStateError(f"unexpected event {type(event).__name__}")

    # ----------------------------------------------------------------- helpers for dialogue
    def context(self, *, keypad: bool = False) -> Context:
        """What extractors and prompts may use."""
        return Context(
            today=self._started.date(),
            now=self._started,
            caller_id=self.record.caller_id,
            record=self.record,
            open_slots=self.config.open_slots,
            keypad=keypad,
        )

    def questions(self) -> tuple[Question, ...]:
        """The current phase's questions."""
        return self.config.questions.get(self.cursor.phase, ())

    def question(self) -> Question | None:
        """The question being asked, if the phase is in its question loop."""
        qs = self.questions()
        return qs[self.cursor.index] if self.cursor.index < len(qs) else None

    def say(
        self,
        now: float,
        text: str,
        listen: Listen | None,
        *,
        remember: bool = True,
        barge_in: bool = True,
        repeat: str | None = None,
    ) -> list[Command]:
        """Speak (and then listen); the turn becomes ours.

        Args:
            now: the current time.
            text: what to say.
            listen: the hints for the answer, or None when no answer is expected.
            remember: keep this as what a re-prompt or "repeat" says again.
            barge_in: the caller may interrupt it.
            repeat: what to say again instead of ``text`` (the question without the
                acknowledgement or apology in front of it).
        """
        self._move(TurnInput.SAY)
        self.cursor.deadline = None
        if remember:
            self.cursor.last_prompt = repeat if repeat is not None else text
            self.cursor.last_listen = listen
        self._log_turn("agent", text, now)
        commands: list[Command] = [Speak(text, barge_in=barge_in)]
        if listen is not None:
            commands.append(listen)
        return commands

    def save(self) -> SaveRecord:
        """A command to write the record now."""
        return SaveRecord(self.record)

    def update(self, record: IntakeRecord) -> None:
        """Replace the record (values are immutable pydantic copies)."""
        self.record = record

    def end(self) -> None:
        """The conversation is over."""
        self._move(TurnInput.END)
        self.cursor.deadline = None

    def transferring(self) -> None:
        """A transfer is under way."""
        self._move(TurnInput.TRANSFER)

    def ended_at(self, now: float) -> datetime:
        """Wall time for ``now``."""
        t0 = self._t0 if self._t0 is not None else now
        return self._started + timedelta(seconds=now - t0)

    def _current_listen(self) -> Listen:
        if self.cursor.last_listen is not None:
            return self.cursor.last_listen
        q = self.question()
        if self.cursor.mode is Mode.CONFIRM or q is None:
            return Listen(Expectation(Expect.YES_NO))
        return Listen(q.expectation, q.keypad)

    def _on_digit(self, digit: str, now: float) -> list[Command]:
        from agent import dialogue

        # A key is activity: the silence timer starts again (and doubles as the inter-digit
        # timeout of a half-typed entry). Whatever we say next clears it.
        self.cursor.deadline = now + self.config.silence_timeout_s
        self.cursor.silences = 0
        if digit == "*":
            return self.say(now, self.cursor.last_prompt, self._current_listen(), remember=False)
        q = self.question()
        if self.cursor.mode is Mode.CONFIRM:
            if digit in ("1", "2"):
                self._log_turn("caller", f"[keypad {digit}]", now)
                self._move(TurnInput.HEARD)
                return dialogue.on_answer(
                    self, "yes" if digit == "1" else "no", 1.0, now, keypad=True
                )
            return self._operator_key(now) if digit == "0" else []
        if self.cursor.mode is Mode.SPECIAL:
            # Only the slot offer takes a key ("press the option number"); a key pressed
            # during the summary, a callback message or urgent advice answers nothing.
            if self.cursor.special != "slot" or not digit.isdigit():
                return []
            self._log_turn("caller", f"[keypad {digit}]", now)
            self._move(TurnInput.HEARD)
            return dialogue.on_keypad_choice(self, digit, now)
        keypad: KeypadEntry | None = q.keypad if q is not None else None
        if keypad is None:
            return self._operator_key(now) if digit == "0" else []
        if digit != "#":
            self.cursor.keypad += digit
        done = digit == "#" or len(self.cursor.keypad) >= keypad.max_digits
        if not done:
            return []
        entered, self.cursor.keypad = self.cursor.keypad, ""
        self._log_turn("caller", "[keypad]", now)
        self._move(TurnInput.HEARD)
        return dialogue.on_answer(self, entered, 1.0, now, keypad=True)

    def _operator_key(self, now: float) -> list[Command]:
        """0, the operator key of phone menus, where keys enter no answer: ask for a person."""
        from agent import dialogue

        self._log_turn("caller", "[keypad 0]", now)
        self._move(TurnInput.HEARD)
        return [StopSpeaking(), *dialogue.escalate(self, now)]

    def _caller_hung_up(self, now: float) -> list[Command]:
        if self.record.status is IntakeStatus.IN_PROGRESS:
            status = (
                IntakeStatus.COMPLETE
                if self.cursor.phase is Phase.COMPLETE
                else IntakeStatus.INCOMPLETE
            )
            self.record = self.record.model_copy(update={"status": status})
        self.record = self.record.model_copy(update={"ended_at": self.ended_at(now)})
        self.end()
        return [SaveRecord(self.record)]

    def _log_turn(self, speaker: str, text: str, now: float) -> None:
        at = round(now - (self._t0 if self._t0 is not None else now), 3)
        turn = Turn(speaker=speaker, text=text, phase=self.cursor.phase.value, at_s=at)
        self.record = self.record.model_copy(update={"transcript": [*self.record.transcript, turn]})

    def _move(self, event: TurnInput) -> None:
        try:
            self.turn = TURN_TRANSITIONS[(self.turn, event)]
        except KeyError:
            raise AgentStateError(f"turn {self.turn.value} cannot take {event.value!r}") from None


__all__ = ["Conversation", "ConversationConfig", "Mode", "TurnState"]
