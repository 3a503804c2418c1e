"""Whole intake calls over real SIP and RTP with all three cloud roles on loopback servers.

Issue 5's acceptance, end to end. Two ``voiceagent serve`` processes, each configured with
``stt_provider=deepgram``, ``tts_provider=deepgram`` and ``llm_provider=openai``, each pointed
at loopback servers of its own (a Deepgram, `tests.cloud.deepgram_server`, on this test's
event loop; an OpenAI chat-completions server, `tests.cloud.openai_server`, in a thread), take
one persona call each at the same time, in real time (about five minutes for both). The
caller is `SimulatedPatient`: it speaks its script with espeak-ng and types RFC 4733 digits,
and takes each turn when the agent's prompt has ended.

The loopback Deepgram transcribes each segment of speech as the script's next spoken line
(final result 300 ms after the caller stops; published figures) and speaks the agent's
sentences with espeak-ng as μ-law (first byte after 250 ms). The loopback model reads each
answer with the rules' own extractors and answers in the requested schema or with a tool
call; it speaks an acknowledgement ("I'm sorry to hear that.") for a complaint.

* **Healthy** (UnitedHealthcare persona): Deepgram's endpointing ends the caller's turns
  (``deepgram_ends_turns``) and Aura speaks with a voice of our choosing. Every ``expect``
  field must be right, and the cloud must really have served the call: Deepgram heard every
  spoken line, the model read every answer to an open question (the very words Deepgram
  sent) and no closed answer the rules read (``llm_consult``'s default, `agent.consult`;
  counted on /metrics), Aura was asked for every prompt and for the model's
  acknowledgement, and nothing failed over.
* **Failing** (Humana persona): Aura answers 500 from its 11th request on, the listen socket
  of the 6th spoken answer drops 0.4 s into the turn and Deepgram stays down (every later
  handshake refused with 503), and the model (asked every turn: ``llm_consult=every_turn``)
  answers 500 from its 9th request on. The call
  must still end with every field right, on pocketsphinx, espeak-ng and the rules; each
  switch is logged once with its reason and counted, and no role goes back to its cloud
  server after its switch.
"""

from __future__ import annotations

import asyncio
import contextlib
import urllib.request
from collections import Counter
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

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
from tests.cloud.openai_server import Behaviour, OpenAiServer
from tests.loopback import ServerProcess, voiceagent_serve

PERSONAS = Path(__file__).parent.parent / "personas"
CALL_TIMEOUT_S = 420.0  # a persona script takes about five minutes in real time
DEEPGRAM_KEY = "loopback-deepgram-key"
OPENAI_KEY = "sk-loopback-e2e"
VOICE = "aura-luna-en"  # not the default voice: the setting must reach every speak request
ACKNOWLEDGEMENT = "I'm sorry to hear that."

# The failing call's faults, counted from the start of the call.
TTS_FAIL_AFTER = 10  # speak requests answered before Aura starts answering 500
STT_DROP_CONNECTION = 6  # the listen socket (one per spoken answer) that drops
LLM_FAIL_FROM = 9  # the first model request answered 500
# The healthy persona's answers to open questions: the only ones its model is asked to read.
OPEN_ANSWERS = ["back pain", "one hundred maple avenue", "rite aid", "my wife"]


def spoken_lines(persona: Persona) -> list[str]:
    """The lines the persona says aloud, in order (the loopback Deepgram's script)."""
    return [turn.say for turn in persona.turns if turn.say is not None]


def cloud_env(
    data_dir: Path, deepgram: DeepgramServer, model: OpenAiServer, **extra: str
) -> dict[str, str]:
    """A server with all three roles on the cloud, the cloud on loopback."""
    return {
        "VOICEAGENT_APP": "intake",
        "VOICEAGENT_DATA_DIR": str(data_dir),
        "VOICEAGENT_CLINIC_NAME": "Maple Street Clinic",
        "VOICEAGENT_STT_PROVIDER": "deepgram",
        "VOICEAGENT_TTS_PROVIDER": "deepgram",
        "VOICEAGENT_DEEPGRAM_URL": deepgram.url,
        "VOICEAGENT_DEEPGRAM_API_KEY": DEEPGRAM_KEY,
        "VOICEAGENT_LLM_PROVIDER": "openai",
        "VOICEAGENT_OPENAI_BASE_URL": model.base_url,
        "VOICEAGENT_OPENAI_API_KEY": OPENAI_KEY,
        **extra,
    }


async def persona_call(server: ServerProcess, persona: Persona) -> PatientResult:
    """The persona's whole call to ``server`` (bounded)."""
    uri = f"sip:intake@127.0.0.1:{server.sip_port}"
    patient = SimulatedPatient(persona, uri, Address("udp", "127.0.0.1", server.sip_port))
    return await patient.run(timeout_s=CALL_TIMEOUT_S)


