"""The turn machine of `agent.conversation` on a virtual clock, text in and commands out.

`Caller` plays the runtime's part (agent.call_runtime) without audio: it feeds `Transcript`,
`DtmfDigit`, `BargeIn` and silence to a `Conversation`, answers `BookSlot` through a real
`MemoryStore`, and reports `PlayoutDone` a fixed time after every prompt. The persona dialogues
in test_dialogue_personas.py drive whole calls with it; the tests here pin down the turn-taking
rules: prompts and listening, re-prompts on silence, barge-in, keypad entry, repeat, help, go
back, retries, and the inputs the conversation refuses.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest

from agent.calendar import Calendar
from agent.commands import (
    BookSlot,
    Command,
    Expect,
    Hangup,
    Listen,
    SaveRecord,
    Speak,
    Transfer,
)
from agent.conversation import Conversation, ConversationConfig, TurnState
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
    SlotUnavailable,
    Transcript,
    TransferResult,
)
from agent.phase_rules import default_questions
from agent.phases import Phase
from agent.questions import Slot
from agent.record import IntakeRecord, IntakeStatus
from agent.store import MemoryStore
from tests.fakes import FakeClock

DOB_PROMPT = (
    "What is your date of birth? You can also type it as eight digits: month, day and year."
)

START = datetime(2026, 11, 27, 10, 0)  # a Friday morning, clinic wall time
CALLER_ID = "+16175550142"
PLAYOUT_S = 2.0  # every prompt takes this long to play
REPLY_S = 1.0  # the caller answers this long after a prompt ends
SLOTS: tuple[Slot, ...] = Calendar.load().open_slots(START)[:5]
INTAKE_PHASES = [
    Phase.INSURANCE,
    Phase.CHIEF_COMPLAINT,
    Phase.DEMOGRAPHICS,
    Phase.ADDRESS,
    Phase.PHARMACY,
    Phase.EMERGENCY_CONTACT,
]


def spoken(commands: list[Command]) -> str:
    """Everything the agent says in ``commands``, as one string."""
    return " ".join(c.text for c in commands if isinstance(c, Speak))


@dataclass
class Caller:
    """One caller and the runtime's side of the call, on a `FakeClock`."""

    transfer_target: str | None = None
    caller_id: str | None = CALLER_ID
    open_slots: tuple[Slot, ...] = SLOTS
    store: MemoryStore = field(default_factory=MemoryStore)
    call_id: str = "call-1"
    auto_book: bool = True  # carry out BookSlot at once (sync tests only)
    settings: dict[str, Any] = field(default_factory=dict)
    clock: FakeClock = field(default_factory=FakeClock)
    commands: list[Command] = field(default_factory=list)
    saved: list[IntakeRecord] = field(default_factory=list)
    hangup: Hangup | None = None
    hangup_at: float | None = None
    listen: Listen | None = None

    def __post_init__(self) -> None:
        self.config = ConversationConfig(
            questions=default_questions(),
            clinic_name="Maple Clinic",
            transfer_target=self.transfer_target,
            open_slots=self.open_slots,
            **self.settings,
        )
        self.conv = Conversation(self.call_id, self.config, started=START)

    # ------------------------------------------------------------------ what the caller does
    def start(self) -> list[Command]:
        """The call is answered: greeting and first question, played out."""
        return self.event(CallStarted(self.caller_id, START), play=True)

    def say(self, text: str, confidence: float = 0.9) -> list[Command]:
        """Answer by voice after the prompt has played."""
        return self.event(Transcript(text, confidence), play=True)

    def press(self, keys: str) -> list[Command]:
        """Press keys, one DTMF event each; the agent's reply is played out."""
        out: list[Command] = []
        for key in keys:
            out += self.event(DtmfDigit(key), play=False)
        self._play(out)
        return out

    def stay_silent(self) -> list[Command]:
        """Say nothing until the conversation's deadline fires."""
        deadline = self.conv.next_deadline()
        assert deadline is not None, "the conversation is not waiting for the caller"
        assert deadline > self.clock.now
        self.clock.advance(deadline - self.clock.now)
        out = self._run(self.conv.handle_timer(self.clock.now))
        self._play(out)
        return out

    def event(self, event: Event, *, play: bool = False) -> list[Command]:
        """Feed one event now; optionally let the prompts it causes play to the end."""
        out = self._run(self.conv.handle(event, self.clock.now))
        if play:
            self._play(out)
        return out

    # ------------------------------------------------------------------ the runtime's part
    def turn(self) -> TurnState:
        """Whose turn it is now."""
        return self.conv.turn

    @property
    def record(self) -> IntakeRecord:
        """The conversation's record as it stands."""
        return self.conv.record

    @property
    def last_saved(self) -> IntakeRecord:
        """The last record a `SaveRecord` asked the runtime to write."""
        assert self.saved, "nothing was saved"
        return self.saved[-1]

    def _run(self, commands: list[Command]) -> list[Command]:
        done: list[Command] = []
        for command in commands:
            done.append(command)
            self.commands.append(command)
            if isinstance(command, SaveRecord):
                self.saved.append(command.record)
            elif isinstance(command, Listen):
                self.listen = command
            elif isinstance(command, Hangup):
                assert self.hangup is None, "hung up twice"
                self.hangup, self.hangup_at = command, self.clock.now
            elif isinstance(command, BookSlot) and self.auto_book:
                ok = asyncio.run(self.store.book_slot(command.slot_id, self.call_id))
                outcome = SlotBooked(command.slot_id) if ok else SlotUnavailable(command.slot_id)
                done += self._run(self.conv.handle(outcome, self.clock.now))
        return done

    def _play(self, out: list[Command]) -> None:
        if not any(isinstance(c, Speak) for c in out):
            return
        self.clock.advance(PLAYOUT_S)
        self._run(self.conv.handle(PlayoutDone(), self.clock.now))
        if self.conv.turn is TurnState.LISTENING:
            # Whatever was said, the call can never wait for ever.
            assert self.conv.next_deadline() == self.clock.now + self.config.silence_timeout_s
        self.clock.advance(REPLY_S)


