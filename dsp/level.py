"""Signal levels in dBFS, and loudness normalisation for prompts.

dBFS here is the RMS relative to int16 full scale (32768), the convention sox uses for its
"RMS lev dB": a full-scale square wave is 0 dBFS and a full-scale sine -3.01 dBFS. Digital
silence has no level in dB and is reported as ``-inf``.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
from numpy.typing import NDArray

from dsp.errors import DspConfigError, SampleFormatError

__all__ = ["FULL_SCALE", "dbfs_to_rms", "normalize", "rms", "rms_dbfs"]

FULL_SCALE: Final = 32768.0
"""The int16 full-scale value that 0 dBFS refers to."""


def _check(pcm: NDArray[np.int16]) -> None:
    if not isinstance(pcm, np.ndarray) or pcm.dtype != np.int16:
        found = pcm.dtype if isinstance(pcm, np.ndarray) else type(pcm).__name__
        raise SampleFormatError(f"PCM must be an int16 array, got {found}")


def rms(pcm: NDArray[np.int16]) -> float:
    """Return the RMS of ``pcm`` in int16 units (0.0 for an empty array)."""
    _check(pcm)
    if pcm.size == 0:
        return 0.0
    samples = pcm.astype(np.float64)
    return math.sqrt(float(np.mean(samples * samples)))


def rms_dbfs(pcm: NDArray[np.int16]) -> float:
    """Return the RMS level of ``pcm`` in dBFS, or ``-inf`` for silence or an empty array.

    Args:
        pcm: int16 samples of any shape; all of them are measured together.

    Raises:
        SampleFormatError: If ``pcm`` is not an int16 array.
    """
    value = rms(pcm)
    return 20.0 * math.log10(value / FULL_SCALE) if value > 0.0 else -math.inf


def dbfs_to_rms(level_dbfs: float) -> float:
    """Return the RMS, in int16 units, of a signal at ``level_dbfs``."""
    return float(FULL_SCALE * 10.0 ** (level_dbfs / 20.0))


def normalize(pcm: NDArray[np.int16], target_dbfs: float) -> NDArray[np.int16]:
    """Scale a prompt so its RMS level is ``target_dbfs``, without clipping.

    The gain is capped so the largest sample stays within int16; a prompt with a high crest
    factor may then come out quieter than the target (measure it with `rms_dbfs`). Silence is
    returned unchanged.

    Args:
        pcm: int16 samples of any shape.
        target_dbfs: Wanted RMS level in dBFS (at most 0).

    Returns:
        A new int16 array of the same shape.

    Raises:
        SampleFormatError: If ``pcm`` is not an int16 array.
        DspConfigError: If ``target_dbfs`` is above 0 dBFS or not finite.
    """
    if not math.isfinite(target_dbfs) or target_dbfs > 0.0:
        raise DspConfigError(f"target_dbfs must be a finite level <= 0, got {target_dbfs}")
    current = rms(pcm)
    if current == 0.0:
        return pcm.copy()
    samples = pcm.astype(np.float64)
    peak = float(np.max(np.abs(samples)))
    gain = min(dbfs_to_rms(target_dbfs) / current, 32767.0 / peak)
    scaled: NDArray[np.int16] = np.clip(np.rint(samples * gain), -32768, 32767).astype(np.int16)
    return scaled
