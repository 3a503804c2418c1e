"""SqliteRecords: what a call saved is there after a restart, a crash, or a second save."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from agent.commands import SaveRecord
from agent.events import CallEnded
from agent.record import IntakeRecord, IntakeStatus, Turn
from agent.records import SqliteRecords
from tests.agent.test_conversation import Caller, confirmed

T0 = datetime(2026, 11, 27, 9, 0)


def _record(call_id: str, *, minutes: int = 0, **update: object) -> IntakeRecord:
    base = IntakeRecord(call_id=call_id, started_at=T0 + timedelta(minutes=minutes))
    return base.model_copy(update=update)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "records" / "intake.sqlite3"  # the directory does not exist yet


def test_a_record_survives_closing_and_reopening(db_path: Path) -> None:
    record = _record(
        "call-a",
        status=IntakeStatus.COMPLETE,
        phase_reached="COMPLETE",
        caller_id="+16175550142",
        transcript=[
            Turn(speaker="agent", text="Hello.", phase="INSURANCE", at_s=0.0),
            Turn(speaker="caller", text="aetna", phase="INSURANCE", at_s=3.5),
        ],
        audio_clips=["turn-01.wav"],
    )
    record = record.model_copy(
        update={
            "insurance": record.insurance.model_copy(
                update={"payer": "Aetna", "member_id": "ABC123456"}
            )
        }
    )
    store = SqliteRecords(db_path)
    store.save(record)
    store.close()
    again = SqliteRecords(db_path)
    assert again.get("call-a") == record
    assert again.get("call-unknown") is None
    again.close()


def test_a_save_is_on_disk_even_if_the_process_dies_without_closing(db_path: Path) -> None:
    script = textwrap.dedent(f"""
        import os
        from datetime import datetime
        from agent.record import IntakeRecord
        from agent.records import SqliteRecords
        store = SqliteRecords({str(db_path)!r})
        store.save(IntakeRecord(call_id="call-crash", started_at=datetime(2026, 11, 27, 9),
                                phase_reached="ADDRESS"))
        os._exit(9)  # no close, no atexit, no flush: a crash right after the save
    """)
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, timeout=60, check=False
    )
    assert done.returncode == 9, done.stderr.decode()
    store = SqliteRecords(db_path)
    saved = store.get("call-crash")
    assert saved is not None and saved.phase_reached == "ADDRESS"
    store.close()


def test_saving_again_replaces_the_record(db_path: Path) -> None:
    store = SqliteRecords(db_path)
    store.save(_record("call-a", phase_reached="INSURANCE"))
    store.save(_record("call-a", phase_reached="SUMMARY", status=IntakeStatus.COMPLETE))
    assert [(r.call_id, r.phase_reached, r.status) for r in store.list()] == [
        ("call-a", "SUMMARY", IntakeStatus.COMPLETE)
    ]
    store.close()


def test_list_is_newest_call_first_and_respects_the_limit(db_path: Path) -> None:
    store = SqliteRecords(db_path)
    store.save(_record("call-early", minutes=0))
    store.save(_record("call-late", minutes=30))
    store.save(_record("call-middle", minutes=10))
    assert [r.call_id for r in store.list()] == ["call-late", "call-middle", "call-early"]
    assert [r.call_id for r in store.list(limit=2)] == ["call-late", "call-middle"]
    store.close()


def test_calls_that_started_together_list_the_last_saved_first_even_after_restart(
    db_path: Path,
) -> None:
    store = SqliteRecords(db_path)
    store.save(_record("call-a"))
    store.save(_record("call-b"))
    assert [r.call_id for r in store.list()] == ["call-b", "call-a"]
    store.close()
    store = SqliteRecords(db_path)
    store.save(_record("call-a", phase_reached="ADDRESS"))  # the newest save, after a restart
    assert [r.call_id for r in store.list()] == ["call-a", "call-b"]
    store.close()


def test_clips_are_kept_per_call_and_survive_a_restart(db_path: Path) -> None:
    wav_one = b"RIFF" + bytes(range(256)) * 4
    wav_two = b"RIFF" + b"\x00\xff" * 300
    store = SqliteRecords(db_path)
    store.save_clip("call-a", "turn-03.wav", wav_one)
    store.save_clip("call-b", "turn-03.wav", wav_two)
    store.save_clip("call-a", "turn-05.wav", b"old")
    store.save_clip("call-a", "turn-05.wav", wav_two)  # the same name again replaces it
    store.close()
    store = SqliteRecords(db_path)
    assert store.clip("call-a", "turn-03.wav") == wav_one
    assert store.clip("call-b", "turn-03.wav") == wav_two
    assert store.clip("call-a", "turn-05.wav") == wav_two
    assert store.clip("call-a", "turn-09.wav") is None
    store.close()


def test_every_save_of_a_call_cut_short_leaves_the_latest_state(db_path: Path) -> None:
    store = SqliteRecords(db_path)
    caller = Caller(call_id="call-live")
    caller.start()
    confirmed(caller, "aetna")
    confirmed(caller, "a b c one two three four five six")
    caller.say("a cough for two days")
    caller.event(CallEnded())
    saves = [c.record for c in caller.commands if isinstance(c, SaveRecord)]
    assert [r.phase_reached for r in saves] == ["INSURANCE", "CHIEF_COMPLAINT", "CHIEF_COMPLAINT"]
    for record in saves:  # what the runtime does, one SaveRecord at a time
        store.save(record)
    store.close()
    store = SqliteRecords(db_path)
    saved = store.get("call-live")
    assert saved == caller.record
    assert saved is not None and saved.status is IntakeStatus.INCOMPLETE
    assert saved.complaint.duration_days == 2.0
    assert [t.text for t in saved.transcript if t.speaker == "caller"][-1] == "a cough for two days"
    store.close()
