"""Real speech for the VAD, endpointer and barge-in tests: espeak-ng at 8 kHz through G.711.

espeak-ng (installed with apt) synthesises at 22,050 Hz; the audio is resampled to 8 kHz with a
polyphase filter and sent through a μ-law round trip, as a caller's audio would arrive. The
true speech boundaries come from the *clean* 8 kHz signal by a plain amplitude threshold,
never from the detector under test.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from scipy.signal import resample_poly

from dsp.g711 import ulaw_decode, ulaw_encode
from dsp.vad import FRAME_SAMPLES, SAMPLE_RATE_HZ

FRAME_MS = 20
ESPEAK_HZ = 22_050


@functools.cache
def espeak(text: str, voice: str = "en-us") -> NDArray[np.int16]:
    """Synthesise ``text`` and return it as 8 kHz int16 PCM (cached per session)."""
    binary = shutil.which("espeak-ng")
    if binary is None:  # the rules: a missing tool fails the test, it never skips it
        raise RuntimeError("espeak-ng is not installed: apt-get install espeak-ng")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.wav"
        subprocess.run([binary, "-v", voice, "-w", str(out), text], check=True, timeout=30)
        with wave.open(str(out), "rb") as wav:
            assert (wav.getframerate(), wav.getsampwidth(), wav.getnchannels()) == (
                ESPEAK_HZ,
                2,
                1,
            )
            raw = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    # 8000/22050 = 160/441
    pcm = resample_poly(raw.astype(np.float64), 160, 441)
    return np.clip(np.round(pcm), -32768, 32767).astype(np.int16)


def scale_to_dbfs(pcm: NDArray[np.int16], active_dbfs: float) -> NDArray[np.int16]:
    """Scale so the RMS over the samples above 1 % of the peak is ``active_dbfs``."""
    x = pcm.astype(np.float64)
    active = x[np.abs(x) > 0.01 * np.abs(x).max()]
    gain = 32768.0 * 10 ** (active_dbfs / 20) / np.sqrt(np.mean(active**2))
    return np.clip(np.round(x * gain), -32768, 32767).astype(np.int16)


def ulaw_round_trip(pcm: NDArray[np.int16]) -> NDArray[np.int16]:
    """Encode to μ-law and back, as G.711 PCMU over RTP does."""
    return ulaw_decode(ulaw_encode(pcm))


def white_noise(samples: int, dbfs: float, seed: int) -> NDArray[np.float64]:
    """Gaussian white noise with RMS level ``dbfs`` (float, to be mixed before quantising)."""
    return np.random.default_rng(seed).normal(0.0, 32768.0 * 10 ** (dbfs / 20), samples)


def to_int16(x: NDArray[np.float64]) -> NDArray[np.int16]:
    """Round and clip floats to int16 PCM."""
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)


def frames_of(pcm: NDArray[np.int16]) -> NDArray[np.int16]:
    """Split PCM into 20 ms frames (the tail shorter than one frame is dropped)."""
    usable = len(pcm) // FRAME_SAMPLES * FRAME_SAMPLES
    return pcm[:usable].reshape(-1, FRAME_SAMPLES)


def ms_to_samples(ms: float) -> int:
    """Convert milliseconds to a sample count at 8 kHz."""
    return round(ms * SAMPLE_RATE_HZ / 1000)


@dataclass(frozen=True, slots=True)
class Span:
    """Where speech really is, in milliseconds from the start of the whole signal."""

    start_ms: float
    end_ms: float


def speech_span(clean: NDArray[np.int16], offset_samples: int = 0) -> Span:
    """First and last sample of ``clean`` above 2 % of its peak, shifted by the offset.

    2 % of the peak (-34 dB) is above espeak's near-silent lead-in and tail, and well below
    every phoneme onset, so the span is the audible speech.
    """
    x = np.abs(clean.astype(np.float64))
    loud = np.flatnonzero(x > 0.02 * x.max())
    to_ms = 1000.0 / SAMPLE_RATE_HZ
    return Span(
        (offset_samples + loud[0]) * to_ms,
        (offset_samples + loud[-1] + 1) * to_ms,
    )


def inner_silences_ms(clean: NDArray[np.int16]) -> list[float]:
    """Lengths of the pauses inside an utterance (runs below 2 % of the peak, 10 ms hops)."""
    x = np.abs(clean.astype(np.float64))
    hop = SAMPLE_RATE_HZ // 100
    loud = np.array([x[i : i + hop].max() > 0.02 * x.max() for i in range(0, len(x), hop)])
    first, last = np.flatnonzero(loud)[[0, -1]]
    pauses: list[float] = []
    run = 0
    for value in loud[first : last + 1]:
        if value:
            if run:
                pauses.append(run * 10.0)
            run = 0
        else:
            run += 1
    return pauses
