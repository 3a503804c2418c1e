"""Whole intake calls at text level, one caller each, on a virtual clock.

Each persona is a short script of what one caller says or presses. Every test ends by comparing
the whole record (every field but the transcript) with what staff should find, and checks that
the last `SaveRecord` carried exactly that record: what the runtime writes is what the call
produced.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from agent.commands import Hangup, SaveRecord, Speak, Transfer
from agent.conversation import TurnState
from agent.events import CallEnded, Transcript, TransferResult
from agent.record import IntakeRecord
from tests.agent.test_conversation import (
    CALLER_ID,
    INTAKE,
    SLOTS,
    START,
    Caller,
    confirmed,
    spoken,
    through_intake,
)

DOB_PROMPT = (
    "What is your date of birth? You can also type it as eight digits: month, day and year."
)

CANNED_ANSWER = "Is everything else correct? If not, tell me what to change."


def assert_record(caller: Caller, **fields: Any) -> None:
    """The record is a blank one with exactly ``fields`` changed (sections merge field-wise)."""
    record = caller.record
    want = IntakeRecord(call_id=record.call_id, started_at=START).model_dump(
        mode="json", exclude={"transcript"}
    )
    for key, value in fields.items():
        assert key in want, f"no record field {key}"
        if isinstance(want[key], dict):
            assert set(value) <= set(want[key]), f"unknown fields in {key}: {value}"
            want[key] = {**want[key], **value}
        else:
            want[key] = value
    assert record.model_dump(mode="json", exclude={"transcript"}) == want
    assert caller.last_saved.model_dump() == record.model_dump()  # what the runtime writes


def ended(seconds: float | None) -> str:
    assert seconds is not None
    return (START + timedelta(seconds=seconds)).isoformat()


def slot(index: int) -> dict[str, str]:
    s = SLOTS[index]
    return {"slot_id": s.slot_id, "start": s.start.isoformat(), "provider": s.provider}


# ---------------------------------------------------------------------- complete intakes
def test_aetna_caller_books_the_first_slot_and_confirms_the_summary() -> None:
    caller = Caller()
    caller.start()
    for answer, read_back in INTAKE[:2]:
        confirmed(caller, answer) if read_back else caller.say(answer)
    # The complaint is a free-text answer whose audio the runtime keeps.
    complaint, _ = INTAKE[2]
    caller.event(Transcript(complaint, 0.9, clip="turn-03.wav"), play=True)
    for answer, read_back in INTAKE[3:]:
        out = confirmed(caller, answer) if read_back else caller.say(answer)
    assert spoken(out).endswith(
        "Which one would you like? You can say the option number or press it on your keypad."
    )
    out = caller.say("the first one")
    summary = spoken(out)
    for part in (
        "You're booked for Friday, November 27 at 11:30 AM with Dr. Rivera.",
        "Your name is Anna Smith.",
        "Date of birth March 3, 1984.",
        "Phone 6 1 7, 5 5 5, 0 1 4 2.",
        "Insurance Aetna, member ID A, B, C, 1, 2, 3, 4, 5, 6.",
        "Reason for visit: a cough and a fever for three days.",
        "Address 12 Elm Street, Cambridge, MA 0 2 1 3 9.",
        "Pharmacy CVS on Main Street.",
        "Emergency contact Maria Lopez, your spouse.",
    ):
        assert part in summary
    out = caller.say("yes that's right")
    assert spoken(out) == "You're all set. Thank you for calling Maple Clinic. Goodbye."
    assert caller.hangup == Hangup("complete")
    assert caller.turn() is TurnState.ENDED
    assert_record(
        caller,
        ended_at=ended(caller.hangup_at),
        status="complete",
        phase_reached="COMPLETE",
        caller_id=CALLER_ID,
        insurance={"payer": "Aetna", "member_id": "ABC123456"},
        complaint={
            "description": "a cough and a fever for three days",
            "symptoms": ["cough", "fever"],
            "duration_days": 3.0,
            "severity": 6,
            "category": "respiratory",
        },
        demographics={
            "first_name": "Anna",
            "last_name": "Smith",
            "date_of_birth": "1984-03-03",
            "phone": CALLER_ID,
        },
        address={
            "street": "12 Elm Street",
            "city": "Cambridge",
            "state": "MA",
            "zip_code": "02139",
        },
        pharmacy={"name": "CVS", "location": "Main Street"},
        emergency_contact={
            "name": "Maria Lopez",
            "relationship": "spouse",
            "phone": "+16175550199",
        },
        appointment=slot(0),
        audio_clips=["turn-03.wav"],
    )
    said = [t.text for t in caller.record.transcript if t.speaker == "caller"]
    assert said[:2] == ["aetna", "yes"] and said[-1] == "yes that's right"
    # A save at every phase change, and the last one at the end of the call.
    phases = [c.record.phase_reached for c in caller.commands if isinstance(c, SaveRecord)]
    assert phases == [
        "INSURANCE",
        "CHIEF_COMPLAINT",
        "DEMOGRAPHICS",
        "ADDRESS",
        "PHARMACY",
        "EMERGENCY_CONTACT",
        "SCHEDULING",
        "SUMMARY",
        "COMPLETE",
        "COMPLETE",
    ]


def test_medicare_caller_with_an_mbi_corrects_the_zip_code_in_the_summary() -> None:
    caller = Caller()
    caller.start()
    confirmed(caller, "i have medicare")
    out = confirmed(caller, "one e g four t e five m k seven three")
    assert "I have 1 E G 4 T E 5 M K 7 3. Is that right?" in spoken(out)
    caller.say("my right knee has been hurting for two weeks")  # no known symptom word
    caller.say("about a four")
    confirmed(caller, "walter w a l t e r")
    confirmed(caller, "brown b r o w n")
    asked = caller.say("sorry can you repeat that")
    assert spoken(asked) == DOB_PROMPT
    out = confirmed(caller, "the fifth of july nineteen fifty")
    assert "I have July 5, 1950." in spoken(out)
    confirmed(caller, "six one seven five five five oh one two three")
    confirmed(caller, "forty two oak avenue")
    confirmed(caller, "oh two one three nine")
    confirmed(caller, "walgreens on mass ave")
    confirmed(caller, "my daughter susan brown")
    confirmed(caller, "six one seven five five five oh four five six")
    out = caller.press("2")
    assert "You're booked for Monday, November 30 at 9 AM with Dr. Rivera." in spoken(out)
    out = caller.say("actually my zip code is oh two one four two")
    assert spoken(out) == f"Thanks, I've updated your ZIP code. {CANNED_ANSWER}"
    assert caller.hangup is None
    caller.say("that's all")
    assert caller.hangup == Hangup("complete")
    assert_record(
        caller,
        ended_at=ended(caller.hangup_at),
        status="complete",
        phase_reached="COMPLETE",
        caller_id=CALLER_ID,
        insurance={"payer": "Medicare", "member_id": "1EG4TE5MK73"},
        complaint={
            "description": "my right knee has been hurting for two weeks",
            "duration_days": 14.0,
            "severity": 4,
            "category": "general",
        },
        demographics={
            "first_name": "Walter",
            "last_name": "Brown",
            "date_of_birth": "1950-07-05",
            "phone": "+16175550123",
        },
        address={
            "street": "42 Oak Avenue",
            "city": "Cambridge",
            "state": "MA",
            "zip_code": "02142",
        },
        pharmacy={"name": "Walgreens", "location": "Mass Ave"},
        emergency_contact={"name": "Susan Brown", "relationship": "child", "phone": "+16175550456"},
        appointment=slot(1),
    )


def test_blue_cross_spelled_out_loses_a_slot_to_another_caller_and_fixes_the_name() -> None:
    caller = Caller()
    assert asyncio.run(caller.store.book_slot(SLOTS[0].slot_id, "call-0"))  # taken meanwhile
    caller.start()
    out = confirmed(caller, "bee see bee ess")
    assert "I have Blue Cross Blue Shield. Is that right?" in spoken(out)
    confirmed(caller, "x g h one two three four five six")
    caller.say("an itchy rash on my arm since yesterday")
    caller.say("three")
    confirmed(caller, "maria m a r i a")
    confirmed(caller, "garcia g a r c i a")
    out = confirmed(caller, "one two two five one nine six zero")
    assert "I have December 25, 1960." in spoken(out)
    confirmed(caller, "this number")
    out = confirmed(caller, "seven maple street apartment two")
    assert "I have 7 Maple Street, Apt 2. Is that right?" in spoken(out)
    confirmed(caller, "nine oh two one oh")
    confirmed(caller, "the rite aid on sunset boulevard")
    confirmed(caller, "my brother carlos garcia")
    offer = confirmed(caller, "three one oh five five five oh one one one")
    assert "option 1, Friday, November 27 at 11:30 AM" in spoken(offer)
    out = caller.say("the first one")
    assert spoken(out).startswith(
        "Sorry, that time was just taken. I have these appointments: "
        "option 1, Monday, November 30 at 9 AM with Dr. Rivera, "
    )
    assert "November 27" not in spoken(out)
    out = caller.say("option one")
    assert "You're booked for Monday, November 30 at 9 AM with Dr. Rivera." in spoken(out)
    out = caller.say("no")
    assert spoken(out).startswith("Which part should I change? Say name, date of birth,")
    out = caller.say("my last name is garza g a r z a")  # the part and its value at once
    assert spoken(out).startswith("Thanks, I've updated your name. Let me read back")
    assert "Your name is Maria Garza." in spoken(out)
    caller.say("yes")
    assert caller.hangup == Hangup("complete")
    assert asyncio.run(caller.store.booked_slots()) == {SLOTS[0].slot_id, SLOTS[1].slot_id}
    assert_record(
        caller,
        ended_at=ended(caller.hangup_at),
        status="complete",
        phase_reached="COMPLETE",
        caller_id=CALLER_ID,
        insurance={"payer": "Blue Cross Blue Shield", "member_id": "XGH123456"},
        complaint={
            "description": "an itchy rash on my arm since yesterday",
            "symptoms": ["itching", "rash"],
            "duration_days": 1.0,
            "severity": 3,
            "category": "dermatological",
        },
        demographics={
            "first_name": "Maria",
            "last_name": "Garza",
            "date_of_birth": "1960-12-25",
            "phone": CALLER_ID,
        },
        address={
            "street": "7 Maple Street Apt 2",
            "city": "Beverly Hills",
            "state": "CA",
            "zip_code": "90210",
        },
        pharmacy={"name": "Rite Aid", "location": "Sunset Boulevard"},
        emergency_contact={
            "name": "Carlos Garcia",
            "relationship": "sibling",
            "phone": "+13105550111",
        },
        appointment=slot(1),
    )


def test_self_pay_caller_without_caller_id_skips_the_member_id() -> None:
    caller = Caller(caller_id=None)
    caller.start()
    out = confirmed(caller, "i don't have insurance")
    assert "I have Self-pay (uninsured)." in spoken(out)
    assert spoken(out).endswith(
        "What is the main reason for your visit? Please describe your symptoms."
    )  # no member ID question
    caller.say("headaches for a month")
    caller.say("seven")
    out = caller.say("um")  # nothing usable: one plain re-prompt
    assert spoken(out) == (
        "Sorry, I didn't catch that. Now a few details about you. What is "
        "your first name? Please say it, then spell it, or spell it on your keypad, one key "
        "per letter, then press pound."
    )
    confirmed(caller, "james j a m e s")
    confirmed(caller, "lee l e e")
    confirmed(caller, "july fourth 1975")
    out = caller.say("four one five five five five oh one seven seven")
    assert spoken(out) == "I have 4 1 5, 5 5 5, 0 1 7 7. Is that right?"
    caller.say("yes")
    confirmed(caller, "one hundred market street")
    confirmed(caller, "nine four one oh five")
    confirmed(caller, "cvs on market street")
    # Name, relationship and number in one breath: the phone question is not asked.
    out = confirmed(caller, "my friend tom baker five one oh five five five oh one two two")
    assert "I have these appointments" in spoken(out)
    out = caller.say("monday at nine")
    assert "You're booked for Monday, November 30 at 9 AM" in spoken(out)
    assert "Insurance Self-pay (uninsured)." in spoken(out)
    caller.say("yes")
    assert_record(
        caller,
        ended_at=ended(caller.hangup_at),
        status="complete",
        phase_reached="COMPLETE",
        caller_id=None,
        insurance={"payer": "Self-pay (uninsured)", "self_pay": True},
        complaint={
            "description": "headaches for a month",
            "symptoms": ["headache"],
            "duration_days": 30.0,
            "severity": 7,
            "category": "neurological",
        },
        demographics={
            "first_name": "James",
            "last_name": "Lee",
            "date_of_birth": "1975-07-04",
            "phone": "+14155550177",
        },
        address={
            "street": "100 Market Street",
            "city": "San Francisco",
            "state": "CA",
            "zip_code": "94105",
        },
        pharmacy={"name": "CVS", "location": "Market Street"},
        emergency_contact={"name": "Tom Baker", "relationship": "friend", "phone": "+15105550122"},
        appointment=slot(1),
    )


# ---------------------------------------------------------------------- calls cut short
def test_keypad_caller_hangs_up_during_the_address() -> None:
    caller = Caller()
    caller.start()
    confirmed(caller, "aetna")
    out = caller.press("98765432#")
    assert spoken(out) == "I have 9 8 7 6 5 4 3 2. Is that right?"
    caller.press("1")
    caller.say("a fever since tuesday")
    caller.say("five")
    confirmed(caller, "lisa l i s a")
    confirmed(caller, "wong w o n g")
    out = confirmed(caller, "oh three oh three eighty four")
    assert "I have March 3, 1984." in spoken(out)
    out = caller.press("6175550177")  # ten digits: no pound needed
    assert spoken(out) == "I have 6 1 7, 5 5 5, 0 1 7 7. Is that right?"
    out = caller.press("1")
    assert spoken(out).endswith("What is your street address?")
    caller.clock.advance(2.5)
    out = caller.event(CallEnded())
    assert [type(c) for c in out] == [SaveRecord]
    assert caller.turn() is TurnState.ENDED
    assert caller.hangup is None  # the caller hung up; we send no BYE
    assert_record(
        caller,
        ended_at=ended(caller.clock.now),
        status="incomplete",
        phase_reached="ADDRESS",
        caller_id=CALLER_ID,
        insurance={"payer": "Aetna", "member_id": "98765432"},
        complaint={
            "description": "a fever since tuesday",
            "symptoms": ["fever"],
            "duration_days": 3.0,
            "severity": 5,
            "category": "general",
        },
        demographics={
            "first_name": "Lisa",
            "last_name": "Wong",
            "date_of_birth": "1984-03-03",
            "phone": "+16175550177",
        },
    )


def test_quiet_caller_is_reprompted_then_the_call_ends() -> None:
    caller = Caller()
    caller.start()
    confirmed(caller, "cigna")
    first = caller.stay_silent()
    assert spoken(first).startswith("Are you still there? What is your member ID")
    second = caller.stay_silent()
    assert spoken(second) == spoken(first)
    last = caller.stay_silent()
    assert "I'll end the call now" in spoken(last)
    assert caller.hangup == Hangup("silence")
    assert_record(
        caller,
        ended_at=ended(caller.hangup_at),
        status="incomplete",
        phase_reached="INSURANCE",
        caller_id=CALLER_ID,
        insurance={"payer": "Cigna"},
    )


# ---------------------------------------------------------------------- a person, please
def test_caller_asks_for_a_person_and_is_transferred() -> None:
    caller = Caller(transfer_target="sip:frontdesk@127.0.0.1")
    caller.start()
    confirmed(caller, "aetna")
    confirmed(caller, "a b c one two three four five six")
    out = caller.say("can i talk to a real person please")
    assert [type(c) for c in out] == [SaveRecord, Speak, Transfer]
    assert (
        isinstance(out[0], SaveRecord) and out[0].record.status == "transferred"
    )  # saved before the REFER goes out
    assert out[1] == Speak("Sure, connecting you to our staff now.", barge_in=False)
    assert out[2] == Transfer("sip:frontdesk@127.0.0.1")
    assert caller.turn() is TurnState.TRANSFERRING
    caller.clock.advance(1.5)
    out = caller.event(TransferResult(accepted=True))
    assert [type(c) for c in out] == [SaveRecord, Hangup]
    assert caller.hangup == Hangup("transferred")
    assert caller.turn() is TurnState.ENDED
    assert_record(
        caller,
        ended_at=ended(caller.hangup_at),
        status="transferred",
        phase_reached="CHIEF_COMPLAINT",
        caller_id=CALLER_ID,
        insurance={"payer": "Aetna", "member_id": "ABC123456"},
    )


def test_caller_asks_for_a_person_and_leaves_a_callback_message() -> None:
    caller = Caller()  # no transfer target configured
    caller.start()
    confirmed(caller, "humana")
    confirmed(caller, "h one two three four five six seven eight")
    caller.say("i have a sore throat and a cough")
    caller.say("about a week")
    caller.say("four")
    out = caller.say("i'd rather speak to someone at the front desk")
    assert spoken(out) == (
        "No one is available to take your call right now. Please tell me "
        "briefly how we can help, and our staff will call you back."
    )
    assert caller.listen is not None and caller.listen.expectation.keep_audio
    message = "i need a refill of my inhaler before friday"
    out = caller.event(Transcript(message, 0.85, clip="turn-07.wav"), play=True)
    assert spoken(out) == "Thank you. Our staff will call you back. Goodbye."
    assert caller.hangup == Hangup("callback")
    assert_record(
        caller,
        ended_at=ended(caller.hangup_at),
        status="callback",
        phase_reached="DEMOGRAPHICS",
        caller_id=CALLER_ID,
        insurance={"payer": "Humana", "member_id": "H12345678"},
        complaint={
            "description": "i have a sore throat and a cough",
            "symptoms": ["sore throat", "cough"],
            "duration_days": 7.0,
            "severity": 4,
            "category": "respiratory",
        },
        callback_message=message,
        audio_clips=["turn-07.wav"],
    )


# ---------------------------------------------------------------------- red flags
def test_chest_pain_and_shortness_of_breath_gets_911_advice_at_once() -> None:
    caller = Caller()
    caller.start()
    confirmed(caller, "aetna")
    confirmed(caller, "a b c one two three four five six")
    out = caller.say("i have chest pain and shortness of breath")
    assert [type(c) for c in out] == [SaveRecord, Speak, SaveRecord, Hangup]
    assert (
        isinstance(out[0], SaveRecord) and out[0].record.status == "urgent"
    )  # on disk before a word of advice is spoken
    assert out[1] == Speak(
        "What you describe may be a medical emergency. Please hang up and call 9 1 1 now. Goodbye.",
        barge_in=False,
    )
    assert caller.hangup == Hangup("urgent")
    assert_record(
        caller,
        ended_at=ended(caller.hangup_at),
        status="urgent",
        phase_reached="CHIEF_COMPLAINT",
        caller_id=CALLER_ID,
        insurance={"payer": "Aetna", "member_id": "ABC123456"},
        complaint={"red_flag": "cardiac_emergency"},
        urgent_reason="cardiac_emergency",
    )


def test_self_harm_gets_988_advice_in_any_phase() -> None:
    caller = Caller()
    caller.start()
    for answer, read_back in INTAKE[:4]:
        confirmed(caller, answer) if read_back else caller.say(answer)
    out = caller.say("honestly i've been thinking about ending my life")
    advice = spoken(out)
    assert advice.startswith(
        "I'm concerned about your safety. Please call or text 9 8 8, the "
        "Suicide and Crisis Lifeline, right now."
    )
    assert "call 9 1 1" in advice and advice.endswith("Goodbye.")
    assert caller.hangup == Hangup("urgent")
    assert_record(
        caller,
        ended_at=ended(caller.hangup_at),
        status="urgent",
        phase_reached="DEMOGRAPHICS",
        caller_id=CALLER_ID,
        insurance={"payer": "Aetna", "member_id": "ABC123456"},
        complaint={
            "description": "a cough and a fever for three days",
            "symptoms": ["cough", "fever"],
            "duration_days": 3.0,
            "severity": 6,
            "category": "respiratory",
            "red_flag": "self_harm",
        },
        urgent_reason="self_harm",
    )


def test_urgent_caller_accepts_a_transfer_to_staff() -> None:
    caller = Caller(transfer_target="sip:nurse@127.0.0.1")
    caller.start()
    out = caller.say("my wife is unconscious and not breathing")
    assert spoken(out).endswith("Would you like me to connect you to our staff right now?")
    out = caller.say("yes please")
    assert out[-1] == Transfer("sip:nurse@127.0.0.1")
    caller.event(TransferResult(accepted=True))
    assert caller.hangup == Hangup("transferred")
    record = caller.record
    assert record.urgent_reason is not None
    assert_record(
        caller,
        ended_at=ended(caller.hangup_at),
        status="urgent",
        phase_reached="INSURANCE",
        caller_id=CALLER_ID,
        complaint={"red_flag": record.urgent_reason},
        urgent_reason=record.urgent_reason,
    )


def test_a_no_to_the_summary_asks_which_part_then_asks_that_part_again() -> None:
    """The embedded recogniser hears only yes or no at the summary: the IVR way to amend."""
    caller = Caller()
    caller.start()
    through_intake(caller)
    out = caller.say("the first one")
    assert "Your name is Anna Smith." in spoken(out)
    out = caller.say("no")
    assert spoken(out) == (
        "Which part should I change? Say name, date of birth, phone, insurance, reason for "
        "visit, address, ZIP code, pharmacy, or emergency contact."
    )
    out = caller.say("um")  # no part named: asked once more
    assert spoken(out).startswith("Sorry. Which part should I change?")
    out = caller.say("last name")
    assert spoken(out).startswith("Okay. And your last name?")
    out = caller.press("42792#")  # G A R Z A, one key per letter
    assert spoken(out) == "I have Garza, spelled G A R Z A. Is that right?"
    out = caller.say("yes")
    assert "Let me read back what I have. Your name is Anna Garza." in spoken(out)
    assert caller.record.phase_reached == "SUMMARY"  # amending did not move the phase back
    out = caller.say("no")
    out = caller.say("zip code")
    assert spoken(out).startswith("Okay. And your ZIP code?")
    confirmed(caller, "oh two one four two")
    out = caller.say("go back")  # nothing more to amend: the summary again
    caller.say("yes")
    assert caller.hangup == Hangup("complete")
    assert caller.record.demographics.last_name == "Garza"
    assert caller.record.address.zip_code == "02142"
    assert caller.last_saved.model_dump() == caller.record.model_dump()
