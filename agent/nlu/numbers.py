"""Spoken numbers to digits and integers.

Theory of operation
-------------------
Callers say numbers three ways and mix them in one breath: digit by digit ("five five five oh
one two three", "double five"), in pairs ("nineteen eighty four", "twenty twenty six", "five
fifty five") and as cardinals ("one hundred twenty", "two thousand five"). A recogniser may
also write some of them as numerals ("5 5 5 one two"), and DTMF arrives as a digit string.

`find_atoms` reads the tokens left to right into *atoms*, the smallest things a person says as
one number: a digit word, a teen, a tens word with its unit ("twenty three"), a hundreds or
thousands phrase, a "double"/"triple" group, a numeral, or an ordinal ("third", "twenty
third", "3rd"). Concatenating adjacent atoms' digits gives what was meant in every one of the
three styles: "nineteen"+"eighty four" is "1984", "five"+"fifty five" is "555", "oh"+"three"
is "03". Callers that need the structure (dates split day from year at atom boundaries) use
the atoms directly.

Two rules keep digit sequences intact. "oh" and "o" are zero only next to another number word
or another "oh" (a lone "oh" is an interjection). After "hundred", a single digit word is
absorbed ("one hundred five" is 105) only when no further digit word follows, so "eight
hundred five five five..." stays 800 followed by 555.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from agent.nlu.result import Extraction, Failure, failed, found
from agent.nlu.text import FILLERS, tokens

UNITS: Mapping[str, int] = {
    "zero": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
}
ZERO_SOUNDS = frozenset({"oh", "o"})
TEENS: Mapping[str, int] = {
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
}
TENS: Mapping[str, int] = {
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fourty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
}
ORDINAL_UNITS: Mapping[str, int] = {
    "first": 1,
    "second": 2,
    "third": 3,
    "fourth": 4,
    "fifth": 5,
    "sixth": 6,
    "seventh": 7,
    "eighth": 8,
    "ninth": 9,
}
ORDINAL_TEENS: Mapping[str, int] = {
    "tenth": 10,
    "eleventh": 11,
    "twelfth": 12,
    "thirteenth": 13,
    "fourteenth": 14,
    "fifteenth": 15,
    "sixteenth": 16,
    "seventeenth": 17,
    "eighteenth": 18,
    "nineteenth": 19,
    "twentieth": 20,
    "thirtieth": 30,
}
REPEATS: Mapping[str, int] = {"double": 2, "triple": 3}

#: Every word that can be part of a spoken number (used to find where numbers stop).
NUMBER_WORDS = frozenset(
    {*UNITS, *ZERO_SOUNDS, *TEENS, *TENS, *ORDINAL_UNITS, *ORDINAL_TEENS, *REPEATS}
    | {"hundred", "thousand"}
)


@dataclass(frozen=True, slots=True)
class NumberAtom:
    """One number as spoken: ``toks[start:end]`` said ``digits`` (an ordinal if ``ordinal``)."""

    start: int
    end: int
    digits: str
    ordinal: bool = False

    @property
    def value(self) -> int:
        """The atom as an integer."""
        return int(self.digits)


@dataclass(frozen=True, slots=True)
class DigitRun:
    """Adjacent cardinal atoms read as one digit string (``toks[start:end]``)."""

    start: int
    end: int
    digits: str
    atoms: tuple[NumberAtom, ...]


def _is_numeral(tok: str) -> bool:
    return tok.isascii() and tok.isdigit()


def _numberish(toks: Sequence[str], i: int) -> bool:
    if not 0 <= i < len(toks):
        return False
    tok = toks[i]
    return (
        _is_numeral(tok)
        or tok in UNITS
        or tok in TEENS
        or tok in TENS
        or tok in REPEATS
        or tok in ("hundred", "thousand")
    )


def _is_zero(toks: Sequence[str], i: int) -> bool:
    tok = toks[i]
    if tok == "zero":
        return True
    if tok not in ZERO_SOUNDS:
        return False
    # "oh" is zero among numbers ("oh five", "one oh one") or repeated ("oh oh seven");
    # a lone "oh" is an interjection.
    start, end = i, i + 1
    while start > 0 and toks[start - 1] in ZERO_SOUNDS:
        start -= 1
    while end < len(toks) and toks[end] in ZERO_SOUNDS:
        end += 1
    return end - start > 1 or _numberish(toks, start - 1) or _numberish(toks, end)


def _unit_at(toks: Sequence[str], i: int) -> int | None:
    if i >= len(toks):
        return None
    if _is_zero(toks, i):
        return 0
    return UNITS.get(toks[i])


def _below_100(toks: Sequence[str], i: int) -> tuple[int, int, bool] | None:
    """Parse "seven", "fourteen", "twenty", "twenty three", "twenty third" at ``i``."""
    if i >= len(toks):
        return None
    tok = toks[i]
    if tok in TEENS:
        return TEENS[tok], i + 1, False
    if tok in ORDINAL_TEENS:
        return ORDINAL_TEENS[tok], i + 1, True
    if tok in ORDINAL_UNITS:
        return ORDINAL_UNITS[tok], i + 1, True
    if tok in TENS:
        nxt = toks[i + 1] if i + 1 < len(toks) else ""
        if nxt in UNITS and UNITS[nxt] > 0:
            return TENS[tok] + UNITS[nxt], i + 2, False
        if nxt in ORDINAL_UNITS:
            return TENS[tok] + ORDINAL_UNITS[nxt], i + 2, True
        return TENS[tok], i + 1, False
    unit = _unit_at(toks, i)
    if unit is not None:
        return unit, i + 1, False
    return None


def _scaled(toks: Sequence[str], i: int, base: int, scale: int) -> tuple[int, int]:
    """After "<base> hundred|thousand" at ``i``: absorb what completes the number."""
    j = i + 1 if i < len(toks) and toks[i] == "and" else i
    if scale == 1000:
        sub = _hundreds(toks, j)
        if sub is not None and not sub[2]:
            return base * scale + sub[0], sub[1]
        return base * scale, i
    rest = _below_100(toks, j)
    if rest is None or rest[2]:
        return base * scale, i
    value, end, _ = rest
    # A lone digit after "hundred" belongs to the number only if no digit sequence goes on.
    if value < 10 and j == i and _unit_at(toks, end) is not None:
        return base * scale, i
    return base * scale + value, end


def _hundreds(toks: Sequence[str], i: int) -> tuple[int, int, bool] | None:
    base = _below_100(toks, i)
    if base is None and i < len(toks) and toks[i] == "a" and i + 1 < len(toks):
        if toks[i + 1] in ("hundred", "thousand"):
            base = (1, i + 1, False)
    if base is None:
        return None
    value, end, ordinal = base
    if not ordinal and end < len(toks) and toks[end] == "hundred" and 0 < value < 100:
        value, end = _scaled(toks, end + 1, value, 100)
    return value, end, ordinal


def _atom_at(toks: Sequence[str], i: int) -> NumberAtom | None:
    tok = toks[i]
    if _is_numeral(tok):
        return NumberAtom(i, i + 1, tok)
    if tok[:1].isdigit() and tok[-2:] in ("st", "nd", "rd", "th") and _is_numeral(tok[:-2]):
        return NumberAtom(i, i + 1, str(int(tok[:-2])), ordinal=True)
    if tok in REPEATS and i + 1 < len(toks):
        nxt = toks[i + 1]
        digit = _unit_at(toks, i + 1) if nxt in UNITS or nxt in ZERO_SOUNDS else None
        if digit is None and _is_numeral(nxt) and len(nxt) == 1:
            digit = int(nxt)
        if digit is not None:
            return NumberAtom(i, i + 2, str(digit) * REPEATS[tok])
        return None
    parsed = _hundreds(toks, i)
    if parsed is None:
        return None
    value, end, ordinal = parsed
    if not ordinal and end < len(toks) and toks[end] == "thousand" and value < 1000:
        value, end = _scaled(toks, end + 1, value, 1000)
    return NumberAtom(i, end, str(value), ordinal=ordinal)


def find_atoms(toks: Sequence[str]) -> list[NumberAtom]:
    """Read every spoken or written number in ``toks``, left to right."""
    atoms: list[NumberAtom] = []
    i = 0
    while i < len(toks):
        atom = _atom_at(toks, i)
        if atom is None:
            i += 1
            continue
        atoms.append(atom)
        i = atom.end
    return atoms


def digit_runs(toks: Sequence[str], skip: frozenset[str] = FILLERS) -> list[DigitRun]:
    """Group adjacent cardinal atoms into digit strings; ``skip`` words may sit between."""
    runs: list[DigitRun] = []
    current: list[NumberAtom] = []
    for atom in find_atoms(toks):
        if atom.ordinal:
            if current:
                runs.append(_run(current))
            current = []
            continue
        if current and not all(t in skip for t in toks[current[-1].end : atom.start]):
            runs.append(_run(current))
            current = []
        current.append(atom)
    if current:
        runs.append(_run(current))
    return runs


def _run(atoms: list[NumberAtom]) -> DigitRun:
    return DigitRun(atoms[0].start, atoms[-1].end, "".join(a.digits for a in atoms), tuple(atoms))


def spoken_digits(text: str) -> Extraction[str]:
    """Every digit said in an utterance, in order ("my number is six one seven..." -> "617...").

    Words between numbers are ignored, so use it where the answer is only a number
    (phone, ZIP, DTMF). Confidence drops when the digits came in several separate runs.
    """
    runs = digit_runs(tokens(text))
    if not runs:
        return failed(Failure.NOT_FOUND)
    digits = "".join(r.digits for r in runs)
    return found(digits, 0.95 if len(runs) == 1 else 0.85)


def words_to_int(toks: Sequence[str]) -> int | None:
    """Read a token span that is exactly one cardinal number ("one hundred twenty" -> 120)."""
    if not toks:
        return None
    atoms = find_atoms(toks)
    if len(atoms) != 1 or atoms[0].ordinal or atoms[0].start != 0 or atoms[0].end != len(toks):
        return None
    return atoms[0].value


def spoken_int(text: str) -> Extraction[int]:
    """The one cardinal number in an utterance ("about twenty five" -> 25)."""
    atoms = [a for a in find_atoms(tokens(text)) if not a.ordinal]
    if not atoms:
        return failed(Failure.NOT_FOUND)
    if len(atoms) > 1:
        alts = tuple(a.value for a in atoms)
        return failed(Failure.AMBIGUOUS, alternatives=alts)
    return found(atoms[0].value, 0.95)


def ordinal_at(toks: Sequence[str], i: int) -> NumberAtom | None:
    """The ordinal ("third", "twenty first", "3rd") starting at ``toks[i]``, if any."""
    if not 0 <= i < len(toks):
        return None
    atom = _atom_at(toks, i)
    return atom if atom is not None and atom.ordinal else None