def check_record(data_dir: Path, persona: Persona, result: PatientResult) -> None:
    """The whole script was played, the agent said goodbye, and the record is right."""
    assert result.answered, persona.name
    # Every turn answered a prompt of its own, and the agent ended the call after the summary.
    assert result.turns_done == len(persona.turns), persona.name
    assert result.ended_by_agent, persona.name
    store = SqliteRecords(data_dir / "records.sqlite3")
    try:
        record = store.get(result.call_id)
        assert record is not None, f"{persona.name}: no record was stored"
        unmet = unmet_expectations(persona, record)
        assert not unmet, f"{persona.name}: {unmet}\n{record.model_dump(mode='json')}"
    finally:
        store.close()


def metric_samples(
    server: ServerProcess, family_name: str, suffix: str = "_total"
) -> list[tuple[dict[str, str], float]]:
    """The samples of one family on the server's /metrics whose name ends with ``suffix``
    (a counter's ``_total``, a histogram's ``_count``): (labels, value)."""
    url = f"http://127.0.0.1:{server.http_port}/metrics"
    with urllib.request.urlopen(url, timeout=5.0) as response:  # noqa: S310 (loopback)
        text = response.read().decode()
    return [
        (sample.labels, sample.value)
        for family in text_string_to_metric_families(text)
        if family.name == family_name
        for sample in family.samples
        if sample.name.endswith(suffix)
    ]


def counted_failovers(server: ServerProcess) -> Counter[tuple[str, str]]:
    """How many switches the server counted, by (role, reason), read from its /metrics.

    Called while the server still runs. The ``provider_failover`` log lines, written next to
    each increment, must say the same.
    """
    counted: Counter[tuple[str, str]] = Counter()
    for labels, value in metric_samples(server, "voiceagent_provider_failovers"):
        if value:
            counted[(labels["role"], labels["reason"])] += int(value)
    logged = Counter((str(e["role"]), str(e["reason"])) for e in server.events("provider_failover"))
    assert counted == logged, (counted, logged)
    return counted


@pytest.mark.slow
async def test_persona_calls_on_the_cloud_and_through_its_failure(tmp_path: Path) -> None:
    healthy_persona = Persona.load(PERSONAS / "united_full_spoken.yaml")
    failing_persona = Persona.load(PERSONAS / "humana_sore_throat.yaml")
    healthy_lines, failing_lines = spoken_lines(healthy_persona), spoken_lines(failing_persona)
    healthy_dir, failing_dir = tmp_path / "healthy", tmp_path / "failing"
    healthy_dir.mkdir()
    failing_dir.mkdir()

    healthy_deepgram = DeepgramServer(
        ScriptTranscriber(healthy_lines),
        espeak_ulaw,
        # Deepgram's endpointing (300 ms, the query's) ends each segment, its final 300 ms on.
        listen=ListenFaults(final_latency_s=0.3, segment_gap_ms=None),
        speak=SpeakFaults(first_byte_s=0.25),
        api_key=DEEPGRAM_KEY,
    )
    failing_deepgram = DeepgramServer(
        ScriptTranscriber(failing_lines),
        espeak_ulaw,
        listen=ListenFaults(
            final_latency_s=0.3,
            drop_after_audio_s=0.4,
            drop_from_connection=STT_DROP_CONNECTION,
            outage_after_drop=True,
        ),
        speak=SpeakFaults(first_byte_s=0.25, fail_after_requests=TTS_FAIL_AFTER, fail_status=500),
        api_key=DEEPGRAM_KEY,
    )
    failing_behaviour = Behaviour(fail_status=500, fail_from_request=LLM_FAIL_FROM)

    async with healthy_deepgram, failing_deepgram:
        with contextlib.ExitStack() as stack:
            healthy_model = stack.enter_context(OpenAiServer.running(OPENAI_KEY))
            failing_model = stack.enter_context(OpenAiServer.running(OPENAI_KEY, failing_behaviour))
            # Both servers are up before either call starts (starting one blocks this loop).
            healthy = stack.enter_context(
                voiceagent_serve(
                    env=cloud_env(
                        healthy_dir,
                        healthy_deepgram,
                        healthy_model,
                        VOICEAGENT_DEEPGRAM_ENDS_TURNS="true",
                        VOICEAGENT_DEEPGRAM_TTS_VOICE=VOICE,
                    )
                )
            )
            failing = stack.enter_context(
                voiceagent_serve(
                    env=cloud_env(
                        failing_dir,
                        failing_deepgram,
                        failing_model,
                        VOICEAGENT_LLM_CONSULT="every_turn",
                    )
                )
            )
            healthy_result, failing_result = await asyncio.gather(
                persona_call(healthy, healthy_persona), persona_call(failing, failing_persona)
            )
            await asyncio.sleep(1.0)  # the servers' final saves after the BYEs
            healthy_counted = counted_failovers(healthy)
            healthy_tts_timed = sum(
                value
                for _, value in metric_samples(
                    healthy, "voiceagent_tts_latency_seconds", suffix="_count"
                )
            )
            healthy_llm_turns = {
                labels["outcome"]: value
                for labels, value in metric_samples(healthy, "voiceagent_llm_turns")
            }
            failing_counted = counted_failovers(failing)

    check_record(healthy_dir, healthy_persona, healthy_result)
    check_record(failing_dir, failing_persona, failing_result)
    check_healthy_call(healthy, healthy_result, healthy_lines, healthy_deepgram, healthy_model)
    assert healthy_counted == Counter()
    # Each Aura synthesis was timed to its first chunk.
    assert healthy_tts_timed == len(healthy_deepgram.speak_requests)
    # Every spoken answer was a turn; only the open ones were sent to the model.
    assert healthy_llm_turns == {
        "asked": len(OPEN_ANSWERS),
        "rules_settled": len(healthy_lines) - len(OPEN_ANSWERS),
    }
    check_failing_call(failing, failing_result, failing_lines, failing_deepgram, failing_model)
    assert failing_counted == {
        ("stt", "disconnect"): 1,
        ("tts", "http_5xx"): 1,
        ("llm", "http_5xx"): 1,
    }


