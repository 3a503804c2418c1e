"""ADDRESS: the street, then the ZIP code, from which city and state are read back."""

from __future__ import annotations

from typing import Any

from agent.commands import Expect, Expectation, KeypadEntry
from agent.nlu.address import Address, ZipInfo, extract_address, extract_zip
from agent.nlu.result import Extraction, Failure, failed
from agent.questions import Context, Question
from agent.record import IntakeRecord
from agent.vocabularies import street_names


def _extract_street(text: str, ctx: Context) -> Extraction[Any]:
    found = extract_address(text)
    if found.value is None or not found.value.street:
        return failed(found.failure or Failure.NOT_FOUND)
    return Extraction(found.value, found.confidence, found.needs_confirmation)


def _apply_street(record: IntakeRecord, address: Address) -> IntakeRecord:
    update = {
        k: getattr(address, k)
        for k in ("street", "city", "state", "zip_code")
        if getattr(address, k)
    }
    if address.unit:
        update["street"] = f"{address.street} {address.unit}"
    return record.model_copy(update={"address": record.address.model_copy(update=update)})


def _apply_zip(record: IntakeRecord, info: ZipInfo) -> IntakeRecord:
    update = {"zip_code": info.zip_code, "city": info.city, "state": info.state}
    return record.model_copy(update={"address": record.address.model_copy(update=update)})


QUESTIONS: tuple[Question, ...] = (
    Question(
        key="address.street",
        prompt="What is your street address?",
        expectation=Expectation(Expect.ADDRESS, street_names(), keep_audio=True),
        extract=_extract_street,
        apply=_apply_street,
        confirm=lambda a: f"I have {a.street}, {a.unit}." if a.unit else f"I have {a.street}.",
        always_confirm=True,
        help="Say the house number and street, for example: 12 Elm Street, apartment 4.",
    ),
    Question(
        key="address.zip_code",
        prompt="And your ZIP code?",
        expectation=Expectation(Expect.DIGITS, min_digits=5, max_digits=5),
        extract=lambda text, ctx: extract_zip(text),
        apply=_apply_zip,
        confirm=lambda z: f"That's {z.city}, {z.state}, {' '.join(z.zip_code)}.",
        always_confirm=True,
        keypad=KeypadEntry(max_digits=5, min_digits=5),
    ),
)
