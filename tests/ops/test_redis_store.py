"""RedisStore against a real redis-server: atomic bookings, sealed snapshots, outages.

Each test starts its own redis-server on a loopback port (nothing on disk), and kills and
restarts it where the test is about an outage. Waits are bounded; the reconnect backoff
starts at 0.1 s, so a restart is noticed within about a second.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Iterator
from datetime import date, datetime
from pathlib import Path

import pytest
from redis.asyncio import Redis

from agent.metrics import REGISTRY
from agent.record import Demographics, Insurance, IntakeRecord
from agent.redis_store import RedisStore
from agent.sealing import Sealer
from agent.store import CallSnapshot
from tests.ops.peers import RedisServer

pytestmark = pytest.mark.peer

KEY = os.urandom(32)
PREFIX = "clinic-a:"


def _record(call_id: str) -> IntakeRecord:
    return IntakeRecord(
        call_id=call_id,
        started_at=datetime(2026, 11, 27, 9, 0),
        phase_reached="DEMOGRAPHICS",
        caller_id="2125550134",
        insurance=Insurance(payer="Aetna", member_id="W123456789"),
        demographics=Demographics(
            first_name="Ann", last_name="Lee", date_of_birth=date(1975, 11, 2)
        ),
    )


PHI = [b"2125550134", b"W123456789", b"Ann", b"1975-11-02", b"Aetna"]


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.kill()


def _store(
    server: RedisServer, keys: list[bytes] | None = None, queue_limit: int = 10_000
) -> RedisStore:
    return RedisStore(
        server.url,
        prefix=PREFIX,
        ttl_seconds=600,
        sealer=Sealer(keys or [KEY]),
        queue_limit=queue_limit,
    )


@pytest.fixture
async def raw(redis_server: RedisServer) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_server.url)
    yield client
    await client.aclose()


async def _until(predicate: object, within_s: float = 10.0) -> None:
    assert callable(predicate)
    async with asyncio.timeout(within_s):
        # Polling another process's state (Redis), which cannot set an asyncio.Event here.
        while not await predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.02)


async def test_two_instances_racing_for_one_slot_never_both_get_it(
    redis_server: RedisServer, raw: Redis
) -> None:
    a, b = _store(redis_server), _store(redis_server)
    assert await a.connect() and await b.connect()
    try:
        for i in range(200):
            slot = f"20261130T{i:04d}-dr.-rivera"
            # Three calls on each "server" ask for the same slot at the same moment.
            contenders = [(a, f"a-{i}-{n}") for n in range(3)] + [
                (b, f"b-{i}-{n}") for n in range(3)
            ]
            results = await asyncio.gather(*(s.book_slot(slot, c) for s, c in contenders))
            winners = [c for (_, c), ok in zip(contenders, results, strict=True) if ok]
            assert len(winners) == 1, (slot, winners)
            assert await raw.get(PREFIX + "slot:" + slot) == winners[0].encode()
        assert len(await a.booked_slots()) == len(await b.booked_slots()) == 200
        assert 0 < await raw.ttl(PREFIX + "slot:20261130T0000-dr.-rivera") <= 600
    finally:
        await a.aclose()
        await b.aclose()


async def test_only_the_holder_releases_a_slot_and_rebooking_is_idempotent(
    redis_server: RedisServer, raw: Redis
) -> None:
    a, b = _store(redis_server), _store(redis_server)
    assert await a.connect() and await b.connect()
    try:
        assert await a.book_slot("s1", "call-1")
        assert await a.book_slot("s1", "call-1")  # the same call asking again
        await b.release_slot("s1", "call-2")  # not the holder: nothing happens
        assert not await b.book_slot("s1", "call-2")
        await a.release_slot("s1", "call-1")
        assert await raw.exists(PREFIX + "slot:s1") == 0
        assert await b.book_slot("s1", "call-2")
    finally:
        await a.aclose()
        await b.aclose()


async def test_snapshots_are_sealed_in_redis_and_another_instance_reads_them(
    redis_server: RedisServer, raw: Redis
) -> None:
    a, b = _store(redis_server), _store(redis_server)
    assert await a.connect() and await b.connect()
    writer = asyncio.create_task(a.run())
    try:
        await a.save_call(CallSnapshot("call-7", "DEMOGRAPHICS", _record("call-7")))

        async def written() -> bool:
            return a.queued == 0 and await raw.exists(PREFIX + "call:call-7") == 1

        await _until(written)
        stored = await raw.get(PREFIX + "call:call-7")
        assert isinstance(stored, bytes)
        for value in PHI:
            assert value not in stored, value
        assert 0 < await raw.ttl(PREFIX + "call:call-7") <= 600
        seen = await b.load_call("call-7")  # the other instance: from Redis
        assert seen is not None and seen.phase == "DEMOGRAPHICS"
        assert seen.record == _record("call-7")
        body = json.loads(Sealer([KEY]).open(stored, b"call:call-7"))
        assert body["record"]["demographics"]["first_name"] == "Ann"
    finally:
        writer.cancel()
        await a.aclose()
        await b.aclose()


async def test_after_a_key_rotation_old_and_new_values_open(
    redis_server: RedisServer, raw: Redis
) -> None:
    new = os.urandom(32)
    old_store, rotated, stale = (
        _store(redis_server, [KEY]),
        _store(redis_server, [new, KEY]),
        _store(redis_server, [KEY]),
    )
    for s in (old_store, rotated, stale):
        assert await s.connect()
    try:
        await old_store.save_call(CallSnapshot("old", "INSURANCE", _record("old")))
        assert await old_store.flush(5.0)
        await rotated.save_call(CallSnapshot("new", "INSURANCE", _record("new")))
        assert await rotated.flush(5.0)
        assert (await rotated.load_call("old")) is not None  # sealed with the old key
        assert (await stale.load_call("new")) is None  # not given the new key: unreadable
        assert (await stale.load_call("old")) is not None
    finally:
        for s in (old_store, rotated, stale):
            await s.aclose()


async def test_when_redis_dies_calls_run_on_local_state_and_it_is_written_back(
    redis_server: RedisServer, raw: Redis
) -> None:
    store = _store(redis_server)
    assert await store.connect()
    writer = asyncio.create_task(store.run())
    try:
        assert await store.book_slot("before", "call-1")
        redis_server.kill()
        # Nothing waits for the dead server longer than the operation timeout.
        async with asyncio.timeout(2.0):
            await store.save_call(CallSnapshot("call-1", "ADDRESS", _record("call-1")))
            assert await store.book_slot("during", "call-1")
            assert not await store.book_slot("during", "call-2")  # still one holder here
            assert await store.book_slot("given-back", "call-1")
            await store.release_slot("given-back", "call-1")  # replaces the queued booking
            assert {"before", "during"} <= await store.booked_slots()
        assert not store.connected
        snapshot = await store.load_call("call-1")
        assert snapshot is not None and snapshot.phase == "ADDRESS"
        await store.end_call("call-1")  # the call ends while Redis is still away

        redis_server.start()  # empty: nothing survived the crash

        async def written_back() -> bool:
            return store.connected and store.queued == 0

        await _until(written_back)
        assert await raw.get(PREFIX + "slot:before") == b"call-1"
        assert await raw.get(PREFIX + "slot:during") == b"call-1"
        assert await raw.exists(PREFIX + "slot:given-back") == 0
        stored = await raw.get(PREFIX + "call:call-1")
        assert isinstance(stored, bytes) and all(v not in stored for v in PHI)
        body = json.loads(Sealer([KEY]).open(stored, b"call:call-1"))
        assert body["phase"] == "ADDRESS"
        assert body["record"]["insurance"]["member_id"] == "W123456789"
    finally:
        writer.cancel()
        await store.aclose()


async def test_a_slot_taken_elsewhere_during_the_outage_is_reported_as_a_conflict(
    redis_server: RedisServer, raw: Redis
) -> None:
    a = _store(redis_server)
    assert await a.connect()
    redis_server.kill()
    assert await a.book_slot("s9", "call-a")  # on local state
    redis_server.start()
    b = _store(redis_server)
    assert await b.connect()
    assert await b.book_slot("s9", "call-b")  # Redis came back empty: b gets it
    conflicts = REGISTRY.get_sample_value("voiceagent_slot_conflicts_total") or 0.0
    try:
        assert await a.flush(5.0)  # a reconnects and writes back: the slot is held
        assert await raw.get(PREFIX + "slot:s9") == b"call-b"  # the first holder keeps it
        assert REGISTRY.get_sample_value("voiceagent_slot_conflicts_total") == conflicts + 1
        assert await a.booked_slots() >= {"s9"}
    finally:
        await a.aclose()
        await b.aclose()


async def test_the_write_behind_queue_is_bounded_and_coalesces_by_key(
    redis_server: RedisServer,
) -> None:
    store = _store(redis_server, queue_limit=5)
    redis_server.kill()
    assert not await store.connect()
    for n in range(3):  # three snapshots of one call: one queued write
        await store.save_call(CallSnapshot("c", f"P{n}", _record("c")))
    assert store.queued == 1
    for n in range(20):
        await store.save_call(CallSnapshot(f"c{n}", "GREETING", _record(f"c{n}")))
    assert store.queued == 5
    await store.aclose()
