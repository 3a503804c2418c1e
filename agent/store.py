"""Call state shared across calls (and, with Redis, across instances): one interface.

`StateStore` holds what must be consistent between concurrent calls: slot bookings, and a
snapshot of each call's conversation state. `MemoryStore` is the default when no Redis URL is
configured. Its `book_slot` is atomic without a lock: the check and the set run with no
``await`` between them, and one event loop runs one coroutine step at a time, so two callers
can never hold the same slot.
"""

from __future__ import annotations

from typing import Protocol


class StateStore(Protocol):
    """Shared call state."""

    async def book_slot(self, slot_id: str, call_id: str) -> bool:
        """Book ``slot_id`` for ``call_id``; False when someone else holds it."""

    async def booked_slots(self) -> set[str]:
        """Every booked slot id."""

    async def release_slot(self, slot_id: str, call_id: str) -> None:
        """Give a slot back (only its holder can)."""


class MemoryStore:
    """In-process `StateStore`."""

    def __init__(self) -> None:
        self._bookings: dict[str, str] = {}

    async def book_slot(self, slot_id: str, call_id: str) -> bool:
        """Atomic check-and-set (no await between the check and the set)."""
        holder = self._bookings.get(slot_id)
        if holder is not None and holder != call_id:
            return False
        self._bookings[slot_id] = call_id
        return True

    async def booked_slots(self) -> set[str]:
        """Every booked slot id."""
        return set(self._bookings)

    async def release_slot(self, slot_id: str, call_id: str) -> None:
        """Give a slot back."""
        if self._bookings.get(slot_id) == call_id:
            del self._bookings[slot_id]
