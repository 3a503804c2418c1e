"""Blind transfer of an intake caller with REFER, against SIPp over 127.0.0.1 (RFC 3515).

``voiceagent serve`` runs the intake with ``VOICEAGENT_TRANSFER_TARGET`` set. SIPp calls it
and, while the greeting plays, presses 0 (the operator key: RFC 4733 events replayed from a
pcap, which needs root). The agent says it is connecting the caller and sends REFER; what
happens next is the scenario's choice:

* ``refer_accept.xml``: 202, NOTIFY ``SIP/2.0 100 Trying``, NOTIFY ``SIP/2.0 200 OK``
  (terminated). The agent answers both NOTIFYs 200 and hangs up with BYE; the intake record
  says transferred.
* ``refer_decline.xml``: 603. The call goes on: the agent asks for a callback message and
  does not hang up (SIPp fails the call on any request during its 6 s pause), until SIPp's
  BYE.

The checks are what the caller and the clinic would notice: the REFER names the configured
target, the message flow SIPp saw (its ``-trace_msg`` log), the server's log, and the
record the intake saved.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from agent.record import IntakeRecord, IntakeStatus
from agent.records import SqliteRecords
from rtp.dtmf import DtmfEvent, event_code
from rtp.packet import RtpPacket
from tests.loopback import LOOPBACK, ServerProcess, free_port, voiceagent_serve
from tests.media.capture import write_pcap
from tests.sip.test_sipp import SippRun, run_sipp

pytestmark = pytest.mark.peer

CONNECTING = "Sure, connecting you to our staff now."
COULD_NOT = (
    "I couldn't connect you. Please tell me briefly how we can help, "
    "and our staff will call you back."
)


@pytest.fixture(scope="module")
def root_sipp(sipp: str) -> str:
    """SIPp (tests/conftest.py) as root: play_pcap_audio needs a raw socket."""
    if os.geteuid() != 0:
        pytest.fail("these tests need root: SIPp's play_pcap_audio sends the keypad events")
    return sipp


def keypad_pcap(path: Path, key: str) -> None:
    """One RFC 4733 key press (100 ms, the end packet three times, §2.5.1.4) as a pcap."""
    packets: list[tuple[float, bytes]] = []
    seq, ts, ssrc, at = 7000, 16000, 0x0A11CE00, 0.0
    for update in range(1, 6):
        event = DtmfEvent(event_code(key), duration=160 * update)
        packets.append((at, bytes(RtpPacket(101, seq, ts, ssrc, bytes(event), update == 1))))
        seq, at = seq + 1, at + 0.020
    end = DtmfEvent(event_code(key), end=True, duration=800)
    for _ in range(3):
        packets.append((at, bytes(RtpPacket(101, seq, ts, ssrc, bytes(end)))))
        seq += 1
    write_pcap(path, packets)


@dataclass(frozen=True)
class TransferCall:
    """One SIPp call to the intake: SIPp's view, the server's log lines and the record."""

    run: SippRun
    target: str
    call_id: str
    log: dict[str, list[dict[str, object]]]
    record: IntakeRecord

    def one(self, event: str) -> dict[str, object]:
        found = self.log.get(event, [])
        assert len(found) == 1, (event, found)
        return found[0]

    def flow(self) -> list[str]:
        """What SIPp sent (>) and received (<) after the call was set up."""
        out = []
        for m in self.run.messages:
            what = m.method or f"{m.status} {m.cseq.split()[-1]}"
            out.append(f"{'>' if m.sent else '<'} {what}")
        return out[out.index("< REFER") :]


LOGGED = ("transfer_started", "transfer_accepted", "transfer_succeeded", "transfer_failed",
          "call_ended", "record_saved")  # fmt: skip


def _event_name(line: str) -> object:
    try:
        return json.loads(line).get("event")
    except ValueError:  # not a JSON log line (a warning on stderr)
        return None


def wait_for_last_save(server: ServerProcess, timeout: float = 10.0) -> None:
    """Until the intake has saved its record after the call ended (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        events = [_event_name(line) for line in list(server.log_lines)]
        if "call_ended" in events and "record_saved" in events[events.index("call_ended") :]:
            return
        time.sleep(0.02)
    raise AssertionError(f"no record saved after the call ended: {server.log_lines[-5:]}")


def transfer_call(sipp: str, workdir: Path, scenario: str) -> TransferCall:
    sipp_dir = workdir / "sipp"  # SIPp runs here, and reads the pcap from here
    sipp_dir.mkdir(parents=True)
    keypad_pcap(sipp_dir / "keypad0.pcap", "0")
    target = f"sip:frontdesk@{LOOPBACK}:{free_port()}"  # a blind transfer: SIPp calls it
    env = {
        "VOICEAGENT_APP": "intake",
        "VOICEAGENT_TRANSFER_TARGET": target,
        "VOICEAGENT_DATA_DIR": str(workdir / "data"),
    }
    with voiceagent_serve(env=env) as server:
        run = run_sipp(sipp, server, sipp_dir, scenario, timeout_s=45.0)
        assert run.returncode == 0, run.explain()
        (ended,) = server.wait_for_event("call_ended", timeout=10)
        call_id = str(ended["call_id"])
        wait_for_last_save(server)
        log = {name: server.events(name) for name in LOGGED}
    assert all(r["call_id"] == call_id for name in LOGGED for r in log[name])
    records = SqliteRecords(workdir / "data" / "records.sqlite3")
    try:
        record = records.get(call_id)
    finally:
        records.close()
    assert record is not None
    return TransferCall(run, target, call_id, log, record)


def agent_said(record: IntakeRecord) -> list[str]:
    return [t.text for t in record.transcript if t.speaker == "agent"]


def test_caller_pressing_0_is_transferred_and_we_hang_up(root_sipp: str, tmp_path: Path) -> None:
    call = transfer_call(root_sipp, tmp_path, "refer_accept.xml")
    # The REFER named the configured target, and us as the referrer (SIPp checked both).
    assert f"refer_to=<{call.target}> " in call.run.logs, call.run.explain()
    assert "referred_by=<sip:voiceagent@127.0.0.1> " in call.run.logs
    assert call.flow() == [
        "< REFER", "> 202 REFER",
        "> NOTIFY", "< 200 NOTIFY",
        "> NOTIFY", "< 200 NOTIFY",
        "< BYE", "> 200 BYE",
    ]  # fmt: skip
    assert call.one("transfer_accepted")["status"] == 202
    assert call.one("transfer_succeeded")["status"] == 200
    assert call.log["transfer_failed"] == []
    assert call.one("call_ended")["reason"] == "transferred"
    # The caller heard where they were going; the clinic's record says what happened.
    caller_turns = [t.text for t in call.record.transcript if t.speaker == "caller"]
    assert caller_turns == ["[keypad 0]"]
    assert agent_said(call.record)[-1] == CONNECTING
    assert call.record.status is IntakeStatus.TRANSFERRED
    assert call.record.ended_at is not None


def test_a_declined_transfer_keeps_the_call_and_asks_for_a_callback_message(
    root_sipp: str, tmp_path: Path
) -> None:
    call = transfer_call(root_sipp, tmp_path, "refer_decline.xml")
    assert f"refer_to=<{call.target}> " in call.run.logs, call.run.explain()
    # No NOTIFY, no BYE from us: the caller hung up after 6 s of still being served.
    assert call.flow() == ["< REFER", "> 603 REFER", "> BYE", "< 200 BYE"]
    refer = call.run.first(sent=False, method="REFER")
    bye = call.run.first(sent=True, method="BYE")
    assert bye.at - refer.at >= 6.0
    failed = call.one("transfer_failed")
    assert (failed["reason"], failed["status"]) == ("rejected", 603)
    assert call.log["transfer_succeeded"] == [] and call.log["transfer_accepted"] == []
    assert call.one("call_ended")["reason"] == "remote_bye"
    assert agent_said(call.record)[-2:] == [CONNECTING, COULD_NOT]
    assert call.record.status is IntakeStatus.INCOMPLETE  # no message was left before BYE
