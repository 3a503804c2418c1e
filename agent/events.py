"""What happens to a conversation: frozen events fed to `Conversation.handle`.

Control events (`BargeIn`, `DtmfDigit`, `CallEnded`) are handled before queued data in the
runtime, the way pipecat's SystemFrame outranks data frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class CallStarted:
    """The call is answered and media flows. ``caller_id`` is the From user part (PHI)."""

    caller_id: str | None
    wall_time: datetime


@dataclass(frozen=True, slots=True)
class CallerSpeaking:
    """The endpointer confirmed the caller started talking (holds off silence timeouts)."""


@dataclass(frozen=True, slots=True)
class Proposal:
    """A language model's reading of the caller's answer, for the rules to check.

    ``key`` names what it answers (a question key such as ``"insurance.member_id"``, or
    ``"confirm"``, ``"summary"``, ``"scheduling.slot"``, ``"intent"``; `agent.proposals`);
    ``text`` is the value in the canonical words the rule-based extractor for that key reads.
    The conversation uses it only where ``key`` is what it is asking and the rule accepts it.
    """

    key: str
    text: str


@dataclass(frozen=True, slots=True)
class Transcript:
    """The caller's answer, final. ``clip`` names the stored audio of it, if kept.

    ``proposal``: what a language model made of it, when one was asked (`Proposal`).
    """

    text: str
    confidence: float
    clip: str | None = None
    proposal: Proposal | None = None


@dataclass(frozen=True, slots=True)
class BargeIn:
    """The caller talked over our prompt; playout has already stopped."""


@dataclass(frozen=True, slots=True)
class DtmfDigit:
    """One keypad press."""

    digit: str


@dataclass(frozen=True, slots=True)
class PlayoutDone:
    """Everything we said has been played."""


@dataclass(frozen=True, slots=True)
class SlotBooked:
    """The state store booked the slot the caller chose."""

    slot_id: str


@dataclass(frozen=True, slots=True)
class SlotUnavailable:
    """Someone else took the slot first."""

    slot_id: str


@dataclass(frozen=True, slots=True)
class SlotTaken:
    """Another caller booked this slot: do not offer it (the offers were made at call start)."""

    slot_id: str


@dataclass(frozen=True, slots=True)
class TransferResult:
    """The outcome of a transfer (REFER) we asked for."""

    accepted: bool


@dataclass(frozen=True, slots=True)
class CallEnded:
    """The caller hung up, or the call failed."""


Event = (
    CallStarted
    | CallerSpeaking
    | Transcript
    | BargeIn
    | DtmfDigit
    | SlotTaken
    | PlayoutDone
    | SlotBooked
    | SlotUnavailable
    | TransferResult
    | CallEnded
)
