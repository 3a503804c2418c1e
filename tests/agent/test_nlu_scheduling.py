"""Slot preferences relative to a passed-in `now`, and choosing among offered slots."""

from __future__ import annotations

from datetime import date, datetime, time

import pytest

from agent.nlu.result import Failure
from agent.nlu.scheduling import DayPart, choose_slot, extract_slot_preference, match_slots

NOW = datetime(2026, 3, 12, 9, 30)  # Thursday morning
OFFERED = [
    datetime(2026, 3, 13, 9, 0),  # Fri 9:00
    datetime(2026, 3, 13, 14, 0),  # Fri 14:00
    datetime(2026, 3, 16, 10, 0),  # Mon 10:00
    datetime(2026, 3, 17, 14, 0),  # Tue 14:00
    datetime(2026, 3, 20, 15, 30),  # Fri 15:30
    datetime(2026, 3, 24, 14, 0),  # Tue (a week later) 14:00
]


@pytest.mark.parametrize(
    ("said", "dates", "part", "at"),
    [
        ("tomorrow morning", (date(2026, 3, 13),), DayPart.MORNING, None),
        ("today", (date(2026, 3, 12),), DayPart.ANY, None),
        ("the day after tomorrow", (date(2026, 3, 14),), DayPart.ANY, None),
        ("any time friday afternoon", (date(2026, 3, 13),), DayPart.AFTERNOON, None),
        ("monday", (date(2026, 3, 16),), DayPart.ANY, None),
        ("thursday", (date(2026, 3, 19),), DayPart.ANY, None),  # not today: next week
        ("next tuesday at 2", (date(2026, 3, 17), date(2026, 3, 24)), DayPart.ANY, time(14)),
        ("tuesday at two thirty", (date(2026, 3, 17),), DayPart.ANY, time(14, 30)),
        ("at ten am", (), DayPart.ANY, time(10)),
        ("at 9", (), DayPart.ANY, time(9)),
        ("three p m on monday", (date(2026, 3, 16),), DayPart.ANY, time(15)),
        ("at noon", (), DayPart.ANY, time(12)),
        ("march seventeenth", (date(2026, 3, 17),), DayPart.ANY, None),
        ("march first", (date(2027, 3, 1),), DayPart.ANY, None),  # already past this year
        ("tonight", (date(2026, 3, 12),), DayPart.EVENING, None),
        ("around lunchtime", (), DayPart.MIDDAY, None),
    ],
)
def test_preference(said: str, dates: tuple[date, ...], part: DayPart, at: time | None) -> None:
    pref = extract_slot_preference(said, NOW).value
    assert pref is not None
    assert (pref.dates, pref.day_part, pref.at) == (dates, part, at)


def test_next_week_and_weekend() -> None:
    week = extract_slot_preference("sometime next week", NOW).value
    assert week is not None and week.dates[0] == date(2026, 3, 16) and len(week.dates) == 7
    weekend = extract_slot_preference("the weekend", NOW).value
    assert weekend is not None and weekend.dates == (date(2026, 3, 14), date(2026, 3, 15))


def test_after_and_before() -> None:
    after = extract_slot_preference("after 3", NOW).value
    before = extract_slot_preference("before noon", NOW).value
    assert after is not None and after.not_before == time(15)
    assert before is not None and before.not_after == time(12)


def test_asap_and_anytime() -> None:
    asap = extract_slot_preference("as soon as possible", NOW).value
    assert asap is not None and asap.asap
    anytime = extract_slot_preference("whenever works", NOW)
    assert anytime.value is not None and anytime.detail == "any"


def test_next_weekday_is_read_back() -> None:
    assert extract_slot_preference("next tuesday", NOW).needs_confirmation


def test_nothing_about_time() -> None:
    assert extract_slot_preference("i have a cough", NOW).failure is Failure.NOT_FOUND


@pytest.mark.parametrize(
    ("said", "slot"),
    [
        ("the first one", OFFERED[0]),
        ("the second one", OFFERED[1]),
        ("second", OFFERED[1]),
        ("option three", OFFERED[2]),
        ("number four", OFFERED[3]),
        ("the last one", OFFERED[5]),
        ("the fifth option", OFFERED[4]),
        ("tomorrow morning", OFFERED[0]),
        ("any time friday afternoon", OFFERED[1]),
        ("next tuesday at 2", OFFERED[3]),
        ("monday", OFFERED[2]),
        ("as soon as possible", OFFERED[0]),
        ("the 2 pm one tomorrow", OFFERED[1]),
        ("after 3 next week", OFFERED[4]),
        ("tuesday at two thirty", OFFERED[3]),
        ("march twenty fourth", OFFERED[5]),
    ],
)
def test_choose_slot(said: str, slot: datetime) -> None:
    assert choose_slot(said, OFFERED, NOW).value == slot


@pytest.mark.parametrize(
    ("said", "failure"),
    [
        ("the seventh one", Failure.OUT_OF_RANGE),
        ("saturday", Failure.NOT_FOUND),
        ("at noon", Failure.NOT_FOUND),
        ("i don't know", Failure.NOT_FOUND),
    ],
)
def test_choose_slot_failures(said: str, failure: Failure) -> None:
    assert choose_slot(said, OFFERED, NOW).failure is failure


def test_past_slots_never_match() -> None:
    pref = extract_slot_preference("today", NOW).value
    assert pref is not None
    earlier_today = [datetime(2026, 3, 12, 8, 0)]
    assert match_slots(pref, earlier_today, NOW).failure is Failure.NOT_FOUND
