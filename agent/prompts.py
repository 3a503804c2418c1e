"""Prompts for the phone line: synthesized once, resampled to 8 kHz, level-normalised, cached.

Synthesis and resampling are blocking CPU work; the runtime calls `PromptCache.get` from a
worker thread the first time a prompt is needed (`asyncio.to_thread`), after which it is a
dictionary lookup.
"""

from __future__ import annotations

import threading

import numpy as np
from numpy.typing import NDArray

from agent.providers.espeak import Voice, sample_rate_hz, synthesize
from dsp.level import normalize
from dsp.resample import Resampler

TELEPHONE_RATE_HZ = 8000
PROMPT_LEVEL_DBFS = -18.0  # a little above ITU-T P.56 speech level (-26 dBov) for clarity


class PromptCache:
    """Text -> 8 kHz int16 PCM, synthesized with one espeak-ng voice."""

    def __init__(self, voice: Voice | None = None, level_dbfs: float = PROMPT_LEVEL_DBFS) -> None:
        self.voice = voice or Voice()
        self.level_dbfs = level_dbfs
        self._cache: dict[str, NDArray[np.int16]] = {}
        self._lock = threading.Lock()

    def get(self, text: str) -> NDArray[np.int16]:
        """The prompt's audio at 8 kHz (synthesized on first use)."""
        with self._lock:
            cached = self._cache.get(text)
        if cached is not None:
            return cached
        pcm = to_telephone(synthesize(text, self.voice), sample_rate_hz(), self.level_dbfs)
        with self._lock:
            self._cache[text] = pcm
        return pcm


def to_telephone(pcm: NDArray[np.int16], rate_hz: int, level_dbfs: float) -> NDArray[np.int16]:
    """Resample to 8 kHz and normalise the level."""
    resampler = Resampler(rate_hz, TELEPHONE_RATE_HZ)
    out = np.concatenate([resampler.process(pcm), resampler.flush()])
    return normalize(out.astype(np.int16), level_dbfs)
