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
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from agent.patient import PatientResult, SimulatedPatient
from agent.persona import Persona, unmet_expectations
from agent.records import SqliteRecords
from sip.layer import Address
from tests.loopback import voiceagent_serve

PERSONAS = sorted(Path(__file__).parent.parent.joinpath("personas").glob("*.yaml")) + [
    Path(__file__).parent.parent.parent / "agent" / "data" / "personas" / "demo.yaml"
]
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
        await asyncio.sleep(1.0)  # the server's final saves after the last BYEs
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
