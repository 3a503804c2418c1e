"""Deepgram Aura synthesis through the real SDK against the loopback Deepgram.

The loopback voice (`tone_ulaw`) gives every text its own bytes, so "this request got
exactly its own audio" is an equality on bytes; the server also records what it sent for
each request.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from agent.providers.deepgram_tts import DeepgramTts, DeepgramTtsConfig
from agent.providers.failure import FailureReason, ProviderError
from dsp.g711 import ulaw_decode
from tests.cloud.deepgram_server import DeepgramServer, SpeakFaults, tone_ulaw

KEY = "test-key"


def tts_for(
    server: DeepgramServer, first_byte_timeout_s: float = 1.5, chunk_timeout_s: float = 2.0
) -> DeepgramTts:
    config = DeepgramTtsConfig(
        url=server.url,
        api_key=KEY,
        first_byte_timeout_s=first_byte_timeout_s,
        chunk_timeout_s=chunk_timeout_s,
    )
    return DeepgramTts(config)


async def spoken(tts: DeepgramTts, text: str) -> bytes:
    return b"".join([chunk async for chunk in tts.synthesize_ulaw(text)])


async def test_aura_is_asked_for_raw_mulaw_at_8_khz_and_it_arrives_in_chunks() -> None:
    async with DeepgramServer(api_key=KEY, chunk_bytes=400) as server:
        tts = tts_for(server)
        chunks = [c async for c in tts.synthesize_ulaw("What is your date of birth?")]
        pcm = [c async for c in tts.synthesize("Thank you.")]
    first = server.speak_requests[0]
    assert first.query == {
        "model": ["aura-asteria-en"],
        "encoding": ["mulaw"],
        "sample_rate": ["8000"],
        "container": ["none"],
    }
    assert len(chunks) > 1
    assert b"".join(chunks) == first.audio == tone_ulaw("What is your date of birth?")
    # synthesize() hands the runtime 8 kHz PCM that encodes back to exactly these bytes.
    assert np.array_equal(np.concatenate(pcm), ulaw_decode(tone_ulaw("Thank you.")))


async def test_playout_can_start_with_the_first_chunk() -> None:
    faults = SpeakFaults(first_byte_s=0.25, chunk_interval_s=0.05)
    async with DeepgramServer(api_key=KEY, speak=faults, chunk_bytes=800) as server:
        tts = tts_for(server)
        loop = asyncio.get_running_loop()
        began = loop.time()
        arrivals = [loop.time() - began async for _ in tts.synthesize_ulaw("x" * 40)]
    assert len(arrivals) == 16  # 40 chars x 320 bytes, in 800-byte chunks
    assert 0.25 <= arrivals[0] < 0.5  # the first byte's latency, not the whole body's
    assert arrivals[-1] - arrivals[0] >= 0.6  # the rest was still streaming meanwhile


async def test_no_request_ever_gets_audio_of_another() -> None:
    texts = [f"Sentence number {n} of the call." for n in range(4)]
    async with DeepgramServer(api_key=KEY, chunk_bytes=300) as server:
        call_a, call_b = tts_for(server), tts_for(server)
        # One sentence abandoned after its first chunk (a barge-in), then the next one.
        abandoned = call_a.synthesize_ulaw("A long sentence the caller interrupts.")
        assert await anext(abandoned) == tone_ulaw("A long sentence the caller interrupts.")[:300]
        await abandoned.aclose()
        after = await spoken(call_a, texts[0])
        # Sentences of two calls at once, and the same text twice.
        together = await asyncio.gather(
            *(spoken(tts, text) for tts, text in zip((call_a, call_b) * 2, texts, strict=True)),
            spoken(call_b, texts[0]),
        )
    assert after == tone_ulaw(texts[0])
    for text, audio in zip([*texts, texts[0]], together, strict=True):
        assert audio == tone_ulaw(text)
    assert len({r.text for r in server.speak_requests}) == 5
    for record in server.speak_requests[1:]:
        assert record.audio == tone_ulaw(record.text)


@pytest.mark.parametrize(
    ("faults", "reason"),
    [
        (SpeakFaults(status=429), FailureReason.HTTP_429),
        (SpeakFaults(status=500), FailureReason.HTTP_5XX),
        (SpeakFaults(first_byte_s=1.0), FailureReason.TIMEOUT),
        (SpeakFaults(cut_after_first=True), FailureReason.DISCONNECT),
    ],
    ids=["429", "500", "no-first-byte", "cut-short"],
)
async def test_failures_are_typed(faults: SpeakFaults, reason: FailureReason) -> None:
    async with DeepgramServer(api_key=KEY, speak=faults, chunk_bytes=400) as server:
        tts = tts_for(server, first_byte_timeout_s=0.2)
        with pytest.raises(ProviderError) as caught:
            await spoken(tts, "Please hold.")
    assert caught.value.reason is reason
    assert "Please" not in str(caught.value)  # nothing of the text in the error


async def test_a_body_that_stalls_after_the_first_chunk_times_out() -> None:
    faults = SpeakFaults(stall_after_first=True)
    async with DeepgramServer(api_key=KEY, speak=faults, chunk_bytes=400) as server:
        tts = tts_for(server, chunk_timeout_s=0.2)
        got: list[bytes] = []
        with pytest.raises(ProviderError) as caught:
            async for chunk in tts.synthesize_ulaw("Please hold."):
                got.append(chunk)
    assert caught.value.reason is FailureReason.TIMEOUT
    assert got == [tone_ulaw("Please hold.")[:400]]
