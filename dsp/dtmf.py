"""In-band DTMF detection (ITU-T Q.23 tones, Q.24 reception limits) with the Goertzel filter.

Theory of operation
-------------------
A key sends one tone from the low (row) group and one from the high (column) group::

              1209  1336  1477  1633 Hz
       697     1     2     3     A
       770     4     5     6     B
       852     7     8     9     C
       941     *     0     #     D

`DtmfToneDetector` cuts the 8 kHz stream into overlapping windows (``window_samples`` long,
a new one every ``hop_samples``) and runs the eight Goertzel filters over each window. The
Goertzel state after N samples is a dot product of the window with the resonator's impulse
response ``h[n] = sin((n + 1) w) / sin(w)``, so all filters over all windows of a frame are
two matrix products, and the power follows from the usual final step
``s1**2 + s2**2 - 2 cos(w) s1 s2``. The filters sit on the exact Q.23 frequencies, not on the
nearest DFT bin.

A window is a *hit* for a key when every check passes:

* **level**: each of the two tones is at least ``min_tone_dbfs``;
* **twist**: the high tone is at most ``max_forward_twist_db`` above the low one, and the low
  tone at most ``max_reverse_twist_db`` above the high one;
* **relative peak**: in each group the strongest tone beats every other tone of that group by
  ``min_relative_peak_db`` (rejects chords and broadband sound);
* **purity**: the two tones carry at least ``min_tone_fraction`` of the window's energy.
  Speech spreads its energy over formants and harmonics and fails here. Because a window
  that is only partly covered by a tone carries that part's share of the energy, this check
  also decides how far into a tone's edges a window may reach, and so how durations count.

Hits are debounced with two counters rather than a state table: a key is reported once, when
``min_on_windows`` consecutive windows hit on it (about 35 ms of tone with the defaults, so a
40 ms tone always counts and a 30 ms tone never does), and the same key may be reported again
only after ``min_off_windows`` consecutive windows without a hit on it (a pause of about
25 ms). A different key may follow at once. A short drop-out inside a tone therefore
does not repeat the digit.

Detection runs only at 8 kHz (Q.23 tones fit well below its Nyquist); resample first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import NDArray

from dsp.errors import DspConfigError, FrameError, SampleFormatError
from dsp.level import dbfs_to_rms

__all__ = [
    "COLUMN_FREQUENCIES_HZ",
    "DIGITS",
    "KEYPAD",
    "ROW_FREQUENCIES_HZ",
    "SAMPLE_RATE_HZ",
    "DtmfConfig",
    "DtmfToneDetector",
    "dtmf_tone",
]

SAMPLE_RATE_HZ: Final = 8000
ROW_FREQUENCIES_HZ: Final = (697.0, 770.0, 852.0, 941.0)
COLUMN_FREQUENCIES_HZ: Final = (1209.0, 1336.0, 1477.0, 1633.0)
KEYPAD: Final = ("123A", "456B", "789C", "*0#D")
DIGITS: Final = "".join(KEYPAD)


def _key_frequencies(digit: str) -> tuple[float, float]:
    for row, keys in enumerate(KEYPAD):
        column = keys.find(digit) if len(digit) == 1 else -1
        if column >= 0:
            return ROW_FREQUENCIES_HZ[row], COLUMN_FREQUENCIES_HZ[column]
    raise DspConfigError(f"not a DTMF digit: {digit!r} (expected one of {DIGITS})")


def dtmf_tone(
    digit: str,
    duration_s: float,
    level_dbfs: float,
    sample_rate_hz: int = SAMPLE_RATE_HZ,
    *,
    twist_db: float = 0.0,
    frequency_error: float = 0.0,
) -> NDArray[np.int16]:
    """Synthesise the dual tone of a key, for tests and for sending in-band.

    Args:
        digit: One of ``0-9 * # A-D``.
        duration_s: Length in seconds (rounded to whole samples).
        level_dbfs: RMS level of *each* tone in dBFS (see `dsp.level`); the pair is 3 dB louder.
        sample_rate_hz: Output rate.
        twist_db: How much louder the high tone is than the low one; ``level_dbfs`` is then
            the low tone's level. Negative values give reverse twist.
        frequency_error: Relative offset applied to both tones (0.015 = +1.5 %).

    Returns:
        int16 samples, saturated at full scale.

    Raises:
        DspConfigError: If ``digit`` is not a DTMF key.
    """
    low_hz, high_hz = _key_frequencies(digit)
    t = np.arange(round(duration_s * sample_rate_hz)) / sample_rate_hz
    low_amplitude = dbfs_to_rms(level_dbfs) * math.sqrt(2.0)
    high_amplitude = low_amplitude * 10.0 ** (twist_db / 20.0)
    scale = 1.0 + frequency_error
    signal = low_amplitude * np.sin(2 * np.pi * low_hz * scale * t) + high_amplitude * np.sin(
        2 * np.pi * high_hz * scale * t
    )
    pcm: NDArray[np.int16] = np.clip(np.rint(signal), -32768, 32767).astype(np.int16)
    return pcm


@dataclass(frozen=True, slots=True)
class DtmfConfig:
    """Thresholds of `DtmfToneDetector`; the defaults follow Q.24 and common practice.

    Attributes:
        window_samples: Goertzel block length. 102 samples (12.75 ms) resolve the 73 Hz
            spacing of the low group while keeping time resolution (spandsp also uses 102).
        hop_samples: Distance between window starts; smaller gives finer duration steps.
        min_tone_dbfs: Quietest tone accepted, per tone (Q.24 asks for about -25 dBm0 per tone,
            about -28 dBFS in G.711; the default leaves margin below that).
        max_forward_twist_db: High tone may exceed the low tone by this much (Q.24: 8 dB
            is common; spandsp and Asterisk use 8 dB).
        max_reverse_twist_db: Low tone may exceed the high tone by this much (4 dB).
        min_relative_peak_db: Winning tone of a group over the runner-up of that group.
        min_tone_fraction: Share of the window energy the two tones must carry.
        min_on_windows: Consecutive hits before a key is reported.
        min_off_windows: Consecutive windows without the key before it may repeat.
    """

    window_samples: int = 102
    hop_samples: int = 34
    min_tone_dbfs: float = -32.0
    max_forward_twist_db: float = 8.0
    max_reverse_twist_db: float = 4.0
    min_relative_peak_db: float = 6.0
    min_tone_fraction: float = 0.6
    min_on_windows: int = 8
    min_off_windows: int = 6

    def __post_init__(self) -> None:
        if not 32 <= self.window_samples <= 410:
            raise DspConfigError(f"window_samples must be 32..410, got {self.window_samples}")
        if not 1 <= self.hop_samples <= self.window_samples:
            raise DspConfigError(
                f"hop_samples must be 1..window_samples, got {self.hop_samples}"
            )
        if not 0.0 < self.min_tone_fraction <= 1.0:
            raise DspConfigError(
                f"min_tone_fraction must be in (0, 1], got {self.min_tone_fraction}"
            )
        if self.min_on_windows < 1 or self.min_off_windows < 1:
            raise DspConfigError("min_on_windows and min_off_windows must be at least 1")

    @property
    def max_frame_samples(self) -> int:
        """Longest frame `DtmfToneDetector.push` accepts: short enough to hold one report."""
        return (self.min_on_windows - 1) * self.hop_samples


class DtmfToneDetector:
    """Find DTMF digits in a stream of 8 kHz int16 frames; each key press is reported once.

    Example:
        >>> detector = DtmfToneDetector()
        >>> digits = [d for f in frames if (d := detector.push(f))]  # doctest: +SKIP
    """

    __slots__ = (
        "_basis_last",
        "_basis_prev",
        "_buffer",
        "_candidate",
        "_config",
        "_cos_w",
        "_gap",
        "_latched",
        "_min_power",
        "_run",
    )

    def __init__(self, config: DtmfConfig | None = None) -> None:
        """Create a detector.

        Args:
            config: Thresholds; ``DtmfConfig()`` when omitted.
        """
        self._config = config or DtmfConfig()
        size = self._config.window_samples
        w = 2 * np.pi * np.array(ROW_FREQUENCIES_HZ + COLUMN_FREQUENCIES_HZ) / SAMPLE_RATE_HZ
        self._cos_w: NDArray[np.float64] = np.cos(w)
        # Goertzel state s[N-1] = sum_n x[n] h[N-1-n] and s[N-2] = sum_n x[n] h[N-2-n].
        lag = np.arange(size)[::-1, None]  # N-1-n for n = 0 .. N-1
        self._basis_last: NDArray[np.float64] = np.sin((lag + 1) * w) / np.sin(w)
        self._basis_prev: NDArray[np.float64] = np.sin(lag * w) / np.sin(w)
        # A full-window sinusoid of RMS r gives Goertzel power (N r)**2 / 2.
        self._min_power = (size * dbfs_to_rms(self._config.min_tone_dbfs)) ** 2 / 2
        self._buffer: NDArray[np.int16] = np.zeros(0, dtype=np.int16)
        self._candidate: str | None = None
        self._run = 0
        self._latched: str | None = None
        self._gap = 0

    @property
    def config(self) -> DtmfConfig:
        """The thresholds in use."""
        return self._config

    def push(self, frame: NDArray[np.int16]) -> str | None:
        """Feed the next frame; return the digit whose tone just became long enough, if any.

        Args:
            frame: 1-D int16 samples at 8 kHz, at most ``config.max_frame_samples`` long
                (204 with the defaults; a 20 ms RTP frame is 160).

        Returns:
            The digit (``"0"``-``"9"``, ``"*"``, ``"#"``, ``"A"``-``"D"``) or None.

        Raises:
            SampleFormatError: If ``frame`` is not an int16 array.
            FrameError: If ``frame`` is not 1-D or is too long.
        """
        if not isinstance(frame, np.ndarray) or frame.dtype != np.int16:
            found = frame.dtype if isinstance(frame, np.ndarray) else type(frame).__name__
            raise SampleFormatError(f"DTMF input must be an int16 array, got {found}")
        if frame.ndim != 1:
            raise FrameError(f"DTMF input must be a 1-D frame, got shape {frame.shape}")
        if frame.shape[0] > self._config.max_frame_samples:
            raise FrameError(
                f"DTMF frame of {frame.shape[0]} samples is longer than "
                f"{self._config.max_frame_samples}: split it"
            )
        found_digit: str | None = None
        for hit in self._classify(frame):
            digit = self._debounce(hit)
            found_digit = digit or found_digit
        return found_digit

    def _classify(self, frame: NDArray[np.int16]) -> list[str | None]:
        """Append ``frame`` and classify every complete window: a digit or None per window."""
        size, hop = self._config.window_samples, self._config.hop_samples
        buffer = np.concatenate([self._buffer, frame])
        count = 0 if buffer.shape[0] < size else (buffer.shape[0] - size) // hop + 1
        self._buffer = buffer[count * hop :]
        if count == 0:
            return []
        windows = np.lib.stride_tricks.sliding_window_view(buffer, size)[: (count - 1) * hop + 1 : hop]
        x = windows.astype(np.float64)
        s_last = x @ self._basis_last
        s_prev = x @ self._basis_prev
        power = s_last**2 + s_prev**2 - 2.0 * self._cos_w * s_last * s_prev
        energy = np.einsum("ij,ij->i", x, x)
        return [self._judge(p, e) for p, e in zip(power, energy, strict=True)]

    def _judge(self, power: NDArray[np.float64], energy: float) -> str | None:
        cfg = self._config
        rows, cols = power[:4], power[4:]
        row, col = int(np.argmax(rows)), int(np.argmax(cols))
        low, high = float(rows[row]), float(cols[col])
        if min(low, high) < self._min_power:
            return None
        if high > low * 10 ** (cfg.max_forward_twist_db / 10):
            return None
        if low > high * 10 ** (cfg.max_reverse_twist_db / 10):
            return None
        peak_ratio = 10 ** (cfg.min_relative_peak_db / 10)
        if np.any(np.delete(rows, row) * peak_ratio > low):
            return None
        if np.any(np.delete(cols, col) * peak_ratio > high):
            return None
        # A full-window tone of power P carries 2 P / N of the window's energy.
        if 2.0 * (low + high) / cfg.window_samples < cfg.min_tone_fraction * energy:
            return None
        return KEYPAD[row][col]

    def _debounce(self, hit: str | None) -> str | None:
        if hit is None or hit != self._latched:
            self._gap += 1
            if self._gap >= self._config.min_off_windows:
                self._latched = None
        if hit is None:
            self._candidate, self._run = None, 0
            return None
        if hit == self._latched:
            self._gap = 0
            self._candidate, self._run = None, 0
            return None
        self._run = self._run + 1 if hit == self._candidate else 1
        self._candidate = hit
        if self._run < self._config.min_on_windows:
            return None
        self._latched, self._gap = hit, 0
        self._candidate, self._run = None, 0
        return hit
