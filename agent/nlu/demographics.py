"""Who the patient is: name, date of birth, phone.

Theory of operation
-------------------
Names. A recogniser spells unusual names wrong, so callers spell them: letter by letter
("s m y t h"), with examples ("s as in sam"), or in NATO words. `spelling.spelled_runs` finds
those runs; a run right after a spoken word that it plausibly spells (same first letter, or
rapidfuzz ratio >= `SPELLING_MATCH`) replaces that word, otherwise it is a name word itself.
"Apostrophe", "hyphen" and "dash" between runs join them ("o apostrophe b r i e n").
Lead-ins ("my name is", "this is", "it's") are dropped; "first name ..." and "last name ..."
label the words that follow. Without labels, two words are first and last, three are first,
middle and last unless the middle one is a surname particle ("maria de la cruz").
A spelled name is taken as written; a name only spoken is read back.

Dates of birth are `dates.extract_date_of_birth` (``today`` passed in, never read from the
clock); phones are `phone.extract_phone`. Both are re-exported here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from rapidfuzz import fuzz

from agent.nlu.dates import extract_date_of_birth
from agent.nlu.numbers import NUMBER_WORDS
from agent.nlu.phone import PhoneNumber, extract_phone, wants_caller_id
from agent.nlu.result import Extraction, Failure, failed, found
from agent.nlu.spelling import SpelledRun, spelled_runs
from agent.nlu.text import content, title_name, tokens

__all__ = [
    "NamePart",
    "PersonName",
    "PhoneNumber",
    "extract_date_of_birth",
    "extract_name",
    "extract_phone",
    "extract_spelling",
    "wants_caller_id",
]

SPELLING_MATCH = 60


class NamePart(Enum):
    """Which part of the name the agent asked for."""

    FULL = "full"
    FIRST = "first"
    LAST = "last"


@dataclass(frozen=True, slots=True)
class PersonName:
    """A person's name as it should be written."""

    first: str | None
    last: str | None
    middle: str | None = None

    @property
    def full(self) -> str:
        """First, middle and last, joined."""
        return " ".join(p for p in (self.first, self.middle, self.last) if p)


_STOP = frozenset(
    {"my", "name", "name's", "names", "is", "it's", "its", "it", "i'm", "im", "am", "this"}
    | {"the", "and", "spelled", "spelt", "spell", "that's", "yes", "yeah", "sure", "okay"}
    | {"ok", "well", "hi", "hello", "speaking", "patient", "patient's", "of", "called", "call"}
    | {"me", "i", "a", "an", "with", "that", "so", "like", "uh", "um", "you", "can", "just"}
    | {"first", "last", "middle", "surname", "family", "given", "full", "here", "oh", "sorry"}
    | {"actually", "no", "not", "mean", "meant", "should", "be", "was", "wrong", "correct"}
    | {"letter", "letters", "by", "as", "in", "for", "please", "thank", "thanks", "go", "ahead"}
    | NUMBER_WORDS
)
_PARTICLES = frozenset({"de", "del", "della", "la", "le", "van", "von", "der", "den", "da", "di"})
_PARTICLES |= frozenset({"st", "saint", "bin", "ibn", "al", "el", "du", "dos", "das", "ter"})
_JOINERS = {"apostrophe": "'", "hyphen": "-", "dash": "-"}
_LABELS = {
    ("first", "name"): NamePart.FIRST,
    ("given", "name"): NamePart.FIRST,
    ("last", "name"): NamePart.LAST,
    ("surname",): NamePart.LAST,
    ("family", "name"): NamePart.LAST,
}


def _cap(word: str) -> str:
    name = title_name(word)
    if name.startswith("Mc") and len(name) > 3:
        name = "Mc" + name[2:].capitalize()
    return name


def _merged_runs(toks: Sequence[str]) -> list[SpelledRun]:
    runs = spelled_runs(toks, min_len=1)
    merged: list[SpelledRun] = []
    for run in runs:
        prev = merged[-1] if merged else None
        if prev is not None and run.start == prev.end + 1 and toks[prev.end] in _JOINERS:
            letters = prev.letters + _JOINERS[toks[prev.end]] + run.letters
            merged[-1] = SpelledRun(prev.start, run.end, letters, prev.corrected or run.corrected)
        else:
            merged.append(run)
    # A lone letter is a word ("a", "i"), not spelling, unless joined to a run ("o'brien").
    return [r for r in merged if len(r.letters.replace("'", "").replace("-", "")) > 1]


@dataclass(frozen=True, slots=True)
class _Word:
    text: str
    spelled: bool
    label: NamePart | None


