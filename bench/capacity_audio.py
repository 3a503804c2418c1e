"""Audio for the capacity benchmark: espeak-ng speech at 8 kHz, as callers and prompts.

The caller's side is one loop of utterances separated by pauses of 1.0-2.6 s (longer than the
endpointer's 700 ms of trailing silence, so every utterance opens and closes a turn), over a
faint line noise (-66 dBFS, below the VAD's -50 dBFS energy gate, as on a quiet PSTN line).
Each call starts the loop at a different frame, so turns start and end at different ticks.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from agent.prompts import PromptCache
from dsp.g711 import ulaw_encode
from dsp.level import normalize

FRAME_SAMPLES = 160
RATE_HZ = 8000
CALLER_LEVEL_DBFS = -24.0
NOISE_DBFS = -66.0

UTTERANCES = (
    "My date of birth is March fourth, nineteen eighty two.",
    "Yes.",
    "I have had a sore throat and a fever since Tuesday.",
    "Blue Cross Blue Shield, member number four four seven nine.",
    "No, that is everything, thank you.",
    "The pharmacy on Main Street, please.",
)
PAUSES_S = (1.2, 2.0, 1.0, 2.6, 1.5, 1.8)
PROMPT_TEXT = (
    "Thank you for calling. To get you checked in, please tell me your full name "
    "and your date of birth."
)


def caller_loop_ulaw(seed: int = 7) -> list[bytes]:
    """The caller's speech loop as 20 ms μ-law payloads (about 25 s)."""
    cache = PromptCache()
    rng = np.random.default_rng(seed)
    parts: list[NDArray[np.int16]] = []
    for text, pause_s in zip(UTTERANCES, PAUSES_S, strict=True):
        parts.append(normalize(cache.get(text), CALLER_LEVEL_DBFS))
        parts.append(np.zeros(round(pause_s * RATE_HZ), dtype=np.int16))
    speech = np.concatenate(parts)
    speech = np.concatenate([speech, np.zeros((-len(speech)) % FRAME_SAMPLES, dtype=np.int16)])
    noise_rms = 32768.0 * 10 ** (NOISE_DBFS / 20)
    noisy = speech.astype(np.float64) + rng.normal(0.0, noise_rms, len(speech))
    pcm = np.clip(np.round(noisy), -32768, 32767).astype(np.int16)
    codes = ulaw_encode(pcm).tobytes()
    return [codes[i : i + FRAME_SAMPLES] for i in range(0, len(codes), FRAME_SAMPLES)]


def prompt_pcm() -> NDArray[np.int16]:
    """The server's prompt (about 6 s), 8 kHz int16 at the runtime's prompt level."""
    return PromptCache().get(PROMPT_TEXT)
