"""A call whose Deepgram fails moves to the embedded provider within the turn, and says so once.

The cloud side is the real SDK against the loopback Deepgram. The embedded side here is a
recogniser that keeps what it is fed (so the test can see the whole turn reached it) and the
real espeak-ng prompt path for speech; the full pocketsphinx path runs in the end-to-end call.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, MutableMapping, Sequence
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray
from structlog.testing import capture_logs

from agent.metrics import REGISTRY
from agent.prompts import PromptCache
from agent.providers.base import RecognitionHints, RecognitionStream, Transcript
from agent.providers.deepgram_stt import DeepgramStt, DeepgramSttConfig
from agent.providers.deepgram_tts import DeepgramTts, DeepgramTtsConfig
from agent.providers.failover import FailoverStt, FailoverTts, PromptTts, Switch
from dsp.g711 import ulaw_decode
from tests.cloud.audio import burst, feed_paced, frames, quiet, turn
from tests.cloud.deepgram_server import (
    DeepgramServer,
    ListenFaults,
    ScriptTranscriber,
    SpeakFaults,
    tone_ulaw,
)

KEY = "test-key"
PHI = "anna smith"  # what the caller says must never reach a log line


class KeepingStream:
    def __init__(self, owner: KeepingStt) -> None:
        self.owner = owner

    async def feed(self, pcm8k: NDArray[np.int16]) -> None:
        self.owner.fed.append(pcm8k)

    async def interim(self) -> AsyncIterator[Transcript]:
        for _ in ():
            yield Transcript("", 0.0, is_final=False)

    async def finish(self) -> Transcript:
        return Transcript("heard by the embedded recogniser", 0.6, is_final=True)


class KeepingStt:
    """An embedded stand-in that keeps every frame it is fed, turn after turn."""

    def __init__(self) -> None:
        self.fed: list[NDArray[np.int16]] = []
        self.turns = 0

    @contextlib.asynccontextmanager
    async def start(self, hints: RecognitionHints) -> AsyncIterator[RecognitionStream]:
        self.turns += 1
        yield KeepingStream(self)

    async def aclose(self) -> None:
        pass


def failovers(role: str, reason: str) -> float:
    labels = {"role": role, "reason": reason}
    return REGISTRY.get_sample_value("voiceagent_provider_failovers_total", labels) or 0.0


def cloud_stt(server: DeepgramServer) -> DeepgramStt:
    return DeepgramStt(DeepgramSttConfig(url=server.url, api_key=KEY, final_timeout_s=0.4))


def the_failover_line(logs: Sequence[MutableMapping[str, Any]]) -> MutableMapping[str, Any]:
    lines = [entry for entry in logs if entry["event"] == "provider_failover"]
    assert len(lines) == 1, lines  # once per call and role, however many turns follow
    assert PHI not in repr(lines[0]).lower()
    return lines[0]


@pytest.mark.parametrize(("status", "reason"), [(429, "http_429"), (500, "http_5xx")])
async def test_a_refused_socket_gives_the_turn_to_the_embedded_recogniser(
    status: int, reason: str
) -> None:
    before = failovers("stt", reason)
    embedded = KeepingStt()
    async with DeepgramServer(listen=ListenFaults(status=status), api_key=KEY) as server:
        stt = FailoverStt(
            cloud_stt(server), embedded, Switch("call-1", "stt", "deepgram"), step_timeout_s=2.0
        )
        audio = turn(burst(0.6), quiet(0.2))
        with capture_logs() as logs:
            async with stt.start(RecognitionHints.free_speech()) as stream:
                await feed_paced(stream, frames(audio))
                result = await stream.finish()
            async with stt.start(RecognitionHints.yes_no()) as stream:  # the next turn
                await stream.feed(quiet(0.1))
                await stream.finish()
    assert result.text == "heard by the embedded recogniser"
    assert len(server.refused) == 1  # the second turn did not try Deepgram again
    assert embedded.turns == 2
    line = the_failover_line(logs)
    assert line["call_id"] == "call-1"
    assert (line["role"], line["from"], line["to"], line["reason"]) == (
        "stt",
        "deepgram",
        "embedded",
        reason,
    )
    assert failovers("stt", reason) == before + 1


async def test_a_drop_mid_turn_with_no_way_back_re_recognises_the_whole_turn() -> None:
    before = failovers("stt", "disconnect")
    embedded = KeepingStt()
    faults = ListenFaults(drop_after_audio_s=0.8, outage_after_drop=True)
    script = ScriptTranscriber([PHI])
    async with DeepgramServer(script, listen=faults, api_key=KEY) as server:
        stt = FailoverStt(
            cloud_stt(server), embedded, Switch("call-2", "stt", "deepgram"), step_timeout_s=2.0
        )
        audio = turn(quiet(0.2), burst(1.2), quiet(0.3))
        with capture_logs() as logs:
            async with stt.start(RecognitionHints.free_speech()) as stream:
                await feed_paced(stream, frames(audio))
                result = await stream.finish()
    assert result.text == "heard by the embedded recogniser"
    # Every frame of the turn reached the embedded recogniser, those before the drop too.
    assert np.array_equal(np.concatenate(embedded.fed), audio)
    assert the_failover_line(logs)["reason"] == "disconnect"
    assert failovers("stt", "disconnect") == before + 1


async def test_a_final_result_that_never_comes_is_a_timeout_and_the_turn_is_kept() -> None:
    before = failovers("stt", "timeout")
    embedded = KeepingStt()
    faults = ListenFaults(final_latency_s=5.0)
    async with DeepgramServer(ScriptTranscriber([PHI]), listen=faults, api_key=KEY) as server:
        stt = FailoverStt(
            cloud_stt(server), embedded, Switch("call-3", "stt", "deepgram"), step_timeout_s=2.0
        )
        audio = turn(burst(0.5), quiet(0.2))
        with capture_logs() as logs:
            async with stt.start(RecognitionHints.free_speech()) as stream:
                await feed_paced(stream, frames(audio))
                result = await stream.finish()
    assert result.text == "heard by the embedded recogniser"
    assert np.array_equal(np.concatenate(embedded.fed), audio)
    assert the_failover_line(logs)["reason"] == "timeout"
    assert failovers("stt", "timeout") == before + 1


@pytest.mark.parametrize(
    ("faults", "reason"),
    [
        (SpeakFaults(status=429), "http_429"),
        (SpeakFaults(status=503), "http_5xx"),
        (SpeakFaults(first_byte_s=2.0), "timeout"),
    ],
    ids=["429", "503", "timeout"],
)
async def test_a_failed_sentence_is_spoken_by_espeak_and_the_call_stays_there(
    faults: SpeakFaults, reason: str
) -> None:
    before = failovers("tts", reason)
    prompts = PromptCache()
    async with DeepgramServer(api_key=KEY, speak=faults) as server:
        cloud = DeepgramTts(
            DeepgramTtsConfig(url=server.url, api_key=KEY, first_byte_timeout_s=0.3)
        )
        call = FailoverTts(cloud, PromptTts(prompts.get), Switch("call-4", "tts", "deepgram"))
        other = FailoverTts(cloud, PromptTts(prompts.get), Switch("call-5", "tts", "deepgram"))
        with capture_logs() as logs:
            first = [c async for c in call.synthesize("What is your date of birth?")]
            second = [c async for c in call.synthesize("Thank you.")]
        faults.status, faults.first_byte_s = None, 0.0  # Deepgram is back
        elsewhere = [c async for c in other.synthesize("Hello.")]
    assert np.array_equal(np.concatenate(first), prompts.get("What is your date of birth?"))
    assert np.array_equal(np.concatenate(second), prompts.get("Thank you."))
    # The failed call asked Deepgram once; another call still uses it.
    asked = [r.text for r in server.speak_requests]
    assert asked.count("Thank you.") == 0
    assert asked[-1] == "Hello."
    assert np.array_equal(np.concatenate(elsewhere), ulaw_decode(tone_ulaw("Hello.")))
    line = the_failover_line(logs)
    assert (line["role"], line["from"], line["to"], line["reason"]) == (
        "tts",
        "deepgram",
        "embedded",
        reason,
    )
    assert "date of birth" not in repr(line)
    assert failovers("tts", reason) == before + 1
