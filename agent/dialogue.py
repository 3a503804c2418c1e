"""The intake's steps between questions: answers, read-backs, phases, slots, summary, exits.

Greeting, answers and read-backs, phase changes, slot offers, the summary and corrections,
urgent advice, escalation and goodbyes.

Pure functions over a `Conversation` (they return commands, never perform I/O). The
recognition of intents, yes/no, red flags, slot choices and corrections is delegated to
`agent.understanding`, which wraps the rule-based NLU.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from agent import amend
from agent import understanding as nlu
from agent.commands import BookSlot, Command, Expect, Expectation, Hangup, Listen, Transfer
from agent.conversation import Conversation, Mode
from agent.events import Proposal, SlotBooked, SlotUnavailable, TransferResult
from agent.phases import Phase, PhaseInput, next_phase
from agent.questions import Slot
from agent.record import IntakeStatus

YES_NO = Listen(Expectation(Expect.YES_NO))
FREE = Listen(Expectation(Expect.FREE_SPEECH, keep_audio=True))
# The summary's answer is mostly "yes": an embedded recogniser listens for yes or no (its
# language model heard "yes" as "you"); a cloud one transcribes a correction said instead.
SUMMARY_ANSWER = Listen(Expectation(Expect.YES_NO))
NUMBERS = ("one", "two", "three", "four", "five")
ORDINALS = ("first", "second", "third", "fourth", "fifth")
KEYPAD_HINT_AFTER = 2  # failed tries: first a plain re-prompt, then the keypad is offered
MAX_SLOT_ATTEMPTS = 3  # answers that pick no offered slot before staff take over scheduling


# ----------------------------------------------------------------------------- entry points
def greet(conv: Conversation, now: float) -> list[Command]:
    """The opening: who we are, what happens, how to get a person; then the first question."""
    text = (
        f"Thank you for calling {conv.config.clinic_name}. I'm the automated intake "
        "assistant. I'll ask a few questions to get you scheduled. You can say go back or "
        "representative at any time, or press star to hear a question again."
    )
    return enter_phase(conv, next_phase(Phase.GREETING, PhaseInput.DONE), now, prefix=text)


def after_playout(conv: Conversation, now: float) -> list[Command]:
    """Nothing to do: the silence timer is armed by the conversation."""
    return []


def on_answer(
    conv: Conversation,
    text: str,
    confidence: float,
    now: float,
    *,
    keypad: bool,
    clip: str | None = None,
    proposal: Proposal | None = None,
) -> list[Command]:
    """The caller answered (by voice or keypad).

    ``proposal``: a language model's reading of ``text`` (`agent.proposals`). The red-flag
    screen always reads the caller's own words; the proposal is used only where its key is
    what is being asked and the same rule that reads the caller's words accepts it.
    """
    step = conv.cursor.special if conv.cursor.mode is Mode.SPECIAL else ""
    if not keypad:
        flag = nlu.red_flag(text)
        if flag is not None and step != "urgent_transfer":
            return urgent(conv, flag, now)
        # A callback message is taken as said: "I need a person to call me about my bill"
        # is the message, not another request for a person.
        intent = nlu.intent(text) if step != "callback" else None
        if intent is None and step not in ("callback", "urgent_transfer"):
            intent = nlu.intent(_proposed(proposal, "intent", nlu.intent))
        if intent is nlu.Intent.GOODBYE and step == "summary":
            return finish_phase(conv, now)  # "that's all, thanks": nothing left to correct
        if intent is nlu.Intent.BACK and step == "urgent_transfer":
            intent = None  # after 911/988 advice there is no intake to go back to
        if intent is not None:
            return on_intent(conv, intent, now)
    cursor = conv.cursor
    if cursor.mode is Mode.SPECIAL:
        if step == "slot" and proposal is not None:
            offered: tuple[Slot, ...] = cursor.scratch.get("offered", ())
            text = (
                _proposed(
                    proposal,
                    "scheduling.slot",
                    lambda t: nlu.choose_slot(t, offered, conv.context().now),
                )
                or text
            )
        elif step == "summary" and nlu.yes_no(text) is None:
            text = _proposed(proposal, "summary", _summary_answer(conv)) or text
        return _special(conv, text, now, keypad, clip)
    if cursor.mode is Mode.CONFIRM:
        if nlu.yes_no(text) is None:  # a yes or no the rules read is never overridden
            text = _proposed(proposal, "confirm", nlu.yes_no) or text
        return _on_confirmation(conv, text, now)
    q = conv.question()
    if q is not None and proposal is not None:
        ctx = conv.context(keypad=keypad)
        text = _proposed(proposal, q.key, lambda t: True if q.extract(t, ctx).ok else None) or text
    return _on_value(conv, text, now, keypad=keypad, clip=clip)


def _proposed(proposal: Proposal | None, key: str, rule: Callable[[str], object]) -> str:
    """The proposal's words if it answers ``key`` and ``rule`` makes something of them, else "".

    This is where the model's proposal meets the rules: a proposal for another question (a
    model trying to jump ahead) or one the rule rejects (a member ID in the wrong format, a
    slot that was not offered) is dropped, and the caller's own words are read instead.
    """
    if proposal is None or proposal.key != key or rule(proposal.text) is None:
        return ""
    return proposal.text


def _summary_answer(conv: Conversation) -> Callable[[str], object]:
    def rule(text: str) -> object:
        if nlu.yes_no(text) is True:
            return True
        return nlu.apply_correction(conv.record, text, conv.context())

    return rule


def on_intent(conv: Conversation, intent: nlu.Intent, now: float) -> list[Command]:
    """Repeat, help, go back, a person, goodbye."""
    if intent is nlu.Intent.REPEAT:
        return conv.say(now, conv.cursor.last_prompt, conv._current_listen(), remember=False)
    if intent is nlu.Intent.HELP:
        q = conv.question()
        help_text = "Please answer yes or no."
        if conv.cursor.mode is Mode.SPECIAL and conv.cursor.special == "slot":
            help_text = "Say the option number, or press it on your keypad."
        elif conv.cursor.mode is Mode.ANSWER and q is not None:
            help_text = q.help
        return conv.say(
            now, f"{help_text} {conv.cursor.last_prompt}", conv._current_listen(), remember=False
        )
    if intent is nlu.Intent.BACK:
        return go_back(conv, now)
    if intent is nlu.Intent.OPERATOR:
        return escalate(conv, now)
    return end_call(
        conv,
        now,
        IntakeStatus.INCOMPLETE,
        "Okay. What you've told me so far is saved, and our staff can follow up. Goodbye.",
        reason="caller_goodbye",
    )


# ----------------------------------------------------------------------------- questions
def ask(conv: Conversation, now: float, prefix: str = "", *, again: bool = False) -> list[Command]:
    """Ask the current question (skipping those that do not apply), or finish the phase.

    ``again``: the caller went back to this question; ask it even if its answer is known.
    """
    cursor = conv.cursor
    ctx = conv.context()
    qs = conv.questions()
    while (
        not again
        and cursor.index < len(qs)
        and (skip := qs[cursor.index].skip_if) is not None
        and skip(ctx)
    ):
        cursor.index += 1
    q = conv.question()
    if q is None:
        return finish_phase(conv, now, prefix)
    cursor.mode, cursor.pending, cursor.keypad = Mode.ANSWER, None, ""
    if not cursor.asked or cursor.asked[-1] != (cursor.phase, cursor.index):
        cursor.asked.append((cursor.phase, cursor.index))
    text = q.text(ctx)
    if q.keypad_first and q.keypad is not None:
        text += " You can also type it on your keypad and press pound."
    return conv.say(now, _join(prefix, text), Listen(q.expectation, q.keypad), repeat=text)


def _on_value(
    conv: Conversation, text: str, now: float, *, keypad: bool, clip: str | None
) -> list[Command]:
    q = conv.question()
    if q is None:
        return ask(conv, now)
    extraction = q.extract(text, conv.context(keypad=keypad))
    if not extraction.ok:
        return _retry(conv, now)
    if clip is not None:
        conv.update(
            conv.record.model_copy(update={"audio_clips": [*conv.record.audio_clips, clip]})
        )
    if q.needs_confirmation(extraction) and not (keypad and not q.always_confirm):
        conv.cursor.mode, conv.cursor.pending = Mode.CONFIRM, extraction.value
        assert q.confirm is not None
        return conv.say(now, f"{q.confirm(extraction.value)} Is that right?", YES_NO)
    return _keep(conv, extraction.value, now)


def _on_confirmation(conv: Conversation, text: str, now: float) -> list[Command]:
    answer = nlu.yes_no(text)
    if answer is True:
        return _keep(conv, conv.cursor.pending, now)
    q = conv.question()
    if answer is False:
        rejected = conv.cursor.pending
        conv.cursor.mode, conv.cursor.pending = Mode.ANSWER, None
        # "No, it's ..." often carries the right value already.
        if q is not None and (ex := q.extract(text, conv.context())).ok and ex.value != rejected:
            return _on_value(conv, text, now, keypad=False, clip=None)
        return _retry(conv, now, "Let's try again.")
    return conv.say(now, "Please say yes or no. " + conv.cursor.last_prompt, YES_NO, remember=False)


def _keep(conv: Conversation, value: Any, now: float) -> list[Command]:
    q = conv.question()
    assert q is not None
    conv.update(q.apply(conv.record, value))
    if amend.amending(conv):
        return amend.after_answer(conv, now, prefix=nlu.acknowledgement(conv.cursor.index))
    conv.cursor.index += 1
    conv.cursor.attempts = 0
    return ask(conv, now, prefix=nlu.acknowledgement(conv.cursor.index))


def _retry(conv: Conversation, now: float, prefix: str | None = None) -> list[Command]:
    q = conv.question()
    assert q is not None
    conv.cursor.attempts += 1
    conv.cursor.mode, conv.cursor.pending = Mode.ANSWER, None
    if conv.cursor.attempts >= q.max_attempts and amend.amending(conv):
        return amend.after_answer(conv, now, prefix="Let's leave that as it was.")
    if conv.cursor.attempts >= q.max_attempts:
        conv.cursor.index += 1
        conv.cursor.attempts = 0
        return ask(conv, now, prefix="Let's skip that one; our staff will follow up on it.")
    hint = ""
    mentions_keypad = any(w in q.text(conv.context()) for w in ("keypad", "type"))
    if q.keypad is not None and conv.cursor.attempts >= KEYPAD_HINT_AFTER and not mentions_keypad:
        hint = " You can also type it on your keypad, then press pound."
    question = q.text(conv.context()) + hint
    return conv.say(
        now, _join(prefix or q.reprompt, question), Listen(q.expectation, q.keypad), repeat=question
    )


def go_back(conv: Conversation, now: float) -> list[Command]:
    """The question asked before this one (in this phase or an earlier one).

    While a value is being confirmed, "go back" asks the same question again. In SUMMARY
    corrections are made in place, so the summary is read again.
    """
    cursor = conv.cursor
    cursor.attempts = 0
    if amend.amending(conv):  # back from a part being amended: to the summary
        cursor.scratch.pop("amend")
        cursor.phase = Phase.SUMMARY
    if cursor.phase is Phase.SUMMARY:
        return read_back(conv, now, prefix="Okay.")
    if cursor.mode is not Mode.CONFIRM:
        # The questions actually asked, not the index before: the one before may have been
        # skipped (a duration already given with the complaint) or be in another phase.
        here = (cursor.phase, cursor.index)
        while cursor.asked and cursor.asked[-1] == here:
            cursor.asked.pop()
        if cursor.asked:
            cursor.phase, cursor.index = cursor.asked.pop()
    return ask(conv, now, prefix="Okay, going back.", again=True)


# ----------------------------------------------------------------------------- phases
def finish_phase(conv: Conversation, now: float, prefix: str = "") -> list[Command]:
    """Move to the next phase."""
    return enter_phase(conv, next_phase(conv.cursor.phase, PhaseInput.DONE), now, prefix)


def enter_phase(conv: Conversation, phase: Phase, now: float, prefix: str = "") -> list[Command]:
    """Start ``phase``: save the record, then its first step."""
    cursor = conv.cursor
    cursor.phase, cursor.index, cursor.attempts, cursor.mode = phase, 0, 0, Mode.ANSWER
    conv.update(conv.record.model_copy(update={"phase_reached": phase.value}))
    saved: list[Command] = [conv.save()]
    if (
        phase is Phase.SCHEDULING
        and conv.config.open_slots
        and conv.record.appointment.slot_id is None
    ):
        return saved + offer_slots(conv, now, prefix)
    if phase is Phase.SUMMARY:
        return saved + read_back(conv, now, prefix)
    if phase is Phase.COMPLETE:
        return saved + end_call(
            conv,
            now,
            IntakeStatus.COMPLETE,
            _join(
                prefix, f"You're all set. Thank you for calling {conv.config.clinic_name}. Goodbye."
            ),
            reason="complete",
        )
    return saved + ask(conv, now, prefix)


def offer_slots(conv: Conversation, now: float, prefix: str = "") -> list[Command]:
    """Offer the first open slots."""
    booked = conv.cursor.scratch.get("taken", set())
    offered = tuple(s for s in conv.config.open_slots if s.slot_id not in booked)
    offered = offered[: conv.config.slots_offered]
    if not offered:
        return finish_phase(
            conv,
            now,
            _join(
                prefix,
                "I don't have an open appointment to offer right now; our staff will call you.",
            ),
        )
    conv.cursor.mode, conv.cursor.special = Mode.SPECIAL, "slot"
    conv.cursor.scratch["offered"] = offered
    options = ", ".join(f"option {i + 1}, {nlu.say_slot(s)}" for i, s in enumerate(offered))
    offer = (
        f"I have these appointments: {options}. Which one would you like? "
        "You can say the option number or press it on your keypad."
    )
    # Heard: the option number ("option two", "the second one"); the keypad works too.
    labels = tuple(
        phrase
        for number, nth in list(zip(NUMBERS, ORDINALS, strict=True))[: len(offered)]
        for phrase in (number, f"option {number}", f"the {nth} one", f"{nth} one")
    )
    return conv.say(
        now,
        _join(prefix, offer),
        Listen(Expectation(Expect.CHOICE, vocabulary=labels), None),
        repeat=offer,
    )


def on_booking(
    conv: Conversation, event: SlotBooked | SlotUnavailable, now: float
) -> list[Command]:
    """The state store answered a booking."""
    offered: tuple[Slot, ...] = conv.cursor.scratch.get("offered", ())
    slot = next((s for s in offered if s.slot_id == event.slot_id), None)
    if isinstance(event, SlotUnavailable) or slot is None:
        conv.cursor.scratch.setdefault("taken", set()).add(event.slot_id)
        return offer_slots(conv, now, "Sorry, that time was just taken.")
    conv.update(nlu.with_appointment(conv.record, slot))
    return finish_phase(conv, now, f"You're booked for {nlu.say_slot(slot)}.")


def on_keypad_choice(conv: Conversation, digit: str, now: float) -> list[Command]:
    """A single keypad press where a choice is pending (slot number)."""
    if conv.cursor.mode is Mode.SPECIAL and digit.isdigit():
        return _special(conv, digit, now, keypad=True)
    return []


def read_back(conv: Conversation, now: float, prefix: str = "") -> list[Command]:
    """Read the record back and ask whether it is all correct."""
    conv.cursor.mode, conv.cursor.special = Mode.SPECIAL, "summary"
    summary = (
        "Let me read back what I have. "
        + nlu.summary_text(conv.record)
        + " Is all of that correct? If something is wrong, just tell me the "
        "right value."
    )
    return conv.say(now, _join(prefix, summary), SUMMARY_ANSWER, repeat=summary)


def _special(
    conv: Conversation, text: str, now: float, keypad: bool, clip: str | None = None
) -> list[Command]:
    step = conv.cursor.special
    if step == "slot":
        offered: tuple[Slot, ...] = conv.cursor.scratch.get("offered", ())
        slot = nlu.choose_slot(text, offered, conv.context().now)
        if slot is None:
            conv.cursor.attempts += 1
            if conv.cursor.attempts >= MAX_SLOT_ATTEMPTS:
                return finish_phase(conv, now, "Our staff will call you to find a time.")
            numbers = ("one", "two", "three", "four", "five")[: len(offered)]
            choices = (
                f"{', '.join(numbers[:-1])} or {numbers[-1]}" if len(numbers) > 1 else numbers[0]
            )
            return conv.say(
                now, f"Sorry, which option? Say {choices}.", conv._current_listen(), remember=False
            )
        conv.cursor.attempts = 0
        return [BookSlot(slot.slot_id)]
    if step == "summary":
        answer = nlu.yes_no(text)
        if answer is True:
            return finish_phase(conv, now)
        corrected = nlu.apply_correction(conv.record, text, conv.context())
        if corrected is not None:
            record, what = corrected
            conv.update(record)
            # Asked so that "yes" still means "all correct", as for the read-back itself.
            return conv.say(
                now,
                f"Thanks, I've updated {what}. Is everything else correct? "
                "If not, tell me what to change.",
                SUMMARY_ANSWER,
            )
        if answer is False:
            return amend.ask_which_part(conv, now)
        if nlu.is_done(text):
            return finish_phase(conv, now)
        return conv.say(
            now,
            "Sorry, is everything correct? Please say yes, or tell me what to change.",
            SUMMARY_ANSWER,
        )
    if step == "amend_which":
        corrected = nlu.apply_correction(conv.record, text, conv.context())
        if corrected is not None:  # "the zip code is 0 2 1 4 2": value and all
            conv.update(corrected[0])
            return read_back(conv, now, prefix=f"Thanks, I've updated {corrected[1]}.")
        return amend.on_which_part(conv, text, now)
    if step == "urgent_transfer":
        if nlu.yes_no(text) is True and conv.config.transfer_target:
            said = conv.say(now, "Connecting you now.", None, remember=False, barge_in=False)
            conv.transferring()
            return [*said, Transfer(conv.config.transfer_target)]
        return end_call(
            conv,
            now,
            IntakeStatus.URGENT,
            "Please call 9 1 1 now if this is an emergency. Goodbye.",
            reason="urgent",
        )
    if step == "callback":
        message = text.strip()
        update: dict[str, Any] = {"callback_message": message}
        if clip is not None:
            update["audio_clips"] = [*conv.record.audio_clips, clip]
        conv.update(conv.record.model_copy(update=update))
        return end_call(
            conv,
            now,
            IntakeStatus.CALLBACK,
            "Thank you. Our staff will call you back. Goodbye.",
            reason="callback",
        )
    return []


# ----------------------------------------------------------------------------- exits
def urgent(conv: Conversation, flag: nlu.RedFlagAdvice, now: float) -> list[Command]:
    """A red flag: advise 911 or 988 at once, mark the record, offer a transfer."""
    conv.update(
        conv.record.model_copy(
            update={
                "status": IntakeStatus.URGENT,
                "urgent_reason": flag.label,
                "complaint": conv.record.complaint.model_copy(update={"red_flag": flag.label}),
            }
        )
    )
    advice = flag.advice
    if conv.config.transfer_target:
        conv.cursor.mode, conv.cursor.special = Mode.SPECIAL, "urgent_transfer"
        return [
            conv.save(),
            *conv.say(
                now,
                f"{advice} Would you like me to connect you to our staff right now?",
                YES_NO,
                barge_in=False,
            ),
        ]
    return [
        conv.save(),
        *end_call(conv, now, IntakeStatus.URGENT, f"{advice} Goodbye.", reason="urgent"),
    ]


def escalate(conv: Conversation, now: float) -> list[Command]:
    """The caller wants a person: transfer (REFER), or take a callback message."""
    if conv.config.transfer_target:
        if conv.record.status is IntakeStatus.IN_PROGRESS:  # an urgent call stays urgent
            conv.update(conv.record.model_copy(update={"status": IntakeStatus.TRANSFERRED}))
        said = conv.say(
            now, "Sure, connecting you to our staff now.", None, remember=False, barge_in=False
        )
        conv.transferring()
        return [conv.save(), *said, Transfer(conv.config.transfer_target)]
    conv.cursor.mode, conv.cursor.special = Mode.SPECIAL, "callback"
    return conv.say(
        now,
        "No one is available to take your call right now. Please tell me "
        "briefly how we can help, and our staff will call you back.",
        FREE,
    )


def on_transfer_result(conv: Conversation, event: TransferResult, now: float) -> list[Command]:
    """A transfer failed: take a message instead; succeeded: we are done."""
    if event.accepted:
        conv.update(conv.record.model_copy(update={"ended_at": conv.ended_at(now)}))
        conv.end()
        return [conv.save(), Hangup("transferred")]
    if conv.record.status is IntakeStatus.TRANSFERRED:  # it was not
        conv.update(conv.record.model_copy(update={"status": IntakeStatus.IN_PROGRESS}))
    conv.cursor.mode, conv.cursor.special = Mode.SPECIAL, "callback"
    return conv.say(
        now,
        "I couldn't connect you. Please tell me briefly how we can help, "
        "and our staff will call you back.",
        FREE,
    )


def end_call(
    conv: Conversation, now: float, status: IntakeStatus, text: str, *, reason: str
) -> list[Command]:
    """Say goodbye, keep the record, hang up.

    ``status`` applies only while the record is in progress: an urgent call that then goes
    silent, or says goodbye, stays urgent.
    """
    if conv.record.status is IntakeStatus.IN_PROGRESS:
        conv.update(conv.record.model_copy(update={"status": status}))
    commands = conv.say(now, text, None, barge_in=False)
    conv.update(conv.record.model_copy(update={"ended_at": conv.ended_at(now)}))
    conv.end()
    return [*commands, conv.save(), Hangup(reason)]


def _join(*parts: str) -> str:
    return " ".join(p.strip() for p in parts if p and p.strip())
