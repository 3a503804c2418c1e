"""Amending the record from the summary: "which part is wrong?", then that part's questions.

Theory of operation
-------------------
During SUMMARY a caller may correct a field in their own words ("actually my ZIP is 0 2 1 4
2"): `nlu.apply_correction` reads that when the recogniser transcribed it, which a cloud
recogniser does. The embedded one listens to the summary with a yes/no grammar and cannot
transcribe a correction, so a "no" gets the question an IVR asks: which part should change?
The answer is one of `FIELD_LABELS` (a closed grammar), and the agent asks that part's own
questions again, with their own grammars, keypad entry and read-backs, then reads the
summary back once more.

While amending, the cursor stands on the question being asked again (in its own phase) and
``scratch["amend"]`` holds the keys still to ask; the phase reached is not moved back.
`after_answer` decides what follows each kept (or abandoned) answer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from agent.commands import Command, Expect, Expectation, Listen
from agent.phases import Phase

if TYPE_CHECKING:
    from agent.conversation import Conversation

__all__ = ["FIELD_LABELS", "after_answer", "amending", "ask_which_part", "on_which_part"]

#: What a caller calls a part of the record -> the questions that fill it, in order.
FIELD_LABELS: Final[dict[str, tuple[str, ...]]] = {
    "name": ("demographics.first_name", "demographics.last_name"),
    "first name": ("demographics.first_name",),
    "last name": ("demographics.last_name",),
    "date of birth": ("demographics.date_of_birth",),
    "birthday": ("demographics.date_of_birth",),
    "phone": ("demographics.phone",),
    "phone number": ("demographics.phone",),
    "insurance": ("insurance.payer", "insurance.member_id"),
    "member id": ("insurance.member_id",),
    "reason for visit": ("complaint.description",),
    "symptoms": ("complaint.description",),
    "address": ("address.street", "address.zip_code"),
    "street": ("address.street",),
    "zip code": ("address.zip_code",),
    "pharmacy": ("pharmacy",),
    "emergency contact": (
        "emergency_contact.relationship",
        "emergency_contact.name",
        "emergency_contact.phone",
    ),
}
WHICH_PART: Final = (
    "Which part should I change? Say name, date of birth, phone, insurance, reason for "
    "visit, address, ZIP code, pharmacy, or emergency contact."
)
_LISTEN: Final = Listen(Expectation(Expect.CHOICE, vocabulary=tuple(FIELD_LABELS)))
_MAX_WHICH_ATTEMPTS: Final = 2


def amending(conv: Conversation) -> bool:
    """Whether the agent is asking questions again to amend the record."""
    return "amend" in conv.cursor.scratch


def ask_which_part(conv: Conversation, now: float, prefix: str = "") -> list[Command]:
    """Ask which part of the summary is wrong."""
    from agent.conversation import Mode

    conv.cursor.mode, conv.cursor.special = Mode.SPECIAL, "amend_which"
    text = f"{prefix} {WHICH_PART}".strip()
    return conv.say(now, text, _LISTEN, repeat=WHICH_PART)


def on_which_part(conv: Conversation, text: str, now: float) -> list[Command]:
    """The caller named a part: ask its questions again (or read the summary again)."""
    from agent import dialogue

    keys = _keys_named(text)
    if keys is None:
        conv.cursor.attempts += 1
        if conv.cursor.attempts >= _MAX_WHICH_ATTEMPTS:
            conv.cursor.attempts = 0
            return dialogue.read_back(conv, now, prefix="Let's go over it again.")
        return ask_which_part(conv, now, prefix="Sorry.")
    conv.cursor.attempts = 0
    conv.cursor.scratch["amend"] = list(keys)
    return _ask_next(conv, now, prefix="Okay.")


def after_answer(conv: Conversation, now: float, prefix: str = "") -> list[Command]:
    """The question being asked again was answered (or given up): the next, or the summary."""
    pending: list[str] = conv.cursor.scratch.get("amend", [])
    if pending:
        pending.pop(0)
    return _ask_next(conv, now, prefix)


def _ask_next(conv: Conversation, now: float, prefix: str) -> list[Command]:
    from agent import dialogue

    pending: list[str] = conv.cursor.scratch.get("amend", [])
    cursor = conv.cursor
    while pending:
        place = _find(conv, pending[0])
        if place is None:  # a question this clinic does not ask
            pending.pop(0)
            continue
        cursor.phase, cursor.index = place
        cursor.attempts = 0
        return dialogue.ask(conv, now, prefix=prefix, again=True)
    cursor.scratch.pop("amend", None)
    cursor.phase, cursor.index, cursor.attempts = Phase.SUMMARY, 0, 0
    return dialogue.read_back(conv, now, prefix=" ".join(p for p in (prefix, "Thanks.") if p))


def _find(conv: Conversation, key: str) -> tuple[Phase, int] | None:
    for phase, questions in conv.config.questions.items():
        for index, question in enumerate(questions):
            if question.key == key:
                return phase, index
    return None


def _keys_named(text: str) -> tuple[str, ...] | None:
    """The questions of the longest field label in ``text``."""
    said = f" {' '.join(text.lower().split())} "
    named = [label for label in FIELD_LABELS if f" {label} " in said]
    if not named:
        return None
    return FIELD_LABELS[max(named, key=len)]
