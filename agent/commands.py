"""What a conversation asks the runtime to do: frozen commands from `Conversation.handle`.

The conversation never performs I/O; the runtime carries these out in order (speak, listen,
book a slot, save the record, transfer, hang up) and feeds the outcomes back as events.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from agent.record import IntakeRecord


class Expect(Enum):
    """What kind of answer the next caller turn should hold (drives STT grammars)."""

    FREE_SPEECH = "free_speech"
    YES_NO = "yes_no"
    DIGITS = "digits"
    PAYER = "payer"
    DATE = "date"
    NAME = "name"
    SPELLING = "spelling"
    ADDRESS = "address"  # a street address: house number, street name, suffix
    CHOICE = "choice"
    SYMPTOMS = "symptoms"
    DURATION = "duration"
    PHARMACY = "pharmacy"
    RELATIONSHIP = "relationship"


@dataclass(frozen=True, slots=True)
class Expectation:
    """Hints for recognising the next answer.

    Attributes:
        kind: the answer's shape.
        vocabulary: words or phrases to favour (payer names, slot labels, symptoms...).
        places: for PHARMACY, street and place names its location may name.
        min_digits/max_digits: for DIGITS, the expected length.
        keep_audio: store the caller's own audio of this answer with the record.
    """

    kind: Expect
    vocabulary: tuple[str, ...] = ()
    min_digits: int = 0
    max_digits: int = 0
    keep_audio: bool = False
    places: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class KeypadEntry:
    """Collect keypad digits for this answer: up to ``max_digits``, ``#`` ends early."""

    max_digits: int
    min_digits: int = 1


@dataclass(frozen=True, slots=True)
class Speak:
    """Say ``text``. ``barge_in``: the caller may interrupt it."""

    text: str
    barge_in: bool = True


@dataclass(frozen=True, slots=True)
class Listen:
    """Recognise the caller's next turn with these hints (and the keypad, when given)."""

    expectation: Expectation
    keypad: KeypadEntry | None = None


@dataclass(frozen=True, slots=True)
class StopSpeaking:
    """Cut our current prompt (barge-in handling when the runtime has not already)."""


@dataclass(frozen=True, slots=True)
class BookSlot:
    """Book ``slot_id`` atomically; answer with `SlotBooked` or `SlotUnavailable`."""

    slot_id: str


@dataclass(frozen=True, slots=True)
class SaveRecord:
    """Write the record durably now (phase changes and the end of the call)."""

    record: IntakeRecord = field(compare=False)


@dataclass(frozen=True, slots=True)
class Transfer:
    """Hand the call to staff (SIP REFER to ``target``) after what is being said."""

    target: str


@dataclass(frozen=True, slots=True)
class Hangup:
    """End the call (BYE) once everything queued has been said."""

    reason: str


Command = Speak | Listen | StopSpeaking | BookSlot | SaveRecord | Transfer | Hangup
