"""Deepgram streaming recognition through the real SDK against the loopback Deepgram.

The SDK's client is pointed at the loopback server by base URL, exactly as a self-hosted
Deepgram would be configured; nothing in the SDK is patched. Each test asserts what the
server received on the wire (query, auth header, audio bytes, control messages) and what the
agent got back.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from agent.providers.base import HintKind, RecognitionHints, Transcript
from agent.providers.deepgram_stt import DeepgramStream, DeepgramStt, DeepgramSttConfig
from agent.providers.failure import FailureReason, ProviderError
from dsp.g711 import ulaw_decode, ulaw_encode
from tests.cloud.audio import burst, feed_paced, frames, quiet, turn
from tests.cloud.deepgram_server import DeepgramServer, ListenFaults, ScriptTranscriber

KEY = "test-key"


def stt_for(server: DeepgramServer, **overrides: object) -> DeepgramStt:
    config = DeepgramSttConfig(url=server.url, api_key=KEY, **overrides)  # type: ignore[arg-type]
    return DeepgramStt(config)


async def test_interim_results_then_the_final_transcript_of_the_turn() -> None:
    script = ScriptTranscriber(["i have a cough and a fever"])
    async with DeepgramServer(script, api_key=KEY) as server:
        stt = stt_for(server)
        async with stt.start(RecognitionHints.free_speech()) as stream:
            updates: list[Transcript] = []

            async def collect() -> None:
                async for update in stream.interim():
                    updates.append(update)

            reader = asyncio.create_task(collect())
            await feed_paced(stream, frames(turn(quiet(0.2), burst(1.5), quiet(0.3))))
            final = await stream.finish()
            await asyncio.wait_for(reader, 2.0)
    assert final == Transcript(
        "i have a cough and a fever", final.confidence, is_final=True, audio_s=2.0
    )
    assert final.confidence > 0.9
    partial = [u for u in updates if not u.is_final]
    assert len(partial) >= 3  # an interim result every 240 ms of speech
    assert all("i have a cough and a fever".startswith(u.text) for u in partial)
    assert partial[0].text != partial[-1].text  # they grow as the caller speaks
    assert updates[-1] == final
    sent = server.connections[0]
    assert sent.headers["authorization"] == f"Token {KEY}"
    assert sent.controls == ["Finalize", "CloseStream"]


async def test_the_query_asks_for_raw_telephone_audio_and_a_phone_model() -> None:
    async with DeepgramServer(api_key=KEY) as server:
        async with stt_for(server).start(RecognitionHints.yes_no()) as stream:
            await stream.feed(quiet(0.1))
            await stream.finish()
    query = server.connections[0].query
    assert query["model"] == ["nova-2-phonecall"]
    assert query["encoding"] == ["mulaw"]
    assert query["sample_rate"] == ["8000"]
    assert query["channels"] == ["1"]
    assert query["interim_results"] == ["true"]
    assert query["endpointing"] == ["300"]
    assert query["utterance_end_ms"] == ["1000"]
    assert "keywords" not in query  # a yes or no needs no hints


async def test_audio_goes_out_as_the_callers_mulaw_bytes_unchanged() -> None:
    payloads = bytes(np.random.default_rng(7).integers(0, 256, 8000, dtype=np.uint8))
    async with DeepgramServer(api_key=KEY) as server:
        async with stt_for(server).start(RecognitionHints.yes_no()) as stream:
            for i in range(0, len(payloads), 160):  # what the runtime gives: decoded RTP
                await stream.feed(ulaw_decode(payloads[i : i + 160]))
            await stream.finish()
    received = bytes(server.connections[0].audio)
    assert len(received) == len(payloads)  # 8 kHz, one byte a sample: no resampling
    # The same codes except μ-law's second zero (0x7F), which is the same sample as 0xFF.
    assert received == ulaw_encode(ulaw_decode(payloads)).tobytes()
    differs = [i for i, (a, b) in enumerate(zip(received, payloads, strict=True)) if a != b]
    assert all(payloads[i] == 0x7F and received[i] == 0xFF for i in differs)


async def test_each_turn_sends_its_own_keyword_hints() -> None:
    async with DeepgramServer(api_key=KEY) as server:
        stt = stt_for(server)
        for hints in (
            RecognitionHints.one_of(HintKind.PAYER_NAMES, ["aetna", "blue cross"]),
            RecognitionHints.one_of(HintKind.PHARMACY, ["walmart"], places=["broadway"]),
        ):
            async with stt.start(hints) as stream:
                await stream.feed(quiet(0.1))
                await stream.finish()
        nova3 = stt_for(server, model="nova-3")
        async with nova3.start(RecognitionHints.one_of(HintKind.CHOICE, ["blue cross"])) as s:
            await s.feed(quiet(0.1))
            await s.finish()
    first, second, third = (c.query for c in server.connections)
    assert first["keywords"] == ["aetna", "blue", "cross"]
    assert second["keywords"] == ["walmart", "broadway"]
    assert "keyterm" not in first
    assert third["keyterm"] == ["blue cross"]  # nova-3 takes whole phrases as keyterms
    assert "keywords" not in third


async def test_keepalive_goes_out_while_no_audio_does() -> None:
    async with DeepgramServer(api_key=KEY) as server:
        async with stt_for(server, keepalive_s=0.05).start(RecognitionHints.yes_no()) as stream:
            await asyncio.sleep(0.3)  # the caller's side is quiet and no frames arrive
            await stream.feed(quiet(0.1))
            await stream.finish()
    controls = server.connections[0].controls
    assert controls.count("KeepAlive") >= 3
    assert controls[-2:] == ["Finalize", "CloseStream"]


async def test_a_socket_dropped_mid_turn_reconnects_and_no_words_are_lost() -> None:
    script = ScriptTranscriber(["my wife", "six one seven five five five"])
    # The server aborts the socket 2.4 s into the turn, in the middle of the second answer.
    faults = ListenFaults(drop_after_audio_s=2.4, drops=1)
    audio = turn(burst(0.8), quiet(1.0), burst(1.2), quiet(0.3))
    async with DeepgramServer(script, listen=faults, api_key=KEY) as server:
        async with stt_for(server).start(RecognitionHints.free_speech()) as stream:
            await feed_paced(stream, frames(audio), per=5)
            final = await stream.finish()
    assert final.text == "my wife six one seven five five five"
    first, second = server.connections
    assert first.dropped
    # The first answer was final before the drop: only the audio after it went again.
    first_final = next(m for m in first.sent if m["is_final"] if m.get("type") == "Results")
    covered = round((first_final["start"] + first_final["duration"]) * 8000)
    assert 0 < covered < 2.4 * 8000
    sent = ulaw_encode(audio).tobytes()
    assert bytes(second.audio) == sent[covered:]
    assert second.controls[0] == "Finalize"


async def test_a_socket_that_will_not_reopen_raises_a_disconnect_within_the_budget() -> None:
    faults = ListenFaults(drop_after_audio_s=0.5, outage_after_drop=True)
    async with DeepgramServer(listen=faults, api_key=KEY) as server:
        stt = stt_for(server, final_timeout_s=0.5)
        loop = asyncio.get_running_loop()
        began = loop.time()
        with pytest.raises(ProviderError) as caught:
            async with stt.start(RecognitionHints.free_speech()) as stream:
                await feed_paced(stream, frames(burst(1.0)))
                await stream.finish()
        elapsed_s = loop.time() - began
        assert caught.value.reason is FailureReason.DISCONNECT
        assert 503 in server.refused  # it tried again, and the server was down
    assert elapsed_s < 1.5  # the turn's budget (0.5 s) and the paced feeding, not more


@pytest.mark.parametrize(
    ("status", "reason"),
    [(429, FailureReason.HTTP_429), (500, FailureReason.HTTP_5XX), (503, FailureReason.HTTP_5XX)],
)
async def test_a_refused_handshake_is_a_typed_error(status: int, reason: FailureReason) -> None:
    async with DeepgramServer(listen=ListenFaults(status=status), api_key=KEY) as server:
        with pytest.raises(ProviderError) as caught:
            async with stt_for(server).start(RecognitionHints.yes_no()):
                pass
    assert caught.value.reason is reason
    assert str(status) in str(caught.value)


async def test_a_final_result_later_than_the_budget_is_a_timeout() -> None:
    script = ScriptTranscriber(["yes"])
    faults = ListenFaults(final_latency_s=3.0)
    async with DeepgramServer(script, listen=faults, api_key=KEY) as server:
        stt = stt_for(server, final_timeout_s=0.3)
        with pytest.raises(ProviderError) as caught:
            async with stt.start(RecognitionHints.yes_no()) as stream:
                await feed_paced(stream, frames(turn(burst(0.5), quiet(0.2))))
                await stream.finish()
    assert caught.value.reason is FailureReason.TIMEOUT


@pytest.mark.parametrize("ends_turns", [True, False])
async def test_deepgram_endpointing_can_end_the_turn(ends_turns: bool) -> None:
    script = ScriptTranscriber(["about a week"])
    faults = ListenFaults(segment_gap_ms=None)  # speech_final after the query's endpointing
    async with DeepgramServer(script, listen=faults, api_key=KEY) as server:
        stt = stt_for(server, endpointing_ms=200, ends_turns=ends_turns)
        async with stt.start(RecognitionHints.of(HintKind.DURATION)) as stream:
            assert isinstance(stream, DeepgramStream)
            wait = stream.wait_endpoint
            await feed_paced(stream, frames(turn(burst(0.6), quiet(0.3))))
            if ends_turns:
                await asyncio.wait_for(wait(), 2.0)
            else:
                with pytest.raises(TimeoutError):  # the runtime's endpointer decides
                    await asyncio.wait_for(wait(), 0.3)
            final = await stream.finish()
    assert final.text == "about a week"
    assert server.connections[0].query["endpointing"] == ["200"]
    speech_final = [m for m in server.connections[0].sent if m.get("speech_final")]
    assert len(speech_final) == 1  # sent after 200 ms of quiet, before any Finalize