def _words(toks: Sequence[str]) -> list[_Word]:
    """Name words in order, spelled runs folded in, each with its "first/last name" label."""
    runs = {r.start: r for r in _merged_runs(toks)}
    out: list[_Word] = []
    label: NamePart | None = None
    i = 0
    while i < len(toks):
        for key, part in _LABELS.items():
            if tuple(toks[i : i + len(key)]) == key:
                label = part
                i += len(key)
                break
        else:
            run = runs.get(i)
            if run is not None:
                _fold_run(out, run.letters, label)
                i = run.end
                continue
            tok = toks[i]
            joined = i > 0 and toks[i - 1] in _JOINERS and out and not out[-1].spelled
            if tok not in _STOP and tok.isalpha() or "'" in tok and tok not in _STOP:
                if joined:  # "lee hyphen ann" -> "lee-ann"
                    out[-1] = _Word(out[-1].text + _JOINERS[toks[i - 1]] + tok, False, label)
                elif tok not in _JOINERS:
                    out.append(_Word(tok, False, label))
            i += 1
    return out


def _fold_run(out: list[_Word], letters: str, label: NamePart | None) -> None:
    """Put a spelled run in place of the spoken word(s) it spells, or add it as a word."""
    prev = out[-2:]
    if len(prev) == 2 and not any(w.spelled for w in prev) and len(letters) > 2:
        # "john smith, j o h n s m i t h" spells both spoken words at once: split the letters
        # where the two halves best match the two words.
        joined = prev[0].text + prev[1].text
        if fuzz.ratio(joined, letters) >= 75:
            cut = max(
                range(1, len(letters)),
                key=lambda c: (
                    fuzz.ratio(prev[0].text, letters[:c]) + fuzz.ratio(prev[1].text, letters[c:])
                ),
            )
            out[-2] = _Word(letters[:cut], True, prev[0].label)
            out[-1] = _Word(letters[cut:], True, prev[1].label)
            return
    last = out[-1] if out else None
    if last is not None and not last.spelled and _spells(letters, last.text):
        out[-1] = _Word(letters, True, last.label)
    else:
        out.append(_Word(letters, True, label))


def _spells(letters: str, word: str) -> bool:
    plain = letters.replace("'", "").replace("-", "")
    target = word.replace("'", "").replace("-", "")
    return plain[:1] == target[:1] or fuzz.ratio(plain, target) >= SPELLING_MATCH


def extract_name(text: str, part: NamePart = NamePart.FULL) -> Extraction[PersonName]:
    """Read a name ("my name is jane doe", "last name s m y t h", "d o e").

    Args:
        text: The caller's utterance.
        part: What the agent asked for; a single word answers that part.

    Returns:
        The name; INCOMPLETE when a full name was asked and only one word came back.
    """
    words = _words(content(tokens(text)))
    if not words:
        return failed(Failure.NOT_FOUND)
    first = [w for w in words if w.label is NamePart.FIRST]
    last = [w for w in words if w.label is NamePart.LAST]
    free = [w for w in words if w.label is None]
    spelled = any(w.spelled for w in words)
    conf = 0.95 if spelled else 0.75
    if first or last:
        first = first or (free[:1] if not last or free and last else [])
        name = PersonName(
            first=_join(first[:1]) if first else None,
            last=_join(last) if last else None,
        )
        if part is NamePart.FULL and (name.first is None or name.last is None):
            return found(name, conf - 0.1, failure=Failure.INCOMPLETE)
        return found(name, conf)
    if part is not NamePart.FULL:
        chosen = _join(free)
        name = PersonName(chosen, None) if part is NamePart.FIRST else PersonName(None, chosen)
        return found(name, conf if len(free) <= 2 else conf - 0.2)
    if len(free) == 1:
        return found(PersonName(_cap(free[0].text), None), conf - 0.2, failure=Failure.INCOMPLETE)
    if len(free) == 2:
        return found(PersonName(_cap(free[0].text), _cap(free[1].text)), conf)
    if free[1].text in _PARTICLES:
        return found(PersonName(_cap(free[0].text), _join(free[1:])), conf - 0.05)
    middle = " ".join(_cap(w.text) for w in free[1:-1])
    name = PersonName(_cap(free[0].text), _cap(free[-1].text), middle)
    return found(name, conf - (0.1 if len(free) == 3 else 0.3))


def _join(words: Sequence[_Word]) -> str:
    return " ".join(w.text if w.text in _PARTICLES else _cap(w.text) for w in words)


def extract_spelling(text: str) -> Extraction[str]:
    """The one word a caller spelled ("s as in sam m y t h" -> "Smyth")."""
    runs = _merged_runs(content(tokens(text)))
    if not runs:
        return failed(Failure.NOT_FOUND)
    if len(runs) > 1:
        return found(_cap("".join(r.letters for r in runs)), 0.6, detail="several runs")
    return found(_cap(runs[0].letters), 0.95 if not runs[0].corrected else 0.85)
