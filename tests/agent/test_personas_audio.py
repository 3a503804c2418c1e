"""Eight scripted patients call the intake server at once, over real SIP and RTP on loopback.

Each persona (``tests/personas/*.yaml`` and the demo's own) is a `SimulatedPatient` built on
our sip/ and rtp/ stacks: it speaks espeak-ng audio, types RFC 4733 digits, barges in and hangs
up as its script says, in real time, over UDP. The server runs the embedded providers
(pocketsphinx, espeak-ng, rule-based extraction), exactly as ``voiceagent serve`` does. Every
call's stored record must then match its persona's ``expect`` block, field by field.

Between them the personas cover: seven payers and self pay; dates of birth typed as
MMDDYYYY and MMDDYY and said aloud; member IDs on the keypad; a barge-in during the
greeting; a caller asking for a person (a callback message, no transfer target here); a
red-flag complaint; a "no" to the summary that amends the ZIP code; two hang-ups mid-call
that still leave persisted incomplete records.

The server logs at debug level with full redaction (issue 6 acceptance): it then logs every
prompt it says (``said``, the read-backs of names, numbers and dates included) and every
answer it heard (``heard``). For the Humana patient (an invented person whose names are not
among the examples the agent's own prompts give, as the demo patient's emergency contact
is), the debug lines must be there and show the redactor at work, and none of the patient's
identifiers may appear in any line of the eight calls' log, in any form
(`tests.ops.phi_forms`).
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest

from agent.patient import PatientResult, SimulatedPatient
from agent.persona import Persona, unmet_expectations
from agent.records import SqliteRecords
from sip.layer import Address
from tests.loopback import ServerProcess, voiceagent_serve
from tests.ops.phi_forms import IDENTIFIERS, found, phi_forms

PERSONAS = sorted(Path(__file__).parent.parent.joinpath("personas").glob("*.yaml")) + [
    Path(__file__).parent.parent.parent / "agent" / "data" / "personas" / "demo.yaml"
]
LOGGED_PERSONA = "humana_sore_throat.yaml"  # whose PHI the debug log is searched for
CALL_TIMEOUT_S = 420.0  # the longest script takes about five minutes in real time
# Calls start this far apart, so that the four that book an appointment are not offered the
# same slots at the same moment (one would get "that time was just taken", which its script
# does not expect; that race has its own test in test_calendar_store.py).
START_GAP_S = 12.0


async def _call(patient: SimulatedPatient, delay_s: float) -> PatientResult:
    await asyncio.sleep(delay_s)
    return await patient.run(timeout_s=CALL_TIMEOUT_S)


def test_there_are_eight_personas_each_with_expectations() -> None:
    assert len(PERSONAS) == 8
    for path in PERSONAS:
        assert Persona.load(path).expect, path


@pytest.mark.slow
async def test_eight_patients_calling_at_once_end_with_the_records_they_dictated(
    tmp_path: Path,
) -> None:
    env = {
        "VOICEAGENT_APP": "intake",
        "VOICEAGENT_DATA_DIR": str(tmp_path),
        "VOICEAGENT_CLINIC_NAME": "Maple Street Clinic",
        "VOICEAGENT_LOG_LEVEL": "debug",
        "VOICEAGENT_LOG_REDACTION": "full",
    }
    personas = [Persona.load(path) for path in PERSONAS]
    # The server runs in a process of its own, as in production: the eight patients share
    # this one, and neither side's timing depends on the other's load.
    with voiceagent_serve(env=env) as server:
        port = server.sip_port
        target = Address("udp", "127.0.0.1", port)
        patients = [SimulatedPatient(p, f"sip:intake@127.0.0.1:{port}", target) for p in personas]
        results = await asyncio.gather(
            *(_call(patient, START_GAP_S * i) for i, patient in enumerate(patients))
        )
        # The server's final saves after the last BYEs.
        await asyncio.to_thread(server.wait_for_event, "call_ended", len(personas), 15.0)
    store = SqliteRecords(tmp_path / "records.sqlite3")
    try:
        failures = []
        for persona, result in zip(personas, results, strict=True):
            assert result.answered, persona.name
            record = store.get(result.call_id)
            assert record is not None, f"{persona.name}: no record was stored"
            unmet = unmet_expectations(persona, record)
            if unmet:
                got = record.model_dump(mode="json")
                failures.append(f"{persona.name}: {unmet}\n{got}")
        assert not failures, "\n\n".join(failures)
    finally:
        store.close()
    logged = next(i for i, path in enumerate(PERSONAS) if path.name == LOGGED_PERSONA)
    check_no_phi_logged(server, personas[logged], results[logged])


def check_no_phi_logged(server: ServerProcess, persona: Persona, result: PatientResult) -> None:
    """The call's debug lines are there, redacted, and none of its PHI is in the whole log."""
    lines = [json.loads(line) for line in server.log_lines if line.startswith("{")]
    said = [e for e in lines if e["event"] == "said" and e.get("call_id") == result.call_id]
    heard = [e for e in lines if e["event"] == "heard" and e.get("call_id") == result.call_id]
    # Not vacuous: the debug lines carry the conversation, and the redactor had work to do.
    assert len(said) >= 20 and len(heard) >= 10, (len(said), len(heard))
    assert all(e.get("phase") for e in said)
    tags = re.findall(r"\[(VALUE|DATE|PHONE|NUMBER|ADDRESS|ID)[^\]]*\]", json.dumps(said))
    assert len(tags) >= 10, tags

    everything = "\n".join(server.log_lines)
    leaks = found(phi_forms(persona, IDENTIFIERS), everything)
    assert not leaks, [line for line in server.log_lines if found(set(leaks), line)][:10]
    symptoms = {str(s).lower() for s in persona.expect["complaint.symptoms"]}
    heard_text = json.dumps([e["text"] for e in heard])
    assert not found(symptoms, heard_text), heard_text
