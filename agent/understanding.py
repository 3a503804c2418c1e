"""The dialogue's view of the rule-based NLU, and the words the agent says back.

Intents, yes/no, red flags, slots and corrections in; acknowledgements, slot names and the
summary out.

One place adapts `agent.nlu` results to what `agent.dialogue` needs, so the dialogue reads as
a conversation and the NLU stays a set of independent extractors.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from agent.nlu.address import Address as SpokenAddress
from agent.nlu.address import ZipInfo
from agent.nlu.corrections import CorrectionContext, Field, parse_correction
from agent.nlu.demographics import PersonName
from agent.nlu.emergency_contact import EmergencyContact
from agent.nlu.insurance import Payer, default_catalog, read_back_digits
from agent.nlu.intents import GlobalIntent, detect_intent
from agent.nlu.numbers import words_to_int
from agent.nlu.pharmacy import Pharmacy
from agent.nlu.phone import PhoneNumber
from agent.nlu.redflags import EmergencyAction, detect_red_flag
from agent.nlu.scheduling import choose_slot as choose_slot_time
from agent.nlu.text import content, tokens
from agent.nlu.yesno import Answer, classify_confirmation
from agent.questions import Context, Slot
from agent.record import IntakeRecord


class Intent(Enum):
    """Requests that apply in every phase."""

    REPEAT = "repeat"
    HELP = "help"
    BACK = "back"
    OPERATOR = "operator"
    GOODBYE = "goodbye"


_INTENTS = {
    GlobalIntent.REPEAT: Intent.REPEAT,
    GlobalIntent.HELP: Intent.HELP,
    GlobalIntent.GO_BACK: Intent.BACK,
    GlobalIntent.OPERATOR: Intent.OPERATOR,
    GlobalIntent.GOODBYE: Intent.GOODBYE,
}


@dataclass(frozen=True, slots=True)
class RedFlagAdvice:
    """What to tell a caller with an emergency, and the label kept on the record."""

    label: str
    advice: str


def intent(text: str) -> Intent | None:
    """A global intent, when the utterance is one."""
    found = detect_intent(text)
    return _INTENTS.get(found.value) if found.value is not None else None


def yes_no(text: str) -> bool | None:
    """True for yes, False for no (or a correction), None when neither."""
    found = classify_confirmation(text)
    if found.value is None:
        return None
    return found.value.answer is Answer.YES


def red_flag(text: str) -> RedFlagAdvice | None:
    """Advice for an emergency mentioned in ``text``, or None."""
    found = detect_red_flag(text)
    if found.value is None:
        return None
    if found.value.action is EmergencyAction.CALL_988:
        advice = (
            "I'm concerned about your safety. Please call or text 9 8 8, the Suicide "
            "and Crisis Lifeline, right now. If you are in immediate danger, call 9 1 1."
        )
    else:
        advice = "What you describe may be a medical emergency. Please hang up and call 9 1 1 now."
    return RedFlagAdvice(found.value.value, advice)


_ACKS = ("Thank you.", "Got it.", "Okay.", "Thanks.")


def acknowledgement(index: int) -> str:
    """A short, varied acknowledgement between questions."""
    return _ACKS[index % len(_ACKS)]


def say_slot(slot: Slot) -> str:
    """A slot as the agent says it: "Monday, November 30 at 9:30 AM with Dr. Rivera"."""
    when = slot.start
    hour = when.strftime("%I").lstrip("0")
    minutes = "" if when.minute == 0 else f":{when.minute:02d}"
    return f"{when:%A, %B} {when.day} at {hour}{minutes} {when:%p} with {slot.provider}"


#: `agent.nlu.scheduling.match_slots` scores 0.9 when one slot fits or the caller named a
#: time (the closest wins) and 0.75 when several fit a vaguer wish ("monday"): only the
#: latter is too unsure to book without asking again.
SLOT_SURE = 0.9


def choose_slot(text: str, offered: Sequence[Slot], now: datetime) -> Slot | None:
    """The offered slot the caller picked (by number, keypad or description)."""
    words = content(tokens(text))
    number = words_to_int(words) if len(words) == 1 else None  # "2" on the keypad, or "two"
    if number is not None:
        index = number - 1
        return offered[index] if 0 <= index < len(offered) else None
    found = choose_slot_time(text, [s.start for s in offered], now)
    if found.value is None or (found.alternatives and found.confidence < SLOT_SURE):
        return None
    return next((s for s in offered if s.start == found.value), None)


def with_appointment(record: IntakeRecord, slot: Slot) -> IntakeRecord:
    """The record with the booked slot."""
    appointment = record.appointment.model_copy(
        update={"slot_id": slot.slot_id, "start": slot.start, "provider": slot.provider}
    )
    return record.model_copy(update={"appointment": appointment})


def is_done(text: str) -> bool:
    """Whether the caller says there is nothing more: "that's all", "nothing else"."""
    words = set(tokens(text))
    return bool(words & {"all", "nothing", "it", "done", "good", "fine", "correct"}) and (
        "else" not in words or "nothing" in words
    )


def spell(word: str) -> str:
    """Letters spaced out for read-back: "S M Y T H"."""
    return " ".join(word.upper())


def say_phone(e164_or_national: str) -> str:
    """Digits grouped 3-3-4 for read-back."""
    digits = "".join(c for c in e164_or_national if c.isdigit())[-10:]
    return f"{' '.join(digits[:3])}, {' '.join(digits[3:6])}, {' '.join(digits[6:])}"


def summary_text(record: IntakeRecord) -> str:
    """Everything collected, read back in plain sentences."""
    parts: list[str] = []
    d = record.demographics
    if d.first_name or d.last_name:
        parts.append(f"Your name is {d.first_name or ''} {d.last_name or ''}".rstrip() + ".")
    if d.date_of_birth:
        parts.append(
            f"Date of birth {d.date_of_birth:%B} {d.date_of_birth.day}, {d.date_of_birth.year}."
        )
    if d.phone:
        parts.append(f"Phone {say_phone(d.phone)}.")
    ins = record.insurance
    if ins.payer:
        parts.append(
            f"Insurance {ins.payer}"
            + (f", member ID {read_back_digits(ins.member_id)}." if ins.member_id else ".")
        )
    if record.complaint.description:
        parts.append(f"Reason for visit: {record.complaint.description}.")
    a = record.address
    if a.street or a.zip_code:
        parts.append(
            f"Address {a.street or ''}, {a.city or ''}, {a.state or ''} "
            f"{' '.join(a.zip_code or '')}."
        )
    if record.pharmacy.name:
        parts.append(
            f"Pharmacy {record.pharmacy.name}"
            + (f" on {record.pharmacy.location}." if record.pharmacy.location else ".")
        )
    ec = record.emergency_contact
    if ec.name:
        parts.append(
            f"Emergency contact {ec.name}"
            + (f", your {ec.relationship}" if ec.relationship else "")
            + "."
        )
    if record.appointment.start and record.appointment.provider and record.appointment.slot_id:
        slot = Slot(
            record.appointment.slot_id, record.appointment.start, record.appointment.provider
        )
        parts.append(f"Appointment {say_slot(slot)}.")
    return " ".join(parts)


def apply_correction(
    record: IntakeRecord, text: str, ctx: Context
) -> tuple[IntakeRecord, str] | None:
    """Apply "actually my ZIP is 0 2 1 3 9" to the record; (new record, what changed)."""
    payer = next((p for p in default_catalog().payers if p.name == record.insurance.payer), None)
    found = parse_correction(
        text,
        CorrectionContext(
            today=ctx.today,
            date_of_birth=record.demographics.date_of_birth,
            payer=payer,
            caller_id=ctx.caller_id,
        ),
    )
    if found.value is None:
        return None
    field, value = found.value.field, found.value.value
    return _corrected(record, field, value)


def _corrected(
    record: IntakeRecord, field: Field, value: object
) -> tuple[IntakeRecord, str] | None:
    d, a = record.demographics, record.address
    if field is Field.NAME and isinstance(value, PersonName):
        update = {k: v for k, v in (("first_name", value.first), ("last_name", value.last)) if v}
        return _put(record, "demographics", d, update), "your name"
    if field in (Field.FIRST_NAME, Field.LAST_NAME) and isinstance(value, str):
        # parse_correction gives the one name part as text ("my last name is Garza").
        return _put(record, "demographics", d, {field.value: value}), "your name"
    if field is Field.DATE_OF_BIRTH:
        return _put(record, "demographics", d, {"date_of_birth": value}), "your date of birth"
    if field is Field.PHONE and isinstance(value, PhoneNumber):
        return _put(record, "demographics", d, {"phone": value.e164}), "your phone number"
    if field is Field.ZIP and isinstance(value, ZipInfo):
        return _put(
            record,
            "address",
            a,
            {"zip_code": value.zip_code, "city": value.city, "state": value.state},
        ), "your ZIP code"
    if field in (Field.ADDRESS, Field.STREET) and isinstance(value, SpokenAddress):
        update = {
            k: getattr(value, k)
            for k in ("street", "city", "state", "zip_code")
            if getattr(value, k)
        }
        return _put(record, "address", a, update), "your address"
    if field in (Field.CITY, Field.STATE) and isinstance(value, str):
        return _put(record, "address", a, {field.value: value}), f"your {field.value}"
    if field is Field.INSURANCE and isinstance(value, Payer):
        return _put(
            record, "insurance", record.insurance, {"payer": value.name, "self_pay": value.self_pay}
        ), "your insurance"
    if field is Field.MEMBER_ID and isinstance(value, str):
        return _put(record, "insurance", record.insurance, {"member_id": value}), "your member ID"
    if field is Field.PHARMACY and isinstance(value, Pharmacy):
        return _put(
            record, "pharmacy", record.pharmacy, {"name": value.name, "location": value.location}
        ), "your pharmacy"
    if field is Field.EMERGENCY_CONTACT and isinstance(value, EmergencyContact):
        contact: dict[str, object] = {}
        if value.name is not None:
            contact["name"] = " ".join(p for p in (value.name.first, value.name.last) if p)
        if value.relationship is not None:
            contact["relationship"] = value.relationship.value
        if value.phone is not None:
            contact["phone"] = value.phone.e164
        return _put(
            record, "emergency_contact", record.emergency_contact, contact
        ), "your emergency contact"
    return None


def _put(
    record: IntakeRecord, section: str, current: object, update: Mapping[str, object]
) -> IntakeRecord:
    assert hasattr(current, "model_copy")
    return record.model_copy(update={section: current.model_copy(update=update)})