def confirmed(caller: Caller, answer: str) -> list[Command]:
    """Answer, hear the read-back, say yes; returns the read-back and what followed."""
    read_back = caller.say(answer)
    assert "Is that right?" in spoken(read_back), spoken(read_back)
    return read_back + caller.say("yes")


# The answers of a caller who gets everything right first time, up to the slot offer.
INTAKE: list[tuple[str, bool]] = [  # (answer, read back and confirmed with "yes")
    ("aetna", True),
    ("a b c one two three four five six", True),
    ("a cough and a fever for three days", False),
    ("six", False),
    ("anna a n n a", True),
    ("smith s m i t h", True),
    ("march third nineteen eighty four", True),
    ("this number", True),
    ("twelve elm street", True),
    ("oh two one three nine", True),
    ("the cvs on main street", True),
    ("my wife maria lopez", True),
    ("six one seven five five five oh one nine nine", True),
]


def through_intake(caller: Caller) -> list[Command]:
    """Answer every intake question; returns what the last answer caused (the slot offer)."""
    out: list[Command] = []
    for answer, read_back in INTAKE:
        out = confirmed(caller, answer) if read_back else caller.say(answer)
    return out


def test_answer_moves_listening_thinking_speaking() -> None:
    caller = Caller()
    out = caller.event(CallStarted(CALLER_ID, START))
    assert caller.turn() is TurnState.SPEAKING
    assert [type(c) for c in out] == [SaveRecord, Speak, Listen]
    assert caller.conv.next_deadline() is None  # no silence timer while we talk
    caller.clock.advance(PLAYOUT_S)
    caller.event(PlayoutDone())
    assert caller.turn() is TurnState.LISTENING
    assert caller.conv.next_deadline() == PLAYOUT_S + 8.0
    out = caller.event(Transcript("aetna", 0.9))
    assert caller.turn() is TurnState.SPEAKING
    assert spoken(out) == "I have Aetna. Is that right?"
    assert isinstance(out[-1], Listen) and out[-1].expectation.kind is Expect.YES_NO


def test_a_second_call_start_is_refused() -> None:
    caller = Caller()
    caller.start()
    with pytest.raises(AgentStateError, match="the call has already started"):
        caller.event(CallStarted(CALLER_ID, START))


def test_transfer_result_without_a_transfer_is_refused() -> None:
    caller = Caller(transfer_target="sip:desk@127.0.0.1")
    caller.start()
    with pytest.raises(AgentStateError, match="turn listening cannot take 'transfer_result'"):
        caller.event(TransferResult(True))


def test_booking_outcome_nobody_asked_for_is_refused() -> None:
    caller = Caller()
    caller.start()
    with pytest.raises(AgentStateError, match="no booking was asked for"):
        caller.event(SlotBooked(SLOTS[0].slot_id))
    with pytest.raises(AgentStateError, match="no booking was asked for"):
        caller.event(SlotUnavailable(SLOTS[0].slot_id))


