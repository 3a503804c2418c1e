"""EMERGENCY_CONTACT: name and relationship, then a phone number."""

from __future__ import annotations

from typing import Any

from agent.commands import Expect, Expectation, KeypadEntry
from agent.nlu.emergency_contact import EmergencyContact, extract_emergency_contact
from agent.nlu.phone import PhoneNumber, extract_phone
from agent.nlu.result import Extraction
from agent.questions import Context, Question
from agent.record import IntakeRecord
from agent.understanding import say_phone


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
    name = (
        " ".join(p for p in (contact.name.first, contact.name.last) if p)
        if contact.name
        else "that contact"
    )
    relation = f", your {contact.relationship.value}" if contact.relationship else ""
    return f"I have {name}{relation}."


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
        key="emergency_contact.name",
        prompt="Who should we contact in an emergency? Please tell me their name and how "
        "they are related to you.",
        expectation=Expectation(Expect.NAME),
        extract=lambda text, ctx: extract_emergency_contact(text),
        apply=_apply,
        confirm=_say,
        always_confirm=True,
        help="For example: my wife, Maria Lopez.",
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
