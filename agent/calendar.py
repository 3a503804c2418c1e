"""The clinic calendar: open appointment slots from a data file.

The default file (``agent/data/calendar.yaml``) describes a weekly template: for each weekday,
the providers and their start times; `Calendar.open_slots(after, days)` expands it into
concrete `Slot`s. A clinic points ``calendar_file`` at its own file. Which slots are taken is
not here: that is the state store's job (`agent.store.StateStore.book_slot`), so bookings stay
atomic across calls and instances.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from pathlib import Path

import yaml

from agent.errors import AgentError
from agent.questions import Slot

DEFAULT_CALENDAR = Path(__file__).parent / "data" / "calendar.yaml"
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@dataclass(frozen=True, slots=True)
class Calendar:
    """A weekly template of appointment times per provider."""

    template: dict[int, tuple[tuple[str, time], ...]]  # weekday -> (provider, start)
    slot_minutes: int = 30

    @classmethod
    def load(cls, path: str | Path = DEFAULT_CALENDAR) -> Calendar:
        """Read a calendar file.

        Raises:
            AgentError: the file is missing or malformed (one line saying what is wrong).
        """
        try:
            data = yaml.safe_load(Path(path).read_text())
        except OSError as exc:
            raise AgentError(f"cannot read calendar file {path}: {exc.strerror or exc}") from None
        except yaml.YAMLError as exc:
            # PyYAML's own message spans several lines (with a caret under the text).
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            problem = getattr(exc, "problem", None) or " ".join(str(exc).split())
            raise AgentError(f"calendar file {path} is not valid YAML{where}: {problem}") from None
        if not isinstance(data, dict) or not isinstance(data.get("weekly"), dict):
            raise AgentError(f"calendar file {path} needs a 'weekly' table")
        template: dict[int, tuple[tuple[str, time], ...]] = {}
        for day, entries in data["weekly"].items():
            if str(day).lower() not in _WEEKDAYS or not isinstance(entries, list):
                raise AgentError(f"calendar file {path}: bad weekday entry {day!r}")
            slots: list[tuple[str, time]] = []
            for entry in entries:
                try:
                    provider = str(entry["provider"])
                    for start in entry["times"]:
                        hour, minute = (int(x) for x in str(start).split(":"))
                        slots.append((provider, time(hour, minute)))
                except (KeyError, TypeError, ValueError):
                    raise AgentError(
                        f"calendar file {path}: bad entry under {day}: {entry!r} "
                        '(needs a provider and times as quoted "HH:MM")'
                    ) from None
            template[_WEEKDAYS.index(str(day).lower())] = tuple(sorted(slots, key=lambda s: s[1]))
        minutes = data.get("slot_minutes", 30)
        if not isinstance(minutes, int) or isinstance(minutes, bool) or minutes <= 0:
            raise AgentError(
                f"calendar file {path}: slot_minutes must be a positive whole "
                f"number, not {minutes!r}"
            )
        return cls(template, minutes)

    def open_slots(self, after: datetime, days: int = 14) -> tuple[Slot, ...]:
        """Every slot starting after ``after`` within ``days`` days, soonest first."""
        out: list[Slot] = []
        for offset in range(days + 1):
            day = (after + timedelta(days=offset)).date()
            for provider, start in self.template.get(day.weekday(), ()):
                when = datetime.combine(day, start, tzinfo=after.tzinfo)
                if when > after:
                    slot_id = f"{when:%Y%m%dT%H%M}-{provider.lower().replace(' ', '-')}"
                    out.append(Slot(slot_id, when, provider))
        return tuple(sorted(out, key=lambda s: (s.start, s.provider)))
