"""Call state shared across calls (and, with Redis, across instances): one interface.

`StateStore` holds what must be consistent between concurrent calls, slot bookings, and a
snapshot of each call's conversation state (the record of what the caller has given so
far, and the phase), written as the call progresses so that another instance, or an
operator, can see where a call stands. `MemoryStore` is the default when no Redis URL is
configured; `agent.redis_store.RedisStore` is the shared one.

`MemoryStore.book_slot` is atomic without a lock: the check and the set run with no
``await`` between them, and one event loop runs one coroutine step at a time, so two callers
can never hold the same slot.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from agent.metrics import STATE_OPERATIONS
from agent.record import IntakeRecord


@dataclass(frozen=True, slots=True)
class CallSnapshot:
    """Where one call stands. ``record`` is PHI: stores encrypt it at rest."""

    call_id: str
    phase: str
    record: IntakeRecord


class StateStore(Protocol):
    """Shared call state."""

    backend: str  # "memory" or "redis": a metric label

    async def book_slot(self, slot_id: str, call_id: str) -> bool:
        """Book ``slot_id`` for ``call_id``; False when someone else holds it."""

    async def booked_slots(self) -> set[str]:
        """Every booked slot id."""

    async def release_slot(self, slot_id: str, call_id: str) -> None:
        """Give a slot back (only its holder can)."""

    async def save_call(self, snapshot: CallSnapshot) -> None:
        """Keep the latest snapshot of a call (never blocks the call on the backend)."""

    async def load_call(self, call_id: str) -> CallSnapshot | None:
        """The latest snapshot of a call, or None."""

    async def end_call(self, call_id: str) -> None:
        """The call is over: local copies may go (a shared copy expires with its TTL)."""


class MemoryStore:
    """In-process `StateStore`.

    Its operations are counted (``voiceagent_state_operations``) but not timed: they take
    microseconds, and reading a clock here would break STYLE rule 1 for nothing.
    """

    backend = "memory"

    def __init__(self) -> None:
        self._bookings: dict[str, str] = {}
        self._calls: dict[str, CallSnapshot] = {}

    async def book_slot(self, slot_id: str, call_id: str) -> bool:
        """Atomic check-and-set (no await between the check and the set)."""
        STATE_OPERATIONS.labels(self.backend, "book_slot", "ok").inc()
        holder = self._bookings.get(slot_id)
        if holder is not None and holder != call_id:
            return False
        self._bookings[slot_id] = call_id
        return True

    async def booked_slots(self) -> set[str]:
        """Every booked slot id."""
        STATE_OPERATIONS.labels(self.backend, "booked_slots", "ok").inc()
        return set(self._bookings)

    async def release_slot(self, slot_id: str, call_id: str) -> None:
        """Give a slot back."""
        STATE_OPERATIONS.labels(self.backend, "release_slot", "ok").inc()
        if self._bookings.get(slot_id) == call_id:
            del self._bookings[slot_id]

    async def save_call(self, snapshot: CallSnapshot) -> None:
        """Keep the snapshot (the process's memory is the store)."""
        STATE_OPERATIONS.labels(self.backend, "save_call", "ok").inc()
        self._calls[snapshot.call_id] = snapshot

    async def load_call(self, call_id: str) -> CallSnapshot | None:
        """The latest snapshot."""
        STATE_OPERATIONS.labels(self.backend, "load_call", "ok").inc()
        return self._calls.get(call_id)

    async def end_call(self, call_id: str) -> None:
        """Drop a finished call's snapshot (its record is in the records store)."""
        self._calls.pop(call_id, None)
