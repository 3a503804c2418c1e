"""Whole calls over real SIP and RTP with ``llm_provider = "openai"``, against the loopback server.

Two ``voiceagent serve`` processes, each pointed (``VOICEAGENT_OPENAI_BASE_URL``) at a loopback
OpenAI server of its own, take one persona call each at the same time, in real time: the
patient speaks espeak-ng audio and types RFC 4733 digits, pocketsphinx recognises it, and every
recognised answer goes through the model before the rules.

* The first model answers every request: the record must match the persona's ``expect`` block
  field by field, the model must have been asked on every spoken turn, and nothing failed over.
* The second answers 500 from its sixth request on, in the middle of the call: the call must
  still end with every field right, on the rules, with the switch logged once
  (``provider_failover``, role llm, reason http_5xx) and no request to the model after it.
  (`PROVIDER_FAILOVERS` lives in the server process; the in-process tests in
  test_phase_handler.py check that it is counted.)
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from agent.patient import PatientResult, SimulatedPatient
from agent.persona import Persona, unmet_expectations
from agent.records import SqliteRecords
from sip.layer import Address
from tests.cloud.openai_server import Behaviour, OpenAiServer
from tests.loopback import ServerProcess, voiceagent_serve

PERSONAS = Path(__file__).parent.parent / "personas"
CALL_TIMEOUT_S = 420.0
API_KEY = "sk-loopback-e2e"
FAIL_FROM_REQUEST = 6


def env(data_dir: Path, server: OpenAiServer) -> dict[str, str]:
    return {
        "VOICEAGENT_APP": "intake",
        "VOICEAGENT_DATA_DIR": str(data_dir),
        "VOICEAGENT_CLINIC_NAME": "Maple Street Clinic",
        "VOICEAGENT_LLM_PROVIDER": "openai",
        "VOICEAGENT_OPENAI_BASE_URL": server.base_url,
        "VOICEAGENT_OPENAI_API_KEY": API_KEY,
    }


async def call(server: ServerProcess, persona: Persona) -> PatientResult:
    uri = f"sip:intake@127.0.0.1:{server.sip_port}"
    patient = SimulatedPatient(persona, uri, Address("udp", "127.0.0.1", server.sip_port))
    return await patient.run(timeout_s=CALL_TIMEOUT_S)


def check_record(data_dir: Path, persona: Persona, result: PatientResult) -> None:
    assert result.answered, persona.name
    store = SqliteRecords(data_dir / "records.sqlite3")
    try:
        record = store.get(result.call_id)
        assert record is not None, f"{persona.name}: no record was stored"
        unmet = unmet_expectations(persona, record)
        assert not unmet, f"{persona.name}: {unmet}\n{record.model_dump(mode='json')}"
    finally:
        store.close()


@pytest.mark.slow
async def test_persona_calls_on_the_model_and_on_a_model_that_starts_failing_mid_call(
    tmp_path: Path,
) -> None:
    spoken = Persona.load(PERSONAS / "united_full_spoken.yaml")
    failing = Persona.load(PERSONAS / "humana_sore_throat.yaml")
    good_dir, bad_dir = tmp_path / "good", tmp_path / "bad"
    broken = Behaviour(fail_status=500, fail_from_request=FAIL_FROM_REQUEST)
    with (
        OpenAiServer.running(API_KEY) as good_model,
        OpenAiServer.running(API_KEY, broken) as bad_model,
        voiceagent_serve(env=env(good_dir, good_model)) as good,
        voiceagent_serve(env=env(bad_dir, bad_model)) as bad,
    ):
        results = await asyncio.gather(call(good, spoken), call(bad, failing))
        await asyncio.sleep(1.0)  # the final saves after the BYEs
        good_logs = {name: good.events(name) for name in ("llm_proposal", "provider_failover")}
        bad_logs = {name: bad.events(name) for name in ("llm_proposal", "provider_failover")}

    check_record(good_dir, spoken, results[0])
    check_record(bad_dir, failing, results[1])

    # The healthy model read every spoken answer, with the schema of what was asked.
    spoken_turns = sum(1 for turn in spoken.turns if turn.say is not None)
    assert len(good_model.seen) >= spoken_turns
    assert all(s.status == 200 for s in good_model.seen)
    asked = {s.schema for s in good_model.seen}
    assert {"insurance_payer", "demographics_date_of_birth", "address_street", "confirm"} <= asked
    assert len(good_logs["llm_proposal"]) == len(good_model.seen)
    # "I'm sorry to hear that.", streamed ahead of the complaint's value, was said.
    assert sum(int(str(e.get("spoke", 0))) for e in good_logs["llm_proposal"]) == 1
    assert good_logs["provider_failover"] == []

    # The failing model: one switch, logged without PHI, and never asked again.
    (switch,) = bad_logs["provider_failover"]
    assert {k: switch.get(k) for k in ("role", "from", "to", "reason")} == {
        "role": "llm",
        "from": "openai",
        "to": "embedded",
        "reason": "http_5xx",
    }
    assert switch.get("call_id") == results[1].call_id
    assert len(bad_model.seen) == FAIL_FROM_REQUEST
    assert [s.status for s in bad_model.seen][-1] == 500
    assert len(bad_logs["llm_proposal"]) == FAIL_FROM_REQUEST - 1
