"""EMERGENCY_CONTACT: how the contact is related, their name, then their phone number.

The relationship is a closed question (a grammar of relationship words); the name may be
said or spelled on the keypad (`agent.nlu.keypad_names`), which the embedded recogniser needs.
"""

from __future__ import annotations

from typing import Any

from agent.commands import Expect, Expectation, KeypadEntry
from agent.nlu.demographics import NamePart, PersonName, extract_name
from agent.nlu.emergency_contact import EmergencyContact, extract_emergency_contact
from agent.nlu.keypad_names import extract_keypad_name
from agent.nlu.phone import PhoneNumber, extract_phone
from agent.nlu.result import Extraction, Failure, failed
from agent.questions import Context, Question
from agent.record import IntakeRecord
from agent.understanding import say_phone
from agent.vocabularies import relationship_phrases


def _apply(record: IntakeRecord, contact: EmergencyContact) -> IntakeRecord:
    update: dict[str, Any] = {}
    if contact.name is not None:
        update["name"] = " ".join(p for p in (contact.name.first, contact.name.last) if p)
    if contact.relationship is not None:
        update["relationship"] = contact.relationship.value
    if contact.phone is not None:
        update["phone"] = contact.phone.e164
    return record.model_copy(
        update={"emergency_contact": record.emergency_contact.model_copy(update=update)}
    )


def _say(contact: EmergencyContact) -> str:
    name = contact.name.full if contact.name else "that contact"
    relation = f", your {contact.relationship.value}" if contact.relationship else ""
    return f"I have {name}{relation}."


def _extract_relationship(text: str, ctx: Context) -> Extraction[Any]:
    """How the contact is related; a name or phone said with it is kept too."""
    contact = extract_emergency_contact(text).value
    if contact is None or contact.relationship is None:
        return failed(Failure.NOT_FOUND)
    # A name said with it ("my wife, Maria Lopez") is read back, as the name question does.
    return Extraction(contact, 0.9, needs_confirmation=contact.name is not None)


def _extract_name(text: str, ctx: Context) -> Extraction[Any]:
    """The contact's first and last name, said or spelled on the keypad."""
    if ctx.keypad:
        return extract_keypad_name(text, NamePart.FULL)
    said = extract_name(text, NamePart.FULL)
    if said.value is None or not said.value.first or not said.value.last:
        return failed(said.failure or Failure.INCOMPLETE)
    return Extraction(said.value, said.confidence, needs_confirmation=True)


def _apply_name(record: IntakeRecord, name: PersonName) -> IntakeRecord:
    return record.model_copy(
        update={
            "emergency_contact": record.emergency_contact.model_copy(update={"name": name.full})
        }
    )


def _apply_phone(record: IntakeRecord, number: PhoneNumber) -> IntakeRecord:
    return record.model_copy(
        update={
            "emergency_contact": record.emergency_contact.model_copy(update={"phone": number.e164})
        }
    )


def _extract_phone(text: str, ctx: Context) -> Extraction[Any]:
    return extract_phone(text, None)


QUESTIONS: tuple[Question, ...] = (
    Question(
        key="emergency_contact.relationship",
        prompt="Who should we contact in an emergency? First, how are they related to you? "
        "For example: my wife, or my neighbor.",
        expectation=Expectation(Expect.RELATIONSHIP, relationship_phrases()),
        extract=_extract_relationship,
        apply=_apply,
        confirm=_say,
        help="Tell me who they are to you, for example: my husband, my daughter, or a friend.",
    ),
    Question(
        key="emergency_contact.name",
        prompt="What is their first and last name? You can say it, or spell it on your "
        "keypad, one key per letter, with zero between the first and last name, then "
        "press pound.",
        expectation=Expectation(Expect.NAME, keep_audio=True),
        extract=_extract_name,
        apply=_apply_name,
        confirm=lambda name: f"I have {name.full}.",
        always_confirm=True,
        keypad=KeypadEntry(max_digits=30, min_digits=3),
        skip_if=lambda ctx: ctx.record.emergency_contact.name is not None,
        help="For example: Maria Lopez. On the keypad, Maria Lopez is 6 2 7 4 2, zero, "
        "5 6 7 3 9, then pound.",
    ),
    Question(
        key="emergency_contact.phone",
        prompt="What is their phone number?",
        expectation=Expectation(Expect.DIGITS, min_digits=10, max_digits=10),
        extract=_extract_phone,
        apply=_apply_phone,
        confirm=lambda number: f"I have {say_phone(number.e164)}.",
        always_confirm=True,
        keypad=KeypadEntry(max_digits=10, min_digits=10),
        skip_if=lambda ctx: ctx.record.emergency_contact.phone is not None,
    ),
)
