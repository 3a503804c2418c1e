"""One question of the intake: how to ask it, recognise the answer, check it and store it.

Each phase module (`agent.phase_rules.*`) is a tuple of `Question`s. The `Conversation`
asks them in order, the way a good IVR does: closed questions carry recognition hints, a
value read back for confirmation when the recogniser was unsure (or always, for identifiers),
the keypad offered early for long digit strings, and a bounded number of attempts before the
field is left for staff and the intake moves on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from agent.commands import Expectation, KeypadEntry
from agent.nlu.result import Extraction
from agent.record import IntakeRecord


@dataclass(frozen=True, slots=True)
class Slot:
    """An open appointment slot from the clinic calendar."""

    slot_id: str
    start: datetime
    provider: str


@dataclass(frozen=True, slots=True)
class Context:
    """What extractors and prompts may look at (never the clock: times are passed in)."""

    today: date
    now: datetime
    caller_id: str | None
    record: IntakeRecord
    open_slots: tuple[Slot, ...] = ()
    keypad: bool = False  # the answer came from the keypad


Prompt = str | Callable[[Context], str]


@dataclass(frozen=True, slots=True)
class Question:
    """One thing to ask.

    Attributes:
        key: the record field it fills, dotted (``"insurance.payer"``); a metric label.
        prompt: what to say (or a function of the context).
        expectation: recognition hints for the answer.
        extract: answer text -> `Extraction`.
        apply: the record with the value stored.
        confirm: read-back text for a value, followed by "is that right?"; None: no read-back.
        always_confirm: read back even when the recogniser was sure (identifiers).
        keypad: keypad entry accepted for this answer.
        keypad_first: mention the keypad in the first prompt (long digit strings).
        reprompt: said after an answer that could not be used.
        help: said when the caller asks for help.
        skip_if: leave the question out for this caller (a member ID for self-pay).
        max_attempts: tries before the field is left empty for staff.
    """

    key: str
    prompt: Prompt
    expectation: Expectation
    extract: Callable[[str, Context], Extraction[Any]]
    apply: Callable[[IntakeRecord, Any], IntakeRecord]
    confirm: Callable[[Any], str] | None = None
    always_confirm: bool = False
    keypad: KeypadEntry | None = None
    keypad_first: bool = False
    reprompt: str = "Sorry, I didn't catch that."
    help: str = "Please answer in a few words, or say representative to talk to a person."
    skip_if: Callable[[Context], bool] | None = None
    max_attempts: int = 3
    tags: frozenset[str] = field(default_factory=frozenset)

    def text(self, ctx: Context) -> str:
        """The prompt for this caller."""
        return self.prompt(ctx) if callable(self.prompt) else self.prompt

    def needs_confirmation(self, extraction: Extraction[Any]) -> bool:
        """Whether to read the value back before storing it."""
        if self.confirm is None:
            return False
        return self.always_confirm or extraction.needs_confirmation
