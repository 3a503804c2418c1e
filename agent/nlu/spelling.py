"""Letters as callers spell them: "j o h n", "s as in sam", "alpha bravo", "bee see".

Theory of operation
-------------------
A spelled run is a sequence of *letter tokens*: a single letter ("j"), a letter's name as a
recogniser writes it ("bee", "see", "double u"), a NATO/ICAO word ("bravo"), or "<letter> as
in <word>", where the word's first letter wins if the two disagree (a recogniser mishears "f"
for "s" far more often than "frank" for "sam"). `spelled_runs` finds runs of at least
``min_len`` letters so that the words "a" and "i" in ordinary speech are not read as letters.

Member IDs mix letters and digits ("a b c one two three"); `alphanumeric_candidates` returns
every reading of such an utterance, since "oh"/"o" is a zero or the letter O depending on the
payer's ID format, and the insurance extractor keeps the reading its regex accepts.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from agent.nlu.numbers import REPEATS, TEENS, TENS, UNITS, find_atoms

NATO: Mapping[str, str] = {
    "alpha": "a",
    "alfa": "a",
    "bravo": "b",
    "charlie": "c",
    "delta": "d",
    "echo": "e",
    "foxtrot": "f",
    "golf": "g",
    "hotel": "h",
    "india": "i",
    "juliet": "j",
    "juliett": "j",
    "kilo": "k",
    "lima": "l",
    "mike": "m",
    "november": "n",
    "oscar": "o",
    "papa": "p",
    "quebec": "q",
    "romeo": "r",
    "sierra": "s",
    "tango": "t",
    "uniform": "u",
    "victor": "v",
    "whiskey": "w",
    "whisky": "w",
    "xray": "x",
    "yankee": "y",
    "zulu": "z",
}

#: Letter names as recognisers write them (homophones included).
LETTER_NAMES: Mapping[str, str] = {
    "ay": "a",
    "bee": "b",
    "be": "b",
    "see": "c",
    "sea": "c",
    "cee": "c",
    "dee": "d",
    "ee": "e",
    "ef": "f",
    "eff": "f",
    "gee": "g",
    "jee": "g",
    "aitch": "h",
    "eye": "i",
    "jay": "j",
    "kay": "k",
    "el": "l",
    "ell": "l",
    "em": "m",
    "en": "n",
    "pee": "p",
    "pea": "p",
    "cue": "q",
    "queue": "q",
    "ar": "r",
    "are": "r",
    "ess": "s",
    "es": "s",
    "tee": "t",
    "tea": "t",
    "you": "u",
    "vee": "v",
    "ex": "x",
    "why": "y",
    "wye": "y",
    "zee": "z",
    "zed": "z",
}


@dataclass(frozen=True, slots=True)
class SpelledRun:
    """Letters spelled in ``toks[start:end]``; ``corrected`` if an "as in" word overrode one."""

    start: int
    end: int
    letters: str
    corrected: bool = False


def _single(tok: str) -> bool:
    return len(tok) == 1 and tok.isalpha()


def letter_at(toks: Sequence[str], i: int) -> tuple[str, int, bool] | None:
    """Read one spelled letter at ``toks[i]``: (letter, next index, overridden by "as in")."""
    if not 0 <= i < len(toks):
        return None
    tok = toks[i]
    letter: str | None = None
    end = i + 1
    if tok == "double" and i + 1 < len(toks) and toks[i + 1] in ("u", "you"):
        letter, end = "w", i + 2
    elif tok == "x" and i + 1 < len(toks) and toks[i + 1] == "ray":
        letter, end = "x", i + 2
    elif _single(tok):
        letter = tok
    elif tok in LETTER_NAMES:
        letter = LETTER_NAMES[tok]
    elif tok in NATO:
        letter = NATO[tok]
    if letter is None:
        return None
    # "s as in sam", "s like sam", "s for sam": the example word decides.
    if end + 2 < len(toks) + 1 and tuple(toks[end : end + 2]) == ("as", "in"):
        word_i = end + 2
    elif end < len(toks) and toks[end] in ("like", "for") and end + 1 < len(toks):
        word_i = end + 1
    else:
        return letter, end, False
    if word_i < len(toks) and toks[word_i].isalpha():
        word = toks[word_i]
        initial = word[0]
        return initial, word_i + 1, initial != letter
    return letter, end, False


def spelled_runs(toks: Sequence[str], min_len: int = 2) -> list[SpelledRun]:
    """Find every run of at least ``min_len`` spelled letters."""
    runs: list[SpelledRun] = []
    i = 0
    while i < len(toks):
        letters: list[str] = []
        corrected = False
        j = i
        while True:
            got = letter_at(toks, j)
            if got is None:
                break
            letters.append(got[0])
            corrected = corrected or got[2]
            j = got[1]
        long_enough = len(letters) >= min_len or (letters and j - i > len(letters))
        if long_enough and not _ordinary_words(toks[i:j]):
            runs.append(SpelledRun(i, j, "".join(letters), corrected))
            i = j
        else:
            i += 1
    return runs


def _ordinary_words(span: Sequence[str]) -> bool:
    """True for spans that are plain English, not spelling ("are you", "see you")."""
    names = sum(1 for t in span if t in LETTER_NAMES and not _single(t))
    singles = sum(1 for t in span if _single(t) or t in NATO)
    return names > 0 and singles == 0 and len(span) <= 2


@dataclass(frozen=True, slots=True)
class _Piece:
    options: tuple[str, ...]


def _pieces(toks: Sequence[str]) -> list[_Piece] | None:
    """Read an ID utterance into pieces, each with its possible characters."""
    atoms = {a.start: a for a in find_atoms(toks) if not a.ordinal}
    out: list[_Piece] = []
    i = 0
    while i < len(toks):
        tok = toks[i]
        if tok in ("o", "oh"):
            out.append(_Piece(("0", "o")))  # zero or the letter O: the format decides
            i += 1
            continue
        if tok in ("double", "triple") and i + 1 < len(toks) and toks[i + 1] in ("o", "oh"):
            n = REPEATS[tok]
            out.append(_Piece(("0" * n, "o" * n)))
            i += 2
            continue
        atom = atoms.get(i)
        if atom is not None and (tok in UNITS or tok in TEENS or tok in TENS or tok.isdigit()):
            out.append(_Piece((atom.digits,)))
            i = atom.end
            continue
        if atom is not None and tok in REPEATS:
            out.append(_Piece((atom.digits,)))
            i = atom.end
            continue
        if tok in ("double", "triple") and letter_at(toks, i + 1) is not None:
            got = letter_at(toks, i + 1)
            assert got is not None
            out.append(_Piece((got[0] * REPEATS[tok],)))
            i = got[1]
            continue
        got = letter_at(toks, i)
        if got is not None:
            out.append(_Piece((got[0],)))
            i = got[1]
            continue
        if tok.isalpha() and tok.isascii() and len(tok) <= 3 and tok not in _WORDS:
            out.append(_Piece((tok,)))  # a recogniser wrote letters as one word: "abc"
            i += 1
            continue
        return None
    return out


#: Short real words never taken as a run of letters in an ID.
_WORDS = frozenset(
    {"the", "and", "is", "my", "its", "it", "am", "was", "are", "um", "uh", "so", "ok"}
    | {"yes", "no", "not", "id", "for", "to", "too", "of", "on", "in", "hmm", "er", "ah"}
)

#: At most this many "oh"s are tried both ways (2**8 readings); beyond that, zeros.
_MAX_AMBIGUOUS = 8


def alphanumeric_candidates(toks: Sequence[str]) -> list[str]:
    """Every upper-case reading of an ID utterance, most likely (zeros for "oh") first."""
    pieces = _pieces(toks)
    if not pieces:
        return []
    ambiguous = sum(1 for p in pieces if len(p.options) > 1)
    if ambiguous > _MAX_AMBIGUOUS:
        return ["".join(p.options[0] for p in pieces).upper()]
    readings = (
        "".join(choice).upper() for choice in itertools.product(*(p.options for p in pieces))
    )
    return list(dict.fromkeys(readings))
