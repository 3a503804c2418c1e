"""DEMOGRAPHICS: first and last name (spelled), date of birth, and a phone number.

The phone question offers the caller ID from the SIP From header.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from agent.commands import Expect, Expectation, KeypadEntry
from agent.nlu.dates import extract_date_of_birth
from agent.nlu.demographics import NamePart, extract_name
from agent.nlu.keypad_names import extract_keypad_name
from agent.nlu.phone import PhoneNumber, extract_phone
from agent.nlu.result import Extraction, failed
from agent.questions import Context, Question
from agent.record import IntakeRecord
from agent.understanding import say_phone, spell

#: A name spelled on the keypad, one key per letter (`agent.nlu.keypad_names`).
NAME_KEYPAD = KeypadEntry(max_digits=24, min_digits=2)


def _name(part: NamePart) -> Any:
    def extract(text: str, ctx: Context) -> Extraction[Any]:
        found = extract_keypad_name(text, part) if ctx.keypad else extract_name(text, part)
        if found.value is None:
            return found
        value = found.value.first if part is NamePart.FIRST else found.value.last
        if not value:
            return failed(found.failure) if found.failure else found
        return Extraction(value, found.confidence, found.needs_confirmation)

    return extract


def _put(field: str) -> Any:
    def apply(record: IntakeRecord, value: Any) -> IntakeRecord:
        return record.model_copy(
            update={"demographics": record.demographics.model_copy(update={field: value})}
        )

    return apply


def _phone_prompt(ctx: Context) -> str:
    if ctx.caller_id:
        return (
            "What's the best phone number to reach you? To use the number you're "
            "calling from, say this number. Otherwise say or type the ten digits."
        )
    return "What's the best phone number to reach you? Say or type the ten digits."


def _extract_phone(text: str, ctx: Context) -> Extraction[Any]:
    return extract_phone(text, ctx.caller_id)


def _apply_phone(record: IntakeRecord, number: PhoneNumber) -> IntakeRecord:
    return _put("phone")(record, number.e164)  # type: ignore[no-any-return]


def _say_date(value: date) -> str:
    return f"I have {value:%B} {value.day}, {value.year}."


QUESTIONS: tuple[Question, ...] = (
    Question(
        key="demographics.first_name",
        prompt="Now a few details about you. What is your first name? Please say it, then "
        "spell it, or spell it on your keypad, one key per letter, then press pound.",
        expectation=Expectation(Expect.SPELLING, keep_audio=True),
        extract=_name(NamePart.FIRST),
        apply=_put("first_name"),
        confirm=lambda name: f"I have {name}, spelled {spell(name)}.",
        always_confirm=True,
        keypad=NAME_KEYPAD,
        help="Say your first name and spell it, for example: Anna, A N N A. Or press one "
        "key per letter on your keypad, then pound: for Anna, 2 6 6 2.",
    ),
    Question(
        key="demographics.last_name",
        prompt="And your last name? Please say it and spell it, or spell it on your keypad, "
        "then press pound.",
        expectation=Expectation(Expect.SPELLING, keep_audio=True),
        extract=_name(NamePart.LAST),
        apply=_put("last_name"),
        confirm=lambda name: f"I have {name}, spelled {spell(name)}.",
        always_confirm=True,
        keypad=NAME_KEYPAD,
        help="Say your last name and spell it. You can say S as in Sam. Or press one key "
        "per letter on your keypad, then pound.",
    ),
    Question(
        key="demographics.date_of_birth",
        prompt="What is your date of birth? You can also type it as eight digits: month, "
        "day and year.",
        expectation=Expectation(Expect.DATE),
        extract=lambda text, ctx: extract_date_of_birth(text, ctx.today),
        apply=_put("date_of_birth"),
        confirm=_say_date,
        always_confirm=True,
        keypad=KeypadEntry(max_digits=8, min_digits=6),
        help="Say the month, day and year, for example: March third, nineteen eighty four.",
    ),
    Question(
        key="demographics.phone",
        prompt=_phone_prompt,
        expectation=Expectation(Expect.DIGITS, min_digits=10, max_digits=10),
        extract=_extract_phone,
        apply=_apply_phone,
        confirm=lambda number: f"I have {say_phone(number.e164)}.",
        always_confirm=True,
        keypad=KeypadEntry(max_digits=10, min_digits=10),
    ),
)