def test_nothing_happens_after_the_call_ended() -> None:
    caller = Caller()
    caller.start()
    out = caller.event(CallEnded())
    assert [type(c) for c in out] == [SaveRecord]
    assert caller.turn() is TurnState.ENDED
    for event in (Transcript("aetna", 0.9), DtmfDigit("1"), BargeIn(), PlayoutDone(), CallEnded()):
        assert caller.event(event) == []
    assert caller.conv.next_deadline() is None
    assert caller.conv.handle_timer(1000.0) == []


# ---------------------------------------------------------------------- silence
def test_silence_reprompts_the_question_then_ends_politely() -> None:
    caller = Caller()
    caller.start()
    caller.say("aetna")
    caller.say("yes")  # now asked for the member ID
    question = (
        "What is your member ID, as printed on your card? Say it one character at a "
        "time. You can also type it on your keypad and press pound."
    )
    for _ in range(2):
        # The timer runs from the end of playout, not from when the caller could answer.
        assert caller.conv.next_deadline() == caller.clock.now - REPLY_S + 8.0
        out = caller.stay_silent()
        assert spoken(out) == f"Are you still there? {question}"
        assert caller.listen is not None and caller.listen.keypad is not None
    out = caller.stay_silent()
    assert spoken(out) == (
        "I haven't heard from you, so I'll end the call now. Please call back any time. Goodbye."
    )
    assert not [c for c in out if isinstance(c, Speak) and c.barge_in]
    assert caller.hangup == Hangup("silence")
    assert caller.turn() is TurnState.ENDED
    assert caller.last_saved.status is IntakeStatus.INCOMPLETE
    assert caller.last_saved.insurance.payer == "Aetna"
    assert caller.hangup_at is not None
    assert caller.last_saved.ended_at == START + timedelta(seconds=caller.hangup_at)


def test_an_answer_resets_the_silence_count() -> None:
    caller = Caller(settings={"max_silences": 2})
    caller.start()
    caller.stay_silent()
    caller.say("aetna")  # a read-back: silence counting starts again
    out = caller.stay_silent()
    assert spoken(out) == "Are you still there? I have Aetna. Is that right?"
    assert caller.listen is not None and caller.listen.expectation.kind is Expect.YES_NO
    assert caller.hangup is None
    caller.stay_silent()
    assert caller.hangup == Hangup("silence")


def test_caller_speaking_holds_the_timer_for_one_long_turn_only() -> None:
    caller = Caller()
    caller.start()
    caller.event(CallerSpeaking())
    held = caller.conv.next_deadline()
    assert held == caller.clock.now + 8.0 + 30.0
    # The recogniser made nothing of it (a cough): no Transcript ever comes.
    assert caller.conv.handle_timer(held - 0.001) == []
    out = caller.stay_silent()
    assert spoken(out).startswith("Are you still there? First, who is your health insurance")


def test_silence_during_the_slot_offer_keeps_the_choice_hints() -> None:
    caller = Caller()
    caller.start()
    out = through_intake(caller)
    assert "I have these appointments" in spoken(out)
    offer = caller.listen
    assert offer is not None and offer.expectation.kind is Expect.CHOICE
    out = caller.stay_silent()
    assert spoken(out).startswith("Are you still there? I have these appointments: option 1,")
    assert caller.listen == offer


# ---------------------------------------------------------------------- barge-in
def test_barge_in_stops_our_turn_and_the_answer_counts() -> None:
    caller = Caller()
    caller.event(CallStarted(CALLER_ID, START))  # greeting still playing
    caller.clock.advance(0.7)
    assert caller.event(BargeIn()) == []
    assert caller.turn() is TurnState.LISTENING
    assert caller.conv.next_deadline() == pytest.approx(0.7 + 8.0)
    caller.clock.advance(0.3)
    assert caller.event(CallerSpeaking()) == []
    caller.clock.advance(1.0)
    out = caller.say("blue cross")
    assert spoken(out) == "I have Blue Cross Blue Shield. Is that right?"


def test_answer_without_barge_in_event_while_speaking_is_taken() -> None:
    caller = Caller()
    caller.event(CallStarted(CALLER_ID, START))
    assert caller.turn() is TurnState.SPEAKING
    out = caller.event(Transcript("aetna", 0.9))
    assert spoken(out) == "I have Aetna. Is that right?"


def test_keypad_digits_during_a_prompt_are_collected() -> None:
    caller = Caller()
    caller.start()
    caller.say("aetna")
    caller.event(Transcript("yes", 0.9))  # member ID question now playing
    assert caller.turn() is TurnState.SPEAKING
    for key in "1234":
        assert caller.event(DtmfDigit(key)) == []
    caller.event(BargeIn())
    out = caller.press("5678#")
    assert spoken(out) == "I have 1 2 3 4 5 6 7 8. Is that right?"


