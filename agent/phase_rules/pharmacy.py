"""PHARMACY: which pharmacy, and where."""

from __future__ import annotations

from agent.commands import Expect, Expectation
from agent.nlu.pharmacy import Pharmacy, extract_pharmacy
from agent.questions import Question
from agent.record import IntakeRecord
from agent.vocabularies import pharmacy_phrases, street_names


def _apply(record: IntakeRecord, pharmacy: Pharmacy) -> IntakeRecord:
    update = {"name": pharmacy.name, "location": pharmacy.location}
    return record.model_copy(update={"pharmacy": record.pharmacy.model_copy(update=update)})


def _say(pharmacy: Pharmacy) -> str:
    where = f" on {pharmacy.location}" if pharmacy.location else ""
    return f"I have {pharmacy.name}{where}."


QUESTIONS: tuple[Question, ...] = (
    Question(
        key="pharmacy",
        prompt="Which pharmacy do you use? Please include the street or town.",
        expectation=Expectation(
            Expect.PHARMACY, pharmacy_phrases(), places=street_names(), keep_audio=True
        ),
        extract=lambda text, ctx: extract_pharmacy(text),
        apply=_apply,
        confirm=_say,
        always_confirm=True,
        help="For example: the CVS on Main Street.",
    ),
)
