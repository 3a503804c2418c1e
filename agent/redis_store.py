"""`StateStore` on Redis: shared across instances, PHI sealed, calls carry on when it goes away.

Theory of operation. Keys (after ``prefix``), each with the TTL (an hour by default):

* ``slot:<slot id>`` = the holding call's id. Booking is ``SET key call NX EX ttl``, atomic
  in Redis, so two instances racing for one slot get one True and one False; releasing is a
  compare-and-delete script, so only the holder can release.
* ``call:<call id>`` = the call's `CallSnapshot`, JSON sealed with AES-GCM (`agent.sealing`),
  the key name as associated data. Nothing a caller said is readable in Redis.

Every write lands in local state first (this instance's snapshots and bookings), then goes
to Redis through a bounded write-behind queue coalesced by key (a newer snapshot replaces a
queued older one). One writer task, `run`, drains the queue while Redis answers, pings it
while idle, and while it does not, reconnects with exponential backoff (`agent.retry`).
When it comes back, everything held locally is queued again and written back: a Redis that
restarted without persistence gets this instance's state back.

While Redis is away a call never waits for it: snapshots queue up, reads answer from local
state, and a slot is booked against the bookings this instance knows (its own, and those
seen at the last read). That booking cannot be atomic across instances; if another instance
took the same slot meanwhile, the write-back finds it held and reports a conflict
(``slot_conflict`` log line and metric) for staff to rebook. Refusing every booking instead
would fail every caller for the length of the outage.

This module is an asyncio shell (STYLE rule 2, like ``agent/providers/*``): the runtime
creates its one task, ``run()``.
"""

from __future__ import annotations

import asyncio
import collections
import json
import random
import time
from dataclasses import dataclass
from enum import Enum
from typing import Any

import structlog
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError, ResponseError

from agent.metrics import (
    REDIS_CONNECTED,
    SLOT_CONFLICTS,
    STATE_LATENCY,
    STATE_OPERATIONS,
    STATE_WRITEBACK_DEPTH,
    STATE_WRITEBACK_DROPPED,
)
from agent.record import IntakeRecord
from agent.retry import Backoff
from agent.sealing import Sealer, SealError
from agent.store import CallSnapshot

log = structlog.get_logger("voiceagent.state")

OPERATION_TIMEOUT_S = 0.5  # a call waits at most this long for Redis before using local state
PING_INTERVAL_S = 1.0  # while idle: how soon an outage is noticed
QUEUE_LIMIT = 10_000  # queued writes; beyond this the oldest are dropped (and counted)
RECONNECT = Backoff(base_s=0.1, cap_s=5.0)
SCAN_LIMIT = 100_000  # slot keys read by one booked_slots (bounded loop)

# Delete the slot only if this call holds it (KEYS[1] slot key, ARGV[1] call id).
_RELEASE = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
)
_UNAVAILABLE = (RedisError, OSError, TimeoutError)


class _Op(Enum):
    SET = "set"  # a snapshot
    BOOK = "book"  # SET NX
    RELEASE = "release"  # compare-and-delete


@dataclass(frozen=True, slots=True)
class _Write:
    """One queued write."""

    key: str  # logical key, without the prefix
    value: bytes
    op: _Op


