"""The questions of each intake phase, one module per phase (rules and extractors).

`default_questions()` maps each `Phase` with questions to its tuple of `Question`s. GREETING,
SCHEDULING, SUMMARY and COMPLETE have no question loop: `agent.dialogue` runs them.
"""

from __future__ import annotations

from agent.phase_rules import (
    address,
    complaint,
    demographics,
    emergency_contact,
    insurance,
    pharmacy,
)
from agent.phases import Phase
from agent.questions import Question


def default_questions() -> dict[Phase, tuple[Question, ...]]:
    """The standard intake."""
    return {
        Phase.INSURANCE: insurance.QUESTIONS,
        Phase.CHIEF_COMPLAINT: complaint.QUESTIONS,
        Phase.DEMOGRAPHICS: demographics.QUESTIONS,
        Phase.ADDRESS: address.QUESTIONS,
        Phase.PHARMACY: pharmacy.QUESTIONS,
        Phase.EMERGENCY_CONTACT: emergency_contact.QUESTIONS,
    }
