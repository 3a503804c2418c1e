"""Whole intake calls over real SIP and RTP with Deepgram serving speech in and out.

``voiceagent serve`` runs in its own process with ``stt_provider=deepgram`` and
``tts_provider=deepgram``, its Deepgram URL pointing at the loopback Deepgram in this process
(final results 300 ms after the caller stops, first TTS byte after 250 ms: published
figures). The demo patient (`SimulatedPatient`) calls it over UDP on 127.0.0.1 and speaks its
script with espeak-ng; the loopback transcribes each segment of speech as the script's next
spoken line, and speaks the agent's prompts with espeak-ng as μ-law.

Two calls run side by side, each against its own server pair. In the first, Deepgram works
throughout and its endpointing ends the caller's turns (``deepgram_ends_turns``). In the
second, the listen socket drops in the middle of the call and never comes back (every later
handshake is refused with 503), and speak starts answering 500 a few sentences later. Both
must store the record the persona dictated, field by field; the second must log the switch
of both roles to the embedded providers (the counter is checked in test_failover.py: this
server process has no metrics endpoint yet).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from agent.patient import PatientResult, SimulatedPatient
from agent.persona import Persona, unmet_expectations
from agent.records import SqliteRecords
from sip.layer import Address
from tests.cloud.deepgram_server import (
    DeepgramServer,
    ListenFaults,
    ScriptTranscriber,
    SpeakFaults,
    espeak_ulaw,
)
from tests.loopback import ServerProcess, voiceagent_serve

DEMO = Path(__file__).resolve().parents[2] / "agent" / "data" / "personas" / "demo.yaml"
KEY = "loopback-key"
CALL_TIMEOUT_S = 420.0  # the demo script takes about five minutes in real time


def cloud_env(data_dir: Path, deepgram: DeepgramServer, **extra: str) -> dict[str, str]:
    return {
        **extra,
        "VOICEAGENT_APP": "intake",
        "VOICEAGENT_DATA_DIR": str(data_dir),
        "VOICEAGENT_CLINIC_NAME": "Maple Street Clinic",
        "VOICEAGENT_STT_PROVIDER": "deepgram",
        "VOICEAGENT_TTS_PROVIDER": "deepgram",
        "VOICEAGENT_DEEPGRAM_URL": deepgram.url,
        "VOICEAGENT_DEEPGRAM_API_KEY": KEY,
    }


async def one_call(
    persona: Persona, data_dir: Path, deepgram: DeepgramServer, **extra: str
) -> tuple[PatientResult, ServerProcess]:
    with voiceagent_serve(env=cloud_env(data_dir, deepgram, **extra)) as server:
        target = Address("udp", "127.0.0.1", server.sip_port)
        patient = SimulatedPatient(persona, f"sip:intake@127.0.0.1:{server.sip_port}", target)
        result = await patient.run(timeout_s=CALL_TIMEOUT_S)
        await asyncio.sleep(1.0)  # the server's final save after the BYE
    return result, server


def check_record(persona: Persona, result: PatientResult, data_dir: Path) -> None:
    assert result.answered
    store = SqliteRecords(data_dir / "records.sqlite3")
    try:
        record = store.get(result.call_id)
        assert record is not None, "no record was stored"
        assert unmet_expectations(persona, record) == [], record.model_dump(mode="json")
    finally:
        store.close()


@pytest.mark.slow
async def test_persona_calls_on_deepgram_and_through_its_failure(tmp_path: Path) -> None:
    persona = Persona.load(DEMO)
    lines = [turn.say for turn in persona.turns if turn.say]
    healthy = DeepgramServer(
        ScriptTranscriber(lines),
        espeak_ulaw,
        # Deepgram's endpointing (300 ms) ends each turn, its final 300 ms later.
        listen=ListenFaults(final_latency_s=0.3, segment_gap_ms=None),
        speak=SpeakFaults(first_byte_s=0.25),
        api_key=KEY,
    )
    failing = DeepgramServer(
        ScriptTranscriber(lines),
        espeak_ulaw,
        # The fourth spoken answer's socket drops 0.4 s into the turn; Deepgram stays down.
        listen=ListenFaults(
            final_latency_s=0.3,
            drop_after_audio_s=0.4,
            drop_from_connection=4,
            outage_after_drop=True,
        ),
        speak=SpeakFaults(first_byte_s=0.25, fail_after_requests=8, fail_status=500),
        api_key=KEY,
    )
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    async with healthy, failing:
        (ok, ok_server), (bad, bad_server) = await asyncio.gather(
            one_call(persona, tmp_path / "a", healthy, VOICEAGENT_DEEPGRAM_ENDS_TURNS="true"),
            one_call(persona, tmp_path / "b", failing),
        )

    # Deepgram all the way: every field right, every answer heard by Deepgram.
    check_record(persona, ok, tmp_path / "a")
    assert ok_server.events("provider_failover") == []
    assert healthy.transcriber.used == len(lines)  # type: ignore[attr-defined]
    assert len(healthy.connections) >= len(lines)
    assert all(c.query["encoding"] == ["mulaw"] for c in healthy.connections)
    assert len(healthy.speak_requests) >= len(persona.turns)
    assert healthy.refused == []

    # Deepgram failed mid-call: the call went on with pocketsphinx and espeak-ng.
    check_record(persona, bad, tmp_path / "b")
    switches = {(e["role"], e["reason"]) for e in bad_server.events("provider_failover")}
    assert switches == {("stt", "disconnect"), ("tts", "http_5xx")}
    for event in bad_server.events("provider_failover"):
        assert (event["from"], event["to"]) == ("deepgram", "embedded")
        assert event["call_id"] == bad.call_id
    assert 503 in failing.refused and 500 in failing.refused
    # The drop was mid-call, and after the switch no socket was opened again: the rest of the
    # call never went back to Deepgram (the refusals are the reconnects within that turn).
    dropped = [i for i, c in enumerate(failing.connections) if c.dropped]
    assert dropped == [len(failing.connections) - 1]
    assert dropped[0] >= 3
    assert failing.transcriber.used < len(lines)  # type: ignore[attr-defined]
