"""End to end: real calls over SIP/RTP while Redis dies and SMTP is away.

The server is ``voiceagent serve`` in its own process (`tests.loopback.voiceagent_serve`),
with Redis state and the email outbox configured; the caller is a `SimulatedPatient`
following a persona script over real SIP and RTP on loopback. The peers are a real
redis-server (killed with SIGKILL and restarted empty) and aiosmtpd requiring STARTTLS and
AUTH with a self-signed certificate.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import sqlite3
from collections.abc import Iterator
from email.message import Message
from pathlib import Path

import pytest
from redis.asyncio import Redis

from agent.intake_email import message_id
from agent.patient import SimulatedPatient
from agent.persona import Persona, unmet_expectations
from agent.records import SqliteRecords
from agent.sealing import Sealer
from sip.layer import Address
from tests.loopback import ServerProcess, voiceagent_serve
from tests.ops.peers import Inbox, RedisServer, SmtpPeer, self_signed

pytestmark = [pytest.mark.peer, pytest.mark.slow]

CALL_TIMEOUT_S = 240.0
SENDER = "intake@maple-street.example"


async def _event(
    server: ServerProcess, name: str, count: int = 1, within_s: float = 30.0
) -> list[dict[str, object]]:
    """Like `ServerProcess.wait_for_event`, without blocking the patient's event loop."""
    async with asyncio.timeout(within_s):
        # The server is another process: its log lines arrive on a reader thread.
        while len(found := server.events(name)) < count:  # noqa: ASYNC110
            assert server.proc.poll() is None, f"server exited: {server.log_lines[-5:]}"
            await asyncio.sleep(0.05)
    return found


@contextlib.contextmanager
def _log_kept(server: ServerProcess, path: Path) -> Iterator[None]:
    """Keep the server's log next to the test's files (to read after a failure)."""
    try:
        yield
    finally:
        path.write_text("\n".join(server.log_lines) + "\n")


