"""The clinic calendar file, and slot booking shared by concurrent callers."""

from __future__ import annotations

import asyncio
import random
from datetime import datetime, time, timedelta, timezone
from pathlib import Path

import pytest

from agent.calendar import Calendar
from agent.commands import BookSlot, Command
from agent.errors import AgentError
from agent.events import SlotBooked, SlotTaken, SlotUnavailable
from agent.store import MemoryStore
from tests.agent.test_conversation import SLOTS, Caller, spoken, through_intake

FRIDAY_10AM = datetime(2026, 11, 27, 10, 0)


# ---------------------------------------------------------------------- the calendar file
def test_default_calendar_offers_the_next_open_times_soonest_first() -> None:
    slots = Calendar.load().open_slots(FRIDAY_10AM, days=3)
    assert [(s.start.isoformat(), s.provider) for s in slots] == [
        ("2026-11-27T11:30:00", "Dr. Rivera"),  # 08:30 and 09:00 have passed
        ("2026-11-30T09:00:00", "Dr. Rivera"),  # nothing on the weekend
        ("2026-11-30T09:30:00", "Dr. Rivera"),
        ("2026-11-30T10:00:00", "Dr. Rivera"),
        ("2026-11-30T14:00:00", "Dr. Rivera"),
        ("2026-11-30T14:30:00", "Dr. Rivera"),
    ]
    assert slots[0].slot_id == "20261127T1130-dr.-rivera"
    assert len({s.slot_id for s in Calendar.load().open_slots(FRIDAY_10AM)}) == len(
        Calendar.load().open_slots(FRIDAY_10AM)
    )


def test_a_clinic_calendar_file_with_aware_times(tmp_path: Path) -> None:
    path = tmp_path / "clinic.yaml"
    path.write_text(
        "slot_minutes: 20\nweekly:\n  Friday:\n    - provider: Dr. Okafor\n"
        '      times: ["16:40", "10:20"]\n    - provider: Dr. Ames\n'
        '      times: ["10:20"]\n'
    )
    calendar = Calendar.load(path)
    assert calendar.slot_minutes == 20
    assert calendar.template == {
        4: (("Dr. Okafor", time(10, 20)), ("Dr. Ames", time(10, 20)), ("Dr. Okafor", time(16, 40)))
    }  # by time, "Friday" = 4
    eastern = timezone(timedelta(hours=-5))
    slots = calendar.open_slots(FRIDAY_10AM.replace(tzinfo=eastern), days=0)
    assert [(s.start.isoformat(), s.provider) for s in slots] == [
        ("2026-11-27T10:20:00-05:00", "Dr. Ames"),
        ("2026-11-27T10:20:00-05:00", "Dr. Okafor"),
        ("2026-11-27T16:40:00-05:00", "Dr. Okafor"),
    ]


BAD_FILES = {
    "not_yaml": (
        "weekly:\n  monday: [\n  - provider: x\n",
        "is not valid YAML at line 3, column 3: expected the node content",
    ),
    "a_list": ("- monday\n", "needs a 'weekly' table"),
    "no_weekly": ("slot_minutes: 30\n", "needs a 'weekly' table"),
    "weekly_list": ("weekly: [monday]\n", "needs a 'weekly' table"),
    "bad_day": ("weekly:\n  funday: []\n", "bad weekday entry 'funday'"),
    "day_not_list": ("weekly:\n  monday: 9\n", "bad weekday entry 'monday'"),
    "no_provider": (
        'weekly:\n  monday:\n    - times: ["09:00"]\n',
        "bad entry under monday: {'times': ['09:00']}",
    ),
    "no_times": ("weekly:\n  monday:\n    - provider: Dr. X\n", "bad entry under monday"),
    "unquoted_time": (
        "weekly:\n  monday:\n    - provider: Dr. X\n      times: [9:30]\n",
        "bad entry under monday: {'provider': 'Dr. X', 'times': [570]} "
        '(needs a provider and times as quoted "HH:MM")',
    ),
    "hour_25": (
        'weekly:\n  monday:\n    - provider: Dr. X\n      times: ["25:00"]\n',
        "bad entry under monday",
    ),
    "nine_am": (
        'weekly:\n  monday:\n    - provider: Dr. X\n      times: ["9am"]\n',
        "bad entry under monday",
    ),
    "entry_text": ("weekly:\n  monday:\n    - Dr. X at nine\n", "bad entry under monday"),
    "minutes_text": (
        "slot_minutes: thirty\nweekly: {}\n",
        "slot_minutes must be a positive whole number, not 'thirty'",
    ),
    "minutes_zero": ("slot_minutes: 0\nweekly: {}\n", "not 0"),
    "minutes_bool": ("slot_minutes: yes\nweekly: {}\n", "not True"),
}


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_a_bad_calendar_file_gives_one_clear_line(tmp_path: Path, name: str) -> None:
    text, expected = BAD_FILES[name]
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    with pytest.raises(AgentError) as caught:
        Calendar.load(path)
    message = str(caught.value)
    assert "\n" not in message
    assert str(path) in message
    assert expected in message