def check_healthy_call(
    server: ServerProcess,
    result: PatientResult,
    lines: list[str],
    deepgram: DeepgramServer,
    model: OpenAiServer,
) -> None:
    """Deepgram, Aura and the model served the whole call, and nothing failed over."""
    assert server.events("provider_failover") == []
    # Deepgram heard every spoken answer, as the telephone line carries it.
    transcriber = deepgram.transcriber
    assert isinstance(transcriber, ScriptTranscriber)
    assert transcriber.used == len(lines)
    assert len(deepgram.connections) >= len(lines)
    for connection in deepgram.connections:
        assert connection.query["encoding"] == ["mulaw"]
        assert connection.query["sample_rate"] == ["8000"]
        assert not connection.dropped
    assert deepgram.refused == []
    # The model read every answer to an open question, in the words Deepgram sent (its
    # endpointing ended each turn: those turns went to the model too), with the schema of what
    # was being asked; the payer, the date of birth, every "yes" were the rules' alone.
    assert [s.user for s in model.seen] == OPEN_ANSWERS
    assert set(OPEN_ANSWERS) <= set(lines)
    assert all(s.status == 200 and s.stream for s in model.seen)
    assert [s.schema for s in model.seen] == [
        "complaint_description",
        "address_street",
        "pharmacy",
        "emergency_contact_relationship",
    ]
    proposals = server.events("llm_proposal")
    assert len(proposals) == len(model.seen)
    assert {e["call_id"] for e in proposals} == {result.call_id}
    # The acknowledgement streamed ahead of the complaint's values was said once, by Aura.
    assert sum(int(str(e.get("spoke", 0))) for e in proposals) == 1
    texts = [r.text for r in deepgram.speak_requests]
    assert texts.count(ACKNOWLEDGEMENT) == 1
    # Aura spoke every prompt (more requests than the caller's turns), in the configured voice,
    # as the μ-law the line carries; each request got its whole audio.
    assert len(texts) > len(lines)
    for request in deepgram.speak_requests:
        assert request.query["model"] == [VOICE]
        assert request.query["encoding"] == ["mulaw"]
        assert request.query["sample_rate"] == ["8000"]
        assert len(request.audio) > 0


def check_failing_call(
    server: ServerProcess,
    result: PatientResult,
    lines: list[str],
    deepgram: DeepgramServer,
    model: OpenAiServer,
) -> None:
    """Each role switched once, mid-call, with its reason, and never went back."""
    switches = server.events("provider_failover")
    assert {(e["role"], e["reason"]) for e in switches} == {
        ("stt", "disconnect"),
        ("tts", "http_5xx"),
        ("llm", "http_5xx"),
    }
    for event in switches:
        assert event["call_id"] == result.call_id
        assert event["to"] == "embedded"
        assert event["from"] == ("openai" if event["role"] == "llm" else "deepgram")

    # Speech in: the drop came mid-call, after Deepgram had served the earlier answers; the
    # reconnects within that turn were refused (503), and after the switch no socket was opened
    # again. The later answers were pocketsphinx's.
    dropped = [i for i, c in enumerate(deepgram.connections) if c.dropped]
    assert dropped == [len(deepgram.connections) - 1]
    assert dropped[0] >= STT_DROP_CONNECTION - 1
    assert 503 in deepgram.refused
    transcriber = deepgram.transcriber
    assert isinstance(transcriber, ScriptTranscriber)
    assert transcriber.used < len(lines)

    # Speech out: Aura served the first prompts, answered 500 once, and was never asked again.
    assert len(deepgram.speak_requests) == TTS_FAIL_AFTER
    assert deepgram.refused.count(500) == 1

    # The model: answered until it failed, the failing turn went to the rules, and it was never
    # asked again (its acknowledgement of the complaint came before, on Aura).
    assert len(model.seen) == LLM_FAIL_FROM
    assert [s.status for s in model.seen] == [200] * (LLM_FAIL_FROM - 1) + [500]
    assert len(server.events("llm_proposal")) == LLM_FAIL_FROM - 1
    assert ACKNOWLEDGEMENT in [r.text for r in deepgram.speak_requests]
