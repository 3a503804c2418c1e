"""Yes, no, and "no, it's ..." after a read-back.

Theory of operation
-------------------
After the agent reads a value back, the caller confirms ("yeah that's right"), denies ("no",
"that's wrong") or corrects in the same breath ("no it's march fourth", "actually it's
smith with a y"). `classify_confirmation` finds yes and no phrases leftmost-longest, so "that's
not right" is a no and never the yes inside it, and calls it a CORRECTION when a correction cue
("actually", "i meant", "it should be") or a "no"/"yes but" followed by new content is
present. The words after the cue come back as ``remainder`` for `corrections.parse_correction`.
A lone "1" or "2" is a keypad answer (press 1 for yes, 2 for no).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from agent.nlu.result import Extraction, Failure, failed, found
from agent.nlu.text import FILLERS, PhraseIndex, tokens


class Answer(Enum):
    """What a caller said to a read-back."""

    YES = "yes"
    NO = "no"
    CORRECTION = "correction"


@dataclass(frozen=True, slots=True)
class Confirmation:
    """A classified answer; ``remainder`` holds the corrected value's words, if any."""

    answer: Answer
    remainder: str = ""


_YES = (
    "yes",
    "yeah",
    "yea",
    "ya",
    "yep",
    "yup",
    "sure",
    "correct",
    "right",
    "that's right",
    "that is right",
    "that's correct",
    "that is correct",
    "exactly",
    "absolutely",
    "definitely",
    "affirmative",
    "uh huh",
    "mhm",
    "mm hmm",
    "okay",
    "ok",
    "okey dokey",
    "alright",
    "all right",
    "you got it",
    "sounds good",
    "sounds right",
    "perfect",
    "that's it",
    "it is",
    "true",
    "yes ma'am",
    "yes sir",
    "of course",
    "good",
    "great",
)
_NO = (
    "no",
    "nope",
    "nah",
    "negative",
    "wrong",
    "incorrect",
    "not right",
    "not correct",
    "not quite",
    "that's wrong",
    "that is wrong",
    "isn't right",
    "isn't correct",
    "i don't think so",
    "not really",
    "no way",
    "false",
    "that's not it",
    "not it",
    "mistake",
)
_CORRECTION_CUES = (
    "actually",
    "i meant",
    "i mean",
    "i said",
    "it should be",
    "should be",
    "it's supposed to be",
    "supposed to be",
    "let me correct",
    "change it to",
    "change that to",
    "instead",
    "but",
)
_UNSURE = ("i don't know", "not sure", "i'm not sure", "no idea", "i forget", "i forgot")

_INDEX: PhraseIndex[str] = PhraseIndex(
    [(p, "yes") for p in _YES]
    + [(p, "no") for p in _NO]
    + [(p, "cue") for p in _CORRECTION_CUES]
    + [(p, "unsure") for p in _UNSURE]
)

#: Words that may follow a yes or no without making it a correction ("no that's wrong").
_GLUE = frozenset({"that's", "that", "is", "it", "it's", "please", "sorry", "oh", "well", "so"})


def classify_confirmation(text: str) -> Extraction[Confirmation]:
    """Classify the answer to a read-back: YES, NO, or CORRECTION with the new words.

    Args:
        text: The caller's utterance.

    Returns:
        The answer; AMBIGUOUS when yes and no are both said without a correction,
        NOT_FOUND (detail "unsure" for "i don't know") when neither is.
    """
    toks = tokens(text)
    if toks in (("1",), ("2",)):
        return found(Confirmation(Answer.YES if toks == ("1",) else Answer.NO), 0.95)
    matches = _INDEX.scan(toks)
    labels = [m.label for m in matches]
    covered = {i for m in matches for i in range(m.start, m.end)}
    extra = [
        t for i, t in enumerate(toks) if i not in covered and t not in _GLUE and t not in FILLERS
    ]
    if "cue" in labels:
        cue = next(m for m in matches if m.label == "cue")
        remainder = " ".join(t for t in toks[cue.end :] if t not in FILLERS)
        if any(t not in _GLUE and t not in FILLERS for t in toks[cue.end :]):
            return found(Confirmation(Answer.CORRECTION, remainder), 0.9)
    if "no" in labels and extra:
        last_no = max(m.end for m in matches if m.label == "no")
        rest = " ".join(t for t in toks[last_no:] if t not in FILLERS)
        return found(Confirmation(Answer.CORRECTION, rest), 0.85)
    has_yes, has_no = "yes" in labels, "no" in labels
    if has_yes and has_no:
        return failed(
            Failure.AMBIGUOUS, alternatives=(Confirmation(Answer.YES), Confirmation(Answer.NO))
        )
    if has_yes or has_no:
        answer = Answer.YES if has_yes else Answer.NO
        return found(Confirmation(answer), 0.97 if not extra else 0.9)
    if "unsure" in labels:
        return failed(Failure.NOT_FOUND, detail="unsure")
    return failed(Failure.NOT_FOUND)