def test_a_missing_calendar_file_gives_one_clear_line(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "calendar.yaml"
    with pytest.raises(AgentError) as caught:
        Calendar.load(path)
    assert str(caught.value) == f"cannot read calendar file {path}: No such file or directory"
    with pytest.raises(AgentError, match="Is a directory"):
        Calendar.load(tmp_path)


# ---------------------------------------------------------------------- shared bookings
async def _caller_books(store: MemoryStore, call_id: str, slot_id: str, rng: random.Random) -> bool:
    for _ in range(rng.randrange(4)):  # let the other caller's task run first, or not
        await asyncio.sleep(0)
    return await store.book_slot(slot_id, call_id)


async def test_two_callers_racing_for_one_slot_one_wins_every_time() -> None:
    rng = random.Random(20261127)
    winners: list[str] = []
    for _ in range(100):
        store = MemoryStore()
        a, b = await asyncio.gather(
            _caller_books(store, "call-a", SLOTS[0].slot_id, rng),
            _caller_books(store, "call-b", SLOTS[0].slot_id, rng),
        )
        assert a != b, "exactly one of the two callers gets the slot"
        winners.append("call-a" if a else "call-b")
        assert await store.booked_slots() == {SLOTS[0].slot_id}
        assert not await store.book_slot(SLOTS[0].slot_id, "call-c")
        assert await store.book_slot(SLOTS[0].slot_id, winners[-1])  # asking again is fine
    # The interleavings really differ from round to round: both callers won some races.
    assert 10 < winners.count("call-a") < 90


async def test_only_the_holder_can_release_a_slot() -> None:
    store = MemoryStore()
    assert await store.book_slot("s1", "call-a")
    await store.release_slot("s1", "call-b")
    assert not await store.book_slot("s1", "call-b")
    await store.release_slot("s1", "call-a")
    assert await store.booked_slots() == set()
    assert await store.book_slot("s1", "call-b")


def _booking(commands: list[Command]) -> BookSlot:
    found = [c for c in commands if isinstance(c, BookSlot)]
    assert len(found) == 1, commands
    return found[0]


async def test_two_conversations_choosing_the_same_slot() -> None:
    store = MemoryStore()
    callers = [Caller(call_id=f"call-{n}", store=store, auto_book=False) for n in (1, 2)]
    for caller in callers:
        caller.start()
        through_intake(caller)
    wanted = [_booking(c.say("the first one")) for c in callers]
    assert wanted[0] == wanted[1] == BookSlot(SLOTS[0].slot_id)
    results = await asyncio.gather(
        *(store.book_slot(w.slot_id, c.call_id) for w, c in zip(wanted, callers, strict=True))
    )
    assert sorted(results) == [False, True]
    winner, loser = (callers[0], callers[1]) if results[0] else (callers[1], callers[0])
    won = winner.event(SlotBooked(SLOTS[0].slot_id), play=True)
    assert "You're booked for Friday, November 27 at 11:30 AM" in spoken(won)
    lost = loser.event(SlotUnavailable(SLOTS[0].slot_id), play=True)
    assert spoken(lost).startswith(
        "Sorry, that time was just taken. I have these "
        "appointments: option 1, Monday, November 30 at 9 AM"
    )
    second = _booking(loser.say("option one"))
    assert second == BookSlot(SLOTS[1].slot_id)
    assert await store.book_slot(second.slot_id, loser.call_id)
    loser.event(SlotBooked(second.slot_id), play=True)
    assert winner.record.appointment.slot_id == SLOTS[0].slot_id
    assert loser.record.appointment.slot_id == SLOTS[1].slot_id
    assert await store.booked_slots() == {SLOTS[0].slot_id, SLOTS[1].slot_id}


def test_a_slot_another_call_booked_after_this_call_started_is_not_offered() -> None:
    """The offers come from the calendar at call start; the server's news keeps them current."""
    caller = Caller()
    caller.start()
    assert caller.event(SlotTaken(SLOTS[0].slot_id)) == []  # no turn is taken
    offer = spoken(through_intake(caller))
    assert "option 1, Monday, November 30 at 9 AM with Dr. Rivera" in offer
    assert "Friday, November 27" not in offer  # SLOTS[0], booked by the other call
