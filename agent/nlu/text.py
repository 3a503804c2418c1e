"""Tokens and phrase matching for ASR-style text.

Speech recognisers hand us lowercase words without punctuation ("um my zip is oh two one three
nine"), sometimes with digits ("617 555 0123") or a DTMF string. Every extractor starts from
`tokens`, which lowercases, keeps in-word apostrophes ("o'brien", "can't"), restores the
apostrophe recognisers drop from common contractions ("cant" -> "can't"), splits letters from
digits ("abc123" -> "abc", "123") and keeps ordinal suffixes on numerals ("3rd").

`PhraseIndex` finds known multi-word phrases (payer aliases, symptoms, intents) leftmost-longest
without overlaps; `negated` is a small NegEx-style scope test ("no chest pain", "i don't have a
fever") used wherever a phrase can be denied.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

L = TypeVar("L")

_TOKEN = re.compile(r"[0-9]+(?:st|nd|rd|th)?|[^\W\d_]+(?:'[^\W\d_]+)*")

#: Hesitations a recogniser writes out; never meaningful for intake.
FILLERS = frozenset({"um", "umm", "uh", "uhh", "uhm", "er", "erm", "ah", "ahh", "hmm", "hm"})

_CONTRACTIONS: Mapping[str, str] = {
    "cant": "can't",
    "dont": "don't",
    "doesnt": "doesn't",
    "didnt": "didn't",
    "isnt": "isn't",
    "wasnt": "wasn't",
    "arent": "aren't",
    "havent": "haven't",
    "hasnt": "hasn't",
    "wont": "won't",
    "couldnt": "couldn't",
    "shouldnt": "shouldn't",
    "wouldnt": "wouldn't",
    "im": "i'm",
    "ive": "i've",
    "thats": "that's",
    "whats": "what's",
    "theyre": "they're",
    "youre": "you're",
    "hes": "he's",
    "shes": "she's",
}

#: Words that deny what follows them (NegEx pre-negation triggers, trimmed for speech).
NEGATIONS = frozenset(
    {
        "no",
        "not",
        "never",
        "without",
        "denies",
        "deny",
        "none",
        "nor",
        "neither",
        "don't",
        "doesn't",
        "didn't",
        "isn't",
        "wasn't",
        "aren't",
        "haven't",
        "hasn't",
        "nothing",
    }
)

#: Words that end a negation's scope ("no fever but my chest hurts").
SCOPE_ENDS = frozenset(
    {"but", "however", "although", "though", "except", "yet", "and", "now", "just", "only"}
)

#: How many tokens a negation reaches forward (NegEx uses five; speech is wordier, and
#: "i don't really have any chest pain" puts four words between the cue and the phrase).
NEGATION_WINDOW = 5


def tokens(text: str) -> tuple[str, ...]:
    """Split an utterance into normalised lowercase tokens.

    Args:
        text: Raw recogniser output (any string; never raises).

    Returns:
        The tokens, with fillers kept (callers drop them where they get in the way).
    """
    lowered = text.lower().replace("\u2019", "'").replace("`", "'")
    out: list[str] = []
    for tok in _TOKEN.findall(lowered):
        out.append(_CONTRACTIONS.get(tok, tok))
    return tuple(out)


def content(toks: Iterable[str]) -> tuple[str, ...]:
    """Drop hesitation fillers."""
    return tuple(t for t in toks if t not in FILLERS)


def negated(toks: Sequence[str], start: int, window: int = NEGATION_WINDOW) -> bool:
    """Tell whether the phrase starting at ``toks[start]`` is denied.

    A negation cue within ``window`` tokens before the phrase denies it, unless a scope end
    ("but", "and") sits between them: "no fever but chest pain" denies only the fever.
    """
    for i in range(start - 1, max(-1, start - 1 - window), -1):
        if toks[i] in SCOPE_ENDS:
            return False
        if toks[i] in NEGATIONS:
            return True
    return False


@dataclass(frozen=True, slots=True)
class PhraseMatch(Generic[L]):
    """One phrase found in a token sequence: ``toks[start:end]`` is the phrase."""

    start: int
    end: int
    label: L


class PhraseIndex(Generic[L]):
    """Leftmost-longest, non-overlapping search for many multi-word phrases at once."""

    __slots__ = ("_by_first", "_max_len")

    def __init__(self, phrases: Iterable[tuple[str, L]]) -> None:
        """Index phrases (plain text; tokenised with `tokens`) with their labels."""
        by_first: dict[str, list[tuple[tuple[str, ...], L]]] = {}
        max_len = 0
        for phrase, label in phrases:
            key = tokens(phrase)
            if not key:
                continue
            by_first.setdefault(key[0], []).append((key, label))
            max_len = max(max_len, len(key))
        for entries in by_first.values():
            entries.sort(key=lambda e: -len(e[0]))
        self._by_first = by_first
        self._max_len = max_len

    def scan(self, toks: Sequence[str]) -> list[PhraseMatch[L]]:
        """Find every indexed phrase in ``toks``, longest first at each position."""
        found: list[PhraseMatch[L]] = []
        i = 0
        n = len(toks)
        while i < n:
            for key, label in self._by_first.get(toks[i], ()):
                if tuple(toks[i : i + len(key)]) == key:
                    found.append(PhraseMatch(i, i + len(key), label))
                    i += len(key)
                    break
            else:
                i += 1
        return found


def title_name(word: str) -> str:
    """Capitalise a name the way it is written: "o'brien" -> "O'Brien", "lee-ann" -> "Lee-Ann"."""
    return re.sub(r"(^|['\- ])([^\W\d_])", lambda m: m.group(1) + m.group(2).upper(), word.lower())


def fold_plurals(toks: Sequence[str], vocabulary: frozenset[str]) -> tuple[str, ...]:
    """Map "headaches" to "headache" and "rashes" to "rash" when only the singular is known."""
    out: list[str] = []
    for tok in toks:
        if tok not in vocabulary and tok.endswith("s"):
            if tok[:-1] in vocabulary:
                tok = tok[:-1]
            elif tok.endswith("es") and tok[:-2] in vocabulary:
                tok = tok[:-2]
        out.append(tok)
    return tuple(out)
