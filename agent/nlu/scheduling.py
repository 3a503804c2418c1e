"""Appointment preferences and choices, relative to a `now` the caller passes in.

Theory of operation
-------------------
`extract_slot_preference` reads what the caller would like: a day ("today", "tomorrow",
"the day after tomorrow", "friday", "next tuesday", "this week", "next week", "the weekend",
"march fifth", "in two weeks"), a part of the day ("morning" 8-12, "afternoon" 12-17,
"evening" from 17, "lunchtime", "tonight"), a time ("at 2", "two thirty", "10 am", "noon",
"after 3", "before noon"), or "as soon as possible". An hour said without am/pm is read in
clinic hours: 7-11 morning, 12-6 afternoon. "Next tuesday" is ambiguous in American English
(the coming one, or the one a week later): both dates are kept and the agent reads the chosen
date back. A bare weekday is the next one after today.

`choose_slot` picks one of the slots the agent just offered: by position first ("the first
one", "the second", "option three", "the last one"), otherwise by matching the preference
against the list, closest time first. `now` is never read from a clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import Enum

from agent.nlu.dates import MONTHS, extract_partial_date
from agent.nlu.numbers import ORDINAL_UNITS, find_atoms
from agent.nlu.result import Extraction, Failure, failed, found
from agent.nlu.text import content, tokens

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
#: How far (minutes) a slot may be from a requested time and still match it.
TIME_TOLERANCE_MIN = 60


class DayPart(Enum):
    """A part of the day, as a half-open hour range."""

    ANY = (0, 24)
    MORNING = (0, 12)
    MIDDAY = (11, 14)
    AFTERNOON = (12, 17)
    EVENING = (17, 24)


@dataclass(frozen=True, slots=True)
class SlotPreference:
    """What the caller would like; empty ``dates`` means any day."""

    dates: tuple[date, ...] = ()
    day_part: DayPart = DayPart.ANY
    at: time | None = None
    not_before: time | None = None
    not_after: time | None = None
    asap: bool = False

    def accepts(self, slot: datetime) -> bool:
        """Whether a slot fits every stated constraint (a time must be within tolerance)."""
        if self.dates and slot.date() not in self.dates:
            return False
        low, high = self.day_part.value
        if not low <= slot.hour < high:
            return False
        t = slot.time()
        if self.not_before is not None and t < self.not_before:
            return False
        if self.not_after is not None and t > self.not_after:
            return False
        return self.at is None or _gap_min(t, self.at) <= TIME_TOLERANCE_MIN


def _gap_min(a: time, b: time) -> int:
    return abs((a.hour * 60 + a.minute) - (b.hour * 60 + b.minute))


_PARTS = {
    "morning": DayPart.MORNING,
    "mornings": DayPart.MORNING,
    "afternoon": DayPart.AFTERNOON,
    "afternoons": DayPart.AFTERNOON,
    "evening": DayPart.EVENING,
    "evenings": DayPart.EVENING,
    "tonight": DayPart.EVENING,
    "lunch": DayPart.MIDDAY,
    "lunchtime": DayPart.MIDDAY,
    "midday": DayPart.MIDDAY,
}
_ASAP: tuple[str, ...] = ("as soon as possible", "asap", "earliest", "soonest", "first available")
_ASAP += ("right away", "next available", "a s a p")
_TIME_LEADS = frozenset({"at", "around", "about", "after", "before", "by", "till", "until"})
_PM = (("pm",), ("p", "m"), ("in", "the", "afternoon"), ("in", "the", "evening"))
_AM = (("am",), ("a", "m"), ("in", "the", "morning"))


def _clinic_hour(hour: int, toks: Sequence[str], end: int) -> int:
    tail = tuple(toks[end : end + 3])
    if any(tail[: len(p)] == p for p in _PM) and hour < 12:
        return hour + 12
    if any(tail[: len(p)] == p for p in _AM):
        return 0 if hour == 12 else hour
    return hour + 12 if 1 <= hour <= 6 else hour


def _times(toks: Sequence[str]) -> tuple[time | None, time | None, time | None]:
    """(at, not_before, not_after) from the utterance."""
    at = not_before = not_after = None
    for i, tok in enumerate(toks):
        if tok in ("noon", "midday") and (i == 0 or toks[i - 1] in _TIME_LEADS):
            lead = toks[i - 1] if i else "at"
            at, not_before, not_after = _assign(lead, time(12, 0), at, not_before, not_after)
    atoms = [a for a in find_atoms(toks) if not a.ordinal]
    for k, atom in enumerate(atoms):
        lead = toks[atom.start - 1] if atom.start > 0 else ""
        tail = tuple(toks[atom.end : atom.end + 2])
        marked = any(tail[: len(p)] == p for p in _AM + _PM) or tail[:1] in (
            ("o'clock",),
            ("oclock",),
        )
        if not (lead in _TIME_LEADS or marked) or atom.value > 1259:
            continue
        hour, minute = atom.value, 0
        if atom.value > 24:
            hour, minute = divmod(atom.value, 100)
        nxt = atoms[k + 1] if k + 1 < len(atoms) else None
        if nxt is not None and nxt.start == atom.end and nxt.value < 60 and len(nxt.digits) == 2:
            minute = nxt.value  # "two thirty", "10 45"
        end = nxt.end if nxt is not None and minute == nxt.value and minute else atom.end
        if not 0 < hour <= 12 or minute >= 60:
            continue
        when = time(_clinic_hour(hour, toks, end), minute)
        at, not_before, not_after = _assign(lead, when, at, not_before, not_after)
        break
    return at, not_before, not_after


def _assign(
    lead: str, when: time, at: time | None, lo: time | None, hi: time | None
) -> tuple[time | None, time | None, time | None]:
    if lead == "after":
        return at, when, hi
    if lead in ("before", "by", "till", "until"):
        return at, lo, when
    return when, lo, hi


def _dates(toks: Sequence[str], today: date) -> tuple[date, ...]:
    joined = " ".join(toks)
    if "day after tomorrow" in joined:
        return (today + timedelta(days=2),)
    if "tomorrow" in toks:
        return (today + timedelta(days=1),)
    if "today" in toks or "tonight" in toks:
        return (today,)
    for i, tok in enumerate(toks):
        name = tok[:-1] if tok.endswith("s") and tok[:-1] in WEEKDAYS else tok
        if name in WEEKDAYS:
            ahead = (WEEKDAYS.index(name) - today.weekday()) % 7 or 7
            first = today + timedelta(days=ahead)
            if i > 0 and toks[i - 1] == "next":
                return (first, first + timedelta(days=7))
            return (first,)
    monday = today - timedelta(days=today.weekday())
    if "next week" in joined:
        return tuple(monday + timedelta(days=7 + d) for d in range(7))
    if "this week" in joined:
        return tuple(today + timedelta(days=d) for d in range(7 - today.weekday()))
    if "weekend" in toks:
        saturday = monday + timedelta(days=5 if today.weekday() < 5 else 12)
        return (saturday, saturday + timedelta(days=1))
    for i in range(len(toks) - 2):
        if toks[i] == "in" and toks[i + 2] in ("week", "weeks"):
            n = (
                1
                if toks[i + 1] in ("a", "one")
                else {"two": 2, "three": 3, "four": 4}.get(toks[i + 1])
            )
            if n:
                start = today + timedelta(weeks=n)
                return tuple(start + timedelta(days=d) for d in range(-2, 3))
    if any(t in MONTHS for t in toks):
        partial = extract_partial_date(" ".join(toks)).value
        if partial is not None and partial.month is not None and partial.day is not None:
            year = partial.year or today.year
            try:
                when = date(year, partial.month, partial.day)
            except ValueError:
                return ()
            if when < today and partial.year is None:
                try:
                    when = date(year + 1, partial.month, partial.day)
                except ValueError:
                    return ()
            return (when,)
    return ()


def extract_slot_preference(text: str, now: datetime) -> Extraction[SlotPreference]:
    """Read when the caller would like to come in; NOT_FOUND if nothing constrains it.

    "any time", "whenever" and "doesn't matter" are a preference with no constraint.
    """
    toks = content(tokens(text))
    joined = " ".join(toks)
    asap = any(p in joined for p in _ASAP)
    part = next((_PARTS[t] for t in toks if t in _PARTS), DayPart.ANY)
    at, not_before, not_after = _times(toks)
    dates = _dates(toks, now.date())
    pref = SlotPreference(dates, part, at, not_before, not_after, asap)
    if pref == SlotPreference():
        if any(
            p in joined for p in ("any time", "anytime", "whenever", "doesn't matter", "any day")
        ):
            return found(pref, 0.9, detail="any")
        return failed(Failure.NOT_FOUND)
    ambiguous_next = len(dates) == 2 and dates[1] - dates[0] == timedelta(days=7)
    return found(pref, 0.75 if ambiguous_next else 0.9, confirm=ambiguous_next)


_CHOICE_NOUNS = frozenset({"one", "option", "slot", "appointment", "time", "choice", "opening"})


def _ordinal_choice(toks: Sequence[str]) -> int | None:
    """1-based position the caller picked (-1 for "the last one"), if they picked by position."""
    for i, tok in enumerate(toks):
        if tok == "last" and (i + 1 == len(toks) or toks[i + 1] in _CHOICE_NOUNS):
            return -1
        if tok in ("option", "number", "choice") and i + 1 < len(toks):
            atoms = find_atoms(toks[i + 1 : i + 2])
            if atoms and not atoms[0].ordinal:
                return atoms[0].value
    has_month = any(t in MONTHS for t in toks)
    for atom in find_atoms(toks):
        if not atom.ordinal or has_month:
            continue
        after = toks[atom.end] if atom.end < len(toks) else ""
        if after in _CHOICE_NOUNS or after == "" or toks[atom.start] in ORDINAL_UNITS:
            if not (after == "of" or (atom.end < len(toks) and toks[atom.end] in MONTHS)):
                return atom.value
    return None


def choose_slot(text: str, offered: Sequence[datetime], now: datetime) -> Extraction[datetime]:
    """Pick one of the offered slots from the caller's answer.

    Returns:
        The slot; OUT_OF_RANGE for "the fourth one" of three, NOT_FOUND when no offered slot
        fits what was said (the agent offers others), alternatives when several fit.
    """
    toks = content(tokens(text))
    position = _ordinal_choice(toks)
    if position is not None:
        index = len(offered) - 1 if position == -1 else position - 1
        if not offered or not 0 <= index < len(offered):
            return failed(Failure.OUT_OF_RANGE, detail="position")
        return found(offered[index], 0.95)
    pref = extract_slot_preference(text, now)
    if pref.value is None:
        return failed(Failure.NOT_FOUND)
    return match_slots(pref.value, offered, now)


def match_slots(
    pref: SlotPreference, slots: Sequence[datetime], now: datetime
) -> Extraction[datetime]:
    """The best open slot for a preference (closest to a stated time, else the earliest)."""
    fits = sorted((s for s in slots if s >= now and pref.accepts(s)), key=lambda s: s)
    if not fits:
        return failed(Failure.NOT_FOUND, detail="no slot fits")
    if pref.at is not None:
        target = pref.at
        fits.sort(key=lambda s: (s.date(), _gap_min(s.time(), target)))
    conf = 0.9 if len(fits) == 1 or pref.asap or pref.at is not None else 0.75
    return found(fits[0], conf, confirm=True, alternatives=tuple(fits[1:3]))
