"""The records store: intake records and the caller's audio clips, durably, in SQLite.

`RecordsStore` is the interface (PostgreSQL can implement it later); `SqliteRecords` is the
embedded default. Writes are upserts in a transaction with ``synchronous=FULL`` in WAL mode,
so a record written before a crash is there after it. The runtime saves a record at every
phase change and when the call ends (complete or not), so nothing a caller said is lost
because the call ended badly. Calls are synchronous; the asyncio runtime runs them in a
worker thread.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Protocol

from agent.record import IntakeRecord

_SCHEMA = """
CREATE TABLE IF NOT EXISTS intakes (
    call_id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    phase_reached TEXT NOT NULL,
    started_at TEXT NOT NULL,
    updated_seq INTEGER NOT NULL,
    record_json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS intakes_started ON intakes (started_at);
CREATE TABLE IF NOT EXISTS clips (
    call_id TEXT NOT NULL,
    name TEXT NOT NULL,
    wav BLOB NOT NULL,
    PRIMARY KEY (call_id, name)
);
"""


class RecordsStore(Protocol):
    """Where finished and unfinished intakes live."""

    def save(self, record: IntakeRecord) -> None:
        """Insert or replace the record."""

    def get(self, call_id: str) -> IntakeRecord | None:
        """One record, or None."""

    def list(self, limit: int = 100) -> list[IntakeRecord]:
        """The newest records first."""


class SqliteRecords:
    """`RecordsStore` on one SQLite file (thread-safe: one connection, one lock)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        # Carry the save counter over from the file: restarting at 0 would rank records saved
        # after a restart below older saves in `list`.
        self._seq: int = self._db.execute(
            "SELECT COALESCE(MAX(updated_seq), 0) FROM intakes"
        ).fetchone()[0]

    def save(self, record: IntakeRecord) -> None:
        """Insert or replace ``record`` durably."""
        with self._lock:
            self._seq += 1
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(
                    "INSERT INTO intakes (call_id, status, phase_reached, started_at, "
                    "updated_seq, record_json) VALUES (?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT(call_id) DO UPDATE SET status=excluded.status, "
                    "phase_reached=excluded.phase_reached, updated_seq=excluded.updated_seq, "
                    "record_json=excluded.record_json",
                    (
                        record.call_id,
                        record.status.value,
                        record.phase_reached,
                        record.started_at.isoformat(),
                        self._seq,
                        record.model_dump_json(),
                    ),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def save_clip(self, call_id: str, name: str, wav: bytes) -> None:
        """Keep one audio clip of the caller (a free-text answer) with the record."""
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO clips (call_id, name, wav) VALUES (?, ?, ?)",
                (call_id, name, wav),
            )

    def clip(self, call_id: str, name: str) -> bytes | None:
        """One stored clip."""
        with self._lock:
            row = self._db.execute(
                "SELECT wav FROM clips WHERE call_id = ? AND name = ?", (call_id, name)
            ).fetchone()
        return None if row is None else bytes(row[0])

    def get(self, call_id: str) -> IntakeRecord | None:
        """The record of ``call_id``."""
        with self._lock:
            row = self._db.execute(
                "SELECT record_json FROM intakes WHERE call_id = ?", (call_id,)
            ).fetchone()
        return None if row is None else IntakeRecord.model_validate_json(row[0])

    def list(self, limit: int = 100) -> list[IntakeRecord]:
        """The newest ``limit`` records."""
        with self._lock:
            rows = self._db.execute(
                "SELECT record_json FROM intakes ORDER BY started_at DESC, updated_seq DESC "
                "LIMIT ?",
                (limit,),
            ).fetchall()
        return [IntakeRecord.model_validate_json(r[0]) for r in rows]

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()
