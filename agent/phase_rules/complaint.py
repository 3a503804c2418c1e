"""CHIEF_COMPLAINT: what brings the caller in, for how long, and how bad.

Red flags are screened on every answer, in every phase, by `agent.dialogue`.
"""

from __future__ import annotations

from typing import Any

from agent.commands import Expect, Expectation, KeypadEntry
from agent.nlu.complaint import (
    Category,
    ChiefComplaint,
    extract_complaint,
    extract_duration,
    extract_severity,
)
from agent.nlu.result import Extraction, Failure, found
from agent.nlu.text import content, tokens
from agent.questions import Context, Question
from agent.record import IntakeRecord
from agent.vocabularies import symptom_phrases

#: An answer of this many words with no known symptom is kept in the caller's own words;
#: a shorter one ("yes", "about a") is more likely a misrecognition than a complaint.
MIN_OWN_WORDS = 3
_NOT_A_COMPLAINT = frozenset({"yes", "yeah", "yep", "no", "nope", "okay", "ok", "sure"})


def _extract(text: str, ctx: Context) -> Extraction[Any]:
    complaint = extract_complaint(text, ctx.today)
    if complaint.ok or complaint.failure is not Failure.NOT_FOUND:
        return complaint
    # "My right knee has been hurting": no word of the symptom vocabulary, but it is the
    # reason for the visit. Staff read the description; losing it after three retries, for
    # want of a keyword, would be worse than keeping an unclassified one.
    words = content(tokens(text))
    if len(words) < MIN_OWN_WORDS or words[0] in _NOT_A_COMPLAINT:
        return complaint
    own = ChiefComplaint(
        description=" ".join(words),
        symptoms=(),
        category=Category.GENERAL,
        duration_days=extract_duration(text, ctx.today).value,
        severity=extract_severity(text).value,
        red_flags=(),
    )
    return found(own, 0.6, detail="own_words")


def _apply(record: IntakeRecord, complaint: ChiefComplaint) -> IntakeRecord:
    # A new description replaces the whole complaint: a duration or severity kept from an
    # earlier answer (the caller went back) would describe something else, and leaving them
    # empty makes the follow-up questions ask again.
    update: dict[str, Any] = {
        "description": complaint.description,
        "symptoms": [s.name for s in complaint.symptoms],
        "category": complaint.category.value,
        "duration_days": complaint.duration_days,
        "severity": complaint.severity.score if complaint.severity is not None else None,
    }
    return record.model_copy(update={"complaint": record.complaint.model_copy(update=update)})


def _apply_duration(record: IntakeRecord, days: float) -> IntakeRecord:
    return record.model_copy(
        update={"complaint": record.complaint.model_copy(update={"duration_days": days})}
    )


def _apply_severity(record: IntakeRecord, severity: Any) -> IntakeRecord:
    return record.model_copy(
        update={"complaint": record.complaint.model_copy(update={"severity": severity.score})}
    )


QUESTIONS: tuple[Question, ...] = (
    Question(
        key="complaint.description",
        prompt="What is the main reason for your visit? Please describe your symptoms.",
        expectation=Expectation(Expect.SYMPTOMS, symptom_phrases(), keep_audio=True),
        extract=_extract,
        apply=_apply,
        reprompt="Sorry, could you describe that again?",
        help="Tell me in your own words what is bothering you, for example: a cough and "
        "a fever for three days.",
    ),
    Question(
        key="complaint.duration_days",
        prompt="How long have you had these symptoms?",
        expectation=Expectation(Expect.DURATION),
        extract=lambda text, ctx: extract_duration(text, ctx.today),
        apply=_apply_duration,
        skip_if=lambda ctx: ctx.record.complaint.duration_days is not None,
        max_attempts=2,
    ),
    Question(
        key="complaint.severity",
        prompt="On a scale of one to ten, with ten the worst, how bad is it? You can also "
        "press the number on your keypad, then pound.",
        expectation=Expectation(Expect.DIGITS, min_digits=1, max_digits=2),
        extract=lambda text, ctx: extract_severity(text),
        apply=_apply_severity,
        keypad=KeypadEntry(max_digits=2),
        skip_if=lambda ctx: ctx.record.complaint.severity is not None,
        max_attempts=2,
    ),
)
