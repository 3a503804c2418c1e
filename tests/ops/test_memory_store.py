"""MemoryStore, the default without Redis: the same interface, snapshots included."""

from __future__ import annotations

from datetime import datetime

from agent.metrics import REGISTRY
from agent.record import IntakeRecord
from agent.store import CallSnapshot, MemoryStore, StateStore


def _ops(operation: str) -> float:
    labels = {"backend": "memory", "operation": operation, "result": "ok"}
    return REGISTRY.get_sample_value("voiceagent_state_operations_total", labels) or 0.0


async def test_snapshots_are_kept_until_the_call_ends() -> None:
    store: StateStore = MemoryStore()
    record = IntakeRecord(call_id="c1", started_at=datetime(2026, 11, 27, 9, 0))
    saves = _ops("save_call")
    await store.save_call(CallSnapshot("c1", "INSURANCE", record))
    await store.save_call(CallSnapshot("c1", "CHIEF_COMPLAINT", record))
    latest = await store.load_call("c1")
    assert latest is not None and latest.phase == "CHIEF_COMPLAINT"
    assert _ops("save_call") == saves + 2
    await store.end_call("c1")
    assert await store.load_call("c1") is None


async def test_bookings_have_one_holder() -> None:
    store = MemoryStore()
    assert await store.book_slot("s", "a") and not await store.book_slot("s", "b")
    await store.release_slot("s", "b")
    assert await store.booked_slots() == {"s"}
    await store.release_slot("s", "a")
    assert await store.book_slot("s", "b")
