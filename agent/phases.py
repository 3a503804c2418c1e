"""The intake's ten phases and how a call moves between them.

Theory of operation
-------------------
Phases run in the order a front desk works: GREETING, INSURANCE, CHIEF_COMPLAINT,
DEMOGRAPHICS, ADDRESS, PHARMACY, EMERGENCY_CONTACT, SCHEDULING, SUMMARY, COMPLETE. A phase
ends with ``DONE`` (its questions answered or skipped), or the caller says "go back"
(``BACK``). A red flag (``URGENT``) or "a person, please" (``ESCALATE``) can end any phase
early; the conversation then advises, transfers or takes a callback message, and the call
ends in COMPLETE with the record's status saying why. ``CORRECT`` in SUMMARY re-opens nothing:
corrections are applied in place and SUMMARY reads back again.
"""

from __future__ import annotations

from enum import Enum

from agent.errors import AgentStateError


class Phase(Enum):
    """Where the intake is."""

    GREETING = "GREETING"
    INSURANCE = "INSURANCE"
    CHIEF_COMPLAINT = "CHIEF_COMPLAINT"
    DEMOGRAPHICS = "DEMOGRAPHICS"
    ADDRESS = "ADDRESS"
    PHARMACY = "PHARMACY"
    EMERGENCY_CONTACT = "EMERGENCY_CONTACT"
    SCHEDULING = "SCHEDULING"
    SUMMARY = "SUMMARY"
    COMPLETE = "COMPLETE"


class PhaseInput(Enum):
    """What moves the intake between phases."""

    DONE = "done"
    BACK = "back"
    URGENT = "urgent"
    ESCALATE = "escalate"


ORDER: tuple[Phase, ...] = tuple(Phase)

TRANSITIONS: dict[tuple[Phase, PhaseInput], Phase] = {}
for _i, _phase in enumerate(ORDER[:-1]):
    TRANSITIONS[(_phase, PhaseInput.DONE)] = ORDER[_i + 1]
    TRANSITIONS[(_phase, PhaseInput.BACK)] = ORDER[max(_i - 1, 1)] if _i > 1 else _phase
    TRANSITIONS[(_phase, PhaseInput.URGENT)] = Phase.COMPLETE
    TRANSITIONS[(_phase, PhaseInput.ESCALATE)] = Phase.COMPLETE
del _i, _phase


def next_phase(phase: Phase, event: PhaseInput) -> Phase:
    """Look the move up in `TRANSITIONS`.

    Raises:
        AgentStateError: COMPLETE takes no input.
    """
    try:
        return TRANSITIONS[(phase, event)]
    except KeyError:
        raise AgentStateError(f"phase {phase.value} cannot take {event.value!r}") from None
