"""Cloud mode of the turn latency benchmark: the loopback Deepgram and OpenAI servers.

``turn_latency.py --cloud`` serves the intake with all three cloud roles (Deepgram streaming
STT, Aura TTS, a GPT-4-class model through the OpenAI API), each played by the loopback
server the tests use (tests/cloud), driven by the real SDK clients inside the server, with
published latencies reproduced:

* STT: the final result (``is_final``, ``speech_final``) ``stt_final_ms`` after the speech
  ends (Deepgram's endpointing silence; the server lets it end the caller's turn,
  ``deepgram_ends_turns``), with interim results while the caller speaks;
* the model: its first token ``ttft_ms`` after the request, then ``inter_token_ms`` per token;
* TTS: the first byte of audio ``tts_first_byte_ms`` after the request, then the rest.

The caller answers a whole intake, in order (`INTAKE_SCRIPT`): a patient who gets every
answer right first time, all by voice. The loopback recogniser has no acoustic model: it
knows the script's audio, and names the line whose 20 ms frames the segment carries (the
telephone line on loopback delivers the caller's μ-law bytes unchanged), so each answer is
heard exactly and the call follows the intake from the payer to the summary. That matters
since ``llm_consult``: which turns wait for the model depends on what the caller said (an
open answer, or a closed one the rules read; `agent.consult`).

Both servers run on an event loop in a thread of this process and bind 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from turn_latency_caller import FRAME_SAMPLES, Utterance

from dsp.g711 import ulaw_decode
from tests.cloud.deepgram_server import DeepgramServer, ListenFaults, SpeakFaults, espeak_ulaw
from tests.cloud.openai_server import Behaviour, OpenAiServer

RATE_HZ = 8000
API_KEY = "bench-key"


@dataclass(frozen=True, slots=True)
class CloudLatency:
    """The latencies the loopback servers reproduce (defaults: issue 5's published figures)."""

    stt_final_ms: float = 300.0
    ttft_ms: float = 500.0
    inter_token_ms: float = 10.0
    tts_first_byte_ms: float = 250.0


#: A patient who answers every question right first time, by voice, from the payer to the
#: summary (the answers of tests/agent/test_conversation.py's INTAKE, the phone spoken).
INTAKE_SCRIPT = (
    "aetna", "yes",
    "a b c one two three four five six", "yes",
    "a cough and a fever for three days",
    "six",
    "anna a n n a", "yes",
    "smith s m i t h", "yes",
    "march third nineteen eighty four", "yes",
    "six one seven five five five oh one four two", "yes",
    "twelve elm street", "yes",
    "oh two one three nine", "yes",
    "the cvs on main street", "yes",
    "my wife maria lopez", "yes",
    "six one seven five five five oh one nine nine", "yes",
    "the first one",
    "yes",
)  # fmt: skip

#: The script's answers to open questions: with ``llm_consult=open_or_unread`` the only turns
#: (with answers the rules cannot read, of which this script has none) that go to the model.
OPEN_ANSWERS = frozenset(
    {
        "a cough and a fever for three days",
        "twelve elm street",
        "the cvs on main street",
        "my wife maria lopez",
    }
)


class ScriptFrames:
    """A `Transcriber` that names the script line whose audio frames the segment carries."""

    def __init__(self, utterances: list[Utterance]) -> None:
        self._lines: dict[bytes, str] = {}
        for utterance in utterances:
            for payload in utterance.payloads:
                pcm = ulaw_decode(payload)
                if np.any(pcm):  # digital silence is in every line
                    self._lines.setdefault(pcm.tobytes(), utterance.text)
        self._lengths = [(u.voiced_ms / 1000.0, u.text) for u in utterances]

    def _line(self, pcm: NDArray[np.int16]) -> str:
        votes: collections.Counter[str] = collections.Counter()
        for start in range(0, len(pcm) - FRAME_SAMPLES + 1, FRAME_SAMPLES):
            line = self._lines.get(pcm[start : start + FRAME_SAMPLES].tobytes())
            if line is not None:
                votes[line] += 1
        if votes:
            return votes.most_common(1)[0][0]
        # Frames not on the line's grid (never seen on loopback): the nearest voiced length.
        seconds = len(pcm) / RATE_HZ
        return min(self._lengths, key=lambda item: abs(item[0] - seconds))[1]

    def partial(self, pcm: NDArray[np.int16]) -> str:
        """The interim result: the first half of the line's words."""
        words = self._line(pcm).split()
        return " ".join(words[: max(1, len(words) // 2)])

    def final(self, pcm: NDArray[np.int16]) -> str:
        """The segment's final text."""
        return self._line(pcm)

    def rewind(self, count: int) -> None:
        """Nothing to give back: every segment is named afresh."""


@contextlib.contextmanager
def cloud_servers(utterances: list[Utterance], latency: CloudLatency) -> Iterator[dict[str, str]]:
    """Run both loopback servers; yields the server's environment for all three cloud roles."""
    deepgram = DeepgramServer(
        ScriptFrames(utterances),
        espeak_ulaw,
        listen=ListenFaults(final_latency_s=0.0, segment_gap_ms=round(latency.stt_final_ms)),
        speak=SpeakFaults(first_byte_s=latency.tts_first_byte_ms / 1000.0),
        api_key=API_KEY,
    )
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    stop: asyncio.Future[None] | None = None

    async def serve() -> None:
        nonlocal stop
        stop = loop.create_future()
        async with deepgram:
            ready.set()
            await stop

    thread = threading.Thread(target=lambda: loop.run_until_complete(serve()), daemon=True)
    thread.start()
    if not ready.wait(10.0):
        raise RuntimeError("the loopback Deepgram server did not start")
    behaviour = Behaviour(
        ttft_s=latency.ttft_ms / 1000.0, inter_token_s=latency.inter_token_ms / 1000.0
    )
    try:
        with OpenAiServer.running(API_KEY, behaviour) as openai:
            yield {
                "VOICEAGENT_STT_PROVIDER": "deepgram",
                "VOICEAGENT_TTS_PROVIDER": "deepgram",
                "VOICEAGENT_LLM_PROVIDER": "openai",
                "VOICEAGENT_DEEPGRAM_URL": deepgram.url,
                "VOICEAGENT_DEEPGRAM_API_KEY": API_KEY,
                "VOICEAGENT_DEEPGRAM_ENDPOINTING_MS": str(round(latency.stt_final_ms)),
                "VOICEAGENT_DEEPGRAM_ENDS_TURNS": "true",
                "VOICEAGENT_OPENAI_BASE_URL": openai.base_url,
                "VOICEAGENT_OPENAI_API_KEY": API_KEY,
            }
    finally:
        if stop is not None:
            loop.call_soon_threadsafe(stop.set_result, None)
        thread.join(10.0)
        loop.close()