class RedisStore:
    """Shared `StateStore` with a local fallback and write-behind."""

    backend = "redis"

    def __init__(
        self,
        url: str,
        *,
        prefix: str,
        ttl_seconds: int,
        sealer: Sealer,
        client: Redis | None = None,
        queue_limit: int = QUEUE_LIMIT,
    ) -> None:
        self.prefix = prefix
        self.ttl_seconds = ttl_seconds
        self.queue_limit = queue_limit
        self._sealer = sealer
        self._redis = client or Redis.from_url(
            url,
            socket_timeout=OPERATION_TIMEOUT_S,
            socket_connect_timeout=OPERATION_TIMEOUT_S,
            retry=Retry(NoBackoff(), 0),  # reconnecting is ours to pace, not the client's
        )
        self.connected = False
        self._failures = 0
        self._queue: collections.OrderedDict[str, _Write] = collections.OrderedDict()
        self._wake = asyncio.Event()
        self._calls: dict[str, CallSnapshot] = {}  # this instance's calls in progress
        self._mine: dict[str, str] = {}  # slot id -> call id, booked here
        self._booked_at: dict[str, float] = {}  # slot id -> monotonic time of the booking
        self._ended: set[str] = set()  # ended calls whose last snapshot is still queued
        self._seen: set[str] = set()  # slot ids booked anywhere, as of the last read
        self._closing = False

    # ----------------------------------------------------------------- StateStore
    async def book_slot(self, slot_id: str, call_id: str) -> bool:
        """SET NX in Redis; against known bookings while Redis is away."""
        key = f"slot:{slot_id}"
        started = time.perf_counter()
        if self.connected:
            try:
                async with asyncio.timeout(OPERATION_TIMEOUT_S):
                    ok = await self._redis.set(self._k(key), call_id, nx=True, ex=self.ttl_seconds)
                    if not ok:
                        holder = _raw(await self._redis.get(self._k(key)))
                        ok = holder == call_id.encode()
                self._seen.add(slot_id)
                if ok:
                    self._mine[slot_id] = call_id
                    self._booked_at[slot_id] = time.monotonic()
                self._count("book_slot", "ok", started)
                return bool(ok)
            except _UNAVAILABLE as exc:
                self._lost(exc)
        mine = self._mine.get(slot_id)
        if mine is not None:
            ok = mine == call_id
        else:
            ok = slot_id not in self._seen
        if ok:
            self._mine[slot_id] = call_id
            self._booked_at[slot_id] = time.monotonic()
            self._seen.add(slot_id)
            self._enqueue(_Write(key, call_id.encode(), _Op.BOOK))
        self._count("book_slot", "local", started)
        return ok

    async def booked_slots(self) -> set[str]:
        """Every booked slot: Redis's, plus this instance's not yet written back."""
        started = time.perf_counter()
        if self.connected:
            try:
                found: set[str] = set()
                async with asyncio.timeout(4 * OPERATION_TIMEOUT_S):
                    pattern = self._k("slot:*")
                    async for name in self._redis.scan_iter(match=pattern, count=500):
                        found.add(name.decode()[len(self._k("slot:")) :])
                        if len(found) >= SCAN_LIMIT:
                            break
                self._seen = found | set(self._mine)
                self._count("booked_slots", "ok", started)
                return set(self._seen)
            except _UNAVAILABLE as exc:
                self._lost(exc)
        self._count("booked_slots", "local", started)
        return self._seen | set(self._mine)

    async def release_slot(self, slot_id: str, call_id: str) -> None:
        """Compare-and-delete in Redis; locally at once."""
        started = time.perf_counter()
        key = f"slot:{slot_id}"
        if self._mine.get(slot_id) == call_id:
            del self._mine[slot_id]
            self._booked_at.pop(slot_id, None)
            self._seen.discard(slot_id)
        if self.connected:
            try:
                async with asyncio.timeout(OPERATION_TIMEOUT_S):
                    await self._redis.eval(_RELEASE, 1, self._k(key), call_id)
                self._queue.pop(key, None)
                self._count("release_slot", "ok", started)
                return
            except _UNAVAILABLE as exc:
                self._lost(exc)
        # Replaces a queued booking; deletes one that reached Redis before the outage.
        self._enqueue(_Write(key, call_id.encode(), _Op.RELEASE))
        self._count("release_slot", "local", started)

    async def save_call(self, snapshot: CallSnapshot) -> None:
        """Keep it locally and queue the sealed write (the call never waits for Redis)."""
        started = time.perf_counter()
        self._calls[snapshot.call_id] = snapshot
        self._enqueue(self._sealed(snapshot))
        self._count("save_call", "ok" if self.connected else "local", started)

    async def load_call(self, call_id: str) -> CallSnapshot | None:
        """This instance's copy, else Redis's (None when it has none or is away)."""
        started = time.perf_counter()
        local = self._calls.get(call_id)
        if local is not None or not self.connected:
            self._count("load_call", "local", started)
            return local
        key = f"call:{call_id}"
        try:
            async with asyncio.timeout(OPERATION_TIMEOUT_S):
                sealed = _raw(await self._redis.get(self._k(key)))
        except _UNAVAILABLE as exc:
            self._lost(exc)
            self._count("load_call", "local", started)
            return None
        self._count("load_call", "ok", started)
        return None if sealed is None else self.open_snapshot(key, sealed)

    async def end_call(self, call_id: str) -> None:
        """Drop the local copy once its last write has left the queue.

        Until then a reconnect still replays it. Bookings made here are kept for the TTL
        (as in Redis), so a Redis that restarts empty gets them back.
        """
        if f"call:{call_id}" in self._queue:
            self._ended.add(call_id)  # `_drain_one` drops it after writing
        else:
            self._calls.pop(call_id, None)
        horizon = time.monotonic() - self.ttl_seconds
        for slot_id in [s for s, at in self._booked_at.items() if at < horizon]:
            self._booked_at.pop(slot_id, None)
            self._mine.pop(slot_id, None)

    # ----------------------------------------------------------------- the writer task
    async def connect(self) -> bool:
        """One bounded attempt to reach Redis (at start, before the first call)."""
        try:
            async with asyncio.timeout(OPERATION_TIMEOUT_S * 2):
                await self._redis.ping()
        except _UNAVAILABLE as exc:
            self._lost(exc)
            return False
        self._found()
        return True

    async def run(self) -> None:
        """Drain the queue, ping while idle, reconnect with backoff (until cancelled)."""
        while not self._closing:
            if not self.connected:
                if not await self.connect():
                    await self._pause(RECONNECT.delay_s(self._failures, random.uniform(0.5, 1.0)))
                continue
            if self._queue:
                await self._drain_one()
                continue
            if not await self._pause(PING_INTERVAL_S):
                await self.connect()

    async def flush(self, timeout_s: float) -> bool:
        """Write what is queued, for at most ``timeout_s`` (at shutdown); whether all went."""
        try:
            async with asyncio.timeout(timeout_s):
                while self._queue:
                    if not self.connected and not await self.connect():
                        return False
                    await self._drain_one()
        except TimeoutError:
            return False
        return True

    async def aclose(self) -> None:
        """Stop the writer loop and close the connections."""
        self._closing = True
        self._wake.set()
        await self._redis.aclose()

    @property
    def queued(self) -> int:
        """Writes waiting for Redis."""
        return len(self._queue)

    async def _drain_one(self) -> None:
        key, write = next(iter(self._queue.items()))
        started = time.perf_counter()
        try:
            async with asyncio.timeout(OPERATION_TIMEOUT_S):
                if write.op is _Op.BOOK:
                    await self._write_booking(write)
                elif write.op is _Op.RELEASE:
                    await self._redis.eval(_RELEASE, 1, self._k(key), write.value)
                else:
                    await self._redis.set(self._k(key), write.value, ex=self.ttl_seconds)
        except ResponseError as exc:
            # Redis answered but refused (out of memory, a key of another type): retrying
            # would refuse again, so this write is dropped rather than block the queue.
            log.warning("state_write_refused", key=key, error=type(exc).__name__)
            self._count("writeback", "error", started)
        except _UNAVAILABLE as exc:
            self._lost(exc)
            self._count("writeback", "error", started)
            return
        if self._queue.get(key) is write:  # not replaced by a newer value meanwhile
            del self._queue[key]
            call_id = key[len("call:") :]
            if key.startswith("call:") and call_id in self._ended:
                self._ended.discard(call_id)
                self._calls.pop(call_id, None)
        STATE_WRITEBACK_DEPTH.set(len(self._queue))
        self._count("writeback", "ok", started)

    async def _write_booking(self, write: _Write) -> None:
        full = self._k(write.key)
        if await self._redis.set(full, write.value, nx=True, ex=self.ttl_seconds):
            return
        holder = _raw(await self._redis.get(full))
        if holder is not None and holder != write.value:
            SLOT_CONFLICTS.inc()
            log.warning(
                "slot_conflict",
                slot_id=write.key[len("slot:") :],
                call_id=write.value.decode(),
                held_by=holder.decode(),
            )

    async def _pause(self, seconds: float) -> bool:
        """Wait up to ``seconds``, or until woken (a new write, or closing); whether woken."""
        try:
            async with asyncio.timeout(seconds):
                await self._wake.wait()
        except TimeoutError:
            return False
        finally:
            self._wake.clear()
        return True

    # ----------------------------------------------------------------- helpers
    def _k(self, key: str) -> str:
        return self.prefix + key

    def _sealed(self, snapshot: CallSnapshot) -> _Write:
        key = f"call:{snapshot.call_id}"
        body = {"phase": snapshot.phase, "record": snapshot.record.model_dump(mode="json")}
        plain = _json(body)
        return _Write(key, self._sealer.seal(plain, key.encode()), _Op.SET)

    def open_snapshot(self, key: str, sealed: bytes) -> CallSnapshot | None:
        """Decrypt a stored snapshot (None, logged, when no configured key opens it)."""
        try:
            body = _unjson(self._sealer.open(sealed, key.encode()))
        except SealError as exc:
            log.warning("state_unreadable", key=key, error=str(exc))
            return None
        record = IntakeRecord.model_validate(body["record"])
        return CallSnapshot(record.call_id, str(body["phase"]), record)

    def _enqueue(self, write: _Write) -> None:
        self._queue.pop(write.key, None)  # a newer value goes to the back
        self._queue[write.key] = write
        while len(self._queue) > self.queue_limit:
            self._queue.popitem(last=False)
            STATE_WRITEBACK_DROPPED.inc()
        STATE_WRITEBACK_DEPTH.set(len(self._queue))
        self._wake.set()

    def _lost(self, exc: BaseException) -> None:
        self._failures += 1
        if self.connected or self._failures == 1:  # once per outage
            log.warning("redis_unavailable", error=type(exc).__name__, queued=len(self._queue))
        self.connected = False
        REDIS_CONNECTED.set(0)

    def _found(self) -> None:
        was_lost = self._failures > 0
        self._failures = 0
        self.connected = True
        REDIS_CONNECTED.set(1)
        if was_lost:
            # Redis may have restarted empty: queue everything this instance holds again.
            for snapshot in self._calls.values():
                if f"call:{snapshot.call_id}" not in self._queue:
                    self._enqueue(self._sealed(snapshot))
            for slot_id, call_id in self._mine.items():
                if f"slot:{slot_id}" not in self._queue:
                    self._enqueue(_Write(f"slot:{slot_id}", call_id.encode(), _Op.BOOK))
            log.info("redis_reconnected", replaying=len(self._queue))

    def _count(self, operation: str, result: str, started: float) -> None:
        STATE_OPERATIONS.labels(self.backend, operation, result).inc()
        STATE_LATENCY.labels(self.backend, operation).observe(time.perf_counter() - started)


def _raw(value: bytes | str | None) -> bytes | None:
    """A reply as bytes (the client does not decode responses; its types allow str)."""
    return value.encode() if isinstance(value, str) else value


def _json(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


def _unjson(data: bytes) -> dict[str, Any]:
    value = json.loads(data)
    if not isinstance(value, dict):
        raise SealError("a sealed snapshot is not a JSON object")
    return value
