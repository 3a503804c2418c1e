"""Reading a caller's recording (WAV of any rate, 16-bit) as 8 kHz int16 for playback."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from agent.errors import AgentError
from agent.prompts import PROMPT_LEVEL_DBFS, to_telephone


def read_wav_8k(path: str | Path) -> NDArray[np.int16]:
    """A 16-bit WAV file, mixed to mono and resampled to 8 kHz.

    Raises:
        AgentError: the file cannot be read or is not 16-bit PCM.
    """
    try:
        with wave.open(str(path), "rb") as wav:
            if wav.getsampwidth() != 2:
                raise AgentError(f"{path}: only 16-bit PCM WAV files are supported")
            rate, channels = wav.getframerate(), wav.getnchannels()
            pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    except (OSError, wave.Error, EOFError) as exc:
        raise AgentError(f"cannot read {path}: {exc}") from None
    if channels > 1:
        pcm = pcm.reshape(-1, channels).mean(axis=1).astype(np.int16)
    return to_telephone(pcm.astype(np.int16), rate, PROMPT_LEVEL_DBFS - 4)
