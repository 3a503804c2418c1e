"""The one result shape every extractor returns.

An extractor never raises on what a caller says: it answers with an `Extraction` that carries
the typed value (or ``None``), a confidence in ``[0, 1]``, whether the agent should read the
value back before keeping it, and, when nothing usable was found, a `Failure` saying why. The
agent turns a failure into a re-prompt ("I didn't catch the ZIP code...") and a
``needs_confirmation`` into a read-back ("I have March third, nineteen eighty-four: is that
right?").
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Generic, TypeVar

from agent.errors import AgentError

T = TypeVar("T")
#: Results are read-only, so an ``Extraction[ZipInfo]`` is an ``Extraction[ZipInfo | date]``.
T_co = TypeVar("T_co", covariant=True)

#: Below this confidence a found value is read back before it is kept.
CONFIRM_BELOW = 0.9


class VocabularyError(AgentError, ValueError):
    """A vocabulary file (payers, symptoms, red flags) is not in the documented shape.

    Raised only when a catalog is loaded, never by an extractor.
    """


class Failure(Enum):
    """Why an extractor returned no value (or a value it doubts)."""

    NOT_FOUND = "not_found"  # nothing of the kind in the utterance
    AMBIGUOUS = "ambiguous"  # several readings fit equally well; see `alternatives`
    INVALID_FORMAT = "invalid_format"  # found, but not in a valid shape (a 7-digit phone)
    OUT_OF_RANGE = "out_of_range"  # well formed but implausible (a birth date in the future)
    INCOMPLETE = "incomplete"  # part of it only (a date without a day)
    MISMATCH = "mismatch"  # parts contradict each other (ZIP in another state)
    UNAVAILABLE = "unavailable"  # asked for something the agent does not have (caller ID)


@dataclass(frozen=True, slots=True)
class Extraction(Generic[T_co]):
    """What one extractor made of one utterance.

    Attributes:
        value: The typed value, or ``None`` when nothing usable was found.
        confidence: How sure the extractor is, from 0 (guess) to 1 (certain).
        needs_confirmation: The agent should read the value back before keeping it.
        failure: Why there is no value (or why it is doubtful), else ``None``.
        alternatives: Other readings, best first, when the utterance was ambiguous.
        detail: A short machine-readable note (never the caller's words: no PHI).
    """

    value: T_co | None
    confidence: float
    needs_confirmation: bool
    failure: Failure | None = None
    alternatives: tuple[T_co, ...] = ()
    detail: str = ""

    @property
    def ok(self) -> bool:
        """True when there is a value the agent can use (possibly after a read-back)."""
        return self.value is not None


def found(
    value: T,
    confidence: float,
    *,
    confirm: bool = False,
    failure: Failure | None = None,
    alternatives: tuple[T, ...] = (),
    detail: str = "",
) -> Extraction[T]:
    """Build a successful extraction; low confidence implies a read-back."""
    conf = min(1.0, max(0.0, confidence))
    return Extraction(
        value=value,
        confidence=conf,
        needs_confirmation=confirm or conf < CONFIRM_BELOW or failure is not None,
        failure=failure,
        alternatives=alternatives,
        detail=detail,
    )


def failed(
    failure: Failure, *, alternatives: tuple[T, ...] = (), detail: str = ""
) -> Extraction[T]:
    """Build a failed extraction (no value, zero confidence)."""
    return Extraction(
        value=None,
        confidence=0.0,
        needs_confirmation=False,
        failure=failure,
        alternatives=alternatives,
        detail=detail,
    )
