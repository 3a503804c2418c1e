"""CHIEF_COMPLAINT: what brings the caller in, for how long, and how bad.

Red flags are screened on every answer, in every phase, by `agent.dialogue`.
"""

from __future__ import annotations

from typing import Any

from agent.commands import Expect, Expectation
from agent.nlu.complaint import (
    ChiefComplaint,
    extract_complaint,
    extract_duration,
    extract_severity,
)
from agent.nlu.result import Extraction
from agent.questions import Context, Question
from agent.record import IntakeRecord


def _extract(text: str, ctx: Context) -> Extraction[Any]:
    return extract_complaint(text, ctx.today)


def _apply(record: IntakeRecord, complaint: ChiefComplaint) -> IntakeRecord:
    update: dict[str, Any] = {
        "description": complaint.description,
        "symptoms": [s.name for s in complaint.symptoms],
        "category": complaint.category.value,
    }
    if complaint.duration_days is not None:
        update["duration_days"] = complaint.duration_days
    if complaint.severity is not None:
        update["severity"] = complaint.severity.score
    return record.model_copy(update={"complaint": record.complaint.model_copy(update=update)})


def _apply_duration(record: IntakeRecord, days: float) -> IntakeRecord:
    return record.model_copy(
        update={"complaint": record.complaint.model_copy(update={"duration_days": days})})


def _apply_severity(record: IntakeRecord, severity: Any) -> IntakeRecord:
    return record.model_copy(
        update={"complaint": record.complaint.model_copy(update={"severity": severity.score})})


QUESTIONS: tuple[Question, ...] = (
    Question(
        key="complaint.description",
        prompt="What is the main reason for your visit? Please describe your symptoms.",
        expectation=Expectation(Expect.FREE_SPEECH, keep_audio=True),
        extract=_extract,
        apply=_apply,
        reprompt="Sorry, could you describe that again?",
        help="Tell me in your own words what is bothering you, for example: a cough and "
        "a fever for three days.",
    ),
    Question(
        key="complaint.duration_days",
        prompt="How long have you had these symptoms?",
        expectation=Expectation(Expect.FREE_SPEECH),
        extract=lambda text, ctx: extract_duration(text, ctx.today),
        apply=_apply_duration,
        skip_if=lambda ctx: ctx.record.complaint.duration_days is not None,
        max_attempts=2,
    ),
    Question(
        key="complaint.severity",
        prompt="On a scale of one to ten, with ten the worst, how bad is it?",
        expectation=Expectation(Expect.DIGITS, min_digits=1, max_digits=2),
        extract=lambda text, ctx: extract_severity(text),
        apply=_apply_severity,
        skip_if=lambda ctx: ctx.record.complaint.severity is not None,
        max_attempts=2,
    ),
)
