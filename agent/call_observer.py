"""What the operations side learns from one intake as it goes: PHI to redact, phase, retries.

`CallObserver.update` runs after each step of the conversation (before its commands are
carried out, so before any prompt that reads a value back is logged):

* every value the record holds, or that awaits the caller's confirmation, is added to the
  call's entry in `agent.logs.CALL_VALUES`, which the log redaction reads;
* the intake phase is bound into the log context (``phase`` on every line of the call);
* a question asked again on the same field counts one extraction retry, by field.

`end_of_intake` counts the finished intake (status, phase reached) and forgets the values.
"""

from __future__ import annotations

import structlog

from agent.conversation import Conversation
from agent.logs import CALL_VALUES
from agent.metrics import CALLS_BY_PHASE, EXTRACTION_RETRIES, INTAKES_TOTAL
from agent.redaction import values_of


def question_field(conversation: Conversation) -> str:
    """The record field of the question being asked (a bounded metric label)."""
    cursor = conversation.cursor
    questions = conversation.config.questions.get(cursor.phase, ())
    if 0 <= cursor.index < len(questions):
        return questions[cursor.index].key
    return cursor.phase.name.lower()


class CallObserver:
    """Follows one call's conversation for the logs and the metrics."""

    def __init__(self, call_id: str) -> None:
        self.call_id = call_id
        self._position: tuple[object, int, int] | None = None

    def update(self, conversation: Conversation) -> None:
        """Register new values, bind the phase, count a retry (see the module docstring)."""
        cursor = conversation.cursor
        CALL_VALUES.add(self.call_id, values_of(conversation.record))
        if cursor.pending is not None:
            CALL_VALUES.add(self.call_id, values_of(cursor.pending))
        structlog.contextvars.bind_contextvars(phase=cursor.phase.name)
        position = (cursor.phase, cursor.index, cursor.attempts)
        previous, self._position = self._position, position
        if previous is not None and previous[:2] == position[:2] and cursor.attempts > previous[2]:
            EXTRACTION_RETRIES.labels(question_field(conversation)).inc()


def end_of_intake(call_id: str, conversation: Conversation) -> None:
    """Count the ended intake by status and phase reached; forget its values."""
    record = conversation.record
    INTAKES_TOTAL.labels(record.status.value).inc()
    CALLS_BY_PHASE.labels(record.phase_reached).inc()
    CALL_VALUES.forget(call_id)
