"""Calendar dates as people say them, for birth dates and corrections.

Theory of operation
-------------------
A date is said with a month word ("march third nineteen eighty four", "the third of march
eighty four", "1984 march 3") or with numbers only ("3 3 1984", "oh three oh three eighty four",
"03/03/1984", "1984-03-03", DTMF "03031984"). `numbers.find_atoms` reads the numbers; an ordinal
atom ("third", "3rd") is always the day.

The numbers are concatenated into one digit string and every split into fields is tried:
with a month word, (day, year) and (year, day); without one, month-day-year (US order),
year-month-day when the first number has four digits (ISO), and day-month-year as a fallback
("fifteen three nineteen eighty"). A field is 1-2 digits, a year 2 or 4. Each split scores a
point for every cut that falls between two spoken numbers ("twelve | twenty five | nineteen
ninety"), US order gets half a point, and only real calendar dates survive. The best score
wins; a tie between different dates is AMBIGUOUS ("one one one nine eight four" is 1/1/1984
or 11/19/84). Two-digit years become 19yy or 20yy, whichever is plausible; if both are, the
later one is kept and read back.

The clock is never read: `today` is an argument.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from agent.nlu.numbers import NumberAtom, find_atoms
from agent.nlu.result import Extraction, Failure, failed, found
from agent.nlu.text import content, tokens

MONTHS: Mapping[str, int] = {
    "january": 1,
    "jan": 1,
    "february": 2,
    "feb": 2,
    "march": 3,
    "april": 4,
    "apr": 4,
    "may": 5,
    "june": 6,
    "jun": 6,
    "july": 7,
    "jul": 7,
    "august": 8,
    "aug": 8,
    "september": 9,
    "sept": 9,
    "sep": 9,
    "october": 10,
    "oct": 10,
    "november": 11,
    "nov": 11,
    "december": 12,
    "dec": 12,
}

MAX_AGE_YEARS = 120


@dataclass(frozen=True, slots=True)
class PartialDate:
    """A date with any of its fields missing ("march fourth" has no year)."""

    month: int | None
    day: int | None
    year: int | None

    def complete(self) -> date | None:
        """The date, if every field is known and the calendar has it."""
        if self.month is None or self.day is None or self.year is None:
            return None
        return _real(self.year, self.month, self.day)


def _real(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class _Reading:
    month: int | None
    day: int | None
    year_digits: str | None  # "1984" or "84"
    score: float


def _cuts(digits: str, bounds: frozenset[int], lengths: Sequence[int]) -> tuple[list[str], int]:
    parts: list[str] = []
    pos = 0
    aligned = 0
    for n in lengths:
        parts.append(digits[pos : pos + n])
        pos += n
        if pos < len(digits) and pos in bounds:
            aligned += 1
    return parts, aligned


def _bounds(atoms: Sequence[NumberAtom]) -> tuple[str, frozenset[int]]:
    digits = ""
    bounds: set[int] = set()
    for atom in atoms:
        digits += atom.digits
        bounds.add(len(digits))
    return digits, frozenset(bounds)


_FIELD = (1, 2)
_YEAR = (2, 4)


def _with_month(month: int, cards: Sequence[NumberAtom], day: int | None) -> Iterator[_Reading]:
    digits, bounds = _bounds(cards)
    if day is not None:
        if digits == "":
            yield _Reading(month, day, None, 1.0)
        elif len(digits) in _YEAR:
            yield _Reading(month, day, digits, 2.0)
        return
    if not digits:
        yield _Reading(month, None, None, 0.0)
        return
    if len(digits) in _FIELD and int(digits) <= 31:
        yield _Reading(month, int(digits), None, 1.0)
    if len(digits) == 4 and len(cards) <= 2 and int(digits) > 1000:
        yield _Reading(month, None, digits, 0.5)
    for d_len in _FIELD:
        for y_len in _YEAR:
            if d_len + y_len != len(digits):
                continue
            (d, y), aligned = _cuts(digits, bounds, (d_len, y_len))
            yield _Reading(month, int(d), y, 1.0 + aligned)
            (y2, d2), aligned2 = _cuts(digits, bounds, (y_len, d_len))
            yield _Reading(month, int(d2), y2, 0.5 + aligned2)


def _numeric(cards: Sequence[NumberAtom]) -> Iterator[_Reading]:
    digits, bounds = _bounds(cards)
    iso_first = bool(cards) and len(cards[0].digits) == 4
    for a in _FIELD:
        for b in _FIELD:
            for y_len in _YEAR:
                if a + b + y_len != len(digits):
                    continue
                (m, d, y), aligned = _cuts(digits, bounds, (a, b, y_len))
                yield _Reading(int(m), int(d), y, aligned + 0.5)
                yield _Reading(int(d), int(m), y, aligned - 0.5)  # day-month-year
                if iso_first and y_len == 4:
                    (y2, m2, d2), aligned2 = _cuts(digits, bounds, (y_len, a, b))
                    yield _Reading(int(m2), int(d2), y2, aligned2 + 1.0)


def _readings(text: str) -> list[_Reading]:
    toks = content(tokens(text))
    months = [MONTHS[t] for t in toks if t in MONTHS]
    atoms = find_atoms(toks)
    cards = [a for a in atoms if not a.ordinal]
    ordinals = [a.value for a in atoms if a.ordinal and 1 <= a.value <= 31]
    if len(set(months)) > 1 or len(ordinals) > 1:
        return []
    if months:
        return list(_with_month(months[0], cards, ordinals[0] if ordinals else None))
    if ordinals:
        return [_Reading(None, ordinals[0], None, 0.0)]
    return list(_numeric(cards))


def _years(digits: str, today: date | None) -> list[int]:
    if len(digits) == 4:
        return [int(digits)]
    yy = int(digits)
    if today is None:
        return [2000 + yy if 2000 + yy <= 2000 + 30 else 1900 + yy]
    return [c for c in (2000 + yy, 1900 + yy) if c <= today.year]


def extract_partial_date(text: str) -> Extraction[PartialDate]:
    """Whatever date fields were said ("march fourth" -> month 3, day 4, no year)."""
    scored: list[tuple[float, PartialDate]] = []
    for r in _readings(text):
        if r.month is not None and not 1 <= r.month <= 12:
            continue
        if r.day is not None and not 1 <= r.day <= 31:
            continue
        if r.month is not None and r.day is not None and _real(2000, r.month, r.day) is None:
            continue
        year = None
        if r.year_digits is not None:
            year = _years(r.year_digits, None)[0]
        scored.append((r.score, PartialDate(r.month, r.day, year)))
    if not scored:
        return failed(Failure.NOT_FOUND)
    scored.sort(key=lambda s: -s[0])
    return found(scored[0][1], 0.85, confirm=True)


def extract_date_of_birth(text: str, today: date) -> Extraction[date]:
    """A full, plausible birth date: not after ``today``, at most `MAX_AGE_YEARS` ago.

    Returns:
        The date; INCOMPLETE for "march third" (no year), OUT_OF_RANGE for a future or
        too-old date, AMBIGUOUS (with alternatives) for equally good readings.
    """
    readings = _readings(text)
    if not readings:
        return failed(Failure.NOT_FOUND)
    oldest = _real(today.year - MAX_AGE_YEARS, today.month, min(today.day, 28))
    scored: dict[date, tuple[float, bool]] = {}
    incomplete = out_of_range = False
    for r in readings:
        if r.month is None or r.day is None or r.year_digits is None:
            incomplete = True
            continue
        years = _years(r.year_digits, today) if len(r.year_digits) == 2 else [int(r.year_digits)]
        if not years:
            out_of_range = True
        for year in years:
            when = _real(year, r.month, r.day)
            if when is None:
                continue
            if when > today or (oldest is not None and when < oldest):
                out_of_range = True
                continue
            two_centuries = len(r.year_digits) == 2 and len(years) > 1
            old = scored.get(when)
            if old is None or r.score > old[0]:
                scored[when] = (r.score - (0.25 if two_centuries else 0.0), two_centuries)
    if not scored:
        if out_of_range:
            return failed(Failure.OUT_OF_RANGE)
        return failed(Failure.INCOMPLETE if incomplete else Failure.INVALID_FORMAT)
    ranked = sorted(scored.items(), key=lambda kv: (-kv[1][0], -kv[0].toordinal()))
    best, (score, doubtful) = ranked[0]
    if len(ranked) > 1 and ranked[1][1][0] == score:
        return failed(Failure.AMBIGUOUS, alternatives=tuple(d for d, _ in ranked[:3]))
    spoken_month = any(t in MONTHS for t in tokens(text))
    conf = 0.95 if spoken_month else 0.85
    if doubtful or len(ranked) > 1:
        conf = min(conf, 0.8)
    return found(best, conf, alternatives=tuple(d for d, _ in ranked[1:3]))