def test_a_stray_key_keeps_the_silence_timer_running() -> None:
    caller = Caller()
    caller.start()
    assert caller.press("9") == []  # no keypad entry for the payer question
    assert caller.conv.next_deadline() == caller.clock.now + 8.0
    out = caller.stay_silent()
    assert spoken(out).startswith("Are you still there? First, who is your health insurance")


def test_a_half_typed_entry_times_out_and_starts_afresh() -> None:
    caller = Caller()
    caller.start()
    confirmed(caller, "aetna")
    assert caller.press("123") == []
    caller.clock.advance(2.0)
    assert caller.press("4") == []
    assert caller.conv.next_deadline() == caller.clock.now + 8.0  # from the last key
    out = caller.stay_silent()
    assert spoken(out).startswith("Are you still there? What is your member ID")
    out = caller.press("55667788#")
    assert spoken(out) == "I have 5 5 6 6 7 7 8 8. Is that right?"


# ---------------------------------------------------------------------- repeat, help, back
def test_repeat_says_the_question_again_without_the_acknowledgement() -> None:
    caller = Caller()
    caller.start()
    caller.say("aetna")
    out = caller.say("yes")
    assert spoken(out).startswith("Got it. What is your member ID")
    again = caller.say("can you repeat that")
    assert spoken(again) == spoken(out).removeprefix("Got it. ")
    assert [c for c in again if isinstance(c, Listen)] == [c for c in out if isinstance(c, Listen)]
    star = caller.press("*")
    assert spoken(star) == spoken(again)


def test_help_explains_then_asks_again() -> None:
    caller = Caller()
    caller.start()
    out = caller.say("help")
    assert spoken(out) == (
        "Say the name on your insurance card, like Aetna, Medicare or Blue Cross. First, who "
        "is your health insurance company? If you don't have insurance, say self pay."
    )
    assert caller.conv.phase is Phase.INSURANCE and caller.record.insurance.payer is None


def test_help_while_confirming_or_choosing_a_slot_says_how_to_answer() -> None:
    caller = Caller()
    caller.start()
    caller.say("aetna")
    out = caller.say("help")
    assert spoken(out) == "Please answer yes or no. I have Aetna. Is that right?"
    caller = Caller()
    caller.start()
    through_intake(caller)
    out = caller.say("help")
    assert spoken(out).startswith(
        "Say the option number, or press it on your keypad. I have these appointments: option 1,"
    )


def test_go_back_returns_to_the_question_asked_before() -> None:
    caller = Caller()
    caller.start()
    confirmed(caller, "aetna")
    confirmed(caller, "a b c one two three four five six")
    caller.say("a cough and a fever for three days")  # duration given: not asked
    out = caller.say("six")
    assert "What is your first name?" in spoken(out)
    out = caller.say("go back")  # across the phase boundary, to the severity question
    assert spoken(out) == (
        "Okay, going back. On a scale of one to ten, with ten the worst, how bad is it? "
        "You can also press the number on your keypad, then pound."
    )
    assert caller.conv.phase is Phase.CHIEF_COMPLAINT
    out = caller.say("go back")  # the duration question was never asked: the complaint was
    assert spoken(out) == (
        "Okay, going back. What is the main reason for your visit? Please describe your symptoms."
    )
    caller.say("a sore throat for two days")
    out = caller.say("four")
    assert "What is your first name?" in spoken(out)
    complaint = caller.record.complaint
    assert (complaint.description, complaint.duration_days, complaint.severity) == (
        "a sore throat for two days",
        2.0,
        4,
    )


def test_go_back_at_the_first_question_stays_there() -> None:
    caller = Caller()
    caller.start()
    out = caller.say("go back")
    assert spoken(out) == (
        "Okay, going back. First, who is your health insurance company? If "
        "you don't have insurance, say self pay."
    )


def test_go_back_while_confirming_asks_the_same_question() -> None:
    caller = Caller()
    caller.start()
    caller.say("aetna")
    out = caller.say("go back")
    assert spoken(out).startswith("Okay, going back. First, who is your health insurance")
    assert caller.record.insurance.payer is None


