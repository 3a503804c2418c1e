"""INSURANCE: the payer (fuzzy-matched against the catalog) and the member ID, read back."""

from __future__ import annotations

from typing import Any

from agent.commands import Expect, Expectation, KeypadEntry
from agent.nlu.insurance import Payer, default_catalog, extract_member_id, match_payer
from agent.nlu.result import Extraction
from agent.questions import Context, Question
from agent.record import IntakeRecord
from agent.understanding import spell

# What callers say most: each payer's own name and a few short spoken forms. A grammar over
# every alias in the catalog (130+ phrases) confuses the embedded recogniser far more than it
# helps; the NLU still matches any alias in the text it gets back.
_SPOKEN_FORMS = ("blue cross", "anthem", "united", "self pay", "no insurance", "uninsured")


def _payer_names() -> tuple[str, ...]:
    catalog = default_catalog()
    names = {p.name.split("(")[0].strip() for p in catalog.payers}
    return tuple(sorted(names | set(_SPOKEN_FORMS)))


def _extract_payer(text: str, ctx: Context) -> Extraction[Any]:
    return match_payer(text)


def _apply_payer(record: IntakeRecord, payer: Payer) -> IntakeRecord:
    insurance = record.insurance.model_copy(
        update={
            "payer": payer.name,
            "self_pay": payer.self_pay,
            "member_id": None if payer.self_pay else record.insurance.member_id,
        }
    )
    return record.model_copy(update={"insurance": insurance})


def _current_payer(ctx: Context) -> Payer | None:
    name = ctx.record.insurance.payer
    return next((p for p in default_catalog().payers if p.name == name), None)


def _extract_member_id(text: str, ctx: Context) -> Extraction[Any]:
    return extract_member_id(text, _current_payer(ctx))


def _apply_member_id(record: IntakeRecord, member_id: str) -> IntakeRecord:
    insurance = record.insurance.model_copy(update={"member_id": member_id})
    return record.model_copy(update={"insurance": insurance})


QUESTIONS: tuple[Question, ...] = (
    Question(
        key="insurance.payer",
        prompt="First, who is your health insurance company? If you don't have insurance, "
        "say self pay.",
        expectation=Expectation(Expect.PAYER, vocabulary=_payer_names()),
        extract=_extract_payer,
        apply=_apply_payer,
        confirm=lambda payer: f"I have {payer.name}.",
        always_confirm=True,
        reprompt="Sorry, I didn't recognise that insurance company.",
        help="Say the name on your insurance card, like Aetna, Medicare or Blue Cross.",
    ),
    Question(
        key="insurance.member_id",
        prompt="What is your member ID, as printed on your card? Say it one character at a time.",
        expectation=Expectation(Expect.DIGITS, min_digits=6, max_digits=15),
        extract=_extract_member_id,
        apply=_apply_member_id,
        confirm=lambda member_id: f"I have {spell(member_id)}.",
        always_confirm=True,
        keypad=KeypadEntry(max_digits=15, min_digits=6),
        keypad_first=True,
        reprompt="Sorry, that doesn't look like a member ID for your plan.",
        help="The member ID is on the front of your insurance card.",
        skip_if=lambda ctx: ctx.record.insurance.self_pay,
    ),
)