def _plain(message: Message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode()
    raise AssertionError("no text/plain part")


def _patient(persona: Persona, server: ServerProcess) -> SimulatedPatient:
    port = server.sip_port
    return SimulatedPatient(
        persona, f"sip:intake@127.0.0.1:{port}", Address("udp", "127.0.0.1", port)
    )


# A self-pay caller who gives his complaint and spells his first name, then presses 0 (for a
# person) instead of confirming it and leaves a callback message: the agent says goodbye and
# hangs up (status callback).
ASKS_FOR_A_PERSON = """\
name: Ann Ward
voice: en-us+m3                 # the voice of the self-pay persona, whose answers these are
caller_id: "6175550123"
turns:
  - say: "self pay"
  - say: "yes"
  - say: "i have a rash"
  - say: "about a week"
  - dtmf: "6#"
  - dtmf: "266#"
  - dtmf: "0"
  - say: "please call me back about my appointment"
expect:
  status: callback
  insurance.self_pay: true
  complaint.symptoms: [rash]
  complaint.severity: 6
  demographics.first_name: null       # pressed 0 instead of confirming it
"""


async def _saved_in(server: ServerProcess, phase: str, within_s: float) -> None:
    async with asyncio.timeout(within_s):
        while not any(e["phase_reached"] == phase for e in server.events("record_saved")):  # noqa: ASYNC110
            await asyncio.sleep(0.05)


async def test_redis_killed_mid_call_the_call_completes_and_state_is_written_back(
    tmp_path: Path,
) -> None:
    key = os.urandom(32)
    redis_server = RedisServer(tmp_path / "redis")
    redis_server.start()
    inbox = Inbox()
    smtp = SmtpPeer(self_signed(tmp_path / "tls"), inbox)
    smtp.start()
    script = tmp_path / "asks_for_a_person.yaml"
    script.write_text(ASKS_FOR_A_PERSON)
    persona = Persona.load(script)
    env = {
        "VOICEAGENT_APP": "intake",
        "VOICEAGENT_DATA_DIR": str(tmp_path / "data"),
        "VOICEAGENT_REDIS_URL": redis_server.url,
        "VOICEAGENT_REDIS_PREFIX": "maple:",
        "VOICEAGENT_STATE_KEYS": json.dumps([base64.b64encode(key).decode()]),
        **smtp.env(),
    }
    raw = Redis.from_url(redis_server.url)
    try:
        with voiceagent_serve(env=env) as server, _log_kept(server, tmp_path / "server.log"):
            call = asyncio.create_task(_patient(persona, server).run(timeout_s=CALL_TIMEOUT_S))
            # Under way: the insurance is done, the complaint phase begins.
            await _saved_in(server, "CHIEF_COMPLAINT", within_s=90)
            call_id = str(server.events("record_saved")[-1]["call_id"])
            redis_server.kill()
            saved_before = len(server.events("record_saved"))
            await _event(server, "redis_unavailable", within_s=10)
            # The call goes on from local state: its next phase is saved with Redis away.
            await _event(server, "record_saved", saved_before + 1, within_s=120)
            assert server.events("record_saved")[-1]["phase_reached"] == "DEMOGRAPHICS"
            redis_server.start()  # empty: it kept nothing on disk
            back = await _event(server, "redis_reconnected", within_s=15)
            assert int(str(back[0]["replaying"])) >= 1
            name = f"maple:call:{call_id}"
            async with asyncio.timeout(5):  # the snapshot saved during the outage, written back
                while not isinstance(written := await raw.get(name), bytes):  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
            body = json.loads(Sealer([key]).open(written, name[6:].encode()))
            assert body["phase"] == "DEMOGRAPHICS"
            assert body["record"]["complaint"]["symptoms"] == ["rash"]
            result = await call
            assert result.answered and not call.cancelled()
            sent = await _event(server, "email_sent", within_s=30)
            # After the call, its final snapshot (written the ordinary way).
            assert result.call_id == call_id

            async def final_snapshot() -> bytes:
                while True:
                    stored = await raw.get(name)
                    if isinstance(stored, bytes):
                        body = json.loads(Sealer([key]).open(stored, name[6:].encode()))
                        if body["record"]["ended_at"] is not None:
                            return stored
                    await asyncio.sleep(0.05)

            async with asyncio.timeout(10):
                stored = await final_snapshot()
        store = SqliteRecords(tmp_path / "data" / "records.sqlite3")
        record = store.get(result.call_id)
        store.close()
        assert record is not None, "no record was stored"
        assert unmet_expectations(persona, record) == []
        # PHI is not readable in Redis: not the caller's number, name, symptom or message.
        assert record.caller_id == "6175550123" and record.callback_message
        for value in (record.caller_id, "rash", "Self-pay", record.callback_message):
            assert value.encode() not in stored, value
        body = json.loads(Sealer([key]).open(stored, name[6:].encode()))
        assert body["record"]["callback_message"] == record.callback_message
        assert body["record"]["complaint"]["symptoms"] == ["rash"]
        assert body["record"]["insurance"]["self_pay"] is True
        assert body["record"]["status"] == record.status.value == "callback"
        assert 0 < await raw.ttl(name) <= 3600
        # ... and emailed to the clinic, once, over STARTTLS.
        assert sent[0]["call_id"] == result.call_id
        mails = inbox.by_message_id(message_id(result.call_id, SENDER))
        assert len(mails) == 1 and len(inbox.messages) == 1
        assert inbox.envelopes[0][2] is True
        assert "rash" in _plain(mails[0]) and "6175550123" in _plain(mails[0])
    finally:
        await raw.aclose()
        smtp.stop()
        redis_server.kill()


HANG_UP = """\
name: Ron Park
voice: en-us+m3
caller_id: "3125550199"
turns:
  - hang_up: true
expect:
  status: incomplete
"""


async def test_smtp_down_for_the_whole_call_is_emailed_once_after_a_restart(
    tmp_path: Path,
) -> None:
    script = tmp_path / "hangs_up.yaml"
    script.write_text(HANG_UP)
    persona = Persona.load(script)
    inbox = Inbox()
    smtp = SmtpPeer(self_signed(tmp_path / "tls"), inbox)  # not started: SMTP is down
    data = tmp_path / "data"
    env = {"VOICEAGENT_APP": "intake", "VOICEAGENT_DATA_DIR": str(data), **smtp.env()}
    with voiceagent_serve(env=env) as server:
        result = await _patient(persona, server).run(timeout_s=60)
        assert result.answered
        failed = await _event(server, "email_failed", within_s=20)
        assert failed[0]["reason"] == "connect"
    # The first server has gone (its shutdown flush failed too): the email is owed.
    with sqlite3.connect(data / "records.sqlite3") as db:
        row = db.execute(
            "SELECT status FROM intakes WHERE call_id = ?", (result.call_id,)
        ).fetchone()
        outbox = db.execute(
            "SELECT attempts, sent_at FROM outbox WHERE call_id = ?", (result.call_id,)
        ).fetchone()
    assert row == ("incomplete",)
    assert outbox[0] >= 2 and outbox[1] is None  # the call's attempt and the shutdown flush
    smtp.start()
    try:
        with voiceagent_serve(env=env) as server:
            await _event(server, "email_sent", within_s=30)
        with voiceagent_serve(env=env) as server:  # and once more: nothing is sent again
            started = await _event(server, "outbox_started", within_s=30)
            assert started[0]["unsent"] == 0
        mails = inbox.by_message_id(message_id(result.call_id, SENDER))
        assert len(mails) == 1 and len(inbox.messages) == 1
        assert "3125550199" in _plain(mails[0])  # email_phi defaults to the full intake
    finally:
        smtp.stop()