# ---------------------------------------------------------------------- retries
def test_retries_then_keypad_hint_then_skip() -> None:
    caller = Caller()
    caller.start()
    confirmed(caller, "aetna")
    first = caller.say("banana")
    assert spoken(first) == (
        "Sorry, that doesn't look like a member ID for your plan. What is "
        "your member ID, as printed on your card? Say it one character "
        "at a time."
    )
    second = caller.say("purple")
    assert spoken(second).endswith(
        "one character at a time. You can also type it on your keypad, then press pound."
    )
    third = caller.say("monkey")
    assert spoken(third) == (
        "Let's skip that one; our staff will follow up on it. What is the "
        "main reason for your visit? Please describe your symptoms."
    )
    assert caller.record.insurance.member_id is None
    assert caller.conv.phase is Phase.CHIEF_COMPLAINT


def test_no_with_a_new_value_reads_that_back() -> None:
    caller = Caller()
    caller.start()
    confirmed(caller, "aetna")
    confirmed(caller, "a b c one two three four five six")
    caller.say("a cough for two days")
    caller.say("three")
    confirmed(caller, "anna a n n a")
    confirmed(caller, "smith s m i t h")
    out = caller.say("march third nineteen eighty four")
    assert spoken(out) == "I have March 3, 1984. Is that right?"
    out = caller.say("no it's march fourth nineteen eighty four")
    assert spoken(out) == "I have March 4, 1984. Is that right?"
    out = caller.say("no it's march fourth nineteen eighty four")  # the value just refused
    assert spoken(out) == "Let's try again. " + DOB_PROMPT
    confirmed(caller, "march fourth nineteen eighty four")
    assert caller.record.demographics.date_of_birth is not None
    assert caller.record.demographics.date_of_birth.isoformat() == "1984-03-04"


def test_keypad_1_and_2_answer_a_read_back() -> None:
    caller = Caller()
    caller.start()
    caller.say("aetna")
    out = caller.press("2")
    assert (
        spoken(out) == "Let's try again. First, who is your health insurance company? If "
        "you don't have insurance, say self pay."
    )
    caller.say("cigna")
    out = caller.press("1")
    assert "What is your member ID" in spoken(out)
    assert caller.record.insurance.payer == "Cigna"
    assert caller.press("9") == []  # no meaning here: ignored


# ---------------------------------------------------------------------- transfers
def test_caller_speech_during_a_transfer_is_ignored() -> None:
    caller = Caller(transfer_target="sip:desk@127.0.0.1")
    caller.start()
    out = caller.say("let me talk to a real person")
    assert out[-1] == Transfer("sip:desk@127.0.0.1")
    assert caller.turn() is TurnState.TRANSFERRING
    for event in (BargeIn(), CallerSpeaking(), Transcript("hello?", 0.8), DtmfDigit("0")):
        assert caller.event(event) == []
    assert caller.conv.next_deadline() is None
    out = caller.event(TransferResult(False))
    assert spoken(out) == (
        "I couldn't connect you. Please tell me briefly how we can help, "
        "and our staff will call you back."
    )
    assert caller.record.status is IntakeStatus.IN_PROGRESS


def test_urgent_call_stays_urgent_when_the_caller_goes_quiet() -> None:
    caller = Caller(transfer_target="sip:nurse@127.0.0.1")
    caller.start()
    out = caller.say("i have crushing chest pain")
    assert "call 9 1 1" in spoken(out) and "connect you to our staff" in spoken(out)
    assert all(not c.barge_in for c in out if isinstance(c, Speak))
    for _ in range(3):
        caller.stay_silent()
    assert caller.hangup == Hangup("silence")
    assert caller.last_saved.status is IntakeStatus.URGENT


def test_asking_for_a_person_after_urgent_advice_keeps_the_record_urgent() -> None:
    caller = Caller(transfer_target="sip:nurse@127.0.0.1")
    caller.start()
    caller.say("i can't breathe")
    out = caller.say("representative")
    assert out[-1] == Transfer("sip:nurse@127.0.0.1")
    caller.event(TransferResult(True))
    assert caller.hangup == Hangup("transferred")
    assert caller.last_saved.status is IntakeStatus.URGENT
    assert caller.last_saved.urgent_reason is not None


def test_a_callback_message_is_taken_as_said() -> None:
    caller = Caller()
    caller.start()
    caller.say("operator")
    message = "i need a person to call me about my bill"
    out = caller.event(Transcript(message, 0.8, clip="turn-02.wav"), play=True)
    assert spoken(out) == "Thank you. Our staff will call you back. Goodbye."
    assert caller.last_saved.callback_message == message
    assert caller.last_saved.audio_clips == ["turn-02.wav"]
    assert caller.last_saved.status is IntakeStatus.CALLBACK
