"""What the agent asks of a speech or language vendor: `typing.Protocol`s and their values.

Theory of operation
-------------------
A provider is a thin asyncio shell around a vendor (pocketsphinx in a worker thread, a cloud
WebSocket): one module per vendor, each satisfying a Protocol here structurally, with no base
class to inherit. Retries, metrics and logging are wrappers composed around a provider.

Speech to text is streamed one caller turn at a time::

    async with stt.start(RecognitionHints.digits(10, 10)) as stream:
        for frame in frames:                  # 20 ms of 8 kHz int16 PCM as it arrives
            await stream.feed(frame)
        transcript = await stream.finish()    # after the endpointer's SpeechEnded

``start`` returns an async context manager so a stream abandoned mid-turn (barge-in, hang-up,
a cancelled task) always gives its recogniser back: leaving the block without ``finish`` aborts
the turn. ``interim()`` yields partial transcripts (``is_final=False``) while audio is fed and
ends once the final one has been produced, which is how a cloud recogniser with interim results
and finality events (Deepgram's ``is_final``) fits the same shape; the runtime, which alone
creates tasks, may read it from a task of its own or ignore it.

`RecognitionHints` say what the next answer should look like. An embedded recogniser compiles
them to a grammar and can hear nothing else; a cloud recogniser may use ``phrases`` as keyword
boosts and ignore the rest. Either way the result carries a ``confidence`` in [0, 1], because a
grammar never rejects: it returns the closest thing it knows, and the dialogue decides whether
to accept, confirm or ask again.

Speech synthesis streams 8 kHz int16 PCM chunks so playout can start before synthesis ends.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "Alternative",
    "ChatMessage",
    "HintKind",
    "LanguageModel",
    "PHRASE_KINDS",
    "RecognitionHints",
    "RecognitionStream",
    "SpeechToText",
    "TextToSpeech",
    "Transcript",
]


class HintKind(Enum):
    """The shape of the answer the caller is expected to give."""

    FREE_SPEECH = "free_speech"  # anything: a chief complaint (``phrases``: words to favour)
    YES_NO = "yes_no"
    DIGITS = "digits"  # digit by digit: phone numbers, ZIP codes (length range)
    NUMBER = "number"  # a cardinal: "one hundred twenty", "three"
    DATE = "date"  # a calendar date, usually of birth: "march third nineteen eighty four"
    NAME_SPELLING = "name_spelling"  # letter by letter: "s m i t h"
    ALPHANUMERIC = "alphanumeric"  # letters and digits: member IDs (length range)
    PAYER_NAMES = "payer_names"  # one of ``phrases``: insurance plans
    CHOICE = "choice"  # one of ``phrases``: appointment slots, menu items
    SYMPTOMS = "symptoms"  # one to three of ``phrases`` (symptom words), "i have a X and a Y"
    DURATION = "duration"  # "three days", "about a week", "since yesterday"
    STREET = "street"  # house number, one of ``phrases`` (street names), a suffix
    PHARMACY = "pharmacy"  # one of ``phrases`` (chains), optionally "on" one of ``places``
    RELATIONSHIP = "relationship"  # "my" and one of ``phrases``: wife, brother, neighbor


#: Kinds whose answer is made of caller-specific phrases (a vocabulary passed in the hints).
PHRASE_KINDS = frozenset(
    {
        HintKind.PAYER_NAMES,
        HintKind.CHOICE,
        HintKind.SYMPTOMS,
        HintKind.STREET,
        HintKind.PHARMACY,
        HintKind.RELATIONSHIP,
    }
)


@dataclass(frozen=True, slots=True)
class RecognitionHints:
    """What the next caller turn should hold.

    Attributes:
        kind: the answer's shape.
        phrases: the phrases a PAYER_NAMES, CHOICE, SYMPTOMS, STREET, PHARMACY or
            RELATIONSHIP answer is made of (lowercase words; a recogniser maps or drops
            words it cannot pronounce). For FREE_SPEECH, words to favour: a cloud
            recogniser's keyword boosts; the embedded one ignores them (pocketsphinx keyword
            spotting found 2 of 16 keywords in 8 kHz speech here).
        places: for PHARMACY, the street and place names its location may name.
        min_length: for DIGITS and ALPHANUMERIC, the fewest symbols (digits or letters).
        max_length: for DIGITS and ALPHANUMERIC, the most symbols.
    """

    kind: HintKind
    phrases: tuple[str, ...] = ()
    min_length: int = 1
    max_length: int = 1
    places: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not 1 <= self.min_length <= self.max_length:
            low, high = self.min_length, self.max_length
            raise ValueError(f"length range must satisfy 1 <= min <= max, got {low}..{high}")
        needs_phrases = self.kind in PHRASE_KINDS
        if needs_phrases and not self.phrases:
            raise ValueError(f"{self.kind.name} hints need at least one phrase")

    @classmethod
    def free_speech(cls, favour: Sequence[str] = ()) -> RecognitionHints:
        """Open vocabulary, optionally favouring some words (where the recogniser can)."""
        return cls(HintKind.FREE_SPEECH, phrases=tuple(favour))

    @classmethod
    def yes_no(cls) -> RecognitionHints:
        """A yes or a no, in any of their common forms."""
        return cls(HintKind.YES_NO)

    @classmethod
    def digits(cls, min_length: int, max_length: int) -> RecognitionHints:
        """Between ``min_length`` and ``max_length`` digits, said one by one."""
        return cls(HintKind.DIGITS, min_length=min_length, max_length=max_length)

    @classmethod
    def alphanumeric(cls, min_length: int, max_length: int) -> RecognitionHints:
        """Between ``min_length`` and ``max_length`` letters and digits, said one by one."""
        return cls(HintKind.ALPHANUMERIC, min_length=min_length, max_length=max_length)

    @classmethod
    def one_of(
        cls, kind: HintKind, phrases: Sequence[str], places: Sequence[str] = ()
    ) -> RecognitionHints:
        """An answer built from ``phrases`` (a kind of `PHRASE_KINDS`)."""
        return cls(kind, phrases=tuple(phrases), places=tuple(places))

    @classmethod
    def of(cls, kind: HintKind) -> RecognitionHints:
        """Hints that need no parameters (DATE, NUMBER, NAME_SPELLING, ...)."""
        return cls(kind)


@dataclass(frozen=True, slots=True)
class Alternative:
    """A less likely reading of the same audio."""

    text: str
    confidence: float


@dataclass(frozen=True, slots=True)
class Transcript:
    """What the recogniser heard.

    Attributes:
        text: lowercase words, no punctuation; "" when nothing was recognised.
        confidence: how likely ``text`` is what was said, in [0, 1].
        is_final: False for an interim result that may still change.
        alternatives: other readings, most likely first (may be empty).
        audio_s: seconds of caller audio the result covers.
    """

    text: str
    confidence: float
    is_final: bool
    alternatives: tuple[Alternative, ...] = ()
    audio_s: float = 0.0


class RecognitionStream(Protocol):
    """One caller turn being recognised."""

    async def feed(self, pcm8k: NDArray[np.int16]) -> None:
        """Add the next block of the turn's audio: 8 kHz int16 mono, any length."""
        ...

    def interim(self) -> AsyncIterator[Transcript]:
        """Partial transcripts while audio is fed; ends after the final one is produced."""
        ...

    async def finish(self) -> Transcript:
        """End the turn and return the final transcript (``is_final=True``)."""
        ...


class SpeechToText(Protocol):
    """A streaming speech recogniser."""

    def start(self, hints: RecognitionHints) -> AbstractAsyncContextManager[RecognitionStream]:
        """Open a stream for one turn; leaving the block without ``finish`` aborts it."""
        ...

    async def aclose(self) -> None:
        """Release the recogniser's resources (threads, connections)."""
        ...


class TextToSpeech(Protocol):
    """A streaming speech synthesiser."""

    def synthesize(self, text: str) -> AsyncIterator[NDArray[np.int16]]:
        """Speak ``text`` as 8 kHz int16 mono PCM chunks, the first as soon as it is ready."""
        ...

    async def aclose(self) -> None:
        """Release the synthesiser's resources."""
        ...


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One turn of a chat-completion prompt (``role`` is "system", "user" or "assistant")."""

    role: str
    content: str


class LanguageModel(Protocol):
    """A streaming chat-completion model (placeholder for the LLM-backed phases)."""

    def complete(self, messages: Sequence[ChatMessage]) -> AsyncIterator[str]:
        """Stream the reply to ``messages`` as text fragments."""
        ...

    async def aclose(self) -> None:
        """Release the model client's resources."""
        ...
