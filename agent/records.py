"""The records store: intake records and the caller's audio clips, durably, in SQLite.

`RecordsStore` is the interface (PostgreSQL can implement it later); `SqliteRecords` is the
embedded default. Writes are upserts in a transaction with ``synchronous=FULL`` in WAL mode,
so a record written before a crash is there after it. The runtime saves a record at every
phase change and when the call ends (complete or not), so nothing a caller said is lost
because the call ended badly. Calls are synchronous; the asyncio runtime runs them in a
worker thread.

The outbox (with ``outbox=True``, when email is configured): the save that ends an intake
(its ``ended_at`` is set: complete, incomplete, urgent, transferred or a callback) also
inserts an ``outbox`` row in the same transaction, so an intake can never be stored without
its email being owed, even if the process dies the next instant. `agent.mailer` sends what
the outbox holds and marks a row sent only after the SMTP server accepted the message: the
send is at-least-once, and the Message-ID is the same on every attempt, so a rare duplicate
(a crash between the server's acceptance and the mark) is recognisable as one.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from agent.metrics import OUTBOX_DEPTH, RECORDS_STORED
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
CREATE TABLE IF NOT EXISTS outbox (
    call_id TEXT PRIMARY KEY REFERENCES intakes (call_id),
    enqueued_at TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL DEFAULT 0,
    last_error TEXT,
    sent_at REAL
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (sent_at, next_attempt_at);
"""


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """One intake email owed."""

    call_id: str
    attempts: int  # failed attempts so far
    next_attempt_at: float  # Unix time


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

    def __init__(
        self,
        path: str | Path,
        *,
        outbox: bool = False,
        on_outbox: Callable[[], None] | None = None,
    ) -> None:
        """Open (or create) the database.

        Args:
            path: the SQLite file.
            outbox: queue an email with each intake's final save.
            on_outbox: called (from the saving thread) after an email was queued.
        """
        self.path = Path(path)
        self.outbox = outbox
        self._on_outbox = on_outbox
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
                queued = self.outbox and record.ended_at is not None
                if queued:
                    self._db.execute(
                        "INSERT OR IGNORE INTO outbox (call_id, enqueued_at) VALUES (?, ?)",
                        (record.call_id, record.ended_at.isoformat() if record.ended_at else ""),
                    )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        RECORDS_STORED.labels(record.status.value).inc()
        if queued:
            OUTBOX_DEPTH.set(self.outbox_depth())
            if self._on_outbox is not None:
                self._on_outbox()

    # ----------------------------------------------------------------- the outbox
    def outbox_due(self, now: float, limit: int = 50) -> list[OutboxEntry]:
        """Unsent emails whose next attempt is due at ``now`` (Unix time), oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT call_id, attempts, next_attempt_at FROM outbox "
                "WHERE sent_at IS NULL AND next_attempt_at <= ? ORDER BY enqueued_at LIMIT ?",
                (now, limit),
            ).fetchall()
        return [OutboxEntry(r[0], int(r[1]), float(r[2])) for r in rows]

    def outbox_next_attempt(self) -> float | None:
        """When the earliest unsent email is due (Unix time), or None when none is owed."""
        with self._lock:
            row = self._db.execute(
                "SELECT MIN(next_attempt_at) FROM outbox WHERE sent_at IS NULL"
            ).fetchone()
        return None if row[0] is None else float(row[0])

    def outbox_depth(self) -> int:
        """Emails owed."""
        with self._lock:
            row = self._db.execute("SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL").fetchone()
        return int(row[0])

    def outbox_sent(self, call_id: str, now: float) -> None:
        """The SMTP server accepted the email: never send it again."""
        with self._lock:
            self._db.execute(
                "UPDATE outbox SET sent_at = ?, last_error = NULL WHERE call_id = ?",
                (now, call_id),
            )
        OUTBOX_DEPTH.set(self.outbox_depth())

    def outbox_failed(self, call_id: str, error: str, next_attempt_at: float) -> None:
        """An attempt failed (``error`` is a class of failure, never a server's text)."""
        with self._lock:
            self._db.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?, "
                "next_attempt_at = ? WHERE call_id = ? AND sent_at IS NULL",
                (error, next_attempt_at, call_id),
            )

    def outbox_status(self, call_id: str) -> tuple[int, float | None] | None:
        """(failed attempts, sent at) of one intake's email, or None when none is owed."""
        with self._lock:
            row = self._db.execute(
                "SELECT attempts, sent_at FROM outbox WHERE call_id = ?", (call_id,)
            ).fetchone()
        return None if row is None else (int(row[0]), None if row[1] is None else float(row[1]))

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
